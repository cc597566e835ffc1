-- Issue 17 (DESIGN.md section 9): webhook endpoints per application and their deliveries. The
-- URL (a credential for Slack and Teams) and a standard endpoint's signing secret are stored
-- encrypted with the master key; only the host is kept in clear, for pages and audit details.
create table webhook_endpoint (
    id uuid primary key,
    application_id uuid not null references application (id),
    format text not null check (format in ('standard', 'slack', 'teams')),
    url_enc bytea not null,
    host text not null,
    events text not null,
    signing_secret_enc bytea,
    created_at timestamptz not null,
    created_by uuid references portal_user (id),
    disabled_at timestamptz,
    last_success_at timestamptz,
    -- The first refusal since the last 2xx, and the refusals since: 72 hours and 3 refusals disable it.
    failing_since timestamptz,
    failed_attempts integer not null default 0,
    removed_at timestamptz
);
create index webhook_endpoint_application on webhook_endpoint (application_id) where removed_at is null;

-- One row per (endpoint, event), written in the transaction of what caused the event; delivered
-- oldest first per endpoint (id is the order), with the same webhook-id on every attempt. data is
-- the event's data (JSON, never a secret value or hash); each attempt renders it in the endpoint's
-- format, the same way every time.
create table webhook_delivery (
    id bigint generated always as identity primary key,
    endpoint_id uuid not null references webhook_endpoint (id),
    event_id uuid not null,
    event_type text not null,
    data text not null,
    created_at timestamptz not null,
    attempts integer not null default 0,
    next_attempt_at timestamptz not null,
    claimed_until timestamptz,
    delivered_at timestamptz,
    failed_at timestamptz,
    first_failed_at timestamptz,
    last_status integer,
    last_error text,
    unique (endpoint_id, event_id)
);
create index webhook_delivery_pending on webhook_delivery (endpoint_id, id) where delivered_at is null and failed_at is null;
