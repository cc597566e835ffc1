//! Audit events: append-only (the schema refuses updates and deletes).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError, User, on_pool};

/// Every action the audit log records, by its stored dotted name (`organisation.created`, ...).
/// The names are what the log shows and filters on; never rename one that has been recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `organisation.created`: An organisation was created.
    OrganisationCreated,
    /// `organisation.renamed`: An organisation's display name changed.
    OrganisationRenamed,
    /// `application.created`: An application was registered.
    ApplicationCreated,
    /// `resource.audience_changed`: A resource's token audience changed.
    ResourceAudienceChanged,
    /// `grant.added`: A user became credential manager of an application.
    GrantAdded,
    /// `grant.revoked`: A credential manager role was revoked.
    GrantRevoked,
    /// `secret.created`: A client secret was created (its value is never recorded).
    SecretCreated,
    /// `secret.deleted`: A client secret was deleted (by its manager, or by an admin with a reason).
    SecretDeleted,
    /// `secret.exposed`: A leak report found a live client secret in public (the first report).
    SecretExposed,
    /// `secret.leak_reported`: A later leak report of a secret already marked exposed (its URL).
    SecretLeakReported,
    /// `application.self_rotation_changed`: A credential manager turned self-rotation through the machine API on or off.
    SelfRotationChanged,
    /// `application.self_rotation_forbidden`: A WMDA admin forbade self-rotation (turning it off) or allowed it again.
    SelfRotationForbidden,
    /// `webhook.added`: A webhook endpoint was added to an application (its host only is recorded).
    WebhookAdded,
    /// `webhook.removed`: A webhook endpoint was removed.
    WebhookRemoved,
    /// `webhook.disabled`: A webhook endpoint was disabled after 72 hours without a 2xx answer.
    WebhookDisabled,
    /// `webhook.enabled`: A disabled webhook endpoint was enabled again.
    WebhookEnabled,
    /// `webhook.delivery_failed`: A webhook delivery was given up after a day of refusals.
    WebhookDeliveryFailed,
    /// `reminder.queued`: A reminder notice about a client secret (expiry, or rotation complete)
    /// was queued for its recipients (by name).
    ReminderQueued,
    /// `invitation.sent`: An invitation link was emailed.
    InvitationSent,
    /// `invitation.accepted`: An invitation was accepted: a password was set.
    InvitationAccepted,
    /// `user.disabled`: A user was disabled (their sessions end).
    UserDisabled,
    /// `user.enabled`: A disabled user was enabled again.
    UserEnabled,
    /// `user.mfa_reset`: An admin reset a user's MFA; a re-enrolment link was emailed.
    UserMfaReset,
    /// `auth.sign_in`: A sign-in completed (password and second factor).
    SignIn,
    /// `auth.sign_in_failed`: A password or second-factor step failed.
    SignInFailed,
    /// `auth.sign_out`: A user signed out.
    SignOut,
    /// `auth.throttled`: A throttle refused attempts (one event per block).
    Throttled,
    /// `auth.totp_replay_refused`: A TOTP code was refused because it was used already.
    TotpReplayRefused,
    /// `auth.recovery_code_used`: A recovery code replaced the TOTP code at sign-in.
    RecoveryCodeUsed,
    /// `auth.mfa_enrolled`: An authenticator was enrolled; recovery codes were shown.
    MfaEnrolled,
    /// `auth.mfa_reenrolment_started`: A re-enrolment link was used with the current password.
    MfaReenrolmentStarted,
    /// `auth.mfa_locked`: Twenty second-factor failures in a row locked the second factor for 24 hours.
    MfaLocked,
    /// `auth.password_reset`: A password was set through a reset link.
    PasswordReset,
    /// `auth.password_reset_requested`: A reset link was emailed to an account that can use one.
    PasswordResetRequested,
    /// `account.password_changed`: A user changed their password on `/account` (issue 19).
    PasswordChanged,
    /// `account.recovery_codes_replaced`: A user made new recovery codes on `/account`.
    RecoveryCodesReplaced,
    /// `passkey.added`: A user registered a passkey.
    PasskeyAdded,
    /// `passkey.renamed`: A user renamed a passkey.
    PasskeyRenamed,
    /// `passkey.removed`: A user removed a passkey.
    PasskeyRemoved,
    /// `passkey.link_sent`: A passkey enrolment link was emailed (issue 19).
    PasskeyLinkSent,
    /// `passkey.enrolment_started`: A passkey enrolment link was used with the password and a TOTP code.
    PasskeyEnrolmentStarted,
    /// `demo.loaded`: The demo data was loaded.
    DemoLoaded,
}

