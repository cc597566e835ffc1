//! Issue 17, points 3 and 5 (DESIGN.md section 9), first slice: the delivery transport's SSRF
//! guard and the `standard` signature. A name that resolves to a private address is refused by
//! the client's own resolver (an injected one: no test opens a connection to a private address
//! through the guard); with `allow_private` a local sink receives a signed delivery, which the
//! independent `standardwebhooks` crate verifies, and a redirect is not followed.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use secret_portal::domain::webhook::{SigningSecret, WebhookUrl};
use secret_portal::webhooks::{DeliveryError, GuardedResolver, Lookup, SystemLookup, client, post};

/// A resolver that answers every name with fixed addresses, and counts the lookups.
pub(crate) struct Fixed(Vec<IpAddr>, Mutex<usize>);

#[async_trait::async_trait]
impl Lookup for Fixed {
    async fn lookup(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
        *self.1.lock().unwrap() += 1;
        Ok(self.0.clone())
    }
}

pub(crate) fn fixed(addresses: &[&str]) -> Arc<Fixed> {
    Arc::new(Fixed(addresses.iter().map(|a| a.parse().unwrap()).collect(), Mutex::new(0)))
}

/// A portal with one application, the demo organisation's DM.
async fn portal() -> (crate::support::TestApp, secret_portal::store::Application) {
    use secret_portal::domain::{Api, ApplicationKind};
    let app = crate::support::TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    (app, dm)
}

/// Adds an endpoint of `application` at `url`, in `format`, for `events`: its URL (and a
/// `standard` endpoint's `secret`) encrypted with the portal's master key, as the pages will.
async fn add_endpoint(
    app: &crate::support::TestApp,
    application: &secret_portal::store::Application,
    (format, url): (secret_portal::domain::webhook::WebhookFormat, &str),
    events: &[secret_portal::domain::webhook::WebhookEvent],
    secret: Option<&SigningSecret>,
) -> uuid::Uuid {
    use secret_portal::domain::Clock as _;
    use secret_portal::store::NewWebhookEndpoint;
    use secret_portal::webhooks::{SIGNING_SECRET_PURPOSE, URL_PURPOSE};
    let key = &app.config.master_key;
    let new = NewWebhookEndpoint {
        application_id: application.id,
        format,
        url_enc: key.encrypt(url.as_bytes(), URL_PURPOSE),
        host: url::Url::parse(url).unwrap().host_str().unwrap().to_owned(),
        events: events.to_vec(),
        signing_secret_enc: secret.map(|s| key.encrypt(s.expose().as_bytes(), SIGNING_SECRET_PURPOSE)),
        created_by: None,
        form_id: None,
    };
    let actor = secret_portal::store::Actor::cli();
    app.store.add_webhook_endpoint(&new, &actor, app.clock.now()).await.unwrap().id
}

/// A deliverer like the portal's, on the system's resolver with private addresses allowed (the
/// receivers are on loopback).
pub(crate) fn deliverer(app: &crate::support::TestApp) -> secret_portal::jobs::webhooks::Deliverer {
    secret_portal::jobs::webhooks::Deliverer::new(
        app.store.clone(),
        client(Arc::new(SystemLookup), true).unwrap(),
        (Arc::new(app.config.master_key.clone()), app.config.base_url.clone()),
        Arc::new(app.clock.clone()),
        true,
    )
}

