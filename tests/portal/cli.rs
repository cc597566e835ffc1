//! The `secret-portal` binary as an operator runs it: defaults, refusals, shutdown.
#![allow(clippy::disallowed_methods, reason = "these tests drive the real binary, which runs on the wall clock")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secret_portal::domain::MasterKey;

const BIN: &str = env!("CARGO_BIN_EXE_secret-portal");

/// The binary with a clean environment (only PATH), run in `dir`.
fn portal(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(dir);
    cmd
}

/// Starts `serve` and waits for the "listening" line; returns the child, its address and the
/// log lines read so far.
fn start(mut cmd: Command) -> (Child, String, Vec<String>) {
    let mut child =
        cmd.env("PORTAL_BIND", "127.0.0.1:0").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Logs come on stderr, printed results (demo users) on stdout: read both.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let forward = |stream: Box<dyn std::io::Read + Send>, tx: std::sync::mpsc::Sender<String>| {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    };
    forward(Box::new(stdout), tx.clone());
    forward(Box::new(stderr), tx);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let found =
                line.split("listening on http://").nth(1).map(|a| a.split_whitespace().next().unwrap_or("").to_owned());
            lines.push(line);
            if let Some(addr) = found {
                // Standard output is read by another thread: lines printed before the log line
                // (demo users) may still be on their way. Collect them for a moment.
                let grace = Instant::now() + Duration::from_millis(500);
                while let Ok(line) = rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
                    lines.push(line);
                }
                // Keep draining so the child never blocks on a full pipe.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return (child, strip_ansi(&addr), lines);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the portal did not report its address; output so far: {lines:#?}");
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the portal did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn healthz(addr: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status().as_u16() })
}

/// Runs the binary to completion within a deadline; returns (exit code, stdout, stderr, seconds).
fn run_to_end(mut cmd: Command, limit: Duration) -> (Option<i32>, String, String, f64) {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn help_is_there_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["--help"], vec!["serve", "--help"], vec!["migrate", "--help"]] {
        let out = portal(dir.path()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: secret-portal"), "{text}");
    }
    let help = portal(dir.path()).env("PORTAL_MASTER_KEY", "c2VjcmV0IGtleSB2YWx1ZQ==").arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("DATABASE_URL") && text.contains("PORTAL_MASTER_KEY") && text.contains("PORTAL_BIND"));
    // The embedded default listens on 127.0.0.1:8080 with the base URL to match.
    assert!(text.contains("[default: 127.0.0.1:8080]") && text.contains("[default: http://127.0.0.1:8080]"), "{text}");
    assert!(!text.contains("c2VjcmV0IGtleSB2YWx1ZQ=="), "--help shows the master key");
    assert!(!dir.path().join("data").exists(), "--help created files");
}

#[test]
fn the_embedded_default_starts_on_sqlite_generates_a_key_and_restarts_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, lines) = start(portal(dir.path()));
    let log = lines.join("\n");
    assert!(log.contains("generated a new master key"), "{log}");
    assert!(log.contains("sqlite"), "{log}");
    assert!(dir.path().join("data/portal.db").exists());
    assert!(dir.path().join("data/master.key").exists());
    assert_eq!(healthz(&addr), 200);
    assert_eq!(terminate(&mut child).code(), Some(0));

    // Second start on the same database: no new key, same data, no complaint.
    let (mut child, addr, lines) = start(portal(dir.path()));
    assert!(!lines.join("\n").contains("generated a new master key"));
    assert_eq!(healthz(&addr), 200);
    assert_eq!(terminate(&mut child).code(), Some(0));
}

#[test]
fn serve_is_the_default_and_demo_data_loads_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _, lines) = start({
        let mut c = portal(dir.path());
        c.args(["serve", "--demo"]);
        c
    });
    let log = lines.join("\n");
    assert!(log.contains("demo data loaded"), "{lines:#?}");
    let users: Vec<&String> = lines.iter().filter(|l| l.contains("/invite/")).collect();
    assert_eq!(users.len(), 3, "{lines:#?}");
    assert!(users[0].starts_with("wmda-admin admin@wmda.example http://127.0.0.1:8080/invite/"), "{}", users[0]);
    assert!(users[1].starts_with("credential-manager "), "{}", users[1]);
    assert_eq!(terminate(&mut child).code(), Some(0));
    let (mut child, _, lines) = start({
        let mut c = portal(dir.path());
        c.args(["serve", "--demo"]);
        c
    });
    assert!(!lines.join("\n").contains("demo data loaded"));
    assert_eq!(terminate(&mut child).code(), Some(0));
}

