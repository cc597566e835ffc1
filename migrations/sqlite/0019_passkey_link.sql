-- Issue 19 (DESIGN.md section 11): a one-time link of a new purpose, `passkey_enrolment`, lets a
-- WMDA admin register a first passkey under PORTAL_ADMIN_MFA=passkey. SQLite cannot alter a CHECK,
-- so the table is rebuilt (no table references it); its rows and index stay as they were.
create table one_time_token_new (
    id blob primary key check (length(id) = 16),
    user_id blob not null references portal_user (id),
    purpose text not null check (purpose in ('invitation', 'password_reset', 'mfa_reenrolment', 'passkey_enrolment')),
    token_hash blob not null unique check (length(token_hash) = 32),
    created_at text not null,
    expires_at text not null,
    used_at text,
    check (expires_at > created_at)
) strict;
insert into one_time_token_new (id, user_id, purpose, token_hash, created_at, expires_at, used_at)
    select id, user_id, purpose, token_hash, created_at, expires_at, used_at from one_time_token;
drop table one_time_token;
alter table one_time_token_new rename to one_time_token;
create index one_time_token_user on one_time_token (user_id, purpose);
