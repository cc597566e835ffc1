//! The store's errors: [`StoreError`] for every method, [`Conflict`] for a change that conflicts
//! with stored data (worded for the person who caused it).

/// A conflict with data already stored, worded for the person who caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Same country and code (ignoring case).
    #[error("An organisation with this country and code already exists.")]
    OrganisationExists,
    /// Same organisation, kind and API (hence the same name).
    #[error("This organisation already has an application of this kind for this API.")]
    ApplicationExists,
    /// The client ID belongs to another application.
    #[error("This client ID already belongs to another application.")]
    ClientIdTaken,
    /// The email belongs to another user.
    #[error("A user with this email address already exists.")]
    EmailTaken,
    /// An invitation for an account that is already active.
    #[error(
        "This user has already accepted an invitation and set up an authenticator: use password reset or an MFA reset instead."
    )]
    AlreadyActive,
    /// An invitation for an account that has chosen a password but has no authenticator (after
    /// an MFA reset, or before enrolment finished).
    #[error(
        "This user has already chosen a password, so an invitation cannot be resent: reset their MFA to send a re-enrolment link instead."
    )]
    HasPassword,
    /// Five invitations to the address within the last hour (issue 12: emails limited per
    /// account).
    #[error("Five invitations were sent to this address in the last hour: wait before sending another.")]
    TooManyInvitations,
    /// An invitation for an email that belongs to a user of another organisation or role.
    #[error("This email address belongs to a user of another organisation or role.")]
    RoleDiffers,
    /// An audience another resource has.
    #[error("Another resource already has this audience.")]
    AudienceTaken,
    /// The application has as many unexpired secrets as allowed.
    #[error("This application already has the most unexpired secrets allowed. Delete one it no longer needs first.")]
    SecretLimitReached,
    /// The application has as many webhook endpoints as allowed (DESIGN.md section 9).
    #[error("This application already has 5 webhook endpoints, the most allowed: remove one first.")]
    WebhookLimit,
    /// The create form was submitted before; the secret it created is not shown again.
    #[error("This form was already submitted. The secret it created cannot be shown again.")]
    FormAlreadySubmitted,
    /// New recovery codes were made seconds ago (a double submit): the ones shown then work.
    #[error(
        "New recovery codes were made for your account seconds ago: keep the ones shown then, or try again in a few seconds."
    )]
    RecoveryCodesJustMade,
    /// The user has a passkey of this name (issue 19).
    #[error("You have a passkey of this name. Choose another.")]
    PasskeyNameTaken,
    /// The user is not of the application's organisation.
    #[error("The credential manager role can only go to users of the application's organisation.")]
    GrantOutsideOrganisation,
}

/// Errors of store methods.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change conflicts with stored data; nothing was changed.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The input breaks an application rule (kind, API, resources); nothing was changed.
    #[error(transparent)]
    Rule(#[from] crate::domain::application::ApplicationRuleError),
    /// The row does not exist (or the actor may not see it).
    #[error("not found")]
    NotFound,
    /// A stored value breaks a domain rule (it cannot, given the schema's checks).
    #[error("stored value of {0} is invalid")]
    Corrupt(&'static str),
    /// The database did not answer (pool timed out, connection refused or lost).
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if server_went_away(&e) { StoreError::Unavailable(e) } else { StoreError::Database(e) }
    }
}

/// Whether an error says the database is not there (answered 503, retried later) rather than
/// that a statement was wrong: the pool timed out or closed, the socket failed, the connection
/// task died, or Postgres ended the session: SQLSTATE class 08 (connection exception), 57P01
/// `admin_shutdown` (`pg_ctl stop -m fast`, `pg_terminate_backend`), 57P02 `crash_shutdown`,
/// 57P03 `cannot_connect_now` (starting up, recovering) — PostgreSQL manual, appendix A.
fn server_went_away(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// The text identifying a violated unique constraint: the constraint's name on Postgres
/// (`application_client_id_key`), the message on SQLite (`UNIQUE constraint failed:
/// application.client_id`). `None` for any other error.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    Some(db.constraint().map_or_else(|| db.message().to_owned(), str::to_owned))
}
