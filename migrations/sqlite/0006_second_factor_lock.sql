-- Issue 12: second-factor failures per account, across every address. After 5 the password step
-- is needed again; after 20 the second factor is locked until mfa_locked_until (24 hours) or an
-- MFA reset by a WMDA admin.
alter table portal_user add column mfa_failures integer not null default 0 check (mfa_failures >= 0);
alter table portal_user add column mfa_locked_until text;

-- Email kinds are checked by EmailKind in Rust from now on (DESIGN.md section 12). SQLite cannot
-- drop a column's CHECK, so the outbox is rebuilt without it, with its rows and indexes.
create table outbox_rebuilt (
    id blob primary key check (length(id) = 16),
    kind text not null,
    recipient text not null,
    subject text not null,
    text_body text not null,
    html_body text not null,
    created_at text not null,
    next_attempt_at text not null,
    attempts integer not null default 0 check (attempts >= 0),
    claimed_until text,
    sent_at text,
    failed_at text,
    last_error text,
    secret_id blob references client_secret (id),
    check (sent_at is null or failed_at is null)
) strict;
insert into outbox_rebuilt (id, kind, recipient, subject, text_body, html_body, created_at, next_attempt_at,
                            attempts, claimed_until, sent_at, failed_at, last_error, secret_id)
select id, kind, recipient, subject, text_body, html_body, created_at, next_attempt_at,
       attempts, claimed_until, sent_at, failed_at, last_error, secret_id
from outbox;
drop table outbox;
alter table outbox_rebuilt rename to outbox;
create index outbox_due on outbox (next_attempt_at) where sent_at is null and failed_at is null;
create index outbox_secret on outbox (secret_id) where secret_id is not null;
