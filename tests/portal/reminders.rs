//! Expiry reminders through the outbox over a real SMTP server, with a movable clock.
//! SQLite, and Postgres with TEST_DATABASE_URL.

use crate::support::TestApp;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use secret_portal::domain::{Api, ApplicationKind, ClientId, Clock as _, ResourceId};
use secret_portal::jobs::reminders::{Report, run_once};
use secret_portal::store::{Actor, Application, NewApplication, UserRole};

struct World {
    app: TestApp,
    dm: Application,
    org_id: uuid::Uuid,
    jane: uuid::Uuid,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store.grant_credential_manager(jane.user_id, dm.id, &Actor::cli(), app.clock.now()).await.unwrap();
    World { app, dm, org_id: org.id, jane: jane.user_id }
}

fn noon(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(12, 0, 0).unwrap().and_utc()
}

async fn seed(
    w: &World,
    application: &Application,
    name: &str,
    created_at: DateTime<Utc>,
    expires_on: NaiveDate,
) -> uuid::Uuid {
    w.app.seed_secret(application.id, name, created_at, expires_on).await.1
}

async fn pass(w: &World) -> Report {
    let report = run_once(&w.app.store, &w.app.config.base_url, w.app.clock.now(), false).await.unwrap();
    w.app.state.services.mailer.wake();
    report
}

/// Reminder subjects received by `to` (other mail, like the invitation, is left out), in order,
/// after waiting for `count` of them and a little longer for any extra.
async fn subjects(w: &World, to: &str, count: usize) -> Vec<String> {
    let reminders = || -> Vec<String> {
        w.app.smtp.messages_to(to).iter().map(|m| m.subject()).filter(|s| s.starts_with("Client secret")).collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while reminders().len() < count {
        assert!(std::time::Instant::now() < deadline, "{count} reminders to {to} did not arrive: {:?}", reminders());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    reminders()
}

/// How many reminders `to` received.
fn reminder_count(w: &World, to: &str) -> usize {
    w.app.smtp.messages_to(to).iter().filter(|m| m.subject().starts_with("Client secret")).count()
}

#[tokio::test]
async fn a_50_day_walk_sends_exactly_the_schedule() {
    let w = world().await;
    let start = w.app.clock.today();
    let d = start + Duration::days(45);
    seed(&w, &w.dm, "Build server", noon(start - Duration::days(300)), d).await;
    for day in 0..50 {
        w.app.clock.set(noon(start + Duration::days(day)));
        pass(&w).await;
        // A second pass the same day adds nothing.
        assert_eq!(pass(&w).await.recorded, 0);
    }
    let got = subjects(&w, "jane@demo.example", 11).await;
    let tails: Vec<String> = got
        .iter()
        .map(|s| s.trim_start_matches("Client secret \"Build server\" of Partner-NL-DemoRegistry-DM ").to_owned())
        .collect();
    assert_eq!(
        tails,
        [
            "expires in 42 days",
            "expires in 21 days",
            "expires in 7 days",
            "expires in 6 days",
            "expires in 5 days",
            "expires in 4 days",
            "expires in 3 days",
            "expires in 2 days",
            "expires in 1 day",
            "expires today",
            "has expired"
        ]
    );
    let mails: Vec<_> = w
        .app
        .smtp
        .messages_to("jane@demo.example")
        .into_iter()
        .filter(|m| m.subject().starts_with("Client secret"))
        .collect();
    let mail = &mails[2];
    let text = mail.part("text/plain");
    assert!(
        text.contains(&w.dm.client_id.to_string()) && text.contains(&d.to_string()) && text.contains("7 days left")
    );
    assert!(text.contains("http://127.0.0.1:8080/manage-api-credentials") && text.contains("Last used: never"));
    // Issue 18, point 3: the reminder links to "Create replacement" of this secret.
    let replace = format!("http://127.0.0.1:8080/manage-api-credentials/{}/secrets/new?replaces=", w.dm.client_id);
    assert!(text.contains(&replace) && mail.part("text/html").contains(&replace), "{text}");
    assert!(mail.part("text/html").contains("Partner-NL-DemoRegistry-DM"));
}

#[tokio::test]
async fn a_secret_created_10_days_before_expiry_starts_at_the_next_due_notice() {
    let w = world().await;
    let today = w.app.clock.today();
    seed(&w, &w.dm, "Late", w.app.clock.now(), today + Duration::days(10)).await;
    assert_eq!(pass(&w).await.recorded, 0, "D-21 is before the creation date");
    w.app.clock.set(noon(today + Duration::days(3)));
    pass(&w).await;
    let got = subjects(&w, "jane@demo.example", 1).await;
    assert!(got[0].ends_with("expires in 7 days"), "{got:?}");
}

#[tokio::test]
async fn after_downtime_only_the_latest_due_notice_goes_out() {
    let w = world().await;
    let today = w.app.clock.today();
    let d = today + Duration::days(50);
    seed(&w, &w.dm, "Down", noon(today - Duration::days(300)), d).await;
    // The portal was down from before D-42 until D-4.
    w.app.clock.set(noon(d - Duration::days(4)));
    let report = pass(&w).await;
    assert_eq!(report.recorded, 1);
    let got = subjects(&w, "jane@demo.example", 1).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].ends_with("expires in 4 days"));
}

