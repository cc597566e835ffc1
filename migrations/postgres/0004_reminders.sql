-- Expiry reminders: what was sent, once per (secret, notice), recorded in the transaction that
-- queues the emails.
create table reminder_sent (
    secret_id uuid not null references client_secret (id),
    notice text not null check (notice in ('6w', '3w', '1w', 'd6', 'd5', 'd4', 'd3', 'd2', 'd1', 'd0', 'expired', 'rotation')),
    queued_at timestamptz not null,
    recipients integer not null check (recipients >= 0),
    to_admins boolean not null,
    primary key (secret_id, notice)
);

-- Reminder emails name their secret, so deleting it cancels the ones not yet sent.
alter table outbox add column secret_id uuid references client_secret (id);
create index outbox_secret on outbox (secret_id) where secret_id is not null;

-- The reminder pass looks at secrets expiring within the next 42 days (or the last 7).
create index client_secret_expires_on on client_secret (expires_on) where deleted_at is null;
