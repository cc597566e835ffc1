//! The application on port 0: liveness, readiness, metrics, graceful shutdown.

mod common;

use common::{TestApp, TestDb};
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
    app.get("/healthz").await;
    app.get("/no/such/page/with-a-token-abc123").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
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

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() {
    let mut app = TestApp::spawn().await;
    if !app.db.is_postgres() {
        // Holding a request in flight needs a lock that blocks readers: Postgres has one.
        app.stop().await.unwrap();
        return;
    }
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