/// Issue 14, point 2: a 3-week notice sent late (the portal was down from D-22 to D-19) says the
/// days really left, 19, in the subject, the body and the admin reminders page alike; the
/// schedule still names it the 3-week notice.
#[tokio::test]
async fn a_late_three_week_notice_says_the_days_really_left_everywhere() {
    let w = world().await;
    let today = w.app.clock.today();
    let d = today + Duration::days(50);
    seed(&w, &w.dm, "Late", noon(today - Duration::days(300)), d).await;
    w.app.clock.set(noon(d - Duration::days(19)));
    let report = pass(&w).await;
    assert_eq!(report.due.iter().map(|n| n.notice.schedule_name()).collect::<Vec<_>>(), vec!["expires in 21 days"]);
    let got = subjects(&w, "jane@demo.example", 1).await;
    assert_eq!(got, vec![format!("Client secret \"Late\" of {} expires in 19 days", w.dm.name)]);
    let mail = w.app.smtp.messages_to("jane@demo.example").into_iter().find(|m| m.subject() == got[0]).unwrap();
    let text = mail.part("text/plain");
    assert!(text.contains("expires in 19 days") && text.contains("19 days left"), "{text}");
    assert!(!text.contains("21 days"), "{text}");
    let (_, admin) = w.app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let page = admin.get(w.app.url("/admin/reminders")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("expires in 19 days") && !page.contains("expires in 21 days"), "sent row");
}

#[tokio::test]
async fn a_29_february_expiry_and_a_dst_change_follow_utc_dates() {
    let w = world().await;
    // 2028-02-29: the day before is "in 1 day", the day itself "today", 1 March "has expired".
    w.app.clock.set(noon(NaiveDate::from_ymd_opt(2028, 2, 20).unwrap()));
    let leap = NaiveDate::from_ymd_opt(2028, 2, 29).unwrap();
    seed(&w, &w.dm, "Leap", noon(NaiveDate::from_ymd_opt(2027, 6, 1).unwrap()), leap).await;
    // Europe's clocks change on 2027-10-31; the notices do not care (everything is UTC).
    let dst = NaiveDate::from_ymd_opt(2027, 10, 31).unwrap();
    let mut by_day = Vec::new();
    for (date, hour) in [("2028-02-28", 0), ("2028-02-28", 23), ("2028-02-29", 0), ("2028-03-01", 23)] {
        let t = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap().and_hms_opt(hour, 30, 0).unwrap().and_utc();
        w.app.clock.set(t);
        let r = pass(&w).await;
        by_day.push((date, r.due.iter().map(|d| d.notice.schedule_name()).collect::<Vec<_>>()));
    }
    assert_eq!(
        by_day,
        vec![
            ("2028-02-28", vec!["expires in 1 day".to_owned()]),
            ("2028-02-28", vec![]),
            ("2028-02-29", vec!["expires today".to_owned()]),
            ("2028-03-01", vec!["has expired".to_owned()])
        ]
    );
    let w2 = world().await;
    seed(&w2, &w2.dm, "Autumn", noon(dst - Duration::days(200)), dst).await;
    for hour in [0, 1, 2, 3, 23] {
        let t = Utc.from_utc_datetime(&(dst - Duration::days(7)).and_hms_opt(hour, 30, 0).unwrap());
        w2.app.clock.set(t);
        pass(&w2).await;
    }
    let got = subjects(&w2, "jane@demo.example", 1).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].ends_with("expires in 7 days"));
}

#[tokio::test]
async fn two_passes_at_once_queue_each_notice_once() {
    let w = world().await;
    let today = w.app.clock.today();
    for i in 0..5 {
        seed(&w, &w.dm, &format!("S{i}"), noon(today - Duration::days(100)), today + Duration::days(7)).await;
    }
    let base = w.app.config.base_url.clone();
    let now = w.app.clock.now();
    let (a, b) = tokio::join!(run_once(&w.app.store, &base, now, false), run_once(&w.app.store, &base, now, false));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.recorded + b.recorded, 5, "{a:?} {b:?}");
    w.app.state.services.mailer.wake();
    let got = subjects(&w, "jane@demo.example", 5).await;
    assert_eq!(got.len(), 5);
}

