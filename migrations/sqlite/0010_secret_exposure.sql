-- Issue 15, point 4 (DESIGN.md section 7): the first leak report of a live secret marks it exposed:
-- when, where it was found (the report's URL) and by what (its source). Null for a secret never
-- reported. Added columns only, nullable: tools that insert rows keep working.
alter table client_secret add column exposed_at text;
alter table client_secret add column exposed_url text check (exposed_url is null or length(exposed_url) <= 2048);
alter table client_secret add column exposed_source text check (exposed_source is null or length(exposed_source) <= 200);
