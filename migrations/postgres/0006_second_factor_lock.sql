-- Issue 12: second-factor failures per account, across every address. After 5 the password step
-- is needed again; after 20 the second factor is locked until mfa_locked_until (24 hours) or an
-- MFA reset by a WMDA admin.
alter table portal_user add column mfa_failures integer not null default 0 check (mfa_failures >= 0);
alter table portal_user add column mfa_locked_until timestamptz;

-- Email kinds are checked by EmailKind in Rust from now on (DESIGN.md section 12).
alter table outbox drop constraint outbox_kind_check;