#[tokio::test]
async fn deleting_a_secret_stops_its_notices_including_queued_ones() {
    let w = world().await;
    let today = w.app.clock.today();
    let id = seed(&w, &w.dm, "Doomed", noon(today - Duration::days(100)), today + Duration::days(7)).await;
    w.app.smtp.set_down(true);
    assert_eq!(pass(&w).await.recorded, 1);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let now = w.app.clock.now();
    w.app.store.delete_client_secret((w.jane, &Actor::cli()), w.dm.client_id, id, now).await.unwrap();
    w.app.smtp.set_down(false);
    w.app.clock.advance(Duration::hours(1));
    w.app.state.services.mailer.wake();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(reminder_count(&w, "jane@demo.example"), 0);
    // And nothing more is due for it.
    w.app.clock.advance(Duration::days(1));
    assert_eq!(pass(&w).await.due.len(), 0);
}

#[tokio::test]
async fn a_replaced_secret_gets_one_rotation_notice_and_resumes_when_used_again_or_the_new_one_goes() {
    let w = world().await;
    let today = w.app.clock.today();
    let old = seed(&w, &w.dm, "Old", noon(today - Duration::days(300)), today + Duration::days(30)).await;
    w.app.store.record_secret_use(old, w.app.clock.now() - Duration::days(2)).await.unwrap();
    let new = seed(&w, &w.dm, "New", noon(today - Duration::days(1)), today + Duration::days(365)).await;
    w.app.store.record_secret_use(new, w.app.clock.now() - Duration::days(1)).await.unwrap();
    let r = pass(&w).await;
    assert_eq!(r.due.iter().map(|d| d.notice.schedule_name()).collect::<Vec<_>>(), vec!["was replaced: delete it"]);
    let got = subjects(&w, "jane@demo.example", 1).await;
    assert!(got[0].ends_with("was replaced: delete it"));
    // No countdown while replaced, and the rotation notice only once.
    for day in [1, 9, 23, 29, 31] {
        w.app.clock.set(noon(today + Duration::days(day)));
        assert!(pass(&w).await.due.is_empty(), "day {day}");
    }
    // The old one is used again: the countdown resumes with the latest due notice.
    let w = {
        w.app.clock.set(noon(today + Duration::days(24)));
        w.app.store.record_secret_use(old, w.app.clock.now()).await.unwrap();
        w
    };
    let r = pass(&w).await;
    assert_eq!(r.due.iter().map(|d| d.notice.schedule_name()).collect::<Vec<_>>(), vec!["expires in 6 days"]);
    // A newer one again, used after the old one's last use: replaced again, and the rotation
    // notice does not come twice.
    let newer = seed(&w, &w.dm, "Newer", w.app.clock.now(), today + Duration::days(400)).await;
    w.app.store.record_secret_use(newer, w.app.clock.now() + Duration::hours(1)).await.unwrap();
    w.app.clock.set(noon(today + Duration::days(25)));
    assert!(pass(&w).await.due.is_empty());
    // The newer one is deleted: the countdown resumes with the latest due notice.
    let now = w.app.clock.now();
    w.app.store.delete_client_secret((w.jane, &Actor::cli()), w.dm.client_id, newer, now).await.unwrap();
    let r = pass(&w).await;
    assert_eq!(r.due.iter().map(|d| d.notice.schedule_name()).collect::<Vec<_>>(), vec!["expires in 5 days"]);
    let _ = new;
}

