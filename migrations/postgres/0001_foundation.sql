-- Foundation: organisations, users, applications, resources, grants, client secrets, audit events.
-- Every invariant the database can hold is a constraint here; the Rust domain types hold the rest.

create table setting (
    key text primary key,
    value bytea not null
);

create table organisation (
    id uuid primary key,
    display_name text not null check (char_length(btrim(display_name)) between 1 and 200),
    country_code text not null check (country_code ~ '^[A-Z]{2}$'),
    -- Immutable (see the trigger below), used in application names.
    code text not null check (code ~ '^[A-Za-z0-9]{2,40}$'),
    created_at timestamptz not null
);
-- The code is unique per country ignoring case.
create unique index organisation_country_code_key on organisation (country_code, lower(code));

create function organisation_code_is_immutable() returns trigger language plpgsql as $$
begin
    if new.code <> old.code or new.country_code <> old.country_code then
        raise exception 'an organisation''s country and code never change';
    end if;
    return new;
end $$;
create trigger organisation_code_immutable before update on organisation
    for each row execute function organisation_code_is_immutable();

create table portal_user (
    id uuid primary key,
    -- Normalised (trimmed, lower-cased) by EmailAddress::parse before it gets here.
    email text not null unique check (email = btrim(email) and email like '_%@_%'),
    display_name text not null check (char_length(display_name) <= 200),
    -- WMDA staff have no organisation and are WMDA admins; everyone else belongs to one organisation.
    organisation_id uuid references organisation (id),
    is_wmda_admin boolean not null,
    check (is_wmda_admin = (organisation_id is null)),
    disabled_at timestamptz,
    created_at timestamptz not null,
    unique (id, organisation_id)
);

create table resource (
    id text primary key check (id in (
        'search-match-production', 'search-match-sandbox',
        'match-connect-production', 'match-connect-sandbox',
        'data-manager-production', 'data-manager-sandbox')),
    api text not null check (api in ('DM', 'SMC')),
    check ((api = 'DM') = (id like 'data-manager-%')),
    -- One value per resource, shared by every application that holds it, unique, never a resource id.
    audience text not null unique check (
        char_length(audience) between 1 and 200
        and audience not in (
            'search-match-production', 'search-match-sandbox',
            'match-connect-production', 'match-connect-sandbox',
            'data-manager-production', 'data-manager-sandbox')),
    unique (id, api)
);

insert into resource (id, api, audience) values
    ('search-match-production', 'SMC', 'api://wmda/search-match-production'),
    ('search-match-sandbox', 'SMC', 'api://wmda/search-match-sandbox'),
    ('match-connect-production', 'SMC', 'api://wmda/match-connect-production'),
    ('match-connect-sandbox', 'SMC', 'api://wmda/match-connect-sandbox'),
    ('data-manager-production', 'DM', 'api://wmda/data-manager-production'),
    ('data-manager-sandbox', 'DM', 'api://wmda/data-manager-sandbox');

create table application (
    id uuid primary key,
    organisation_id uuid not null references organisation (id),
    kind text not null check (kind in ('Partner', 'PartnerAlternative')),
    api text not null check (api in ('DM', 'SMC')),
    -- PartnerAlternative applications are for the Match-Connect sandbox (SMC) only.
    check (kind = 'Partner' or api = 'SMC'),
    -- Derived from kind, organisation and API; unique; never changes (trigger below).
    name text not null unique check (name like kind || '-__-%-' || api),
    client_id uuid not null unique,
    created_at timestamptz not null,
    -- At most one application per organisation, kind and API.
    unique (organisation_id, kind, api),
    unique (id, kind, api),
    unique (id, organisation_id)
);

create function application_identity_is_immutable() returns trigger language plpgsql as $$
begin
    if new.name <> old.name or new.client_id <> old.client_id or new.organisation_id <> old.organisation_id
       or new.kind <> old.kind or new.api <> old.api then
        raise exception 'an application''s name, client ID, organisation, kind and API never change';
    end if;
    return new;
end $$;
create trigger application_identity_immutable before update on application
    for each row execute function application_identity_is_immutable();

-- The resources each application holds; the API and kind are repeated so that foreign keys hold
-- the rule "DM applications hold Data Manager resources only, SMC applications the SMC ones,
-- PartnerAlternative applications match-connect-sandbox only".
create table application_resource (
    application_id uuid not null,
    kind text not null,
    api text not null,
    resource_id text not null,
    primary key (application_id, resource_id),
    foreign key (application_id, kind, api) references application (id, kind, api) on delete cascade,
    foreign key (resource_id, api) references resource (id, api),
    check (kind = 'Partner' or resource_id = 'match-connect-sandbox')
);

-- credential_manager is granted per application, only to users of that application's organisation
-- (the two composite foreign keys share organisation_id).
create table credential_manager_grant (
    user_id uuid not null,
    application_id uuid not null,
    organisation_id uuid not null,
    granted_at timestamptz not null,
    granted_by uuid references portal_user (id),
    primary key (user_id, application_id),
    foreign key (user_id, organisation_id) references portal_user (id, organisation_id) on delete cascade,
    foreign key (application_id, organisation_id) references application (id, organisation_id) on delete cascade
);
create index credential_manager_grant_application on credential_manager_grant (application_id);

create table client_secret (
    id uuid primary key,
    application_id uuid not null references application (id),
    name text not null check (char_length(name) between 1 and 100 and name = btrim(name)),
    hint text not null check (hint ~ '^[A-Za-z0-9]{3}$'),
    -- SHA-256 of the value; wiped (null) when the secret is deleted.
    secret_hash bytea unique check (octet_length(secret_hash) = 32),
    -- The expiration date D (UTC) and the instant the secret stops working, D+1 00:00:00Z.
    expires_on date not null,
    expires_at timestamptz not null check (expires_at = (expires_on + 1)::timestamp at time zone 'UTC'),
    -- Empty for seeded secrets (shown as "WMDA").
    created_by uuid references portal_user (id),
    created_at timestamptz not null,
    first_used_at timestamptz,
    last_used_at timestamptz,
    check (last_used_at is null or (first_used_at is not null and first_used_at <= last_used_at)),
    -- Tombstone: a deleted secret keeps its metadata, loses its hash.
    deleted_at timestamptz,
    deleted_by uuid references portal_user (id),
    check ((deleted_at is null) = (secret_hash is not null)),
    check (deleted_at is not null or deleted_by is null)
);
create index client_secret_live on client_secret (application_id, expires_at) where deleted_at is null;

create table audit_event (
    id bigint generated always as identity primary key,
    occurred_at timestamptz not null,
    -- Empty for the command line and the system itself; actor_label says which.
    actor_user_id uuid references portal_user (id),
    actor_label text not null,
    ip text,
    action text not null check (action ~ '^[a-z_.]+$'),
    organisation_id uuid references organisation (id),
    target_type text,
    target_id text,
    details text not null default '{}'
);
create index audit_event_occurred_at on audit_event (occurred_at);
create index audit_event_action on audit_event (action, occurred_at);

-- Audit events are append-only.
create function audit_event_is_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit events are append-only';
end $$;
create trigger audit_event_append_only before update or delete on audit_event
    for each row execute function audit_event_is_append_only();
