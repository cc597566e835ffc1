//! The command line: its clap types ([`Cli`] and its commands) and the commands behind
//! `main.rs`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::auth::invitation::invite_user;
use crate::config::{Config, Settings, StartupNotice};
use crate::demo::{self, DemoOutcome};
use crate::domain::{Clock, EmailAddress, OrganisationRef, SystemClock};
use crate::startup::{self, Application};
use crate::store::{Actor, NewUser, Store, StoreError, UserRole};

/// secret-portal: self-service client secrets for WMDA partner applications.
#[derive(Parser)]
#[command(name = "secret-portal", version, about, long_about = None)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Serve the portal (the default command).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate,
    /// Administration tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Expiry reminders.
    #[command(subcommand)]
    Reminders(RemindersCommand),
    /// Token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Client secret values.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

/// `secret-portal secrets …`
#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Check client secret values read from standard input, one per line: says which are
    /// well-formed client secrets (wmdacs_ with a valid checksum), the verifier behind secret
    /// scanners' matches. Needs no database, prints no value, changes nothing; exits non-zero
    /// when a value is not well-formed.
    Check,
}

/// `secret-portal admin …`
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Invite a user: prints a one-time link (valid 72 hours) that is also emailed.
    Invite(InviteArgs),
    /// Send a user (a WMDA admin, under PORTAL_ADMIN_MFA=passkey) a passkey enrolment link:
    /// prints the one-time link (valid 72 hours), which is also emailed.
    PasskeyLink(PasskeyLinkArgs),
}

/// `secret-portal admin passkey-link --email E`
#[derive(clap::Args)]
pub struct PasskeyLinkArgs {
    /// The user's email address.
    #[arg(long)]
    pub email: String,
}

/// `secret-portal keys …`
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Retire the active signing key and make a new one; the retired public key stays published
    /// until its last token has expired.
    Rotate,
}

/// `secret-portal reminders …`
#[derive(Subcommand)]
pub enum RemindersCommand {
    /// Queue the reminder notices due now and deliver them before exiting.
    RunOnce(RunOnceArgs),
}