impl AuditAction {
    /// Every action, in the order above.
    pub const ALL: [AuditAction; 42] = [
        AuditAction::OrganisationCreated,
        AuditAction::OrganisationRenamed,
        AuditAction::ApplicationCreated,
        AuditAction::ResourceAudienceChanged,
        AuditAction::GrantAdded,
        AuditAction::GrantRevoked,
        AuditAction::SecretCreated,
        AuditAction::SecretDeleted,
        AuditAction::SecretExposed,
        AuditAction::SecretLeakReported,
        AuditAction::SelfRotationChanged,
        AuditAction::SelfRotationForbidden,
        AuditAction::WebhookAdded,
        AuditAction::WebhookRemoved,
        AuditAction::WebhookDisabled,
        AuditAction::WebhookEnabled,
        AuditAction::WebhookDeliveryFailed,
        AuditAction::ReminderQueued,
        AuditAction::InvitationSent,
        AuditAction::InvitationAccepted,
        AuditAction::UserDisabled,
        AuditAction::UserEnabled,
        AuditAction::UserMfaReset,
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::SignOut,
        AuditAction::Throttled,
        AuditAction::TotpReplayRefused,
        AuditAction::RecoveryCodeUsed,
        AuditAction::MfaEnrolled,
        AuditAction::MfaReenrolmentStarted,
        AuditAction::MfaLocked,
        AuditAction::PasswordReset,
        AuditAction::PasswordResetRequested,
        AuditAction::PasswordChanged,
        AuditAction::RecoveryCodesReplaced,
        AuditAction::PasskeyAdded,
        AuditAction::PasskeyRenamed,
        AuditAction::PasskeyRemoved,
        AuditAction::PasskeyLinkSent,
        AuditAction::PasskeyEnrolmentStarted,
        AuditAction::DemoLoaded,
    ];

