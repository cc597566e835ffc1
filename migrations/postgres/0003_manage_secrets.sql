-- The create form's one-time form_id: a second submit with the same id creates nothing.
create table secret_form (
    form_id uuid primary key,
    user_id uuid not null references portal_user (id),
    application_id uuid not null references application (id),
    secret_id uuid not null references client_secret (id),
    submitted_at timestamptz not null
);
