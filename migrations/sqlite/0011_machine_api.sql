-- Issue 16 (DESIGN.md section 8): the machine API. A secret made through the API records the
-- secret that made it (its creator, whose ancestors it may delete); a tombstone records which
-- secret deleted it, if one did, and why (person, admin, api, leak_report, abandoned). Added
-- columns only, nullable or defaulted: tools that insert rows keep working.
alter table client_secret add column created_by_secret_id blob references client_secret (id);
alter table client_secret add column deleted_by_secret_id blob references client_secret (id);
alter table client_secret add column deleted_reason text check (deleted_reason is null or deleted_reason in ('person', 'admin', 'api', 'leak_report', 'abandoned'));
create index client_secret_created_by_secret on client_secret (created_by_secret_id) where created_by_secret_id is not null;
-- Self-rotation through the API: off by default, turned on per application by a credential manager.
alter table application add column self_rotation integer not null default 0 check (self_rotation in (0, 1));