    /// The action stored as `name`, if this portal records one of that name.
    pub fn parse(name: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The action in words, for people (issue 14, point 5), e.g. "Client secret deleted".
    pub fn words(self) -> &'static str {
        match self {
            AuditAction::OrganisationCreated => "Organisation created",
            AuditAction::OrganisationRenamed => "Organisation renamed",
            AuditAction::ApplicationCreated => "Application registered",
            AuditAction::ResourceAudienceChanged => "Resource audience changed",
            AuditAction::GrantAdded => "Credential manager role granted",
            AuditAction::GrantRevoked => "Credential manager role revoked",
            AuditAction::SecretCreated => "Client secret created",
            AuditAction::SecretDeleted => "Client secret deleted",
            AuditAction::SecretExposed => "Client secret found in public",
            AuditAction::SecretLeakReported => "Client secret reported in public again",
            AuditAction::SelfRotationChanged => "Self-rotation turned on or off",
            AuditAction::SelfRotationForbidden => "Self-rotation forbidden or allowed by WMDA",
            AuditAction::WebhookAdded => "Webhook endpoint added",
            AuditAction::WebhookRemoved => "Webhook endpoint removed",
            AuditAction::WebhookDisabled => "Webhook endpoint disabled (no answer for 72 hours)",
            AuditAction::WebhookEnabled => "Webhook endpoint enabled again",
            AuditAction::WebhookDeliveryFailed => "Webhook delivery given up (refused for a day)",
            AuditAction::ReminderQueued => "Reminder queued",
            AuditAction::InvitationSent => "Invitation sent",
            AuditAction::InvitationAccepted => "Invitation accepted",
            AuditAction::UserDisabled => "User disabled",
            AuditAction::UserEnabled => "User enabled",
            AuditAction::UserMfaReset => "MFA reset by an admin",
            AuditAction::SignIn => "Signed in",
            AuditAction::SignInFailed => "Sign-in failed",
            AuditAction::SignOut => "Signed out",
            AuditAction::Throttled => "Attempts throttled",
            AuditAction::TotpReplayRefused => "Reused authentication code refused",
            AuditAction::RecoveryCodeUsed => "Recovery code used",
            AuditAction::MfaEnrolled => "Authenticator enrolled",
            AuditAction::MfaReenrolmentStarted => "Authenticator re-enrolment started",
            AuditAction::MfaLocked => "Second factor locked",
            AuditAction::PasswordReset => "Password reset",
            AuditAction::PasswordResetRequested => "Password reset requested",
            AuditAction::PasswordChanged => "Password changed",
            AuditAction::RecoveryCodesReplaced => "New recovery codes made",
            AuditAction::PasskeyAdded => "Passkey added",
            AuditAction::PasskeyRenamed => "Passkey renamed",
            AuditAction::PasskeyRemoved => "Passkey removed",
            AuditAction::PasskeyLinkSent => "Passkey enrolment link sent",
            AuditAction::PasskeyEnrolmentStarted => "Passkey enrolment started",
            AuditAction::DemoLoaded => "Demo data loaded",
        }
    }

    /// Whether the credential managers of the event's application see it on their activity page
    /// (issue 18; DESIGN.md section 10): what happened to the application's secrets, its
    /// self-rotation, its webhook endpoints and its grants. Sign-ins, account events and WMDA's
    /// own administration (organisations, registrations, resources, invitations) are WMDA's only.
    pub fn shown_to_managers(self) -> bool {
        matches!(
            self,
            AuditAction::GrantAdded
                | AuditAction::GrantRevoked
                | AuditAction::SecretCreated
                | AuditAction::SecretDeleted
                | AuditAction::SecretExposed
                | AuditAction::SecretLeakReported
                | AuditAction::SelfRotationChanged
                | AuditAction::SelfRotationForbidden
                | AuditAction::WebhookAdded
                | AuditAction::WebhookRemoved
                | AuditAction::WebhookDisabled
                | AuditAction::WebhookEnabled
                | AuditAction::WebhookDeliveryFailed
                | AuditAction::ReminderQueued
        )
    }

