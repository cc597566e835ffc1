-- Issue 19 (DESIGN.md section 11): a one-time link of a new purpose, `passkey_enrolment`, lets a
-- WMDA admin register a first passkey under PORTAL_ADMIN_MFA=passkey.
alter table one_time_token drop constraint one_time_token_purpose_check;
alter table one_time_token add constraint one_time_token_purpose_check
    check (purpose in ('invitation', 'password_reset', 'mfa_reenrolment', 'passkey_enrolment'));
