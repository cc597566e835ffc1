-- Issue 19 (DESIGN.md section 11): a user's passkeys (WebAuthn credentials, webauthn-rs 0.6).
-- `credential` is webauthn-rs's Passkey as JSON: the credential ID, the public key, the
-- signature counter and the backup flags; no private key ever reaches the portal. The counter is
-- also kept as a column, so an update that would move it is a compare-and-swap. Credential IDs
-- are unique across users (WebAuthn section 7.1, step 22); names per user.
create table passkey (
    id uuid primary key,
    user_id uuid not null references portal_user (id) on delete cascade,
    name text not null,
    credential_id bytea not null unique,
    credential text not null,
    sign_count bigint not null default 0,
    discoverable boolean not null,
    created_at timestamptz not null,
    last_used_at timestamptz,
    -- A user tells their passkeys apart by name.
    unique (user_id, name)
);
create index passkey_user on passkey (user_id);

-- A passkey ceremony (challenge) whose answer was checked: a second answer to it is refused,
-- also when two copies arrive at once in one session or at two replicas. Rows older than the
-- ceremony's 5 minutes are deleted as new ones come.
create table passkey_ceremony_used (
    id uuid primary key,
    used_at timestamptz not null
);