    /// The stored name, e.g. `secret.deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::OrganisationCreated => "organisation.created",
            AuditAction::OrganisationRenamed => "organisation.renamed",
            AuditAction::ApplicationCreated => "application.created",
            AuditAction::ResourceAudienceChanged => "resource.audience_changed",
            AuditAction::GrantAdded => "grant.added",
            AuditAction::GrantRevoked => "grant.revoked",
            AuditAction::SecretCreated => "secret.created",
            AuditAction::SecretDeleted => "secret.deleted",
            AuditAction::SecretExposed => "secret.exposed",
            AuditAction::SecretLeakReported => "secret.leak_reported",
            AuditAction::SelfRotationChanged => "application.self_rotation_changed",
            AuditAction::SelfRotationForbidden => "application.self_rotation_forbidden",
            AuditAction::WebhookAdded => "webhook.added",
            AuditAction::WebhookRemoved => "webhook.removed",
            AuditAction::WebhookDisabled => "webhook.disabled",
            AuditAction::WebhookEnabled => "webhook.enabled",
            AuditAction::WebhookDeliveryFailed => "webhook.delivery_failed",
            AuditAction::ReminderQueued => "reminder.queued",
            AuditAction::InvitationSent => "invitation.sent",
            AuditAction::InvitationAccepted => "invitation.accepted",
            AuditAction::UserDisabled => "user.disabled",
            AuditAction::UserEnabled => "user.enabled",
            AuditAction::UserMfaReset => "user.mfa_reset",
            AuditAction::SignIn => "auth.sign_in",
            AuditAction::SignInFailed => "auth.sign_in_failed",
            AuditAction::SignOut => "auth.sign_out",
            AuditAction::Throttled => "auth.throttled",
            AuditAction::TotpReplayRefused => "auth.totp_replay_refused",
            AuditAction::RecoveryCodeUsed => "auth.recovery_code_used",
            AuditAction::MfaEnrolled => "auth.mfa_enrolled",
            AuditAction::MfaReenrolmentStarted => "auth.mfa_reenrolment_started",
            AuditAction::MfaLocked => "auth.mfa_locked",
            AuditAction::PasswordReset => "auth.password_reset",
            AuditAction::PasswordResetRequested => "auth.password_reset_requested",
            AuditAction::PasswordChanged => "account.password_changed",
            AuditAction::RecoveryCodesReplaced => "account.recovery_codes_replaced",
            AuditAction::PasskeyAdded => "passkey.added",
            AuditAction::PasskeyRenamed => "passkey.renamed",
            AuditAction::PasskeyRemoved => "passkey.removed",
            AuditAction::PasskeyLinkSent => "passkey.link_sent",
            AuditAction::PasskeyEnrolmentStarted => "passkey.enrolment_started",
            AuditAction::DemoLoaded => "demo.loaded",
        }
    }
}

/// Who does something, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The acting user, if signed in.
    pub user_id: Option<Uuid>,
    /// An email, `cli` or `system`.
    pub label: String,
    /// Client IP, for actions over HTTP.
    pub ip: Option<String>,
}

impl Actor {
    /// `user` acting over HTTP from `ip`: labelled with their email.
    pub fn user(user: &User, ip: std::net::IpAddr) -> Self {
        Self { user_id: Some(user.id), label: user.email.to_string(), ip: Some(ip.to_string()) }
    }

    /// The command line.
    pub fn cli() -> Self {
        Self { user_id: None, label: "cli".into(), ip: None }
    }

    /// The portal itself (start-up, background jobs).
    pub fn system() -> Self {
        Self { user_id: None, label: "system".into(), ip: None }
    }

    /// An audit event by this actor.
    pub fn event(&self, action: AuditAction, now: DateTime<Utc>) -> NewAuditEvent {
        NewAuditEvent {
            occurred_at: now,
            actor_user_id: self.user_id,
            actor_label: self.label.clone(),
            ip: self.ip.clone(),
            action,
            organisation_id: None,
            application_id: None,
            target_type: None,
            target_id: None,
            details: serde_json::json!({}),
        }
    }
}

impl NewAuditEvent {
    /// The same event about `target_id`, a `target_type` (`client_secret`, `application`,
    /// `organisation`, `webhook_endpoint`, …) of the organisation `organisation_id`. An
    /// application is the event's application too; a client secret's or a webhook endpoint's
    /// application is found when the event is recorded ([`insert_audit_event`]).
    pub fn on(mut self, organisation_id: Uuid, target_type: &'static str, target_id: impl ToString) -> Self {
        let target_id = target_id.to_string();
        if target_type == "application" {
            self.application_id = Uuid::parse_str(&target_id).ok();
        }
        self.organisation_id = Some(organisation_id);
        self.target_type = Some(target_type);
        self.target_id = Some(target_id);
        self
    }

    /// The same event about a user.
    pub fn on_user(mut self, user: &User) -> Self {
        self.target_type = Some("user");
        self.target_id = Some(user.id.to_string());
        self.organisation_id = match user.role {
            super::UserRole::Member(org) => Some(org),
            super::UserRole::WmdaAdmin => None,
        };
        self
    }

