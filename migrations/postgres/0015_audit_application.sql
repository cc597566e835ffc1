-- Issue 18 (DESIGN.md section 10): each audit event about an application, one of its client
-- secrets or webhook endpoints, or a grant on it, names the application, so credential managers
-- can read the events of the applications granted to them now. Existing events are filled in from
-- their target (grants: from the application's name in their details). The append-only trigger is
-- dropped for the backfill and created again in this same transaction.
alter table audit_event add column application_id uuid references application (id);
drop trigger audit_event_append_only on audit_event;
update audit_event e set application_id = a.id from application a
    where e.target_type = 'application' and e.target_id = a.id::text;
update audit_event e set application_id = s.application_id from client_secret s
    where e.target_type = 'client_secret' and e.target_id = s.id::text;
update audit_event e set application_id = w.application_id from webhook_endpoint w
    where e.target_type = 'webhook_endpoint' and e.target_id = w.id::text;
update audit_event e set application_id = a.id from application a
    where e.action in ('grant.added', 'grant.revoked') and e.organisation_id = a.organisation_id
      and (e.details::jsonb ->> 'application') = a.name;
create trigger audit_event_append_only before update or delete on audit_event
    for each row execute function audit_event_is_append_only();
create index audit_event_application on audit_event (application_id, id) where application_id is not null;
