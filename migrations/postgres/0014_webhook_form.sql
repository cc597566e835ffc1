-- Issue 17: the add form's one-time form_id, so a second submit of the same form (a double
-- click, a reload, two tabs) adds nothing: its signing secret was shown once already.
alter table webhook_endpoint add column form_id uuid;
create unique index webhook_endpoint_form on webhook_endpoint (form_id);
-- The pages read each endpoint's latest deliveries (newest first): an index on (endpoint, id)
-- for all of them, delivered ones included.
create index webhook_delivery_endpoint on webhook_delivery (endpoint_id, id);