    /// The target's id as a UUID when the target is a `target_type`.
    pub(crate) fn target_uuid(&self, target_type: &str) -> Option<Uuid> {
        (self.target_type == Some(target_type))
            .then(|| self.target_id.as_deref().and_then(|t| Uuid::parse_str(t).ok()))?
    }

    /// The same event with details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// An audit event to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The acting user; `None` for the command line or the system.
    pub actor_user_id: Option<Uuid>,
    /// Who acted, as shown in the log: an email, `cli` or `system`.
    pub actor_label: String,
    /// The client IP, when the action came over HTTP.
    pub ip: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// The organisation concerned, for filtering.
    pub organisation_id: Option<Uuid>,
    /// The application concerned, when there is one: its credential managers see the event
    /// (issue 18), if its action is one they see ([`AuditAction::shown_to_managers`]).
    pub application_id: Option<Uuid>,
    /// What was acted on: `organisation`, `application`, `client_secret`, `user`.
    pub target_type: Option<&'static str>,
    /// Its id.
    pub target_id: Option<String>,
    /// A JSON object with details; never a secret value (DESIGN.md section 6).
    pub details: serde_json::Value,
}

/// A recorded audit event.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEvent {
    /// Sequence number.
    pub id: i64,
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The acting user, if any.
    pub actor_user_id: Option<Uuid>,
    /// Who acted.
    pub actor_label: String,
    /// Client IP.
    pub ip: Option<String>,
    /// Action name.
    pub action: String,
    /// Organisation concerned.
    pub organisation_id: Option<Uuid>,
    /// Target kind.
    pub target_type: Option<String>,
    /// Target id.
    pub target_id: Option<String>,
    /// JSON details as text.
    pub details: String,
}

/// The instants `[from, to)` of a filter from UTC day `from` through UTC day `to`, both
/// included: midnight of `from`, midnight after `to`. No upper bound when `to` is the last day
/// chrono writes with four digits (9999-12-31): the next midnight is year 10000, written
/// `+10000-…`, which sorts before every date as text (SQLite keeps instants as text).
pub(crate) fn day_bounds(
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    use chrono::Datelike as _;
    let midnight = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    (from.map(midnight), to.and_then(|d| d.succ_opt()).filter(|d| d.year() <= 9999).map(midnight))
}

/// The insert statement of an audit event: without an application given (`$10`), a client
/// secret's (`$11`) or a webhook endpoint's (`$12`) application, in the same statement.
pub(crate) const INSERT_AUDIT_EVENT: &str =
    "insert into audit_event (occurred_at, actor_user_id, actor_label, ip, action, organisation_id, target_type, target_id, details, application_id)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10,
         (select s.application_id from client_secret s where s.id = $11),
         (select w.application_id from webhook_endpoint w where w.id = $12)))";

/// Inserts a [`NewAuditEvent`] through an executor (a pool or an open transaction), so store
/// methods can record an event inside the transaction of what it describes. A macro rather than a
/// generic function: the same text must compile against both backends' executors.
macro_rules! insert_audit_event {
    ($executor:expr, $event:expr) => {{
        let event: &$crate::store::NewAuditEvent = $event;
        sqlx::query($crate::store::audit::INSERT_AUDIT_EVENT)
            .bind(event.occurred_at)
            .bind(event.actor_user_id)
            .bind(event.actor_label.as_str())
            .bind(event.ip.as_deref())
            .bind(event.action.as_str())
            .bind(event.organisation_id)
            .bind(event.target_type)
            .bind(event.target_id.as_deref())
            .bind(event.details.to_string())
            .bind(event.application_id)
            .bind(event.target_uuid("client_secret"))
            .bind(event.target_uuid("webhook_endpoint"))
            .execute($executor)
            .await
            .map(|done| done.rows_affected())
    }};
}
pub(crate) use insert_audit_event;