#[test]
fn a_database_url_without_a_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portal(dir.path());
    cmd.env("DATABASE_URL", "postgres://portal:hunter2@127.0.0.1:5432/portal");
    let (code, _, stderr, _) = run_to_end(cmd, Duration::from_secs(10));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("PORTAL_MASTER_KEY is required when DATABASE_URL is set"), "{stderr}");
    assert!(!stderr.contains("hunter2"));
}

#[test]
fn a_master_key_that_does_not_match_the_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("portal.db").display());
    let key = MasterKey::generate();
    let mut migrate = portal(dir.path());
    migrate.env("DATABASE_URL", &url).env("PORTAL_MASTER_KEY", key.to_base64().as_str()).arg("migrate");
    let (code, _, stderr, _) = run_to_end(migrate, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");

    let mut wrong = portal(dir.path());
    wrong.env("DATABASE_URL", &url).env("PORTAL_MASTER_KEY", MasterKey::generate().to_base64().as_str());
    let (code, _, stderr, _) = run_to_end(wrong, Duration::from_secs(20));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("master key does not match"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// An unreachable or malformed database URL: one line naming the URL without its password,
/// within seconds, no panic.
#[test]
fn an_unusable_database_url_fails_fast_on_one_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key = MasterKey::generate();
    let cases = [
        (
            format!("postgres://portal:hunter2@127.0.0.1:{closed_port}/portal"),
            format!("postgres://portal:***@127.0.0.1:{closed_port}/portal"),
        ),
        (
            "postgres://portal:hunter2@127.0.0.1:notaport/portal".to_owned(),
            "postgres://portal:***@127.0.0.1:notaport/portal".to_owned(),
        ),
        (
            "postgres://portal:hunter2@127.0.0.1:5432/portal?sslmode=bogus".to_owned(),
            "postgres://portal:***@127.0.0.1:5432/portal".to_owned(),
        ),
        ("mysql://root:hunter2@127.0.0.1/portal".to_owned(), "mysql://root:***@127.0.0.1/portal".to_owned()),
        // Issue 14, point 8: no database name (the driver would pick the user's name instead).
        (
            "postgres://portal:hunter2@127.0.0.1:5432".to_owned(),
            "postgres://portal:***@127.0.0.1:5432 names no database".to_owned(),
        ),
        (
            "postgres://portal:hunter2@127.0.0.1:5432/".to_owned(),
            "postgres://portal:***@127.0.0.1:5432/ names no database".to_owned(),
        ),
    ];
    for (url, shown) in cases {
        let mut cmd = portal(dir.path());
        cmd.env("DATABASE_URL", &url).env("PORTAL_MASTER_KEY", key.to_base64().as_str());
        let (code, stdout, stderr, seconds) = run_to_end(cmd, Duration::from_secs(15));
        assert_eq!(code, Some(1), "{url}: {stderr}");
        assert!(seconds < 10.0, "{url}: took {seconds} s");
        assert_eq!(stderr.trim().lines().count(), 1, "{url}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(&shown), "{url}: {stderr}");
        for forbidden in ["hunter2", "panicked", "backtrace"] {
            assert!(!stderr.contains(forbidden) && !stdout.contains(forbidden), "{url}: {stdout}{stderr}");
        }
    }
}

#[test]
fn a_plain_http_base_url_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portal(dir.path());
    cmd.env("PORTAL_BASE_URL", "http://portal.example.org");
    let (code, _, stderr, _) = run_to_end(cmd, Duration::from_secs(10));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("PORTAL_BASE_URL") && stderr.contains("https://"), "{stderr}");
}

