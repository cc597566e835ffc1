-- Sign-in with mandatory MFA: passwords, TOTP, recovery codes, one-time links, the mail outbox.

-- argon2id PHC string; empty until the invitation is accepted.
alter table portal_user add column password_hash text check (password_hash like '$argon2id$%');
-- TOTP seed encrypted with the master key (nonce || ciphertext); empty until enrolment completes.
alter table portal_user add column totp_secret_enc bytea;
-- A seed offered at /mfa/setup, not yet confirmed with a code.
alter table portal_user add column totp_pending_enc bytea;
-- The last accepted TOTP time step: a code is accepted once (RFC 6238 5.2).
alter table portal_user add column totp_last_step bigint check (totp_last_step >= 0);
alter table portal_user add column mfa_enrolled_at timestamptz;
-- Sessions authenticated before this instant are ended (disable, MFA reset, password change).
alter table portal_user add column sessions_valid_after timestamptz;
alter table portal_user add constraint portal_user_mfa_complete
    check ((totp_secret_enc is null) = (mfa_enrolled_at is null));

-- Invitation, password-reset and MFA re-enrolment links: stored as SHA-256 of the token, single
-- use, expiring.
create table one_time_token (
    id uuid primary key,
    user_id uuid not null references portal_user (id),
    purpose text not null check (purpose in ('invitation', 'password_reset', 'mfa_reenrolment')),
    token_hash bytea not null unique check (octet_length(token_hash) = 32),
    created_at timestamptz not null,
    expires_at timestamptz not null check (expires_at > created_at),
    used_at timestamptz
);
create index one_time_token_user on one_time_token (user_id, purpose);

-- Recovery codes: HMAC-SHA-256 under a key derived from the master key, single use.
create table recovery_code (
    user_id uuid not null references portal_user (id),
    code_hash bytea not null check (octet_length(code_hash) = 32),
    created_at timestamptz not null,
    used_at timestamptz,
    primary key (user_id, code_hash)
);

-- Every email is a row written in the transaction of what caused it; the sender delivers it.
create table outbox (
    id uuid primary key,
    kind text not null check (kind in ('invitation', 'password_reset', 'mfa_reenrolment', 'reminder')),
    recipient text not null,
    subject text not null,
    -- Emptied once sent: the bodies of link emails carry one-time tokens.
    text_body text not null,
    html_body text not null,
    created_at timestamptz not null,
    next_attempt_at timestamptz not null,
    attempts integer not null default 0 check (attempts >= 0),
    -- A sender holds the row until this instant; after a crash another one takes it over.
    claimed_until timestamptz,
    sent_at timestamptz,
    failed_at timestamptz,
    last_error text,
    check (sent_at is null or failed_at is null)
);
create index outbox_due on outbox (next_attempt_at) where sent_at is null and failed_at is null;
