//! All SQL lives here: one [`Store`] over a Postgres or SQLite pool, with methods sized to one use
//! case, each owning its transaction.
//!
//! The SQL text is shared by both backends wherever the portable subset allows (`$1` placeholders,
//! instants through sqlx's chrono support, UUIDs bound the same way everywhere). The sqlx `Any`
//! driver cannot carry chrono or uuid values, so the store keeps the native pools and runs the same
//! text on whichever it holds through `on_pool!` (`pool.rs`). Dialect-specific code stays in this
//! module, and so does every other persistence: the session store (`sessions.rs`), the shared
//! throttle windows (`shared_window.rs`).
//!
//! Files go by table or aggregate: `secrets.rs` holds every write to `client_secret`, `users.rs`
//! every user lookup, `audit.rs` the audit actions, actors and events; `pool.rs` the handle and
//! its pools, `error.rs` the errors.

mod activity;
mod admin;
mod api;
mod applications;
pub(crate) mod audit;
mod auth;
mod error;
mod leaks;
mod manage;
mod organisations;
pub(crate) mod outbox;
mod passkeys;
mod pool;
pub(crate) mod reminders;
mod secrets;
pub mod sessions;
pub mod shared_window;
mod throttle;
mod tokens;
pub mod url;
mod usage;
pub(crate) mod users;
pub(crate) mod webhooks;

pub use activity::{ActivityEvent, ActivityFilter};
pub use admin::{ApplicationAttention, AuditFilter, ExpiringSecret};
pub use api::{
    ABANDONED_AFTER, API_CREATES_PER_WINDOW, ApiCreate, ApiNewSecret, ApiWrite, RenderApiEmails,
    RenderSelfRotationEmails, SelfRotationChange, SelfRotationFacts,
};
pub use applications::{Application, NewApplication, Resource};
pub use audit::{Actor, AuditAction, AuditEvent, NewAuditEvent, TargetName};
pub use auth::{Credentials, LinkRecord, NewLink};
pub(crate) use error::unique_violation;
pub use error::{Conflict, StoreError};
pub use leaks::{ExposedSecret, LeakOutcome, LeakSighting, RenderExposureEmails};
pub use manage::{Deletion, ManagedApplication, NewSecret, SecretView};
pub use organisations::Organisation;
pub use outbox::{OutboxDepth, QueuedEmail};
pub use passkeys::{AccountChange, NewPasskey, PasskeyAdded, PasskeyRemoval, StoredPasskey};
pub use pool::{Backend, KeyCheckError, PoolSettings, Store};
pub(crate) use pool::{BeginWrite, on_pool};
pub use reminders::{OutboxRow, Recipients, ReminderSecret, SentReminder};
pub use secrets::{ClientSecret, DeletedSecret, Exposure, SeedSecret};
pub use shared_window::{SharedWindow, flush_all};
pub use tokens::{NewSigningKey, ScheduledKeyRow, TokenClient, TokenLookup};
pub use url::DatabaseUrl;
pub use usage::{DayCount, RefusalDay, UsageDay};
pub use users::{Factors, NewUser, User, UserFilter, UserRole, UserStatus, UserSummary, shown_name};
pub use webhooks::{
    ClaimedDelivery, DeliveryCounts, DeliveryLine, DeliveryView, EndpointWithDeliveries, NewWebhookEndpoint,
    RenderWebhookDisabledEmails, TestEvent, WebhookEndpoint,
};
