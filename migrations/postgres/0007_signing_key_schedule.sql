-- Issue 12, point 5: a rotated key signs from active_from (published before, so verifiers that
-- refetch the JWKS on an unknown kid know it); null means from created_at.
alter table signing_key add column active_from timestamptz;
