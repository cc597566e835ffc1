-- Token signing keys (ES256): the private key encrypted with the master key, the public JWK in
-- clear. One active key at a time; retired keys stay published until their last token expires.
create table signing_key (
    kid text primary key,
    private_key_enc bytea not null,
    public_jwk text not null,
    created_at timestamptz not null,
    retired_at timestamptz
);
create unique index signing_key_one_active on signing_key ((retired_at is null)) where retired_at is null;

-- The token endpoint finds a secret by its hash.
create index client_secret_hash_live on client_secret (secret_hash) where deleted_at is null;
