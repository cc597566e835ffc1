-- Foundation: organisations, users, applications, resources, grants, client secrets, audit events.
-- The same tables and invariants as migrations/postgres/0001_foundation.sql, in SQLite's dialect.
-- UUIDs are 16-byte BLOBs (how sqlx binds uuid::Uuid here); instants are RFC 3339 text as sqlx
-- writes DateTime<Utc>; dates are YYYY-MM-DD text.

create table setting (
    key text primary key,
    value blob not null
) strict;

create table organisation (
    id blob primary key check (length(id) = 16),
    display_name text not null check (length(trim(display_name)) between 1 and 200),
    country_code text not null check (length(country_code) = 2 and country_code not glob '*[^A-Z]*'),
    code text not null check (length(code) between 2 and 40 and code not glob '*[^A-Za-z0-9]*'),
    created_at text not null
) strict;
create unique index organisation_country_code_key on organisation (country_code, lower(code));

create trigger organisation_code_immutable before update of code, country_code on organisation
    when new.code <> old.code or new.country_code <> old.country_code
begin
    select raise(abort, 'an organisation''s country and code never change');
end;

create table portal_user (
    id blob primary key check (length(id) = 16),
    email text not null unique check (email = trim(email) and email like '_%@_%'),
    display_name text not null check (length(display_name) <= 200),
    organisation_id blob references organisation (id),
    is_wmda_admin integer not null check (is_wmda_admin in (0, 1)),
    disabled_at text,
    created_at text not null,
    check (is_wmda_admin = (organisation_id is null)),
    unique (id, organisation_id)
) strict;

create table resource (
    id text primary key check (id in (
        'search-match-production', 'search-match-sandbox',
        'match-connect-production', 'match-connect-sandbox',
        'data-manager-production', 'data-manager-sandbox')),
    api text not null check (api in ('DM', 'SMC')),
    audience text not null unique check (
        length(audience) between 1 and 200
        and audience not in (
            'search-match-production', 'search-match-sandbox',
            'match-connect-production', 'match-connect-sandbox',
            'data-manager-production', 'data-manager-sandbox')),
    check ((api = 'DM') = (id like 'data-manager-%')),
    unique (id, api)
) strict;

insert into resource (id, api, audience) values
    ('search-match-production', 'SMC', 'api://wmda/search-match-production'),
    ('search-match-sandbox', 'SMC', 'api://wmda/search-match-sandbox'),
    ('match-connect-production', 'SMC', 'api://wmda/match-connect-production'),
    ('match-connect-sandbox', 'SMC', 'api://wmda/match-connect-sandbox'),
    ('data-manager-production', 'DM', 'api://wmda/data-manager-production'),
    ('data-manager-sandbox', 'DM', 'api://wmda/data-manager-sandbox');

create table application (
    id blob primary key check (length(id) = 16),
    organisation_id blob not null references organisation (id),
    kind text not null check (kind in ('Partner', 'PartnerAlternative')),
    api text not null check (api in ('DM', 'SMC')),
    name text not null unique check (name like kind || '-__-%-' || api),
    client_id blob not null unique check (length(client_id) = 16),
    created_at text not null,
    check (kind = 'Partner' or api = 'SMC'),
    unique (organisation_id, kind, api),
    unique (id, kind, api),
    unique (id, organisation_id)
) strict;

create trigger application_identity_immutable before update on application
    when new.name <> old.name or new.client_id <> old.client_id or new.organisation_id <> old.organisation_id
      or new.kind <> old.kind or new.api <> old.api
begin
    select raise(abort, 'an application''s name, client ID, organisation, kind and API never change');
end;

create table application_resource (
    application_id blob not null,
    kind text not null,
    api text not null,
    resource_id text not null,
    primary key (application_id, resource_id),
    foreign key (application_id, kind, api) references application (id, kind, api) on delete cascade,
    foreign key (resource_id, api) references resource (id, api),
    check (kind = 'Partner' or resource_id = 'match-connect-sandbox')
) strict;

create table credential_manager_grant (
    user_id blob not null,
    application_id blob not null,
    organisation_id blob not null,
    granted_at text not null,
    granted_by blob references portal_user (id),
    foreign key (application_id, organisation_id) references application (id, organisation_id) on delete cascade,
    primary key (user_id, application_id),
    foreign key (user_id, organisation_id) references portal_user (id, organisation_id) on delete cascade
) strict;
create index credential_manager_grant_application on credential_manager_grant (application_id);

create table client_secret (
    id blob primary key check (length(id) = 16),
    application_id blob not null references application (id),
    name text not null check (length(name) between 1 and 100 and name = trim(name)),
    hint text not null check (length(hint) = 3 and hint not glob '*[^A-Za-z0-9]*'),
    secret_hash blob unique check (length(secret_hash) = 32),
    expires_on text not null check (date(expires_on) = expires_on),
    -- D+1 00:00:00Z as sqlx writes it.
    expires_at text not null check (expires_at = date(expires_on, '+1 day') || 'T00:00:00+00:00'),
    created_by blob references portal_user (id),
    created_at text not null,
    first_used_at text,
    last_used_at text,
    deleted_at text,
    deleted_by blob references portal_user (id),
    check (last_used_at is null or (first_used_at is not null and first_used_at <= last_used_at)),
    check ((deleted_at is null) = (secret_hash is not null)),
    check (deleted_at is not null or deleted_by is null)
) strict;
create index client_secret_live on client_secret (application_id, expires_at) where deleted_at is null;

create table audit_event (
    id integer primary key autoincrement,
    occurred_at text not null,
    actor_user_id blob references portal_user (id),
    actor_label text not null,
    ip text,
    action text not null check (length(action) > 0 and action not glob '*[^a-z_.]*'),
    organisation_id blob references organisation (id),
    target_type text,
    target_id text,
    details text not null default '{}'
) strict;
create index audit_event_occurred_at on audit_event (occurred_at);
create index audit_event_action on audit_event (action, occurred_at);

create trigger audit_event_no_update before update on audit_event
begin
    select raise(abort, 'audit events are append-only');
end;
create trigger audit_event_no_delete before delete on audit_event
begin
    select raise(abort, 'audit events are append-only');
end;