/// Flags of `reminders run-once`.
#[derive(Args, Clone, Copy, Default)]
pub struct RunOnceArgs {
    /// Print what would be sent; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `admin invite`.
#[derive(Args, Clone)]
#[command(group(clap::ArgGroup::new("role").required(true).args(["wmda_admin", "organisation"])))]
pub struct InviteArgs {
    /// The user's email address.
    #[arg(long)]
    pub email: String,
    /// The user's name, shown to other users.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Make the user a WMDA admin.
    #[arg(long)]
    pub wmda_admin: bool,
    /// The user's organisation, as CC-code (for example NL-DemoRegistry).
    #[arg(long, value_name = "CC-code")]
    pub organisation: Option<String>,
}

/// Flags of `serve`.
#[derive(Args, Default, Clone, Copy)]
pub struct ServeArgs {
    /// Load the demo organisation, applications and secrets into an empty database.
    #[arg(long)]
    pub demo: bool,
}

/// The folder of the embedded default (`./data`, relative to the working directory).
pub const DATA_DIR: &str = "data";

/// Runs the command the user gave (`serve` when none).
///
/// # Errors
/// Any operator-facing failure; `main` prints it on one line and exits non-zero.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Needs no settings: resolving them would create ./data and a master key.
    if let Some(Command::Secrets(SecretsCommand::Check)) = cli.command {
        return secrets_check(std::io::stdin().lock(), &mut std::io::stdout().lock());
    }
    let (config, notices) = cli.settings.resolve(Path::new(DATA_DIR))?;
    crate::telemetry::init_logging(config.log_format);
    for notice in notices {
        match notice {
            StartupNotice::GeneratedMasterKey(path) => tracing::warn!(
                path = %path.display(),
                "generated a new master key: keep this file with the database and back it up; without it the encrypted TOTP seeds and signing keys cannot be read"
            ),
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(config, clock, args).await,
        Command::Migrate => {
            startup::connect_and_migrate(&config).await?.close().await;
            tracing::info!(database = %config.database_url, "migrations applied");
            Ok(())
        }
        Command::Admin(AdminCommand::Invite(args)) => admin_invite(config, clock, args).await,
        Command::Admin(AdminCommand::PasskeyLink(args)) => admin_passkey_link(config, clock, args).await,
        // Handled before the settings are read; kept here so the match stays total.
        Command::Secrets(SecretsCommand::Check) => {
            secrets_check(std::io::stdin().lock(), &mut std::io::stdout().lock())
        }
        Command::Reminders(RemindersCommand::RunOnce(args)) => reminders_run_once(config, clock, args).await,
        Command::Keys(KeysCommand::Rotate) => {
            let store = startup::connect_and_migrate(&config).await?;
            // Make sure there is a key to retire, then rotate.
            let schedule = config.key_schedule;
            crate::oauth::SigningKeys::load_or_create(store.clone(), config.master_key.clone(), schedule, clock.now())
                .await?;
            let r = crate::oauth::keys::rotate(&store, &config.master_key, schedule, clock.now()).await?;
            let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            println!("{}", r.kid);
            println!("signs from {} (published now)", time(r.active_from));
            if let Some(old) = &r.retired_kid {
                println!("retired key {old} stays published until {}", time(r.retired_published_until));
            }
            tracing::info!(kid = %r.kid, signs_from = %time(r.active_from), "signing key rotation scheduled");
            store.close().await;
            Ok(())
        }
    }
}

async fn serve(config: Config, clock: Arc<dyn Clock>, args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = startup::shutdown_signal().context("cannot install the signal handlers")?;
    let base_url = config.base_url.clone();
    let database = config.database_url.to_string();
    let admin_email = config.admin_email.clone();
    let admin_mfa = config.admin_mfa;
    // Mail written to files reaches nobody's inbox: the first admin's link is printed then.
    let print_link = matches!(config.mail_transport, crate::config::MailTransportConfig::Files(_));
    let app = Application::build(config, clock.clone()).await?;
    let store = app.store().clone();
    if args.demo {
        match demo::load(&store, &base_url, clock.now()).await.context("cannot load the demo data")? {
            DemoOutcome::Loaded { applications, users } => {
                tracing::info!(applications = ?applications, "demo data loaded");
                // The one place the demo users' links appear: the operator's terminal.
                for line in users {
                    println!("{line}");
                }
            }
            DemoOutcome::AlreadyPresent => tracing::debug!("demo data already present"),
        }
    }
    invite_first_admin(&store, &base_url, admin_email, print_link, clock.as_ref()).await?;
    if admin_mfa == crate::config::AdminMfa::Passkey {
        let sent = crate::auth::link::send_passkey_links(&store, &base_url, clock.now()).await?;
        if sent > 0 {
            tracing::info!(
                admins = sent,
                "PORTAL_ADMIN_MFA=passkey: emailed a passkey enrolment link to each WMDA admin without a passkey"
            );
            app.state().services.mailer.wake();
        }
    }
    let addr = app.local_addr()?;
    tracing::info!(database = %database, backend = store.backend_name(), "database ready");
    if let Some(metrics) = app.metrics_addr() {
        tracing::info!("metrics on http://{metrics}/metrics");
    }
    tracing::info!(base_url = %base_url.as_str(), "secret-portal listening on http://{addr}");
    app.run_until(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// On a database without users: invites `PORTAL_ADMIN_EMAIL` as the first WMDA admin, or says
/// how to. There is no default account or password. With `print_link` (mail goes to files, the
/// embedded default) the one-time link is also printed on standard output, as `admin invite`
/// prints it: the operator's terminal, never the logs.
async fn invite_first_admin(
    store: &Store,
    base_url: &crate::domain::BaseUrl,
    admin_email: Option<EmailAddress>,
    print_link: bool,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    if store.has_users().await? {
        return Ok(());
    }
    match admin_email {
        Some(email) => {
            let new = NewUser { email: email.clone(), display_name: String::new(), role: UserRole::WmdaAdmin };
            let invited = invite_user(store, base_url, &new, &Actor::system(), clock.now()).await?;
            tracing::info!(email = %email, "no users yet: emailed the first WMDA admin an invitation (PORTAL_ADMIN_EMAIL)");
            if print_link {
                println!("{}", invited.link);
            }
        }
        None => tracing::warn!(
            "no users yet: create the first WMDA admin with `secret-portal admin invite --email you@example.org --wmda-admin` (or set PORTAL_ADMIN_EMAIL)"
        ),
    }
    Ok(())
}

/// `secret-portal reminders run-once [--dry-run]`: one pass now; prints one line per due notice.
/// The real run queues them and delivers what is due before it exits (what the mail server refuses
/// now stays queued for the portal's sender).
async fn reminders_run_once(config: Config, clock: Arc<dyn Clock>, args: RunOnceArgs) -> anyhow::Result<()> {
    let store = startup::connect_and_migrate(&config).await?;
    let now = clock.now();
    let report = crate::jobs::reminders::run_once(&store, &config.base_url, now, args.dry_run).await?;
    if report.due.is_empty() {
        println!("Nothing is due: no reminder notice to queue on {} (UTC).", now.date_naive());
    }
    for due in &report.due {
        println!("{}", due_line(due));
    }
    if !args.dry_run {
        let delivered = startup::mail_sender(&config, &store, clock)?.run_once().await?;
        println!("{}", run_summary(&report, &delivered));
    }
    store.close().await;
    Ok(())
}

/// `n` and the noun, singular for one ("1 notice", "2 emails").
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// One line of `reminders run-once`: what happened (`due` on a dry run, `queued`, or
/// `already-queued` by another process), the notice, the secret with its hint and application,
/// and the recipients (issue 14, point 7).
fn due_line(due: &crate::jobs::reminders::DueNotice) -> String {
    use crate::jobs::reminders::Outcome;
    let what = match due.outcome {
        Outcome::Due => "due".to_owned(),
        Outcome::Queued(n) => format!("queued ({})", count(n, "email")),
        Outcome::AlreadyRecorded => "already-queued (by another process)".to_owned(),
    };
    let to = match &due.recipients {
        None => String::new(),
        Some(r) if r.people.is_empty() => {
            ": to nobody (no enrolled credential manager, and no enrolled WMDA admin)".to_owned()
        }
        Some(r) => {
            let people: Vec<String> = r
                .people
                .iter()
                .map(|(email, name)| match crate::store::shown_name(name, email) {
                    shown if shown == email => email.clone(),
                    shown => format!("{shown} <{email}>"),
                })
                .collect();
            let whom = if r.to_admins { "to the WMDA admins (no enrolled credential manager) " } else { "to " };
            format!(": {whom}{}", people.join(", "))
        }
    };
    format!(
        "{what} {} [{}] for secret \"{}\" ({}) of {}{to}",
        due.notice.title(),
        due.notice.key(),
        due.secret,
        due.hint.shown(),
        due.application
    )
}

/// `secrets check`: one line per non-empty input line (its number, and its first ten characters
/// when it carries the prefix, never the whole value), then a count (DESIGN.md section 7: no regex
/// can check the checksum, so scanners' matches are confirmed here).
///
/// # Errors
/// When a value is not a well-formed client secret, or the input cannot be read.
pub fn secrets_check(input: impl std::io::BufRead, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    use crate::domain::Shape;
    let (mut checked, mut good) = (0usize, 0usize);
    for (n, line) in input.lines().enumerate() {
        let line = line.context("cannot read standard input")?;
        let value = line.trim();
        if value.is_empty() {
            continue;
        }
        checked += 1;
        let shown = if value.starts_with(crate::domain::secret_value::V2_PREFIX) {
            format!(" ({}…)", value.chars().take(10).collect::<String>())
        } else {
            String::new()
        };
        match Shape::explain(value) {
            Ok(()) => {
                good += 1;
                writeln!(out, "line {}{shown}: a well-formed client secret (checksum valid)", n + 1)?;
            }
            Err(why) => writeln!(out, "line {}{shown}: not a well-formed client secret: {why}", n + 1)?,
        }
    }
    writeln!(out, "{good} of {checked} value(s) are well-formed client secrets.")?;
    if good < checked {
        anyhow::bail!("{} value(s) are not well-formed client secrets", checked - good);
    }
    Ok(())
}

/// The last line of a real `reminders run-once`: what it queued and delivered, in words.
fn run_summary(report: &crate::jobs::reminders::Report, delivered: &crate::jobs::outbox::DeliveryReport) -> String {
    let mut out =
        format!("Queued {} with {}", count(report.recorded, "reminder notice"), count(report.emails, "email"));
    if report.already_recorded > 0 {
        out.push_str(&format!(" ({} already queued by another process)", count(report.already_recorded, "notice")));
    }
    out.push_str(&format!(
        "; delivered {} now, {} to retry, {} failed.",
        count(delivered.sent, "email"),
        delivered.retrying,
        delivered.failed
    ));
    out
}

/// `secret-portal admin invite`: prints the link and delivers the email before exiting (it stays
/// queued for the server when the mail server cannot be reached now).
async fn admin_invite(config: Config, clock: Arc<dyn Clock>, args: InviteArgs) -> anyhow::Result<()> {
    let store = startup::connect_and_migrate(&config).await?;
    let email = EmailAddress::parse(&args.email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let role = match (&args.organisation, args.wmda_admin) {
        (Some(reference), false) => {
            let reference = OrganisationRef::parse(reference).map_err(|e| anyhow::anyhow!("--organisation: {e}"))?;
            match store.find_organisation(&reference).await {
                Ok(org) => UserRole::Member(org.id),
                Err(StoreError::NotFound) => anyhow::bail!("--organisation: there is no organisation {reference}"),
                Err(e) => return Err(e.into()),
            }
        }
        _ => UserRole::WmdaAdmin,
    };
    let new = NewUser { email, display_name: args.name.trim().to_owned(), role };
    let invited =
        invite_user(&store, &config.base_url, &new, &Actor::cli(), clock.now()).await.map_err(|e| match e {
            StoreError::Conflict(c) => anyhow::anyhow!("{c}"),
            other => anyhow::Error::from(other),
        })?;
    println!("{}", invited.link);
    let mailer = startup::mail_sender(&config, &store, clock)?;
    match mailer.run_once().await {
        Ok(report) if report.retrying > 0 || report.failed > 0 => {
            tracing::warn!("the invitation email could not be delivered now; the portal will retry it")
        }
        Ok(_) => tracing::info!(email = %invited.user.email, "invitation emailed"),
        Err(e) => tracing::warn!(error = %e, "the invitation email stays queued"),
    }
    store.close().await;
    Ok(())
}

/// `secret-portal admin passkey-link --email E`: prints the link and emails it.
async fn admin_passkey_link(config: Config, clock: Arc<dyn Clock>, args: PasskeyLinkArgs) -> anyhow::Result<()> {
    let store = startup::connect_and_migrate(&config).await?;
    let email = EmailAddress::parse(&args.email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let user = match store.find_user_by_email(&email).await {
        Ok(user) => user,
        Err(StoreError::NotFound) => anyhow::bail!("--email: there is no user {email}"),
        Err(e) => return Err(e.into()),
    };
    let link =
        crate::auth::link::send_passkey_link(&store, &config.base_url, &user, &Actor::cli(), clock.now()).await?;
    println!("{}", link.url);
    let mailer = startup::mail_sender(&config, &store, clock)?;
    match mailer.run_once().await {
        Ok(report) if report.retrying > 0 || report.failed > 0 => {
            tracing::warn!("the passkey enrolment email could not be delivered now; the portal will retry it")
        }
        Ok(_) => tracing::info!(email = %user.email, "passkey enrolment link emailed"),
        Err(e) => tracing::warn!(error = %e, "the passkey enrolment email stays queued"),
    }
    store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reminder::Notice;
    use crate::jobs::reminders::{DueNotice, Outcome};
    use crate::store::Recipients;

    fn due(recipients: Option<Recipients>, outcome: Outcome) -> DueNotice {
        DueNotice {
            secret_id: uuid::Uuid::nil(),
            secret: "Production (Jane)".into(),
            application: "Partner-NL-X-DM".into(),
            hint: crate::domain::Hint::new("aB3", crate::domain::SecretFormat::V1),
            notice: Notice::Daily(3),
            recipients,
            outcome,
        }
    }

    #[test]
    fn a_reminder_line_names_the_notice_the_secret_and_each_recipient() {
        let people =
            vec![("jane@x.example".to_owned(), "Jane Doe".to_owned()), ("piet@x.example".to_owned(), String::new())];
        let managers = Recipients { people: people.clone(), to_admins: false };
        assert_eq!(
            due_line(&due(Some(managers), Outcome::Due)),
            "due daily notice (D-3) [d3] for secret \"Production (Jane)\" (aB3…) of Partner-NL-X-DM: to Jane Doe <jane@x.example>, piet@x.example"
        );
        let admins = Recipients { people, to_admins: true };
        assert!(due_line(&due(Some(admins), Outcome::Queued(2))).starts_with("queued (2 emails) daily notice"));
        assert!(
            due_line(&due(Some(Recipients { people: vec![], to_admins: true }), Outcome::Queued(0)))
                .ends_with(": to nobody (no enrolled credential manager, and no enrolled WMDA admin)")
        );
        assert!(due_line(&due(None, Outcome::AlreadyRecorded)).ends_with("of Partner-NL-X-DM"));
        let admins = Recipients { people: vec![("a@wmda.example".into(), "A".into())], to_admins: true };
        assert!(
            due_line(&due(Some(admins), Outcome::Due))
                .ends_with(": to the WMDA admins (no enrolled credential manager) A <a@wmda.example>")
        );
    }
}
