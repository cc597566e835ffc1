//! The mail outbox over a real SMTP server: delivery, retries while the server is down, permanent
//! refusals, and claims that never hand one row to two senders.

use crate::support::{TestApp, test_now, test_store};
use chrono::Duration;
use secret_portal::domain::Clock as _;
use secret_portal::domain::{EmailKind, NewEmail};
use secret_portal::store::UserRole;

fn email(to: &str, subject: &str) -> NewEmail {
    NewEmail {
        kind: EmailKind::Invitation,
        recipient: to.into(),
        subject: subject.into(),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
    }
}

#[tokio::test]
async fn mail_waits_in_the_outbox_while_smtp_is_down_and_goes_out_when_it_is_back() {
    let app = TestApp::spawn().await;
    let failed = r#"emails_failed_total{email="invitation",failure="transient"}"#;
    let failed_before = app.metric(failed).await;
    app.smtp.set_down(true);
    app.store.queue_email(&email("jane@demo.example", "Hello"), app.clock.now()).await.unwrap();
    app.state.services.mailer.wake();
    // The sender tries, fails with 421, and schedules a retry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let depth = app.store.outbox_depth().await.unwrap();
        if depth.retrying == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no failed attempt recorded: {depth:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(app.smtp.messages().is_empty());
    assert!(app.metric(failed).await > failed_before, "the failed attempt was not counted");
    // The portal keeps serving meanwhile.
    assert_eq!(app.get("/healthz").await.status(), 200);
    // Back up: delivered once the backoff has passed.
    app.smtp.set_down(false);
    app.clock.advance(Duration::minutes(16));
    let got = app.smtp.wait_for("jane@demo.example", 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].subject(), "Hello");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.smtp.messages_to("jane@demo.example").len(), 1, "delivered twice");
    assert_eq!(app.store.outbox_depth().await.unwrap(), Default::default());
}

#[tokio::test]
async fn a_permanent_refusal_marks_the_row_failed_without_retrying() {
    let app = TestApp::spawn().await;
    app.store.queue_email(&email("nobody@reject.example", "Hello"), app.clock.now()).await.unwrap();
    app.store.queue_email(&email("jane@demo.example", "Hello"), app.clock.now()).await.unwrap();
    app.state.services.mailer.wake();
    app.smtp.wait_for("jane@demo.example", 1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.store.outbox_depth().await.unwrap().failed != 1 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.clock.advance(Duration::hours(1));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let depth = app.store.outbox_depth().await.unwrap();
    assert_eq!((depth.queued, depth.retrying, depth.failed), (0, 0, 1));
}

#[tokio::test]
async fn sent_rows_lose_their_bodies_so_link_tokens_do_not_linger() {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let path = app.invite("jane@demo.example", UserRole::Member(org.id)).await;
    let token = path.trim_start_matches("/invite/").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let bodies: Vec<String> = match app.store.backend() {
        secret_portal::store::Backend::Postgres(p) => {
            sqlx::query_scalar("select text_body || html_body from outbox").fetch_all(p).await.unwrap()
        }
        secret_portal::store::Backend::Sqlite(p) => {
            sqlx::query_scalar("select text_body || html_body from outbox").fetch_all(p).await.unwrap()
        }
    };
    assert!(bodies.iter().all(|b| !b.contains(&token)), "{bodies:?}");
}

#[tokio::test]
async fn two_senders_never_claim_the_same_row() {
    let (store, _db) = test_store().await;
    let now = test_now();
    for i in 0..40 {
        store.queue_email(&email(&format!("u{i}@demo.example"), "Hello"), now).await.unwrap();
    }
    let (a, b) = tokio::join!(
        store.claim_due_emails(now, now + Duration::minutes(2), 25),
        store.claim_due_emails(now, now + Duration::minutes(2), 25)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut ids: Vec<_> = a.iter().chain(b.iter()).map(|e| e.id).collect();
    assert_eq!(ids.len(), 40);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "a row was claimed twice");
    // Held rows are not claimed again until their lease runs out (a crashed sender).
    assert!(store.claim_due_emails(now, now + Duration::minutes(2), 50).await.unwrap().is_empty());
    let later = now + Duration::minutes(3);
    assert_eq!(store.claim_due_emails(later, later + Duration::minutes(2), 50).await.unwrap().len(), 40);
    // Sent rows are never claimed again.
    for e in &a {
        store.mark_email_sent(e.id, later).await.unwrap();
    }
    let much_later = now + Duration::hours(1);
    assert_eq!(store.claim_due_emails(much_later, much_later, 50).await.unwrap().len(), 40 - a.len());
}
