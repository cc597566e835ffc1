-- The create form's one-time form_id: a second submit with the same id creates nothing.
create table secret_form (
    form_id blob primary key check (length(form_id) = 16),
    user_id blob not null references portal_user (id),
    application_id blob not null references application (id),
    secret_id blob not null references client_secret (id),
    submitted_at text not null
) strict;
