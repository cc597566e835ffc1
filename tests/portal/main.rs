//! The portal's integration tests, in one binary (issue 13, point 5): the support code compiles
//! once and one executable links. Each module covers one part over its real interface (HTTP, the
//! command line, the store), on SQLite by default and on Postgres when `TEST_DATABASE_URL` is set
//! (`.ci/run` runs both). Add new tests to a module here, not as a new file under `tests/`.
//!
//! The tests share one process: log lines are tagged with their test application's id
//! ([`support::TestApp::logs`] reads only its own) and metric assertions compare a value before and
//! after within the test ([`support::TestApp::metric`]).

#[macro_use]
mod support;

mod activity;
mod admin;
mod api;
mod api_docs;
mod cli;
mod hardening;
mod health;
mod layering;
mod leaks;
mod manage;
mod outbox;
mod passkeys;
mod readme;
mod reminders;
mod rotate_script;
mod secret_format;
mod self_rotation;
mod sign_in;
mod store;
mod tokens;
mod webhook_pages;
mod webhooks;
