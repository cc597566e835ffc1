-- Token signing keys: the same as migrations/postgres/0005_tokens.sql in SQLite's dialect.
create table signing_key (
    kid text primary key,
    private_key_enc blob not null,
    public_jwk text not null,
    created_at text not null,
    retired_at text
) strict;
create unique index signing_key_one_active on signing_key ((retired_at is null)) where retired_at is null;

create index client_secret_hash_live on client_secret (secret_hash) where deleted_at is null;
