-- Expiry reminders: the same as migrations/postgres/0004_reminders.sql in SQLite's dialect.
create table reminder_sent (
    secret_id blob not null references client_secret (id),
    notice text not null check (notice in ('6w', '3w', '1w', 'd6', 'd5', 'd4', 'd3', 'd2', 'd1', 'd0', 'expired', 'rotation')),
    queued_at text not null,
    recipients integer not null check (recipients >= 0),
    to_admins integer not null check (to_admins in (0, 1)),
    primary key (secret_id, notice)
) strict;

alter table outbox add column secret_id blob references client_secret (id);
create index outbox_secret on outbox (secret_id) where secret_id is not null;

create index client_secret_expires_on on client_secret (expires_on) where deleted_at is null;
