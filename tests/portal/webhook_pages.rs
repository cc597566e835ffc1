//! Issue 17, points 1, 4 and 6 (DESIGN.md section 9): credential managers add, list, test,
//! enable and remove webhook endpoints on the Manage page, a `standard` endpoint's signing secret
//! shown once; WMDA admins see and remove them on the application page and read the latest
//! deliveries on the reminders page; a wrong field gets its message and nothing is stored.
//! SQLite, and Postgres with TEST_DATABASE_URL.

use std::sync::atomic::Ordering::SeqCst;

use chrono::Duration;
use secret_portal::domain::webhook::WebhookEvent;
use secret_portal::domain::{Api, ApplicationKind, Clock as _};
use secret_portal::store::{Actor, Application, UserRole};
use serde_json::Value;

use crate::support::flows::between;
use crate::support::{TestApp, TestDb};
use crate::webhooks::{deliverer, receiver};

struct World {
    app: TestApp,
    dm: Application,
    theirs: Application,
    /// Manages the DM application.
    jane: reqwest::Client,
    /// Manages an application of another organisation.
    hans: reqwest::Client,
    /// A WMDA admin.
    admin: reqwest::Client,
}

/// A portal that delivers to loopback (`PORTAL_WEBHOOK_ALLOW_PRIVATE=on`) when `allow_private`.
async fn world(allow_private: bool) -> World {
    let app = TestApp::spawn_with(TestDb::new().await, |c| c.webhook_allow_private = allow_private).await;
    // Standard Webhooks receivers check the timestamp against their own clock: the real time.
    app.clock.set(secret_portal::domain::SystemClock.now());
    let org = app.create_org("NL", "DemoRegistry").await;
    let other = app.create_org("DE", "OtherRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let theirs = app.register(other.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, jane_client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    let (hans, hans_client) = app.account("hans@other.example", UserRole::Member(other.id)).await;
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let now = app.clock.now();
    for (user, application) in [(jane.user_id, dm.id), (hans.user_id, theirs.id)] {
        app.store.grant_credential_manager(user, application, &Actor::cli(), now).await.unwrap();
    }
    World { app, dm, theirs, jane: jane_client, hans: hans_client, admin }
}

fn all_events() -> Vec<(&'static str, &'static str)> {
    WebhookEvent::ALL.iter().map(|e| ("events", e.as_str())).collect()
}

fn hooks(application: &Application) -> String {
    format!("/manage-api-credentials/{}/webhooks", application.client_id)
}

async fn audited(app: &TestApp, action: &str) -> Vec<Value> {
    let events = app.store.recent_audit_events(200).await.unwrap();
    events.iter().filter(|e| e.action == action).map(|e| serde_json::from_str(&e.details).unwrap()).collect()
}

/// Adds an endpoint through the form; returns the page that answered.
async fn add(w: &World, client: &reqwest::Client, fields: &[(&str, &str)]) -> (u16, String) {
    let res = w.app.post_form(client, &hooks(&w.dm), fields).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Jane adds a `standard` endpoint (the signing secret shown once, never again), sends a test
/// event that the independent `standardwebhooks` crate verifies with that secret, is held to
/// one test a minute, sees the delivery on the page, and removes the endpoint (asked first).
/// Another organisation's manager reaches none of it.
#[tokio::test]
async fn a_manager_adds_tests_and_removes_an_endpoint_whose_signing_secret_verifies() {
    let w = world(true).await;
    let page = w.app.page(&w.jane, "/manage-api-credentials").await;
    assert!(page.contains("No webhook endpoints") && page.contains(&format!("{}/new", hooks(&w.dm))), "{page}");
    let form = w.app.page(&w.jane, &format!("{}/new", hooks(&w.dm))).await;
    assert_eq!(form.matches("name=\"events\"").count(), 5);
    assert_eq!(form.matches(" checked>").count(), 6, "every event and the standard format are chosen");
    assert!(form.contains("Everyone in a Slack or Teams channel sees"));

    let r = receiver().await;
    r.accept.store(true, SeqCst);
    let mut fields = vec![("url", r.url.as_str()), ("format", "standard")];
    fields.extend(all_events());
    let (status, added) = add(&w, &w.jane, &fields).await;
    assert_eq!(status, 200, "{added}");
    let secret = between(&added, "id=\"signing-secret\">", "<").expect("the signing secret, shown once").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let page = w.app.page(&w.jane, "/manage-api-credentials").await;
    assert!(!page.contains(&secret) && !page.contains("whsec_"), "shown once only");
    let shown = r.url.replace("/hook", "/…");
    assert!(page.contains(&format!("<code>{shown}</code>")) && !page.contains("/hook<"), "{page}");
    assert!(page.contains("No event delivered yet"), "{page}");
    let added_events = audited(&w.app, "webhook.added").await;
    assert_eq!(added_events.len(), 1);
    assert_eq!(added_events[0]["host"], "127.0.0.1");
    assert!(!added_events[0].to_string().contains("/hook"), "only the host is audited");
    let endpoint = w.app.store.webhook_endpoints(w.dm.id).await.unwrap().pop().unwrap();
    assert_eq!(endpoint.endpoint.events, WebhookEvent::ALL);

    // Another organisation's manager: 404 through his application's path and through Jane's.
    let theirs_path = format!("{}/{}/test", hooks(&w.theirs), endpoint.id);
    assert_eq!(w.app.post_form(&w.hans, &theirs_path, &[]).await.status(), 404);
    for action in ["test", "enable", "remove"] {
        let path = format!("{}/{}/{action}", hooks(&w.dm), endpoint.id);
        assert_eq!(w.app.post_form(&w.hans, &path, &[("confirm", "yes")]).await.status(), 404, "{action}");
    }
    assert_eq!(add(&w, &w.hans, &fields).await.0, 404);
    assert_eq!(w.hans.get(w.app.url(&format!("{}/new", hooks(&w.dm)))).send().await.unwrap().status(), 404);

    let test_path = format!("{}/{}/test", hooks(&w.dm), endpoint.id);
    let (_, page) = w.app.post_and_follow(&w.jane, &test_path, &[]).await;
    assert!(page.contains("Test event sent"), "{page}");
    // Point 7: deliveries are counted by outcome (process-wide counters: compare, at least).
    let delivered = r#"webhook_deliveries_total{outcome="delivered"}"#;
    let before = w.app.metric(delivered).await;
    let report = deliverer(&w.app).run_once().await.unwrap();
    assert_eq!(report.delivered, 1);
    assert!(w.app.metric(delivered).await - before >= 1.0);
    let (_, headers, body) = r.seen.lock().unwrap().pop().unwrap();
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    verifier.verify(&body, &headers).expect("the page's signing secret verifies the test event");
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (json["type"].as_str(), json["data"]["client_id"].as_str()),
        (Some("webhook.test"), Some(&*w.dm.client_id.to_string()))
    );

    // Once a minute: the second is refused, nothing queued; a minute later it is sent.
    let (_, page) = w.app.post_and_follow(&w.jane, &test_path, &[]).await;
    assert!(page.contains("less than a minute ago"), "{page}");
    assert_eq!(w.app.store.webhook_deliveries(endpoint.id, 10).await.unwrap().len(), 1);
    w.app.clock.advance(Duration::seconds(61));
    let (_, page) = w.app.post_and_follow(&w.jane, &test_path, &[]).await;
    assert!(page.contains("Test event sent"), "{page}");
    assert_eq!(deliverer(&w.app).run_once().await.unwrap().delivered, 1);
    let page = w.app.page(&w.jane, "/manage-api-credentials").await;
    assert!(
        page.contains("Recent deliveries (2)")
            && page.contains("Delivered (204)")
            && page.contains("Working: last delivered"),
        "{page}"
    );

    // Removing asks first (without JavaScript, a page); confirmed, it is gone and audited.
    let remove_path = format!("{}/{}/remove", hooks(&w.dm), endpoint.id);
    let res = w.app.post_form(&w.jane, &remove_path, &[]).await;
    assert_eq!(res.status(), 200);
    let ask = res.text().await.unwrap();
    assert!(ask.contains("Remove the webhook endpoint on 127.0.0.1") && ask.contains("name=\"confirm\" value=\"yes\""));
    assert_eq!(w.app.store.webhook_endpoints(w.dm.id).await.unwrap().len(), 1, "asking changes nothing");
    let (_, page) = w.app.post_and_follow(&w.jane, &remove_path, &[("confirm", "yes")]).await;
    assert!(page.contains("The webhook endpoint is removed") && page.contains("No webhook endpoints"), "{page}");
    assert!(w.app.store.webhook_endpoints(w.dm.id).await.unwrap().is_empty());
    assert_eq!(audited(&w.app, "webhook.removed").await.len(), 1);
    assert_eq!(w.app.post_form(&w.jane, &test_path, &[]).await.status(), 404, "a removed endpoint is gone");
}

/// Point 6: a URL that does not parse, is too long, holds credentials or is not one the portal
/// delivers to, an unknown format or event, no event: the form says why beside the field, keeps
/// what was typed (escaped), answers 422, and stores nothing; the sixth endpoint is refused too.
#[tokio::test]
async fn the_add_form_says_what_is_wrong_and_stores_nothing() {
    let w = world(false).await;
    let long = format!("https://hooks.example.org/{}", "a".repeat(2_000));
    // 2,000 characters as typed, about 12,000 once percent-encoded as it would be stored.
    let encoded = format!("https://example.com/{}", "é".repeat(1_980));
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("url", "not a url"), ("format", "standard"), ("events", "secret.created")], "This is not a URL"),
        (vec![("url", ""), ("format", "standard"), ("events", "secret.created")], "Enter the endpoint&#39;s URL"),
        (
            vec![("url", &long), ("format", "standard"), ("events", "secret.created")],
            "too long: at most 2,000 characters",
        ),
        (
            vec![("url", &encoded), ("format", "standard"), ("events", "secret.created")],
            "too long: at most 2,000 characters",
        ),
        (
            vec![("url", "https://LocalHost./x"), ("format", "standard"), ("events", "secret.created")],
            "a loopback address",
        ),
        (
            vec![("url", "https://[2001:4::1]/x"), ("format", "standard"), ("events", "secret.created")],
            "IETF protocol assignments",
        ),
        (
            vec![("url", "https://user:pw@hooks.example.org/x"), ("format", "slack"), ("events", "secret.created")],
            "must not hold a user name or password",
        ),
        (
            vec![("url", "http://8.8.8.8/x"), ("format", "standard"), ("events", "secret.created")],
            "must start with https://",
        ),
        (
            vec![("url", "https://8.8.8.8:8443/x"), ("format", "standard"), ("events", "secret.created")],
            "port 443 only",
        ),
        (
            vec![("url", "https://10.1.2.3/x"), ("format", "standard"), ("events", "secret.created")],
            "a private address",
        ),
        (vec![("url", "https://[::1]/x"), ("format", "standard"), ("events", "secret.created")], "a loopback address"),
        (vec![("url", "https://8.8.8.8/x"), ("format", "discord"), ("events", "secret.created")], "Unknown format"),
        (vec![("url", "https://8.8.8.8/x"), ("events", "secret.created")], "Choose a format"),
        (vec![("url", "https://8.8.8.8/x"), ("format", "teams"), ("events", "secret.stolen")], "Unknown event"),
        (vec![("url", "https://8.8.8.8/x"), ("format", "teams"), ("events", "webhook.test")], "Unknown event"),
        (vec![("url", "https://8.8.8.8/x"), ("format", "teams")], "Choose at least one event"),
    ];
    for (fields, message) in &cases {
        let (status, page) = add(&w, &w.jane, fields).await;
        assert_eq!(status, 422, "{fields:?}");
        assert!(page.contains(message), "{fields:?}: {message} not in {page}");
        assert!(page.contains("aria-invalid=\"true\"") || page.contains("aria-describedby=\"webhook-"), "{fields:?}");
    }
    // What was typed comes back escaped, and the choices stay as they were.
    let typed = "https://8.8.8.8/\"><script>alert(1)</script>";
    let (status, page) = add(&w, &w.jane, &[("url", typed), ("format", "slack"), ("events", "nope")]).await;
    assert_eq!(status, 422);
    assert!(!page.contains("<script>alert") && page.contains("&#60;script&#62;"), "{page}");
    assert!(page.contains("value=\"slack\" checked>") && page.matches(" checked>").count() == 1, "{page}");
    // A NUL is refused before anything is read.
    assert_eq!(add(&w, &w.jane, &[("url", "https://8.8.8.8/\0"), ("format", "slack")]).await.0, 400);
    assert!(w.app.store.webhook_endpoints(w.dm.id).await.unwrap().is_empty());
    assert!(audited(&w.app, "webhook.added").await.is_empty());

    // Five are allowed; the sixth gets the form's message.
    for n in 0..5 {
        let url = format!("https://8.8.8.8/hook{n}");
        let (status, page) =
            add(&w, &w.jane, &[("url", &url), ("format", "teams"), ("events", "secret.expiring")]).await;
        assert_eq!(status, 200, "{page}");
        assert!(!page.contains("whsec_"), "only a standard endpoint has a signing secret");
    }
    let (status, page) =
        add(&w, &w.jane, &[("url", "https://8.8.8.8/six"), ("format", "teams"), ("events", "secret.expiring")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("at most 5") || page.contains("5 webhook endpoints"), "{page}");
    assert_eq!(w.app.store.webhook_endpoints(w.dm.id).await.unwrap().len(), 5);
    let page = w.app.page(&w.jane, "/manage-api-credentials").await;
    assert!(page.contains("the most webhook endpoints allowed") && !page.contains(&format!("{}/new", hooks(&w.dm))));
    // Teams URLs are credentials: the page shows scheme, host and "…".
    assert!(page.contains("https://8.8.8.8/…") && !page.contains("/hook0"), "{page}");
}

