-- Issue 18 (DESIGN.md section 10): each audit event about an application, one of its client
-- secrets or webhook endpoints, or a grant on it, names the application, so credential managers
-- can read the events of the applications granted to them now. Existing events are filled in from
-- their target (ids are 16-byte blobs here, hyphenated text in target_id, matched through
-- unhex so the primary keys serve; grants: from the application's
-- name in their details). The append-only trigger is dropped for the backfill and created again
-- in this same transaction.
alter table audit_event add column application_id blob references application (id)
    check (application_id is null or length(application_id) = 16);
drop trigger audit_event_no_update;
update audit_event set application_id = (select a.id from application a
        where a.id = unhex(replace(audit_event.target_id, '-', '')))
    where target_type = 'application';
update audit_event set application_id = (select s.application_id from client_secret s
        where s.id = unhex(replace(audit_event.target_id, '-', '')))
    where target_type = 'client_secret';
update audit_event set application_id = (select w.application_id from webhook_endpoint w
        where w.id = unhex(replace(audit_event.target_id, '-', '')))
    where target_type = 'webhook_endpoint';
update audit_event set application_id = (select a.id from application a
        where a.organisation_id = audit_event.organisation_id and a.name = json_extract(audit_event.details, '$.application'))
    where action in ('grant.added', 'grant.revoked');
create trigger audit_event_no_update before update on audit_event
begin
    select raise(abort, 'audit events are append-only');
end;
create index audit_event_application on audit_event (application_id, id) where application_id is not null;
