-- Issue 16, point 3 (DESIGN.md section 8): a WMDA admin can forbid self-rotation for an
-- application. Forbidding also turns it off; while forbidden, no credential manager can turn it on.
alter table application add column self_rotation_forbidden boolean not null default false;