#[tokio::test]
async fn the_guard_keeps_only_globally_reachable_addresses_and_refuses_a_name_with_none() {
    let mixed =
        GuardedResolver::new(fixed(&["10.0.0.1", "8.8.8.8", "::1", "2606:4700:4700::1111", "169.254.169.254"]), false);
    let kept = mixed.addresses("hooks.example.org").await.unwrap();
    assert_eq!(kept, ["8.8.8.8".parse::<IpAddr>().unwrap(), "2606:4700:4700::1111".parse().unwrap()]);

    for addresses in [
        &["127.0.0.1"][..],
        &["10.0.0.1", "192.168.1.10", "172.16.5.4"],
        &["::ffff:127.0.0.1", "fd00::1", "fe80::1"],
        &["100.64.0.1", "198.18.0.1", "0.0.0.0", "64:ff9b::a00:1"],
        &[],
    ] {
        let guard = GuardedResolver::new(fixed(addresses), false);
        let err = guard.addresses("internal.example").await.unwrap_err();
        assert!(err.to_string().contains("does not deliver to"), "{addresses:?}: {err}");
    }
    assert_eq!(GuardedResolver::new(fixed(&["127.0.0.1"]), true).addresses("x").await.unwrap().len(), 1);

    // Through the client: refused before any connection, one lookup only, and the error names the
    // host, never the URL's path (a Slack or Teams URL is a credential).
    let lookup = fixed(&["127.0.0.1", "10.1.2.3"]);
    let client = client(lookup.clone(), false).unwrap();
    let url = WebhookUrl::parse("https://internal.example/services/T000/B000/XXXXSECRETPATH", false).unwrap();
    match post(&client, &url, &[], b"{}".to_vec()).await {
        Err(DeliveryError::Refused(why)) => {
            assert!(why.contains("internal.example") && !why.contains("SECRETPATH"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*lookup.1.lock().unwrap(), 1, "one lookup: the connection uses what it returned");
}

pub(crate) type Seen = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A receiver on loopback: `/ok` answers 200 with a megabyte, `/moved` a redirect to `/ok`.
async fn sink() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = |path: &'static str, seen: Seen| {
        move |headers: HeaderMap, body: Bytes| async move {
            seen.lock().unwrap().push((path.to_owned(), headers, body));
        }
    };
    let ok = record("/ok", seen.clone());
    let moved = record("/moved", seen.clone());
    let app = axum::Router::new()
        .route(
            "/ok",
            axum::routing::post(move |h: HeaderMap, b: Bytes| async move {
                ok(h, b).await;
                vec![b'x'; 1024 * 1024]
            }),
        )
        .route(
            "/moved",
            axum::routing::post(move |h: HeaderMap, b: Bytes| async move {
                moved(h, b).await;
                (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, "/ok")])
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), seen)
}

#[tokio::test]
async fn a_signed_delivery_verifies_with_the_reference_library_and_redirects_are_not_followed() {
    let (base, seen) = sink().await;
    let client = client(Arc::new(SystemLookup), true).unwrap();
    let secret = SigningSecret::generate();
    let body = br#"{"type":"secret.created","timestamp":"2026-12-07T10:00:00Z","data":{"name":"Build"}}"#.to_vec();
    let (id, at) = ("msg_0193a0b6-0000-7000-8000-000000000001", {
        use secret_portal::domain::Clock as _;
        secret_portal::domain::SystemClock.now().timestamp()
    });
    let headers = [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", at.to_string()),
        ("webhook-signature", secret.sign(id, at, &body)),
    ];
    let url = WebhookUrl::parse(&format!("{base}/ok"), true).unwrap();
    assert_eq!(post(&client, &url, &headers, body.clone()).await.unwrap(), 200);
    let (path, got_headers, got_body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!((path.as_str(), &got_body[..]), ("/ok", &body[..]));
    assert_eq!(got_headers["content-type"], "application/json");
    let verifier = standardwebhooks::Webhook::new(secret.expose()).unwrap();
    verifier.verify(&got_body, &got_headers).expect("the reference library accepts the signature");
    let mut altered = got_body.to_vec();
    altered[2] ^= 1;
    assert!(verifier.verify(&altered, &got_headers).is_err());
    let other = standardwebhooks::Webhook::new(SigningSecret::generate().expose()).unwrap();
    assert!(other.verify(&got_body, &got_headers).is_err());

    let moved = WebhookUrl::parse(&format!("{base}/moved"), true).unwrap();
    assert_eq!(post(&client, &moved, &headers, body).await.unwrap(), 302);
    let paths: Vec<String> = seen.lock().unwrap().iter().map(|(p, _, _)| p.clone()).collect();
    assert_eq!(paths, ["/moved"], "the redirect was not followed");

    // The guarded client (no allow_private) refuses plain http before anything is sent.
    let strict = secret_portal::webhooks::client(Arc::new(SystemLookup), false).unwrap();
    assert!(post(&strict, &url, &[], b"{}".to_vec()).await.is_err());
    assert!(seen.lock().unwrap().len() == 1);
}

/// A receiver that refuses (503) until told to accept, recording every attempt's headers and body.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) accept: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) seen: Seen,
}

