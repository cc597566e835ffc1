-- Issue 12, point 3: throttle counts shared by replicas. One row per (scope, key): the key is the
-- SHA-256 of the normalised value (client ID and address bucket, or an address bucket), never
-- what a client typed; the count is a window of failures from the first (domain::throttle::WindowCount)
-- and the block it implies, which the token endpoint's secret lookup joins. Rows go once expires_at
-- passed (the window and any block are over).
create table throttle_window (
    scope text not null,
    throttle_key blob not null check (length(throttle_key) = 32),
    window_start text not null,
    failures integer not null check (failures >= 0),
    blocked_until text,
    expires_at text not null,
    primary key (scope, throttle_key)
) strict;
create index throttle_window_expiry on throttle_window (expires_at);
