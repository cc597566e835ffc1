-- Issue 18, point 2 (DESIGN.md section 10): token usage per client secret per UTC day (tokens
-- issued, the last use and its address) and invalid_client refusals per application per UTC day,
-- written off the request path by the usage flush; rows older than 90 days are deleted.
create table secret_usage_day (
    secret_id uuid not null references client_secret (id),
    day date not null,
    issued bigint not null check (issued >= 0),
    last_used_at timestamptz not null,
    last_ip text not null,
    primary key (secret_id, day)
);
create index secret_usage_day_day on secret_usage_day (day);
create table client_refusal_day (
    application_id uuid not null references application (id),
    day date not null,
    refused bigint not null check (refused >= 0),
    last_at timestamptz not null,
    last_ip text not null,
    primary key (application_id, day)
);
create index client_refusal_day_day on client_refusal_day (day);
