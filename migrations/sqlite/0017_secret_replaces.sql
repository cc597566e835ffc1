-- Issue 18, point 3: a secret made with "Create replacement" names the secret it replaces (of
-- the same application), so the Manage page can offer to delete the old one once the new one
-- has obtained a token.
alter table client_secret add column replaces_secret_id blob references client_secret (id)
    check (replaces_secret_id is null or length(replaces_secret_id) = 16);