#[tokio::test]
async fn recipients_are_the_enrolled_managers_when_queued_or_else_the_wmda_admins() {
    let w = world().await;
    let today = w.app.clock.today();
    seed(&w, &w.dm, "Team", noon(today - Duration::days(300)), today + Duration::days(21)).await;
    // Piet is invited but not enrolled; Kees is enrolled but disabled: neither receives.
    let piet = w.app.invite("piet@demo.example", UserRole::Member(w.org_id)).await;
    let _ = piet;
    let piet_id = w
        .app
        .store
        .find_user_by_email(&secret_portal::domain::EmailAddress::parse("piet@demo.example").unwrap())
        .await
        .unwrap()
        .id;
    w.app.store.grant_credential_manager(piet_id, w.dm.id, &Actor::cli(), w.app.clock.now()).await.unwrap();
    let (kees, _) = w.app.account("kees@demo.example", UserRole::Member(w.org_id)).await;
    w.app.store.grant_credential_manager(kees.user_id, w.dm.id, &Actor::cli(), w.app.clock.now()).await.unwrap();
    let now = w.app.clock.now();
    w.app.store.set_user_disabled((&w.app.user(kees.user_id).await, &Actor::cli()), true, now).await.unwrap();
    assert_eq!(pass(&w).await.emails, 1);
    subjects(&w, "jane@demo.example", 1).await;
    // A manager granted later joins from the next notice on.
    let (anna, _) = w.app.account("anna@demo.example", UserRole::Member(w.org_id)).await;
    w.app.store.grant_credential_manager(anna.user_id, w.dm.id, &Actor::cli(), w.app.clock.now()).await.unwrap();
    w.app.clock.set(noon(today + Duration::days(14)));
    assert_eq!(pass(&w).await.emails, 2);
    subjects(&w, "anna@demo.example", 1).await;
    assert!(w.app.smtp.messages_to("piet@demo.example").iter().all(|m| !m.subject().starts_with("Client secret")));
    assert!(w.app.smtp.messages_to("kees@demo.example").iter().all(|m| !m.subject().starts_with("Client secret")));

    // No eligible manager at all: the WMDA admins, told why.
    let (_, _) = w.app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let new = NewApplication {
        organisation_id: w.org_id,
        kind: ApplicationKind::Partner,
        api: Api::Smc,
        client_id: ClientId::generate(),
        resources: vec![ResourceId::SearchMatchSandbox],
    };
    let smc = w.app.store.create_application(&new, &Actor::cli(), w.app.clock.now()).await.unwrap();
    seed(&w, &smc, "Orphan", noon(today - Duration::days(300)), w.app.clock.today() + Duration::days(7)).await;
    pass(&w).await;
    let mails = w.app.smtp.wait_for("admin@wmda.example", 2).await;
    let reminder = mails.iter().find(|m| m.subject().contains("Orphan")).expect("a reminder to the admin");
    assert!(reminder.part("text/plain").contains("no credential manager"));
}

#[tokio::test]
async fn a_crash_between_queueing_and_sending_delivers_each_email_once_after_restart() {
    let w = world().await;
    let today = w.app.clock.today();
    seed(&w, &w.dm, "Crash", noon(today - Duration::days(100)), today + Duration::days(7)).await;
    w.app.smtp.set_down(true);
    assert_eq!(pass(&w).await.recorded, 1);
    // Queued, and the first delivery attempt failed: the row waits for a retry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while w.app.store.outbox_depth().await.unwrap().retrying != 1 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The process dies without a shutdown. (In this test process its sender task lives on with a
    // frozen clock, so the row never comes due for it; a real kill -9 leaves only the row.)
    let World { mut app, dm, org_id, jane } = w;
    if let Some(server) = app.server.take() {
        server.abort();
    }
    app.smtp.set_down(false);
    let app = app.restart().await;
    let w = World { app, dm, org_id, jane };
    w.app.clock.advance(Duration::hours(1));
    w.app.state.services.mailer.wake();
    let got = subjects(&w, "jane@demo.example", 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(pass(&w).await.recorded, 0);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(reminder_count(&w, "jane@demo.example"), 1);
}

#[tokio::test]
async fn the_admin_page_lists_sent_and_upcoming_reminders_and_the_outbox() {
    let w = world().await;
    let queued = r#"reminders_queued_total{notice="1w"}"#;
    let queued_before = w.app.metric(queued).await;
    let today = w.app.clock.today();
    seed(&w, &w.dm, "Soon", noon(today - Duration::days(100)), today + Duration::days(8)).await;
    w.app.clock.set(noon(today + Duration::days(1)));
    pass(&w).await;
    subjects(&w, "jane@demo.example", 1).await;
    let (_, admin) = w.app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let page = admin.get(w.app.url("/admin/reminders")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("expires in 7 days"), "sent");
    assert!(page.contains("expires in 6 days") && page.contains("expires today"), "upcoming");
    assert!(page.contains("jane@demo.example") && page.contains("sent"), "outbox");
    assert!(w.app.metric(queued).await > queued_before, "the 1-week notice was not counted");
    assert!(w.app.get("/metrics").await.text().await.unwrap().contains("outbox_emails"));
}

/// Issue 15, point 5: a secret a leak report marked exposed keeps working and keeps getting its
/// reminders until it is deleted.
#[tokio::test]
async fn an_exposed_secret_still_gets_its_reminders() {
    let w = world().await;
    let today = w.app.clock.today();
    let (value, id) =
        w.app.seed_secret(w.dm.id, "Exposed", noon(today - Duration::days(100)), today + Duration::days(7)).await;
    let report = serde_json::json!([{ "token": value.expose(), "type": "t", "url": "https://example.com/x", "source": "content" }]);
    let res = crate::support::new_client().post(w.app.url("/api/v1/leaks")).json(&report).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let secrets = w.app.store.list_client_secrets(w.dm.id).await.unwrap();
    assert!(secrets.iter().any(|s| s.id == id && s.exposure.is_some()));
    assert_eq!(pass(&w).await.recorded, 1);
    let got = subjects(&w, "jane@demo.example", 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
}