#[test]
#[ignore = "needs TEST_DATABASE_URL (Postgres)"]
fn migrate_and_serve_run_on_postgres_when_configured() {
    let admin = crate::support::require_postgres();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(crate::support::TestDb::new());
    assert!(db.is_postgres(), "{admin}");
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let mut migrate = portal(dir.path());
    migrate.env("DATABASE_URL", db.url.expose()).env("PORTAL_MASTER_KEY", key.to_base64().as_str()).arg("migrate");
    let (code, _, stderr, _) = run_to_end(migrate, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    let mut serve = portal(dir.path());
    serve.env("DATABASE_URL", db.url.expose()).env("PORTAL_MASTER_KEY", key.to_base64().as_str());
    let (mut child, addr, lines) = start(serve);
    assert!(lines.join("\n").contains("postgres"), "{lines:#?}");
    assert!(!lines.join("\n").contains("generated a new master key"));
    assert_eq!(healthz(&addr), 200);
    assert_eq!(terminate(&mut child).code(), Some(0));
    assert!(!dir.path().join("data").exists(), "files were written for a Postgres deployment");
}

#[test]
fn admin_invite_prints_a_one_time_link_that_is_also_emailed() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = crate::support::smtp::SmtpSink::start();
    let invite = |email: &str| {
        let mut cmd = portal(dir.path());
        cmd.env("PORTAL_SMTP_URL", smtp.url()).args([
            "admin",
            "invite",
            "--email",
            email,
            "--name",
            "Wendy",
            "--wmda-admin",
        ]);
        run_to_end(cmd, Duration::from_secs(30))
    };
    let (code, stdout, stderr, _) = invite("Wendy@WMDA.example");
    assert_eq!(code, Some(0), "{stderr}");
    let link = stdout.trim().to_owned();
    assert!(link.starts_with("http://127.0.0.1:8080/invite/"), "{stdout}");
    let mails = smtp.messages_to("wendy@wmda.example");
    assert_eq!(mails.len(), 1, "the email was not delivered before the command exited");
    assert!(link.ends_with(&mails[0].link_path("/invite/")), "{link}");
    // Again for the same email: a new link (the old one stops working, see sign_in.rs).
    let (code, again, _, _) = invite("wendy@wmda.example");
    assert_eq!(code, Some(0));
    assert_ne!(again.trim(), link);

    let mut unknown = portal(dir.path());
    unknown.env("PORTAL_SMTP_URL", smtp.url()).args([
        "admin",
        "invite",
        "--email",
        "x@y.example",
        "--organisation",
        "NL-Nowhere",
    ]);
    let (code, _, stderr, _) = run_to_end(unknown, Duration::from_secs(30));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("there is no organisation NL-Nowhere"), "{stderr}");
    let mut neither = portal(dir.path());
    neither.args(["admin", "invite", "--email", "x@y.example"]);
    let (code, _, stderr, _) = run_to_end(neither, Duration::from_secs(30));
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn an_empty_database_invites_portal_admin_email_or_says_how_to_create_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    // The hint is logged before the "listening" line.
    let (mut child, _, lines) = start(portal(dir.path()));
    let log = lines.join("\n");
    assert!(log.contains("secret-portal admin invite --email"), "{log}");
    assert_eq!(terminate(&mut child).code(), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let smtp = crate::support::smtp::SmtpSink::start();
    let mut cmd = portal(dir.path());
    cmd.env("PORTAL_ADMIN_EMAIL", "first@wmda.example").env("PORTAL_SMTP_URL", smtp.url());
    let (mut child, _, _) = start(cmd);
    let deadline = Instant::now() + Duration::from_secs(10);
    while smtp.messages_to("first@wmda.example").is_empty() {
        assert!(Instant::now() < deadline, "no invitation for PORTAL_ADMIN_EMAIL");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(terminate(&mut child).code(), Some(0));
    // Not on the next start: the database has a user now.
    let (mut child, _, _) = start({
        let mut c = portal(dir.path());
        c.env("PORTAL_ADMIN_EMAIL", "first@wmda.example").env("PORTAL_SMTP_URL", smtp.url());
        c
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(terminate(&mut child).code(), Some(0));
    assert_eq!(smtp.messages_to("first@wmda.example").len(), 1);

    // Issue 14, point 6: with mail going to files (no SMTP), the link is printed as well, and it
    // is the one in the .eml file, whole.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portal(dir.path());
    cmd.env("PORTAL_ADMIN_EMAIL", "first@wmda.example");
    let (mut child, _, lines) = start(cmd);
    let link =
        lines.iter().find(|l| l.starts_with("http") && l.contains("/invite/")).unwrap_or_else(|| panic!("{lines:#?}"));
    let mail_dir = dir.path().join("data/mail");
    let read_mail = || -> String {
        std::fs::read_dir(&mail_dir)
            .map(|entries| entries.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default()).collect())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read_mail().contains("/invite/") {
        assert!(Instant::now() < deadline, "no invitation in {}", mail_dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(terminate(&mut child).code(), Some(0));
    assert!(read_mail().contains(link.as_str()), "the printed link is not whole in the .eml file");
}

#[test]
fn without_an_smtp_server_mail_is_written_to_data_mail() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portal(dir.path());
    cmd.env("PORTAL_ADMIN_EMAIL", "first@wmda.example");
    let (mut child, _, _) = start(cmd);
    let mail_dir = dir.path().join("data/mail");
    let deadline = Instant::now() + Duration::from_secs(10);
    let file = loop {
        if let Some(entry) = std::fs::read_dir(&mail_dir).ok().and_then(|mut d| d.next()) {
            break entry.unwrap().path();
        }
        assert!(Instant::now() < deadline, "no .eml file in data/mail");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(terminate(&mut child).code(), Some(0));
    assert_eq!(file.extension().unwrap(), "eml");
    let raw = std::fs::read_to_string(&file).unwrap();
    assert!(raw.contains("To: first@wmda.example"), "{raw}");
    assert!(raw.contains("multipart/alternative"), "{raw}");
}

#[test]
fn reminders_run_once_dry_run_changes_nothing_and_the_real_run_queues_once() {
    let dir = tempfile::tempdir().unwrap();
    // The demo data has a secret 20 days from expiry: the 3-week notice is due.
    let (mut child, _, _) = start({
        let mut c = portal(dir.path());
        c.args(["serve", "--demo"]).env("PORTAL_REMINDER_INTERVAL", "86400");
        c
    });
    assert_eq!(terminate(&mut child).code(), Some(0));
    let run = |dry: bool| {
        let mut cmd = portal(dir.path());
        cmd.args(["reminders", "run-once"]);
        if dry {
            cmd.arg("--dry-run");
        }
        run_to_end(cmd, Duration::from_secs(30))
    };
    // Issue 14, point 7: every line names the notice, the secret and its recipients (the demo's
    // users have not enrolled yet, so nobody); nothing due is said in words.
    let (code, out, err, _) = run(true);
    assert_eq!(code, Some(0), "{err}");
    let line = out.lines().find(|l| l.contains("[3w]")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("due 3-week notice [3w] for secret \"Integration tests (Piet Jansen)\" ("), "{line}");
    assert!(line.contains("…) of Partner-NL-DemoRegistry-SMC: to nobody (no enrolled credential manager"), "{line}");
    let (_, again, _, _) = run(true);
    assert_eq!(out, again, "the dry run changed something");
    let (code, out, err, _) = run(false);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("queued (0 emails) 3-week notice [3w] for secret \"Integration tests (Piet Jansen)\""),
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().starts_with("Queued 1 reminder notice with 0 emails; delivered 0 emails now"),
        "{out}"
    );
    let (_, after, _, _) = run(false);
    assert!(!after.contains("[3w]"), "{after}");
    assert!(after.starts_with("Nothing is due: no reminder notice to queue on "), "{after}");
    assert!(after.contains("Queued 0 reminder notices with 0 emails"), "{after}");
    let (_, dry, _, _) = run(true);
    assert!(dry.starts_with("Nothing is due") && dry.lines().count() == 1, "{dry}");
}

/// Issue 14, point 7: a subcommand's `--help` shows its own options under "Options" and the
/// settings every command shares under a heading of their own.
#[test]
fn each_commands_help_shows_its_own_options_apart_from_the_shared_settings() {
    let dir = tempfile::tempdir().unwrap();
    let heading = "Settings of every command";
    for (args, own) in [
        (vec!["reminders", "run-once", "--help"], vec!["--dry-run"]),
        (vec!["admin", "invite", "--help"], vec!["--email", "--name", "--wmda-admin", "--organisation"]),
        (vec!["serve", "--help"], vec!["--demo"]),
        (vec!["keys", "rotate", "--help"], vec![]),
        (vec!["migrate", "--help"], vec![]),
    ] {
        let out = portal(dir.path()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let (options, settings) = text.split_once(heading).unwrap_or_else(|| panic!("{args:?}: no heading: {text}"));
        let options = options.split_once("Options:").map(|(_, o)| o).unwrap_or_else(|| panic!("{text}"));
        let flags: Vec<&str> = options
            .lines()
            .filter_map(|l| {
                l.trim_start().strip_prefix("-h, ").map_or_else(|| l.trim_start().strip_prefix("--"), |_| None)
            })
            .map(|f| f.split([' ', '=']).next().unwrap_or_default())
            .collect();
        let mut want: Vec<&str> = own.iter().map(|o| o.trim_start_matches("--")).collect();
        want.sort_unstable();
        let mut got = flags.clone();
        got.sort_unstable();
        assert_eq!(got, want, "{args:?}: its own options only: {options}");
        assert!(
            settings.contains("--database-url") && settings.contains("[env: PORTAL_BASE_URL"),
            "{args:?}: {settings}"
        );
    }
}

#[test]
#[ignore = "needs TEST_DATABASE_URL (Postgres)"]
fn two_reminder_processes_at_once_on_one_postgres_queue_each_notice_once() {
    crate::support::require_postgres();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(crate::support::TestDb::new());
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let env = |c: &mut Command| {
        c.env("DATABASE_URL", db.url.expose()).env("PORTAL_MASTER_KEY", key.to_base64().as_str());
    };
    let (mut child, _, _) = start({
        let mut c = portal(dir.path());
        env(&mut c);
        c.args(["serve", "--demo"]);
        c
    });
    assert_eq!(terminate(&mut child).code(), Some(0));
    let spawn = || {
        let mut c = portal(dir.path());
        env(&mut c);
        c.args(["reminders", "run-once"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let outputs: Vec<String> = [a, b].iter().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).collect();
    let queued = outputs.iter().map(|o| o.lines().filter(|l| l.starts_with("queued (")).count()).sum::<usize>();
    assert_eq!(queued, 1, "{outputs:?}");
    let rows: i64 = rt.block_on(async {
        let pool = sqlx::PgPool::connect(db.url.expose()).await.unwrap();
        sqlx::query_scalar("select count(*) from reminder_sent").fetch_one(&pool).await.unwrap()
    });
    assert_eq!(rows, 1);
}

/// A `kill -9` between queueing a reminder and sending it: after the restart the email goes out
/// once, and a rerun of the pass queues nothing.
#[test]
fn a_kill_9_between_queueing_and_sending_gives_each_email_once() {
    use secret_portal::auth::TotpSeed;
    let dir = tempfile::tempdir().unwrap();
    let smtp = crate::support::smtp::SmtpSink::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // 1. Demo data; Jane (a credential manager of the application whose secret is 20 days from
    //    expiry) accepts her invitation and enrols, so the notice has a recipient.
    let (mut child, addr, lines) = start({
        let mut c = portal(dir.path());
        c.args(["serve", "--demo"]).env("PORTAL_REMINDER_INTERVAL", "86400").env("PORTAL_SMTP_URL", smtp.url());
        c
    });
    let link = lines
        .iter()
        .find(|l| l.starts_with("credential-manager jane.doe@"))
        .expect("Jane's link")
        .split(' ')
        .nth(2)
        .unwrap()
        .to_owned();
    let path = link.trim_start_matches("http://127.0.0.1:8080");
    rt.block_on(async {
        let client = crate::support::new_client();
        let base = format!("http://{addr}");
        let pw = crate::support::flows::PASSWORD;
        let res = client
            .post(format!("{base}{path}"))
            .form(&[("password", pw), ("password_confirm", pw)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let page = client.get(format!("{base}/mfa/setup")).send().await.unwrap().text().await.unwrap();
        let key = crate::support::flows::between(&page, "id=\"totp-key\">", "</code>").unwrap();
        let code = TotpSeed::from_base32(key).unwrap().code_at(chrono::Utc::now());
        let res = client.post(format!("{base}/mfa/setup")).form(&[("code", code)]).send().await.unwrap();
        assert_eq!(res.status(), 200);
    });
    assert_eq!(terminate(&mut child).code(), Some(0));

    // 2. The mail server refuses; a pass queues the notice and the first delivery fails.
    smtp.set_down(true);
    let (mut child, _, _) = start({
        let mut c = portal(dir.path());
        c.env("PORTAL_REMINDER_INTERVAL", "1").env("PORTAL_SMTP_URL", smtp.url());
        c
    });
    let db = format!("sqlite://{}", dir.path().join("data/portal.db").display());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let failed: i64 = rt.block_on(async {
            let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
            let n =
                sqlx::query_scalar("select count(*) from outbox where kind = 'reminder' and last_error is not null")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            n
        });
        if failed > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no failed reminder delivery");
        std::thread::sleep(Duration::from_millis(200));
    }
    // 3. kill -9.
    assert!(Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap().success());
    let _ = child.wait();

    // 4. The server is back, so is the portal: the email goes out once.
    smtp.set_down(false);
    let (mut child, _, _) = start({
        let mut c = portal(dir.path());
        c.env("PORTAL_REMINDER_INTERVAL", "86400").env("PORTAL_SMTP_URL", smtp.url());
        c
    });
    let reminders = || {
        smtp.messages_to("jane.doe@demoregistry.example")
            .iter()
            .filter(|m| m.subject().starts_with("Client secret"))
            .count()
    };
    // A row held by the killed sender waits out its lease (2 minutes) at worst.
    let deadline = Instant::now() + Duration::from_secs(150);
    while reminders() == 0 {
        assert!(Instant::now() < deadline, "the queued reminder was not delivered after the restart");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(terminate(&mut child).code(), Some(0));
    let mut rerun = portal(dir.path());
    rerun.env("PORTAL_SMTP_URL", smtp.url()).args(["reminders", "run-once"]);
    let (code, out, _, _) = run_to_end(rerun, Duration::from_secs(30));
    assert_eq!(code, Some(0));
    assert!(!out.lines().any(|l| l.starts_with("queued (")), "{out}");
    assert_eq!(reminders(), 1);
}

#[test]
fn keys_rotate_prints_a_new_key_id_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let rotate = || {
        let mut c = portal(dir.path());
        c.args(["keys", "rotate"]);
        run_to_end(c, Duration::from_secs(30))
    };
    let (code, first, err, _) = rotate();
    assert_eq!(code, Some(0), "{err}");
    let (code, second, _, _) = rotate();
    assert_eq!(code, Some(0));
    let first_kid = first.lines().next().unwrap();
    assert_eq!(first_kid.len(), 43, "an RFC 7638 thumbprint: {first}");
    assert_ne!(first_kid, second.lines().next().unwrap());
    // Both times: when the new key signs (2 x 30 s + 60 s from now), until when the retired one
    // is published (30 s + 86,400 s + 60 s after that).
    let times: Vec<chrono::DateTime<chrono::Utc>> = second
        .split_whitespace()
        .filter_map(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
        .map(|t| t.to_utc())
        .collect();
    assert_eq!(times.len(), 2, "{second}");
    assert!(second.contains(&format!("retired key {first_kid} stays published until")), "{second}");
    assert_eq!(times[1] - times[0], chrono::Duration::seconds(30 + 86_400 + 60));
    let lead = times[0] - chrono::Utc::now();
    assert!(lead > chrono::Duration::seconds(100) && lead <= chrono::Duration::seconds(120), "{lead}");
}

/// Issue 8: two replicas (two `serve` processes on different ports, one Postgres, one master
/// key) act as one. A session started on one is valid on the other; a secret deleted through one
/// is refused by the other's token endpoint on the next request; each reminder goes out once
/// although both run the reminder loop every second.
#[test]
#[ignore = "needs TEST_DATABASE_URL (Postgres)"]
fn two_replicas_on_one_postgres_act_as_one() {
    crate::support::require_postgres();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(crate::support::TestDb::new());
    let smtp = crate::support::smtp::SmtpSink::start();
    let key = MasterKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let replica = |demo: bool| {
        let mut c = portal(dir.path());
        c.env("DATABASE_URL", db.url.expose())
            .env("PORTAL_MASTER_KEY", key.to_base64().as_str())
            .env("PORTAL_SMTP_URL", smtp.url())
            // Behind one load balancer: one public address for both.
            .env("PORTAL_BASE_URL", "http://127.0.0.1:8080")
            .env("PORTAL_REMINDER_INTERVAL", "1");
        c.args(if demo { &["serve", "--demo"][..] } else { &["serve"][..] });
        start(c)
    };
    let (mut a, addr_a, lines) = replica(true);
    let (mut b, addr_b, _) = replica(false);
    let jane_link = lines
        .iter()
        .find_map(|l| l.strip_prefix("credential-manager jane.doe@demoregistry.example "))
        .expect("the demo prints Jane's invitation link")
        .to_owned();
    let path = jane_link.replace("http://127.0.0.1:8080", "");
    let url = |addr: &str, path: &str| format!("http://{addr}{path}");

    rt.block_on(async {
        use crate::support::flows::{PASSWORD, between};
        // Jane accepts her invitation and enrols TOTP on replica A: her session starts there.
        let jane = crate::support::new_client();
        let form = [("password", PASSWORD), ("password_confirm", PASSWORD)];
        assert_eq!(jane.post(url(&addr_a, &path)).form(&form).send().await.unwrap().status(), 303);
        let setup = jane.get(url(&addr_a, "/mfa/setup")).send().await.unwrap().text().await.unwrap();
        let seed = secret_portal::auth::TotpSeed::from_base32(between(&setup, "id=\"totp-key\">", "</code>").unwrap())
            .unwrap();
        let code = seed.code_at(chrono::Utc::now());
        let res = jane.post(url(&addr_a, "/mfa/setup")).form(&[("code", code.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 200);

        // The session is valid on replica B (and B without it asks for a sign-in).
        let page = jane.get(url(&addr_b, "/manage-api-credentials")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        assert!(page.contains("Partner-NL-DemoRegistry-DM"), "{page}");
        let stranger = crate::support::new_client().get(url(&addr_b, "/manage-api-credentials")).send().await.unwrap();
        assert_eq!(stranger.status(), 303);

        // A secret created on B works on A; deleted on A, it is refused by B on the next request.
        let store = secret_portal::store::Store::connect(&db.url, Default::default()).await.unwrap();
        let org = store.list_organisations().await.unwrap().into_iter().next().unwrap();
        let apps = store.list_applications_of_organisation(org.id).await.unwrap();
        let dm = apps.into_iter().find(|x| x.name.ends_with("-DM")).unwrap();
        let secrets = format!("/manage-api-credentials/{}/secrets", dm.client_id);
        let new = jane.get(url(&addr_b, &format!("{secrets}/new"))).send().await.unwrap().text().await.unwrap();
        let form_id = between(&new, "name=\"form_id\" value=\"", "\"").unwrap();
        let expires_on = (chrono::Utc::now().date_naive() + chrono::Duration::days(200)).to_string();
        let created = jane
            .post(url(&addr_b, &secrets))
            .form(&[("name", "Replica test"), ("expires_on", expires_on.as_str()), ("form_id", form_id)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = between(&created, "id=\"secret-value\">", "</code>").expect("the value is shown").to_owned();
        let token = |addr: String| {
            let form = [
                ("grant_type", "client_credentials".to_owned()),
                ("client_id", dm.client_id.to_string()),
                ("client_secret", value.clone()),
                ("resource", "data-manager-production".to_owned()),
            ];
            async move { reqwest::Client::new().post(url(&addr, "/oauth2/token")).form(&form).send().await.unwrap() }
        };
        assert_eq!(token(addr_a.clone()).await.status(), 200);
        assert_eq!(token(addr_b.clone()).await.status(), 200);
        let id =
            store.list_client_secrets(dm.id).await.unwrap().into_iter().find(|s| s.name == "Replica test").unwrap().id;
        let res = jane.post(url(&addr_a, &format!("{secrets}/{id}/delete"))).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let refused = token(addr_b.clone()).await;
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");

        // A secret 7 days from its expiration date: both loops run every second, one email.
        let plain = secret_portal::domain::PlainSecret::generate();
        let today = chrono::Utc::now().date_naive();
        store
            .seed_client_secret(&secret_portal::store::SeedSecret {
                application_id: dm.id,
                name: "Replica reminder".into(),
                hint: plain.hint(),
                hash: plain.hash(),
                expires_on: today + chrono::Duration::days(7),
                created_by: None,
                created_at: chrono::Utc::now() - chrono::Duration::days(100),
            })
            .await
            .unwrap();
        let reminders = || {
            smtp.messages_to("jane.doe@demoregistry.example")
                .into_iter()
                .filter(|m| m.part("text/plain").contains("Replica reminder"))
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while reminders() == 0 {
            assert!(Instant::now() < deadline, "no reminder arrived");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Several more passes on both replicas.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(reminders(), 1);
    });
    assert_eq!(terminate(&mut a).code(), Some(0));
    assert_eq!(terminate(&mut b).code(), Some(0));
}

/// The portal's resident memory in KiB, from `/proc/<pid>/status`.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_stays_flat_over_five_thousand_failed_sign_ins_with_maximal_inputs() {
    // Issue 12: nothing a client types is kept at its typed size, and every map is bounded.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db = rt.block_on(crate::support::TestDb::new());
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = portal(dir.path());
    if db.is_postgres() {
        cmd.env("DATABASE_URL", db.url.expose()).env("PORTAL_MASTER_KEY", MasterKey::generate().to_base64().as_str());
    }
    let (mut child, addr, _) = start(cmd);
    let pid = child.id();
    // 50 loopback addresses, each its own client (the throttles count per address).
    let clients: Vec<reqwest::Client> = (0..50u8)
        .map(|i| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, 10 + i]))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
        })
        .collect();
    let url = format!("http://{addr}/login");
    // Maximal inputs: a different email each time, as long as the body limit allows.
    let round = |from: usize, count: usize| {
        let clients = clients.clone();
        let url = url.clone();
        async move {
            let mut tasks = Vec::new();
            for (c, client) in clients.into_iter().enumerate() {
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    for n in 0..count / 50 {
                        let unique = format!("{c}-{}-", from + n);
                        let email = format!("{unique}{}@example.org", "e".repeat(5_000 - unique.len()));
                        let password = "p".repeat(1_500);
                        let res = client
                            .post(&url)
                            .form(&[("email", email.as_str()), ("password", password.as_str()), ("next", "/")])
                            .send()
                            .await
                            .unwrap();
                        assert!(matches!(res.status().as_u16(), 200 | 429), "{}", res.status());
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    rt.block_on(round(0, 500));
    let before = vm_rss_kib(pid);
    rt.block_on(round(500, 5_000));
    let after = vm_rss_kib(pid);
    assert_eq!(terminate(&mut child).code(), Some(0));
    eprintln!("VmRSS after the warm-up {before} KiB, after 5,000 more failed sign-ins {after} KiB");
    assert!(after < before + 4 * 1024, "VmRSS grew from {before} KiB to {after} KiB");
}

/// Issue 14, point 9: a Postgres-only test is ignored by default and, run anyway without
/// `TEST_DATABASE_URL`, fails instead of passing having asserted nothing.
#[test]
fn a_postgres_only_test_run_without_the_url_fails() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--include-ignored", "--exact", "health::shutdown_lets_requests_in_flight_finish"])
        .env_remove(crate::support::TEST_DATABASE_URL)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("1 failed") && text.contains("needs TEST_DATABASE_URL"), "{text}");
}