impl Store {
    /// Records an audit event on its own.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_audit_event(&self, event: &NewAuditEvent) -> Result<(), StoreError> {
        on_pool!(self, |pool| insert_audit_event!(pool, event))?;
        Ok(())
    }

    /// The latest `limit` audit events, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_audit_events(&self, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
            "select id, occurred_at, actor_user_id, actor_label, ip, action, organisation_id, target_type, target_id, details
             from audit_event order by id desc limit $1"
        )
        .bind(limit)
        .fetch_all(pool)
        .await
        })?)
    }
}

/// What an audit event acted on, by name (issue 14, point 5: the log shows names, the ids stay in
/// the CSV and on hover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetName {
    /// An organisation: its reference `<CC>-<code>` and display name.
    Organisation {
        /// e.g. `NL-DemoRegistry`.
        reference: String,
        /// e.g. "Demo Registry".
        display_name: String,
    },
    /// An application, by its name.
    Application(String),
    /// A client secret: its name and hint, and its application's name.
    Secret {
        /// The secret's name.
        name: String,
        /// Its hint.
        hint: crate::domain::Hint,
        /// Its application's name.
        application: String,
    },
    /// A user: the name to show (the email when they have none) and the email.
    User {
        /// Display name, or the email.
        name: String,
        /// Email.
        email: String,
    },
}

/// Ids a statement of [`Store::audit_target_names`] asks for at once.
const TARGET_CHUNK: usize = 500;

impl Store {
    /// The names of what `events` acted on, by (target type, target id): organisations,
    /// applications, client secrets (deleted ones too: tombstones keep their name and hint) and
    /// users. Targets of other types (a resource, whose id is its name) and ids no row has are
    /// left out. One query per type and 500 ids, whatever the number of events.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn audit_target_names(
        &self,
        events: &[AuditEvent],
    ) -> Result<std::collections::HashMap<(String, String), TargetName>, StoreError> {
        let mut ids: std::collections::BTreeMap<&str, std::collections::BTreeSet<Uuid>> = Default::default();
        for e in events {
            if let (Some(kind), Some(Ok(id))) = (e.target_type.as_deref(), e.target_id.as_deref().map(Uuid::parse_str))
            {
                ids.entry(kind).or_default().insert(id);
            }
        }
        let mut names = std::collections::HashMap::new();
        for (kind, set) in ids {
            let sql = match kind {
                "organisation" => "select id, country_code, code, display_name, 0 from organisation where id in (",
                "application" => "select id, name, '', '', 0 from application where id in (",
                "client_secret" => {
                    "select s.id, s.name, s.hint, a.name, s.value_format from client_secret s join application a on a.id = s.application_id where s.id in ("
                }
                "user" => "select id, email, display_name, '', 0 from portal_user where id in (",
                _ => continue,
            };
            let set: Vec<Uuid> = set.into_iter().collect();
            for chunk in set.chunks(TARGET_CHUNK) {
                let rows: Vec<(Uuid, String, String, String, i32)> = on_pool!(self, |pool| {
                    let mut query = sqlx::QueryBuilder::new(sql);
                    let mut list = query.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    query.push(")");
                    query.build_query_as().fetch_all(pool).await
                })?;
                for (id, a, b, c, format) in rows {
                    let name = match kind {
                        "organisation" => TargetName::Organisation { reference: format!("{a}-{b}"), display_name: c },
                        "application" => TargetName::Application(a),
                        "client_secret" => {
                            TargetName::Secret { name: a, hint: crate::domain::Hint::stored(b, format), application: c }
                        }
                        _ => TargetName::User { name: super::shown_name(&b, &a).to_owned(), email: a },
                    };
                    names.insert((kind.to_owned(), id.to_string()), name);
                }
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_dotted_lower_case_and_distinct() {
        let names: std::collections::HashSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        for name in names {
            let (part, verb) = name.split_once('.').unwrap();
            assert!(!part.is_empty() && !verb.is_empty(), "{name}");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'), "{name}");
        }
    }
}