/// Creation looks the host up, best effort: a name that resolves only to refused addresses is
/// refused with the reason; one that cannot be looked up is added (delivery decides). An
/// injected resolver: nothing connects anywhere.
#[tokio::test]
async fn creation_refuses_a_name_that_resolves_only_to_private_addresses() {
    use secret_portal::oauth::webhook_endpoints::{AddError, WebhookEndpoints};
    let w = world(false).await;
    let key = w.app.config.master_key.clone();
    let events = ["secret.created".to_owned()];
    let actor = Actor::cli();
    let now = w.app.clock.now();
    let private = WebhookEndpoints::new(key.clone(), false, crate::webhooks::fixed(&["10.0.0.7", "fd00::7"]));
    let form = ("https://internal.example.org/hook", "standard", &events[..], "");
    match private.add(&w.app.store, (&actor, None), w.dm.id, form, now).await {
        Err(AddError::Invalid(e)) => {
            let why = e.url.unwrap();
            assert!(why.contains("internal.example.org resolves only to private addresses"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(w.app.store.webhook_endpoints(w.dm.id).await.unwrap().is_empty());
    let public = WebhookEndpoints::new(key.clone(), false, crate::webhooks::fixed(&["10.0.0.7", "8.8.4.4"]));
    let added = public.add(&w.app.store, (&actor, None), w.dm.id, form, now).await.unwrap();
    assert!(added.signing_secret.is_some());
    let unknown = WebhookEndpoints::new(key, false, crate::webhooks::fixed(&[]));
    assert!(unknown.add(&w.app.store, (&actor, None), w.dm.id, form, now).await.is_err(), "no address at all");
}

/// A WMDA admin sees an application's endpoints (a Slack URL as scheme, host and "…") with their
/// recent deliveries and removes one (asked first, audited); the reminders page lists the latest
/// deliveries with their failures. A disabled endpoint offers "Enable" on the Manage page, which
/// resumes it (audited). The Slack URL's path appears on no page, in no audit detail and no log.
#[tokio::test]
async fn admins_see_and_remove_endpoints_and_managers_enable_a_disabled_one() {
    let w = world(true).await;
    let r = receiver().await;
    let slack_url = format!("{}?services=T000/B000/XXXXSLACKPATH", r.url);
    let (status, added) =
        add(&w, &w.jane, &[("url", &slack_url), ("format", "slack"), ("events", "secret.created")]).await;
    assert_eq!(status, 200, "{added}");
    let shown = r.url.replace("/hook", "/…");
    assert!(!added.contains("XXXXSLACKPATH") && added.contains(&shown), "{added}");
    let endpoint = w.app.store.webhook_endpoints(w.dm.id).await.unwrap().pop().unwrap();
    // A secret is created: the receiver refuses (503).
    w.app.seed_secret(w.dm.id, "Production", w.app.clock.now(), w.app.clock.today() + Duration::days(300)).await;
    let data = secret_portal::domain::webhook::test_event_data(&w.dm.name, &w.dm.client_id.to_string());
    w.app
        .store
        .queue_webhook_event(w.dm.id, WebhookEvent::Created, uuid::Uuid::new_v4(), &data, w.app.clock.now())
        .await
        .unwrap();
    let retrying = r#"webhook_deliveries_total{outcome="retrying"}"#;
    let before = w.app.metric(retrying).await;
    assert_eq!(deliverer(&w.app).run_once().await.unwrap().retrying, 1);
    assert!(w.app.metric(retrying).await - before >= 1.0, "counted as retrying");

    let admin_page = w.app.page(&w.admin, &format!("/admin/applications/{}", w.dm.id)).await;
    assert!(admin_page.contains("Webhook endpoints") && admin_page.contains(&shown), "{admin_page}");
    assert!(!admin_page.contains("XXXXSLACKPATH"));
    assert!(admin_page.contains("Failing since") && admin_page.contains("answered 503"), "{admin_page}");
    assert!(!admin_page.contains("Send test event"), "tests are the managers'");
    let reminders = w.app.page(&w.admin, "/admin/reminders").await;
    assert!(reminders.contains("Webhook deliveries") && reminders.contains("1 pending, 0 failed"), "{reminders}");
    assert!(
        reminders.contains("secret.created")
            && reminders.contains("answered 503")
            && reminders.contains("127.0.0.1 (slack)"),
        "{reminders}"
    );

    // Disabled (as 72 hours of refusals would): "Enable" instead of "Send test event".
    raw_sql!(w.app.store, "update webhook_endpoint set disabled_at = failing_since where id = $1", endpoint.id)
        .unwrap();
    let page = w.app.page(&w.jane, "/manage-api-credentials").await;
    assert!(
        page.contains("Disabled ") && page.contains(">Enable</button>") && !page.contains("Send test event"),
        "{page}"
    );
    let (_, page) = w.app.post_and_follow(&w.jane, &format!("{}/{}/test", hooks(&w.dm), endpoint.id), &[]).await;
    assert!(page.contains("This endpoint is disabled: enable it first"), "{page}");
    r.accept.store(true, SeqCst);
    let (_, page) = w.app.post_and_follow(&w.jane, &format!("{}/{}/enable", hooks(&w.dm), endpoint.id), &[]).await;
    assert!(page.contains("The webhook endpoint is enabled") && page.contains("Send test event"), "{page}");
    assert_eq!(audited(&w.app, "webhook.enabled").await.len(), 1);
    assert_eq!(deliverer(&w.app).run_once().await.unwrap().delivered, 1, "the pending event goes at once");
    // Enabling it again (a second click, another manager): nothing changes, nothing is audited.
    let (_, page) = w.app.post_and_follow(&w.jane, &format!("{}/{}/enable", hooks(&w.dm), endpoint.id), &[]).await;
    assert!(page.contains("was enabled already: nothing changed"), "{page}");
    assert_eq!(audited(&w.app, "webhook.enabled").await.len(), 1);

    // An event the receiver refuses is pending; once the endpoint is removed it is dropped, not
    // pending (the reminders page says so).
    r.accept.store(false, SeqCst);
    w.app
        .store
        .queue_webhook_event(w.dm.id, WebhookEvent::Created, uuid::Uuid::new_v4(), &data, w.app.clock.now())
        .await
        .unwrap();
    assert_eq!(deliverer(&w.app).run_once().await.unwrap().retrying, 1);
    // The admin removes it (asked first); a manager cannot use the admin's route.
    let remove = format!("/admin/applications/{}/webhooks/{}/remove", w.dm.id, endpoint.id);
    assert_eq!(w.app.post_form(&w.jane, &remove, &[("confirm", "yes")]).await.status(), 404);
    let ask = w.app.post_form(&w.admin, &remove, &[]).await.text().await.unwrap();
    assert!(ask.contains("Remove the webhook endpoint on 127.0.0.1") && !ask.contains("XXXXSLACKPATH"), "{ask}");
    let (_, page) = w.app.post_and_follow(&w.admin, &remove, &[("confirm", "yes")]).await;
    assert!(page.contains("The webhook endpoint is removed"), "{page}");
    let reminders = w.app.page(&w.admin, "/admin/reminders").await;
    assert!(
        reminders.contains("0 pending, 0 failed") && reminders.contains("Dropped: the endpoint was removed"),
        "{reminders}"
    );
    let removed = audited(&w.app, "webhook.removed").await;
    assert_eq!(removed.len(), 1);
    let all_audit: Vec<String> =
        w.app.store.recent_audit_events(200).await.unwrap().iter().map(|e| e.details.clone()).collect();
    assert!(!all_audit.concat().contains("XXXXSLACKPATH"));
    assert!(!w.app.logs().contains("XXXXSLACKPATH"), "never logged");
    let other = format!("/admin/applications/{}/webhooks/{}/remove", w.theirs.id, endpoint.id);
    assert_eq!(w.app.post_form(&w.admin, &other, &[("confirm", "yes")]).await.status(), 404);
}

/// A second submit of the same add form (a double click, a reload, two tabs at once) adds
/// nothing: its signing secret was shown once already; a corrected form after an error keeps
/// its id and adds once.
#[tokio::test]
async fn a_form_submitted_twice_adds_one_endpoint() {
    let w = world(false).await;
    let form = w.app.page(&w.jane, &format!("{}/new", hooks(&w.dm))).await;
    let form_id = between(&form, "name=\"form_id\" value=\"", "\"").unwrap().to_owned();
    // A wrong URL first: the re-rendered form keeps the id.
    let (status, page) = add(
        &w,
        &w.jane,
        &[("url", "nope"), ("format", "standard"), ("events", "secret.created"), ("form_id", &form_id)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains(&format!("name=\"form_id\" value=\"{form_id}\"")), "{page}");
    let fields =
        [("url", "https://8.8.8.8/hook"), ("format", "standard"), ("events", "secret.created"), ("form_id", &form_id)];
    let (first, second) = tokio::join!(add(&w, &w.jane, &fields), add(&w, &w.jane, &fields));
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let refused = if first.0 == 409 { &first.1 } else { &second.1 };
    assert!(refused.contains("Endpoint already added") && !refused.contains("whsec_"), "{refused}");
    assert_eq!(add(&w, &w.jane, &fields).await.0, 409, "and again later");
    assert_eq!(w.app.store.webhook_endpoints(w.dm.id).await.unwrap().len(), 1);
    assert_eq!(audited(&w.app, "webhook.added").await.len(), 1);
    // A fresh form adds another.
    let form = w.app.page(&w.jane, &format!("{}/new", hooks(&w.dm))).await;
    let fresh = between(&form, "name=\"form_id\" value=\"", "\"").unwrap().to_owned();
    assert_ne!(fresh, form_id);
    let fields =
        [("url", "https://8.8.8.8/hook"), ("format", "slack"), ("events", "secret.created"), ("form_id", &fresh)];
    assert_eq!(add(&w, &w.jane, &fields).await.0, 200);
}

/// Issue 18, point 3: a `secret.expiring` event carries `replace_url`, the secret's "Create
/// replacement", and a Slack message links to it.
#[tokio::test]
async fn expiring_events_link_to_create_replacement() {
    let w = world(true).await;
    let r = receiver().await;
    r.accept.store(true, SeqCst);
    let fields = [("url", r.url.as_str()), ("format", "standard"), ("events", "secret.expiring")];
    assert_eq!(add(&w, &w.jane, &fields).await.0, 200);
    let slack = format!("{}?slack", r.url);
    let fields = [("url", slack.as_str()), ("format", "slack"), ("events", "secret.expiring")];
    assert_eq!(add(&w, &w.jane, &fields).await.0, 200);
    let now = w.app.clock.now();
    let (_, id) =
        w.app.seed_secret(w.dm.id, "Old", now - Duration::days(300), w.app.clock.today() + Duration::days(7)).await;
    let base = w.app.config.base_url.clone();
    secret_portal::jobs::reminders::run_once(&w.app.store, &base, now, false).await.unwrap();
    assert_eq!(deliverer(&w.app).run_once().await.unwrap().delivered, 2);
    let replace = format!(
        "{}/manage-api-credentials/{}/secrets/new?replaces={id}",
        base.as_str().trim_end_matches('/'),
        w.dm.client_id
    );
    let seen: Vec<Value> = r.seen.lock().unwrap().iter().map(|(_, _, b)| serde_json::from_slice(b).unwrap()).collect();
    let standard = seen.iter().find(|b| b.get("type").is_some()).unwrap();
    assert_eq!(standard["data"]["replace_url"].as_str(), Some(replace.as_str()), "{standard}");
    let slack = seen.iter().find(|b| b.get("text").is_some()).unwrap();
    assert!(slack["text"].as_str().unwrap().contains(&replace), "{slack}");
}
