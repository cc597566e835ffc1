//! The application on port 0: liveness, readiness, metrics, graceful shutdown.

use crate::support::{TestApp, TestDb};
use sqlx::Connection as _;

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let mut app = TestApp::spawn().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn readyz_is_200_while_the_database_answers_and_503_when_it_is_gone() {
    let mut app = TestApp::spawn().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["status"], "ready");

    if app.db.is_postgres() {
        app.db.drop_now().await;
    } else {
        // SQLite has no server to lose: closing the shared pool is the closest equivalent.
        app.store.close().await;
    }
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let mut app = TestApp::spawn().await;
    // Counters are process-wide: each must grow by what this test did.
    let healthz = r#"http_requests_total{method="GET",route="/healthz",status="200"}"#;
    let unmatched = r#"http_requests_total{method="GET",route="unmatched",status="404"}"#;
    let (healthz_before, unmatched_before) = (app.metric(healthz).await, app.metric(unmatched).await);
    app.get("/healthz").await;
    app.get("/no/such/page/with-a-token-abc123").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(crate::support::metric_in(&text, healthz) > healthz_before, "{text}");
    assert!(crate::support::metric_in(&text, unmatched) > unmatched_before, "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
    assert!(!text.contains("abc123"), "a raw path reached the metrics");
    assert!(text.contains("db_pool_connections"), "{text}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_can_live_on_their_own_address() {
    let db = TestDb::new().await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut app = TestApp::spawn_with(db, |c| c.metrics_bind = Some(metrics_port)).await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    let res = reqwest::get(format!("http://{metrics_port}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await.unwrap();
}

/// Holding a request in flight needs a lock that blocks readers: Postgres has one.
#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (Postgres)"]
async fn shutdown_lets_requests_in_flight_finish() {
    crate::support::require_postgres();
    let mut app = TestApp::spawn().await;
    // Hold /readyz inside the server: its query waits for a table lock the test holds.
    let mut locker = sqlx::PgConnection::connect(app.db.url.expose()).await.unwrap();
    sqlx::query("begin").execute(&mut locker).await.unwrap();
    sqlx::query("lock table setting in access exclusive mode").execute(&mut locker).await.unwrap();
    let in_flight = tokio::spawn(app.client.get(app.url("/readyz")).send());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!in_flight.is_finished());

    // Shutdown is signalled while the request waits; the server must not stop before answering.
    let mut stopping = Box::pin(app.stop());
    let stopped_early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut stopping).await;
    assert!(stopped_early.is_err(), "the server stopped with a request in flight");
    sqlx::query("commit").execute(&mut locker).await.unwrap();
    stopping.await.unwrap();
    let res = in_flight.await.unwrap().expect("the request in flight was answered");
    assert_eq!(res.status(), 200);
}

/// Issue 8: `/metrics` carries every family an operator watches, each with its `# HELP`: HTTP by
/// route template and status with a latency histogram, tokens issued and refused, sign-ins and
/// failures, reminders queued and their emails sent, outbox depth, pool use.
#[tokio::test]
async fn metrics_cover_http_tokens_sign_ins_reminders_outbox_and_the_pool() {
    use chrono::Duration;
    use secret_portal::domain::{Api, ApplicationKind, Clock as _};
    use secret_portal::store::{Actor, UserRole};

    let mut app = TestApp::spawn().await;
    // Counters are process-wide (other tests count too): each must have grown within this test.
    let metrics_before = app.get("/metrics").await.text().await.unwrap();
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store.grant_credential_manager(jane.user_id, dm.id, &Actor::cli(), app.clock.now()).await.unwrap();
    // Sign-ins: one failed password, one success.
    app.password_step(&crate::support::new_client(), &jane.email, "wrong password entirely", "").await;
    app.sign_in(&client, &jane).await;
    // Tokens: one issued, one refused; the secret is a week from its expiration date.
    let expires_on = app.clock.today() + Duration::days(7);
    let (value, _) = app.seed_secret(dm.id, "Metrics", app.clock.now() - Duration::days(300), expires_on).await;
    for secret in [value.expose(), "wrong"] {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", &dm.client_id.to_string()),
            ("client_secret", secret),
            ("resource", "data-manager-production"),
        ];
        app.client.post(app.url("/oauth2/token")).form(&form).send().await.unwrap();
    }
    // A reminder queued and sent.
    secret_portal::jobs::reminders::run_once(&app.store, &app.config.base_url, app.clock.now(), false).await.unwrap();
    app.state.services.mailer.wake();
    let before = app.smtp.messages_to("jane@demo.example").len();
    app.smtp.wait_for("jane@demo.example", before.max(2)).await;

    // The sender counts a sent email after the SMTP server's reply, which can come after the
    // sink saw the message: read the metrics until the reminder has counted (at most 5 s).
    let mut text = app.get("/metrics").await.text().await.unwrap();
    for _ in 0..50 {
        let sent = r#"emails_sent_total{email="reminder"}"#;
        if crate::support::metric_in(&text, sent) > crate::support::metric_in(&metrics_before, sent) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        text = app.get("/metrics").await.text().await.unwrap();
    }
    let text = text;
    // A series' value, which must be there; each event-driven counter must have grown.
    let value = |series: &str| -> f64 {
        assert!(text.lines().any(|l| l.starts_with(&format!("{series} "))), "{series} is missing:\n{text}");
        crate::support::metric_in(&text, series)
    };
    for counted in [
        r#"http_requests_total{method="POST",route="/oauth2/token",status="200"}"#,
        r#"http_requests_total{method="POST",route="/oauth2/token",status="401"}"#,
        r#"http_request_duration_seconds_count{method="POST",route="/oauth2/token"}"#,
        "tokens_issued_total",
        r#"tokens_refused_total{error="invalid_client"}"#,
        r#"sign_ins_total{result="success",step="mfa"}"#,
        r#"sign_ins_total{result="failure",step="password"}"#,
        r#"reminders_queued_total{notice="1w"}"#,
        r#"emails_sent_total{email="reminder"}"#,
    ] {
        assert!(
            value(counted) >= crate::support::metric_in(&metrics_before, counted) + 1.0,
            "{counted} counted nothing"
        );
    }
    // Present from the start, whatever happened.
    value(r#"emails_failed_total{email="reminder",failure="transient"}"#);
    value(r#"http_request_duration_seconds_bucket{method="POST",route="/oauth2/token",le="0.005"}"#);
    value(r#"outbox_emails{state="queued"}"#);
    value(r#"db_pool_connections{state="in_use"}"#);
    for family in ["tokens_refused_total", "emails_sent_total", "http_request_duration_seconds", "outbox_emails"] {
        assert!(text.contains(&format!("# HELP {family} ")), "no help for {family}");
    }
    app.stop().await.unwrap();
}

/// Issue 8: log lines are JSON (the portal's own `PORTAL_LOG_FORMAT=json` format, which the test
/// process captures); every line the web layer writes carries the request id of its request,
/// which is also the response's `x-request-id`.
#[tokio::test]
async fn every_web_log_line_carries_the_request_id_of_its_response() {
    let mut app = TestApp::spawn().await;
    let form = [("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "wrong")];
    let res = app.client.post(app.url("/oauth2/token")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    // A request id the caller sends is kept (a load balancer's id follows the request).
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "lb-1234").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "lb-1234");
    // Anything else is replaced by a new UUID: no text of the client's choosing in the logs.
    for forged in ["x} error=\"forged\" ip=6.6.6.6", &"a".repeat(65), "tab\there"] {
        let res = app.client.get(app.url("/healthz")).header("x-request-id", forged).send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{forged:?} gave {id:?}");
    }
    app.stop().await.unwrap();

    let logs = app.logs();
    let lines: Vec<serde_json::Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let request_id_of = |line: &serde_json::Value| {
        line["spans"].as_array().and_then(|spans| {
            spans.iter().find_map(|s| s["request_id"].as_str().filter(|id| !id.is_empty()).map(str::to_owned))
        })
    };
    let refusal = lines
        .iter()
        .find(|l| l["message"] == "token request refused" && request_id_of(l).as_deref() == Some(request_id.as_str()))
        .unwrap_or_else(|| panic!("no refusal line with request id {request_id}"));
    // A value that is no client ID is not logged (it may be a secret in the wrong field).
    assert_eq!(refusal["client_id"], "(not a client ID)");
    assert!(!refusal.to_string().contains("wrong"), "the presented secret reached the log: {refusal}");
    let web: Vec<_> =
        lines.iter().filter(|l| l["target"].as_str().is_some_and(|t| t.starts_with("secret_portal::web"))).collect();
    assert!(!web.is_empty());
    for line in web {
        assert!(request_id_of(line).is_some(), "a web log line without a request id: {line}");
    }
}

/// Issue 13, point 5: the tests share one process, so each reads only the log lines of its own
/// application (tagged with its id), never a neighbour's.
#[tokio::test]
async fn each_test_app_reads_only_its_own_log_lines() {
    let mut one = TestApp::spawn().await;
    let mut two = TestApp::spawn().await;
    let form = [("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "wrong")];
    let id_of = |res: &reqwest::Response| res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let first = id_of(&one.client.post(one.url("/oauth2/token")).form(&form).send().await.unwrap());
    let second = id_of(&two.client.post(two.url("/oauth2/token")).form(&form).send().await.unwrap());
    one.stop().await.unwrap();
    two.stop().await.unwrap();
    let (logs_one, logs_two) = (one.logs(), two.logs());
    assert!(logs_one.contains(&first) && !logs_one.contains(&second), "{logs_one}");
    assert!(logs_two.contains(&second) && !logs_two.contains(&first), "{logs_two}");
}
