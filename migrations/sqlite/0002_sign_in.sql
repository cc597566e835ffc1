-- Sign-in with mandatory MFA: passwords, TOTP, recovery codes, one-time links, the mail outbox.
-- The same as migrations/postgres/0002_sign_in.sql in SQLite's dialect.

alter table portal_user add column password_hash text check (password_hash like '$argon2id$%');
alter table portal_user add column totp_secret_enc blob;
alter table portal_user add column totp_pending_enc blob;
alter table portal_user add column totp_last_step integer check (totp_last_step >= 0);
alter table portal_user add column mfa_enrolled_at text;
alter table portal_user add column sessions_valid_after text;
-- SQLite cannot add a table constraint to an existing table; triggers hold the same rule.
create trigger portal_user_mfa_complete_insert before insert on portal_user
    when (new.totp_secret_enc is null) <> (new.mfa_enrolled_at is null)
begin
    select raise(abort, 'portal_user_mfa_complete');
end;
create trigger portal_user_mfa_complete_update before update on portal_user
    when (new.totp_secret_enc is null) <> (new.mfa_enrolled_at is null)
begin
    select raise(abort, 'portal_user_mfa_complete');
end;

create table one_time_token (
    id blob primary key check (length(id) = 16),
    user_id blob not null references portal_user (id),
    purpose text not null check (purpose in ('invitation', 'password_reset', 'mfa_reenrolment')),
    token_hash blob not null unique check (length(token_hash) = 32),
    created_at text not null,
    expires_at text not null,
    used_at text,
    check (expires_at > created_at)
) strict;
create index one_time_token_user on one_time_token (user_id, purpose);

create table recovery_code (
    user_id blob not null references portal_user (id),
    code_hash blob not null check (length(code_hash) = 32),
    created_at text not null,
    used_at text,
    primary key (user_id, code_hash)
) strict;

create table outbox (
    id blob primary key check (length(id) = 16),
    kind text not null check (kind in ('invitation', 'password_reset', 'mfa_reenrolment', 'reminder')),
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
    check (sent_at is null or failed_at is null)
) strict;
create index outbox_due on outbox (next_attempt_at) where sent_at is null and failed_at is null;