pub(crate) async fn receiver() -> Receiver {
    let accept = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let (a, s) = (accept.clone(), seen.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (a, s) = (a.clone(), s.clone());
            async move {
                s.lock().unwrap().push(("/hook".to_owned(), headers, body));
                if a.load(std::sync::atomic::Ordering::SeqCst) {
                    axum::http::StatusCode::NO_CONTENT
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url: format!("http://{address}/hook"), accept, seen }
}

/// Point 4: deliveries go oldest first per endpoint, each retried with the same `webhook-id`
/// (signed anew per attempt) until the receiver answers 2xx; one still failing a day after its
/// event is failed and the next proceeds; two deliverers at once deliver each event once, in
/// order. A movable clock stands in for the hours. SQLite, and Postgres with TEST_DATABASE_URL.
#[tokio::test]
async fn deliveries_go_in_order_retry_with_the_same_id_and_fail_after_a_day() {
    use chrono::Duration;
    use secret_portal::domain::Clock as _;
    use secret_portal::domain::webhook::{WebhookEvent, WebhookFormat};

    use secret_portal::jobs::webhooks::WebhookReport;

    use std::sync::atomic::Ordering::SeqCst;

    let (app, dm) = portal().await;
    // Standard Webhooks receivers check the timestamp against their own clock: start at the real time.
    app.clock.set(secret_portal::domain::SystemClock.now());
    let r = receiver().await;
    let secret = SigningSecret::generate();
    let events = [WebhookEvent::Created, WebhookEvent::Deleted];
    let endpoint = add_endpoint(&app, &dm, (WebhookFormat::Standard, &r.url), &events, Some(&secret)).await;
    let deliverer = deliverer(&app);
    let queue = |event: WebhookEvent, n: u32| {
        let (store, now) = (app.store.clone(), app.clock.now());
        async move {
            let id = uuid::Uuid::new_v4();
            let data = serde_json::json!({ "n": n, "client_id": "c1" });
            let queued = store.queue_webhook_event(dm.id, event, id, &data, now).await.unwrap();
            (id, queued)
        }
    };
    let ids_seen = || -> Vec<String> {
        r.seen.lock().unwrap().iter().map(|(_, h, _)| h["webhook-id"].to_str().unwrap().to_owned()).collect()
    };
    let msg = |id: uuid::Uuid| secret_portal::domain::webhook::message_id(id);

    let (e1, _) = queue(WebhookEvent::Created, 1).await;
    let (e2, _) = queue(WebhookEvent::Deleted, 2).await;
    let (e3, _) = queue(WebhookEvent::Created, 3).await;
    assert_eq!(queue(WebhookEvent::Exposed, 0).await.1, 0, "not subscribed: nothing queued");

    // Refused: only the oldest is tried; it waits its backoff.
    assert_eq!(deliverer.run_once().await.unwrap(), WebhookReport { delivered: 0, retrying: 1, ..Default::default() });
    assert_eq!(deliverer.run_once().await.unwrap(), WebhookReport::default(), "not due yet");
    app.clock.advance(Duration::seconds(11));
    deliverer.run_once().await.unwrap();
    assert_eq!(ids_seen(), [msg(e1), msg(e1)]);
    // Accepted: the first, then the others in order.
    r.accept.store(true, SeqCst);
    app.clock.advance(Duration::seconds(25));
    assert_eq!(deliverer.run_once().await.unwrap(), WebhookReport { delivered: 3, ..Default::default() });
    assert_eq!(ids_seen(), [msg(e1), msg(e1), msg(e1), msg(e2), msg(e3)]);
    let verifier = standardwebhooks::Webhook::new(secret.expose()).unwrap();
    let seen = r.seen.lock().unwrap().clone();
    for (_, headers, body) in &seen {
        verifier.verify(body, headers).expect("each attempt is signed for its own time");
    }
    let stamps: std::collections::BTreeSet<&str> =
        seen[..3].iter().map(|(_, h, _)| h["webhook-timestamp"].to_str().unwrap()).collect();
    assert_eq!(stamps.len(), 3, "a new timestamp (and signature) per attempt");
    let body: serde_json::Value = serde_json::from_slice(&seen[3].2).unwrap();
    assert_eq!((body["type"].as_str(), body["data"]["n"].as_u64()), (Some("secret.deleted"), Some(2)));
    assert!(body["data"]["manage_url"].as_str().unwrap().ends_with("/manage-api-credentials#app-c1"));

    // A day of refusals: the event is failed and the next one proceeds.
    r.accept.store(false, SeqCst);
    let (e4, _) = queue(WebhookEvent::Created, 4).await;
    deliverer.run_once().await.unwrap();
    app.clock.advance(Duration::hours(23));
    let (e5, _) = queue(WebhookEvent::Created, 5).await;
    app.clock.advance(Duration::hours(1));
    let failed = r#"webhook_deliveries_total{outcome="failed"}"#;
    let before = app.metric(failed).await;
    let report = deliverer.run_once().await.unwrap();
    assert_eq!((report.failed, report.retrying), (1, 1), "e4 failed after a day, e5 tried: {report:?}");
    assert!(app.metric(failed).await - before >= 1.0, "counted as failed (issue 17, point 7)");
    // Given up: audited for the application's managers (issue 18), with the host only.
    let given_up: Vec<_> = app
        .store
        .recent_audit_events(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "webhook.delivery_failed")
        .collect();
    assert_eq!(given_up.len(), 1);
    assert!(given_up[0].details.contains("\"host\":\"127.0.0.1\"") && !given_up[0].details.contains("/hook"));
    r.accept.store(true, SeqCst);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(deliverer.run_once().await.unwrap().delivered, 1);
    let views = app.store.webhook_deliveries(endpoint, 10).await.unwrap();
    let state = |id: uuid::Uuid| {
        views.iter().find(|v| v.event_id == id).map(|v| (v.delivered_at.is_some(), v.failed_at.is_some()))
    };
    assert_eq!((state(e4), state(e5)), (Some((false, true)), Some((true, false))));
    assert_eq!(views.iter().find(|v| v.event_id == e4).unwrap().last_status, Some(503));

    // Two deliverers at once (two replicas): each event once, in order.
    r.seen.lock().unwrap().clear();
    let mut queued = Vec::new();
    for n in 6..12 {
        queued.push(msg(queue(WebhookEvent::Created, n).await.0));
    }
    let other = deliverer.clone();
    let (a, b) = tokio::join!(deliverer.run_once(), other.run_once());
    assert_eq!(a.unwrap().delivered + b.unwrap().delivered, 6);
    assert_eq!(ids_seen(), queued);
}

/// DESIGN.md section 9: at most 5 endpoints per application; adding and removing are audited
/// with the host only (a Slack or Teams URL is a credential), and a removed endpoint gets no
/// more events. SQLite, and Postgres with TEST_DATABASE_URL.
#[tokio::test]
async fn endpoints_are_limited_audited_by_host_and_removed() {
    use secret_portal::domain::Clock as _;
    use secret_portal::domain::webhook::{WebhookEvent, WebhookFormat};
    use secret_portal::domain::{Api, ApplicationKind};
    use secret_portal::store::{Actor, Conflict, NewWebhookEndpoint, StoreError};

    let app = crate::support::TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let key = app.config.master_key.clone();
    let new = NewWebhookEndpoint {
        application_id: dm.id,
        format: WebhookFormat::Slack,
        url_enc: key.encrypt(b"https://hooks.slack.com/services/T000/B000/SECRETPATH", b"webhook-url"),
        host: "hooks.slack.com".into(),
        events: vec![WebhookEvent::Expiring],
        signing_secret_enc: None,
        created_by: None,
        form_id: None,
    };
    assert!(!format!("{new:?}").contains("SECRETPATH"));
    let now = app.clock.now();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.store.add_webhook_endpoint(&new, &Actor::cli(), now).await.unwrap().id);
    }
    let sixth = app.store.add_webhook_endpoint(&new, &Actor::cli(), now).await;
    assert!(matches!(sixth, Err(StoreError::Conflict(Conflict::WebhookLimit))), "{sixth:?}");
    app.store.remove_webhook_endpoint((dm.id, ids[0]), &Actor::cli(), now).await.unwrap();
    assert!(matches!(
        app.store.remove_webhook_endpoint((dm.id, ids[0]), &Actor::cli(), now).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(app.store.webhook_endpoints(dm.id).await.unwrap().len(), 4);
    app.store.add_webhook_endpoint(&new, &Actor::cli(), now).await.unwrap();
    let events = app.store.recent_audit_events(20).await.unwrap();
    let added: Vec<_> = events.iter().filter(|e| e.action == "webhook.added").collect();
    assert_eq!(added.len(), 6);
    assert!(added.iter().all(|e| e.details.contains("hooks.slack.com") && !e.details.contains("SECRETPATH")));
    assert_eq!(events.iter().filter(|e| e.action == "webhook.removed").count(), 1);
    // The removed endpoint gets no more events; the five others do.
    let data = serde_json::json!({});
    let queued =
        app.store.queue_webhook_event(dm.id, WebhookEvent::Expiring, uuid::Uuid::new_v4(), &data, now).await.unwrap();
    assert_eq!(queued, 5);
    assert!(app.store.webhook_deliveries(ids[0], 10).await.unwrap().is_empty());
}

/// Point 2 in part: `secret.created`, `secret.deleted` and `secret.exposed` are queued in the
/// transaction of what caused them (the Manage page, an admin, the machine API, a leak report),
/// one delivery per subscribed endpoint, carrying the application, client ID, secret id, name,
/// hint and expiry, never a value or hash; a refused change queues nothing. SQLite, and Postgres
/// with TEST_DATABASE_URL.
#[tokio::test]
async fn secret_events_are_queued_with_what_caused_them() {
    use secret_portal::domain::Clock as _;
    use secret_portal::domain::webhook::{WebhookEvent, WebhookFormat};
    use secret_portal::domain::{Api, ApplicationKind};
    use secret_portal::store::{Actor, UserRole};

    let app = crate::support::TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    let now = app.clock.now();
    app.store.grant_credential_manager(jane.user_id, dm.id, &Actor::cli(), now).await.unwrap();
    let to = (WebhookFormat::Standard, "https://hooks.example.org/wmda");
    let all = add_endpoint(&app, &dm, to, &WebhookEvent::ALL, None).await;
    let only_exposed = add_endpoint(&app, &dm, to, &[WebhookEvent::Exposed], None).await;
    let types = |endpoint: uuid::Uuid| {
        let store = app.store.clone();
        async move {
            let mut seen: Vec<String> =
                store.webhook_deliveries(endpoint, 100).await.unwrap().into_iter().map(|d| d.event_type).collect();
            seen.reverse();
            seen
        }
    };

    // The Manage page creates one, and deletes it.
    let path = format!("/manage-api-credentials/{}/secrets", dm.client_id);
    let form_id = app.create_form_id(&client, &dm.client_id).await;
    let fields = [("name", "Build <server>"), ("expires_on", "2027-06-01"), ("form_id", form_id.as_str())];
    assert_eq!(app.post_form(&client, &path, &fields).await.status(), 200);
    let made =
        app.store.list_client_secrets(dm.id).await.unwrap().into_iter().find(|s| s.name == "Build <server>").unwrap();
    assert_eq!(types(all).await, ["secret.created"]);
    let claimed = app.store.claim_due_webhook_deliveries(app.clock.now(), app.clock.now(), 10).await.unwrap();
    let data: serde_json::Value = serde_json::from_str(&claimed[0].data).unwrap();
    assert_eq!(data["application"], dm.name.as_str());
    assert_eq!(data["client_id"], dm.client_id.to_string());
    assert_eq!(data["secret"]["id"], made.id.to_string());
    assert_eq!(data["secret"]["name"], "Build <server>");
    assert_eq!(data["secret"]["hint"], made.hint.to_string());
    assert_eq!(data["secret"]["expires_on"], "2027-06-01");
    assert!(!claimed[0].data.contains("hash"));
    let delete = format!("{path}/{}/delete", made.id);
    assert_eq!(app.post_form(&client, &delete, &[]).await.status(), 303);
    assert_eq!(types(all).await, ["secret.created", "secret.deleted"]);

    // A refused create (the same form again) queues nothing.
    assert_eq!(app.post_form(&client, &path, &fields).await.status(), 409);
    assert_eq!(types(all).await.len(), 2);

    // The machine API: a successor, then its creator deleted by it.
    app.store.set_self_rotation(dm.id, true).await.unwrap();
    let (c0, c0_id) = app.seed_secret(dm.id, "C0", now, app.clock.today() + chrono::Duration::days(30)).await;
    let res = crate::support::new_client()
        .post(app.url("/api/v1/self/secrets"))
        .basic_auth(dm.client_id.to_string(), Some(c0.expose()))
        .send()
        .await
        .unwrap();
    let c1: serde_json::Value = res.json().await.unwrap();
    let res = crate::support::new_client()
        .delete(app.url(&format!("/api/v1/self/secrets/{c0_id}")))
        .basic_auth(dm.client_id.to_string(), Some(c1["value"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // A leak report of c1; then a WMDA admin deletes it.
    let report = serde_json::json!([{ "token": c1["value"], "type": "wmda_client_secret" }]);
    crate::support::new_client().post(app.url("/api/v1/leaks")).json(&report).send().await.unwrap();
    let c1_id: uuid::Uuid = c1["id"].as_str().unwrap().parse().unwrap();
    let render = |_: &secret_portal::store::DeletedSecret, _: &[(String, String)]| Vec::new();
    app.store.admin_delete_secret((dm.id, c1_id), "leaked", &Actor::cli(), &render, app.clock.now()).await.unwrap();
    assert_eq!(
        types(all).await,
        ["secret.created", "secret.deleted", "secret.created", "secret.deleted", "secret.exposed", "secret.deleted"]
    );
    assert_eq!(types(only_exposed).await, ["secret.exposed"]);
}

/// Point 2: `secret.expiring` follows the reminder schedule and its exactly-once record: two
/// concurrent passes queue one delivery per notice per endpoint, with `days_left`; a pass the
/// same day queues nothing more; `secret.replaced` comes with the rotation-complete notice.
/// SQLite, and Postgres with TEST_DATABASE_URL.
#[tokio::test]
async fn expiring_events_follow_the_reminder_schedule_exactly_once() {
    use secret_portal::domain::Clock as _;
    use secret_portal::domain::webhook::{WebhookEvent, WebhookFormat};

    use secret_portal::jobs::reminders::run_once;

    let (app, dm) = portal().await;
    let now = app.clock.now();
    let mut endpoints = Vec::new();
    for _ in 0..2 {
        let (to, events) = (
            (WebhookFormat::Standard, "https://hooks.example.org/wmda"),
            [WebhookEvent::Expiring, WebhookEvent::Replaced],
        );
        endpoints.push(add_endpoint(&app, &dm, to, &events, None).await);
    }
    // Expires in 7 days: the one-week notice is due.
    let (_, _) = app
        .seed_secret(dm.id, "Old", now - chrono::Duration::days(300), app.clock.today() + chrono::Duration::days(7))
        .await;
    let base = app.config.base_url.clone();
    let (a, b) = tokio::join!(run_once(&app.store, &base, now, false), run_once(&app.store, &base, now, false));
    a.unwrap();
    b.unwrap();
    run_once(&app.store, &base, now, false).await.unwrap();
    for endpoint in &endpoints {
        let deliveries = app.store.webhook_deliveries(*endpoint, 10).await.unwrap();
        let types: Vec<&str> = deliveries.iter().map(|d| d.event_type.as_str()).collect();
        assert_eq!(types, ["secret.expiring"], "one per notice per endpoint");
    }
    let claimed = app.store.claim_due_webhook_deliveries(now, now, 10).await.unwrap();
    let data: serde_json::Value = serde_json::from_str(&claimed[0].data).unwrap();
    assert_eq!((data["days_left"].as_i64(), data["secret"]["name"].as_str()), (Some(7), Some("Old")));

    // A newer secret, used: the old one gets the rotation-complete notice, and secret.replaced.
    let (_, newer) = app.seed_secret(dm.id, "New", now, app.clock.today() + chrono::Duration::days(300)).await;
    app.store.record_secret_use(newer, now).await.unwrap();
    let later = now + chrono::Duration::days(1);
    run_once(&app.store, &base, later, false).await.unwrap();
    let types: Vec<String> =
        app.store.webhook_deliveries(endpoints[0], 10).await.unwrap().into_iter().map(|d| d.event_type).collect();
    assert_eq!(types, ["secret.replaced", "secret.expiring"]);
}

/// Point 4: an endpoint without a 2xx answer for 72 hours (and 3 attempts or more) is disabled,
/// audited, and its credential managers emailed; its events wait, new ones too; "Enable" resumes
/// with the oldest. A movable clock stands in for the hours. SQLite, and Postgres with
/// TEST_DATABASE_URL.
#[tokio::test]
async fn a_dead_endpoint_is_disabled_its_managers_told_and_enabling_resumes_in_order() {
    use chrono::Duration;
    use secret_portal::domain::Clock as _;
    use secret_portal::domain::webhook::{WebhookEvent, WebhookFormat};
    use secret_portal::domain::{Api, ApplicationKind};

    use secret_portal::store::{Actor, UserRole};
    use std::sync::atomic::Ordering::SeqCst;

    let app = crate::support::TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store.grant_credential_manager(jane.user_id, dm.id, &Actor::cli(), app.clock.now()).await.unwrap();
    let r = receiver().await;
    let endpoint = add_endpoint(&app, &dm, (WebhookFormat::Slack, &r.url), &[WebhookEvent::Created], None).await;
    let deliverer = deliverer(&app);
    let queue = |n: u32| {
        let (store, now) = (app.store.clone(), app.clock.now());
        async move {
            let data =
                serde_json::json!({ "application": "A", "client_id": "c1", "secret": { "name": format!("S{n}") } });
            store.queue_webhook_event(dm.id, WebhookEvent::Created, uuid::Uuid::new_v4(), &data, now).await.unwrap();
        }
    };
    let before = app.smtp.messages_to("jane@demo.example").len();
    // Refused for three days while events keep coming (one every 10 hours, an attempt every 5):
    // disabled once 72 hours have passed without a 2xx, not before.
    let (mut disabled, mut n) = (0, 0);
    for hour in (0..=80).step_by(5) {
        if hour % 10 == 0 {
            n += 1;
            queue(n).await;
        }
        let report = deliverer.run_once().await.unwrap();
        assert_eq!(report.disabled, usize::from(hour >= 72 && disabled == 0), "at hour {hour}: {report:?}");
        disabled += report.disabled;
        app.clock.advance(Duration::hours(5));
    }
    assert_eq!(disabled, 1);
    n += 1;
    queue(n).await;
    let mails = app.smtp.wait_for("jane@demo.example", before + 1).await;
    let mail = mails.last().unwrap();
    assert_eq!(mail.subject(), format!("{}: a webhook endpoint was disabled", dm.name));
    assert!(mail.part("text/plain").contains("127.0.0.1") && !mail.raw.contains("/hook"));
    assert!(app.store.recent_audit_events(50).await.unwrap().iter().any(|e| e.action == "webhook.disabled"));
    let attempts = r.seen.lock().unwrap().len();
    app.clock.advance(Duration::hours(5));
    assert_eq!(deliverer.run_once().await.unwrap(), Default::default(), "a disabled endpoint gets nothing");
    assert_eq!(r.seen.lock().unwrap().len(), attempts);

    // Enabled again, the receiver up: the waiting events arrive, the new one included, in order.
    r.accept.store(true, SeqCst);
    app.store.enable_webhook_endpoint((dm.id, endpoint), &Actor::cli(), app.clock.now()).await.unwrap();
    let seen_before = r.seen.lock().unwrap().len();
    let report = deliverer.run_once().await.unwrap();
    assert!(report.delivered >= 2 && report.failed == 0, "{report:?}");
    let delivered: Vec<u32> = r.seen.lock().unwrap()[seen_before..]
        .iter()
        .map(|(_, _, body)| {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            let text = v["text"].as_str().unwrap().to_owned();
            text.split('S')
                .nth(1)
                .unwrap()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap()
        })
        .collect();
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    assert_eq!(delivered, sorted, "oldest first");
    assert_eq!(delivered.last(), Some(&n), "the event queued while disabled waited");
    // Enabled already: nothing changes; another application's id for it: not found.
    assert!(!app.store.enable_webhook_endpoint((dm.id, endpoint), &Actor::cli(), app.clock.now()).await.unwrap());
    assert!(matches!(
        app.store.enable_webhook_endpoint((uuid::Uuid::new_v4(), endpoint), &Actor::cli(), app.clock.now()).await,
        Err(secret_portal::store::StoreError::NotFound)
    ));
}

/// Point 3: `slack` and `teams` bodies are accepted by a sink that checks their documented JSON
/// shapes (Slack incoming webhooks: `{"text"}`; Teams Workflows: a message with one Adaptive
/// Card 1.4 attachment), and carry no signature headers.
#[tokio::test]
async fn slack_and_teams_bodies_have_their_documented_shapes() {
    use secret_portal::domain::Clock as _;
    use secret_portal::domain::webhook::{WebhookEvent, WebhookFormat};

    fn slack_shape(v: &serde_json::Value) -> bool {
        v.as_object().is_some_and(|o| o.len() == 1 && o["text"].is_string())
    }
    fn teams_shape(v: &serde_json::Value) -> bool {
        let card = &v["attachments"][0];
        v["type"] == "message"
            && v["attachments"].as_array().is_some_and(|a| a.len() == 1)
            && card["contentType"] == "application/vnd.microsoft.card.adaptive"
            && card["content"]["type"] == "AdaptiveCard"
            && card["content"]["version"] == "1.4"
            && card["content"]["body"][0]["type"] == "TextBlock"
            && card["content"]["body"][0]["text"].is_string()
            && card["content"]["body"][0]["wrap"] == true
    }
    let seen: Seen = Arc::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    let check = |shape: fn(&serde_json::Value) -> bool, seen: Seen, path: &'static str| {
        move |headers: HeaderMap, body: Bytes| async move {
            let ok = serde_json::from_slice(&body).is_ok_and(|v: serde_json::Value| shape(&v))
                && !headers.contains_key("webhook-signature");
            seen.lock().unwrap().push((path.to_owned(), headers, body));
            if ok { axum::http::StatusCode::OK } else { axum::http::StatusCode::BAD_REQUEST }
        }
    };
    let app_router = axum::Router::new()
        .route("/slack", axum::routing::post(check(slack_shape, s1, "/slack")))
        .route("/teams", axum::routing::post(check(teams_shape, s2, "/teams")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app_router).await.unwrap() });

    let (app, dm) = portal().await;
    for (format, path) in [(WebhookFormat::Slack, "slack"), (WebhookFormat::Teams, "teams")] {
        add_endpoint(&app, &dm, (format, &format!("http://{address}/{path}")), &WebhookEvent::ALL, None).await;
    }
    app.seed_secret(dm.id, "Build <b>*x*</b>", app.clock.now(), app.clock.today() + chrono::Duration::days(7)).await;
    let base = app.config.base_url.clone();
    secret_portal::jobs::reminders::run_once(&app.store, &base, app.clock.now(), false).await.unwrap();
    let report = deliverer(&app).run_once().await.unwrap();
    assert_eq!((report.delivered, report.retrying), (2, 0), "{report:?}");
    let paths: std::collections::BTreeSet<String> = seen.lock().unwrap().iter().map(|(p, _, _)| p.clone()).collect();
    assert_eq!(paths.len(), 2);
}

/// Review findings: a mark made after its lease ran out (another deliverer took the delivery over)
/// changes nothing; a quiet endpoint is not disabled by its first refusal after days without
/// events; a backlog older than a day gets its own day of retries from its first refusal.
/// SQLite, and Postgres with TEST_DATABASE_URL.
#[tokio::test]
async fn stale_claims_quiet_endpoints_and_backlogs() {
    use chrono::Duration;
    use secret_portal::domain::Clock as _;
    use secret_portal::domain::webhook::{WebhookEvent, WebhookFormat};

    use std::sync::atomic::Ordering::SeqCst;

    let (app, dm) = portal().await;
    let r = receiver().await;
    let endpoint = add_endpoint(&app, &dm, (WebhookFormat::Slack, &r.url), &[WebhookEvent::Created], None).await;
    let queue = || {
        let (store, now) = (app.store.clone(), app.clock.now());
        async move {
            let data = serde_json::json!({ "application": "A", "client_id": "c1", "secret": { "name": "S" } });
            store.queue_webhook_event(dm.id, WebhookEvent::Created, uuid::Uuid::new_v4(), &data, now).await.unwrap();
        }
    };

    // A stale claim: its lease ran out and another claim holds the row; its mark changes nothing.
    queue().await;
    let now = app.clock.now();
    let first =
        app.store.claim_due_webhook_deliveries(now, now + Duration::seconds(1), 10).await.unwrap().pop().unwrap();
    app.clock.advance(Duration::seconds(2));
    let now = app.clock.now();
    let second =
        app.store.claim_due_webhook_deliveries(now, now + Duration::minutes(5), 10).await.unwrap().pop().unwrap();
    assert_eq!(first.id, second.id);
    app.store.mark_webhook_delivered(&first, 204, now).await.unwrap();
    assert!(
        app.store.webhook_deliveries(endpoint, 1).await.unwrap()[0].delivered_at.is_none(),
        "the stale mark did nothing"
    );
    app.store.mark_webhook_delivered(&second, 204, now).await.unwrap();
    assert!(app.store.webhook_deliveries(endpoint, 1).await.unwrap()[0].delivered_at.is_some());

    // Four quiet days, then one refusal: not disabled (the refusals began just now).
    let deliverer = deliverer(&app);
    app.clock.advance(Duration::days(4));
    queue().await;
    let report = deliverer.run_once().await.unwrap();
    assert_eq!((report.retrying, report.disabled), (1, 0), "{report:?}");

    // A backlog: the next event waits behind the first; when the first is given up a day after
    // its first refusal, the second (queued over a day ago) still gets its own day.
    app.clock.advance(Duration::hours(1));
    queue().await;
    for _ in 0..5 {
        app.clock.advance(Duration::hours(5));
        deliverer.run_once().await.unwrap();
    }
    let views = app.store.webhook_deliveries(endpoint, 10).await.unwrap();
    assert!(views[1].failed_at.is_some(), "the first is given up after a day: {views:?}");
    assert!(views[0].failed_at.is_none() && views[0].delivered_at.is_none(), "the second is not: {views:?}");
    r.accept.store(true, SeqCst);
    app.clock.advance(Duration::hours(1));
    assert_eq!(deliverer.run_once().await.unwrap().delivered, 1);
}

/// The portal's own deliverer (started with the other jobs) delivers what is queued, without a
/// test running its passes.
#[tokio::test]
async fn the_portal_delivers_in_the_background() {
    use secret_portal::domain::webhook::{WebhookEvent, WebhookFormat};
    use secret_portal::domain::{Api, ApplicationKind};
    let app = crate::support::TestApp::spawn_with(crate::support::TestDb::new().await, |c| {
        c.webhook_poll = Some(std::time::Duration::from_millis(100));
        c.webhook_allow_private = true;
    })
    .await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let r = receiver().await;
    r.accept.store(true, std::sync::atomic::Ordering::SeqCst);
    add_endpoint(&app, &dm, (WebhookFormat::Slack, &r.url), &[WebhookEvent::Created], None).await;
    let data = serde_json::json!({ "application": "A", "client_id": "c1", "secret": { "name": "S" } });
    let now = {
        use secret_portal::domain::Clock as _;
        app.clock.now()
    };
    app.store.queue_webhook_event(dm.id, WebhookEvent::Created, uuid::Uuid::new_v4(), &data, now).await.unwrap();
    for _ in 0..100 {
        if !r.seen.lock().unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the background deliverer sent nothing within 5 s");
}
