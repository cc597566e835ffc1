-- Issue 15, point 2 (DESIGN.md section 7): the format of a secret's value. 1 = the 40 alphanumerics
-- made before v2 (the default, so every existing row and every tool that inserts without the column
-- keeps meaning "v1"); 2 = wmdacs_ + 32 random characters + a 6-character base62 CRC-32, whose hint
-- (still 3 characters in `hint`) is shown with the prefix. A column is added, never a table rebuilt:
-- other tables reference client_secret.
alter table client_secret add column value_format integer not null default 1 check (value_format in (1, 2));
