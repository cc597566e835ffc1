//! Issue 15, point 4 (DESIGN.md section 7): `POST /api/v1/leaks` in GitHub's secret-scanning
//! partner format, signed with a P-256 key of the tests' own in GitHub's key-file format. SQLite,
//! and Postgres with TEST_DATABASE_URL.

use base64::Engine as _;
use chrono::Duration;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use secret_portal::domain::{Api, ApplicationKind, Clock as _, PlainSecret};
use secret_portal::store::{Application, UserRole};
use serde_json::{Value, json};

use crate::support::{TestApp, TestDb, new_client};

const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";

struct Signer {
    key: SigningKey,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

/// A P-256 key of the test's own, published in a keys file of GitHub's format.
fn signer() -> Signer {
    let key = SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let pem = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret_scanning.json");
    let file = json!({ "public_keys": [
        { "key_identifier": "an-old-key", "key": other_key_pem(), "is_current": false },
        { "key_identifier": KEY_ID, "key": pem, "is_current": true },
    ]});
    std::fs::write(&path, file.to_string()).unwrap();
    Signer { key, _dir: dir, path }
}

fn other_key_pem() -> String {
    SigningKey::from_slice(&rand::random::<[u8; 32]>())
        .unwrap()
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

fn sign(key: &SigningKey, body: &[u8]) -> String {
    let signature: Signature = key.sign(body);
    base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
}

fn item(token: &str, url: &str) -> Value {
    json!({ "token": token, "type": "wmda_client_secret", "url": url, "source": "content" })
}

/// Posts `body`, signed by `signer` under `key_id` when given.
async fn post(app: &TestApp, body: &[u8], signed: Option<(&SigningKey, &str)>) -> reqwest::Response {
    let mut request = new_client().post(app.url("/api/v1/leaks")).header("content-type", "application/json");
    if let Some((key, id)) = signed {
        request =
            request.header("Github-Public-Key-Identifier", id).header("Github-Public-Key-Signature", sign(key, body));
    }
    request.body(body.to_vec()).send().await.unwrap()
}

async fn spawn(keys: Option<&Signer>, delete: bool) -> TestApp {
    let path = keys.map(|s| s.path.clone());
    TestApp::spawn_with(TestDb::new().await, move |c| {
        c.leak_report_keys = path;
        if delete {
            c.leak_action = secret_portal::config::LeakAction::Delete;
        }
    })
    .await
}

/// NL-DemoRegistry's DM application, managed by Jane.
async fn world(app: &TestApp) -> Application {
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store
        .grant_credential_manager(jane.user_id, dm.id, &secret_portal::store::Actor::cli(), app.clock.now())
        .await
        .unwrap();
    dm
}

async fn live(app: &TestApp, a: &Application, name: &str) -> (String, uuid::Uuid) {
    let (value, id) = app.seed_secret(a.id, name, app.clock.now(), app.clock.today() + Duration::days(90)).await;
    (value.expose().to_owned(), id)
}

async fn token_status(app: &TestApp, a: &Application, secret: &str) -> u16 {
    new_client()
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", a.client_id.to_string().as_str()),
            ("client_secret", secret),
            ("resource", "data-manager-production"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn exposure(app: &TestApp, a: &Application, id: uuid::Uuid) -> Option<secret_portal::store::Exposure> {
    app.store.list_client_secrets(a.id).await.unwrap().into_iter().find(|s| s.id == id).unwrap().exposure
}

async fn events(app: &TestApp, action: &str) -> Vec<secret_portal::store::AuditEvent> {
    app.store.recent_audit_events(500).await.unwrap().into_iter().filter(|e| e.action == action).collect()
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// The first signed report of a live secret marks it exposed, audits it with the URL, and emails
/// its manager at once; a second report adds its URL to the audit trail only. Values that are not
/// live (unknown, deleted, expired), a v1 value and garbage are `false_positive` and change
/// nothing; the answer carries the SHA-256 and the type, never the value. The secret keeps
/// working (`PORTAL_LEAK_ACTION=mark`).
#[tokio::test]
async fn a_signed_report_marks_a_live_secret_exposed_once_and_emails_its_manager_at_once() {
    let keys = signer();
    let app = spawn(Some(&keys), false).await;
    let dm = world(&app).await;
    let (value, id) = live(&app, &dm, "Leaked").await;
    let (deleted, deleted_id) = live(&app, &dm, "Deleted").await;
    let nobody = |_: &secret_portal::store::DeletedSecret, _: &[(String, String)]| Vec::new();
    let cli = secret_portal::store::Actor::cli();
    app.store.admin_delete_secret((dm.id, deleted_id), "test", &cli, &nobody, app.clock.now()).await.unwrap();
    let expired = app
        .seed_secret(dm.id, "Expired", app.clock.now() - Duration::days(400), app.clock.today() - Duration::days(2))
        .await
        .0;
    let (v1, v1_id) = {
        let v = PlainSecret::generate_v1();
        let expires = app.clock.today() + Duration::days(90);
        let (v, id) = app.seed_secret_value(dm.id, "Old", app.clock.now(), expires, v).await;
        (v.expose().to_owned(), id)
    };
    let unknown = PlainSecret::generate().expose().to_owned();
    let url = "https://github.com/someone/repo/blob/abc/.env";
    let tokens = [value.as_str(), unknown.as_str(), deleted.as_str(), expired.expose(), v1.as_str(), "not-a-secret"];
    let body = serde_json::to_vec(&tokens.iter().map(|t| item(t, url)).collect::<Vec<_>>()).unwrap();
    let before = app.smtp.messages_to("jane@demo.example").len();
    let res = post(&app, &body, Some((&keys.key, KEY_ID))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let answer: Value = res.json().await.unwrap();
    let labels: Vec<&str> = answer.as_array().unwrap().iter().map(|a| a["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        ["true_positive", "false_positive", "false_positive", "false_positive", "false_positive", "false_positive"]
    );
    for (a, t) in answer.as_array().unwrap().iter().zip(tokens) {
        assert_eq!(a["token_hash"], sha256_hex(t));
        assert_eq!(a["token_type"], "wmda_client_secret");
        assert_eq!(a.as_object().unwrap().len(), 3, "{a}");
    }
    let exposed = exposure(&app, &dm, id).await.expect("marked exposed");
    assert_eq!((exposed.url.as_str(), exposed.source.as_str(), exposed.at), (url, "content", app.clock.now()));
    assert!(exposure(&app, &dm, v1_id).await.is_none());
    let marked = events(&app, "secret.exposed").await;
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].target_id.as_deref(), Some(id.to_string().as_str()));
    assert!(marked[0].details.contains(url) && marked[0].actor_label.contains(KEY_ID), "{:?}", marked[0]);
    let mails = app.smtp.wait_for("jane@demo.example", before + 1).await;
    let urgent: Vec<_> = mails.iter().filter(|m| m.subject().starts_with("Urgent:")).collect();
    assert_eq!(urgent.len(), 1);
    let text = urgent[0].part("text/plain");
    assert!(text.contains(url) && text.contains(&format!("wmdacs_{}", &value[7..10])), "{text}");
    assert!(text.contains("create a replacement"), "{text}");
    assert_eq!(token_status(&app, &dm, &value).await, 200, "marked, not deleted");

    // A second report: its URL goes to the audit trail, no second email.
    // The URL carries the value itself: it is kept without it. Repeated in one report, and with
    // the first URL again, it writes one audit row.
    let with_value = format!("https://gist.github.com/x/2?secret={value}");
    let again =
        serde_json::to_vec(&json!([item(&value, &with_value), item(&value, &with_value), item(&value, url)])).unwrap();
    let res = post(&app, &again, Some((&keys.key, KEY_ID))).await;
    assert_eq!(res.json::<Value>().await.unwrap()[0]["label"], "true_positive");
    let reported = events(&app, "secret.leak_reported").await;
    assert_eq!(reported.len(), 1);
    assert!(reported[0].details.contains("https://gist.github.com/x/2?secret=[removed]"), "{:?}", reported[0]);
    assert_eq!(exposure(&app, &dm, id).await.unwrap().url, url, "the first URL stays");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let urgent =
        app.smtp.messages_to("jane@demo.example").iter().filter(|m| m.subject().starts_with("Urgent:")).count();
    assert_eq!(urgent, 1);
    // No value in any log line, email, audit row or anywhere in the database.
    let logs = app.logs();
    let dump = String::from_utf8_lossy(&app.db.dump()).into_owned();
    assert!(dump.contains("gist.github.com"), "the dump holds nothing");
    for v in [&value, &unknown, &deleted, &v1] {
        assert!(!logs.contains(v.as_str()), "a reported value is in the logs");
        assert!(!dump.contains(v.as_str()), "a reported value is in the database");
        assert!(app.smtp.messages().iter().all(|m| !m.raw.contains(v.as_str())), "a reported value is in an email");
        assert!(app.store.recent_audit_events(500).await.unwrap().iter().all(|e| !e.details.contains(v.as_str())));
    }
}

/// With the keys file set: unsigned, unknown key, wrong key, a signature of another body; then,
/// signed, malformed JSON, an object, 101 items, an item without a string token, and over
/// 64 KiB: each a clear 4xx problem, and nothing changes.
#[tokio::test]
async fn unsigned_forged_malformed_and_oversized_reports_are_refused_and_change_nothing() {
    let keys = signer();
    let app = spawn(Some(&keys), false).await;
    let dm = world(&app).await;
    let (value, id) = live(&app, &dm, "Live").await;
    let body = serde_json::to_vec(&json!([item(&value, "https://example.com/x")])).unwrap();
    let stranger = SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let mut cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (post(&app, &body, None).await, 401, "must be signed"),
        (post(&app, &body, Some((&keys.key, "no-such-key"))).await, 401, "not one of"),
        (post(&app, &body, Some((&stranger, KEY_ID))).await, 401, "does not verify"),
    ];
    let other_body = new_client()
        .post(app.url("/api/v1/leaks"))
        .header("Github-Public-Key-Identifier", KEY_ID)
        .header("Github-Public-Key-Signature", sign(&keys.key, b"[]"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    cases.push((other_body, 401, "does not verify"));
    let signed = |b: Vec<u8>| {
        let app = &app;
        let key = &keys.key;
        async move { post(app, &b, Some((key, KEY_ID))).await }
    };
    let many = serde_json::to_vec(&vec![item(&value, "u"); 101]).unwrap();
    let big = serde_json::to_vec(&json!([item(&value, &"u".repeat(70 * 1024))])).unwrap();
    cases.push((signed(b"[{\"token\": ".to_vec()).await, 400, "not valid JSON"));
    cases.push((signed(serde_json::to_vec(&json!({"token": value})).unwrap()).await, 422, "JSON array"));
    cases.push((signed(many).await, 422, "at most 100 items"));
    cases.push((signed(serde_json::to_vec(&json!([{"token": 12}])).unwrap()).await, 422, "Item 0"));
    cases.push((signed(big).await, 413, "64 KiB"));
    for (res, status, words) in cases {
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["status"], status);
        assert!(problem["type"].as_str().unwrap().starts_with("urn:wmda:secret-portal:problem:"), "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(words), "{problem}");
    }
    assert!(exposure(&app, &dm, id).await.is_none());
    assert!(events(&app, "secret.exposed").await.is_empty());
    assert_eq!(token_status(&app, &dm, &value).await, 200);
}

/// Without a keys file unsigned reports are accepted, 10 a minute per address (then 429 with
/// `Retry-After`), and even with `PORTAL_LEAK_ACTION=delete` an unsigned report only marks.
#[tokio::test]
async fn unsigned_reports_without_keys_are_limited_to_ten_a_minute_and_never_delete() {
    let app = spawn(None, true).await;
    let dm = world(&app).await;
    let (value, id) = live(&app, &dm, "Live").await;
    let body = serde_json::to_vec(&json!([item(&value, "https://example.com/x")])).unwrap();
    let series = r#"leak_reports_total{label="true_positive"}"#;
    let before = app.metric(series).await;
    for i in 0..10 {
        let res = post(&app, &body, None).await;
        assert_eq!(res.status(), 200, "report {i}");
        assert_eq!(res.json::<Value>().await.unwrap()[0]["label"], "true_positive");
    }
    assert!(exposure(&app, &dm, id).await.is_some());
    assert!(app.metric(series).await - before >= 10.0, "reports are counted by label");
    assert_eq!(token_status(&app, &dm, &value).await, 200, "an unsigned report never deletes");
    let res = post(&app, &body, None).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    app.clock.advance(Duration::seconds(61));
    assert_eq!(post(&app, &body, None).await.status(), 200, "the window ends after a minute");
}

/// `PORTAL_LEAK_ACTION=delete` with a signed report deletes the secret as well (the token
/// endpoint refuses it at once), and an application without credential managers has its WMDA
/// admins emailed instead.
#[tokio::test]
async fn a_signed_report_with_delete_deletes_and_the_admins_hear_when_no_one_manages_it() {
    let keys = signer();
    let app = spawn(Some(&keys), true).await;
    let org = app.create_org("NL", "Nobody").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let (value, id) = live(&app, &dm, "Unmanaged").await;
    assert_eq!(token_status(&app, &dm, &value).await, 200);
    let body = serde_json::to_vec(&json!([item(&value, "https://example.com/leak")])).unwrap();
    let before = app.smtp.messages_to("admin@wmda.example").len();
    let res = post(&app, &body, Some((&keys.key, KEY_ID))).await;
    assert_eq!(res.json::<Value>().await.unwrap()[0]["label"], "true_positive");
    assert_eq!(token_status(&app, &dm, &value).await, 401, "deleted");
    let secret = app.store.list_client_secrets(dm.id).await.unwrap().into_iter().find(|s| s.id == id).unwrap();
    assert!(secret.deleted_at.is_some() && secret.exposure.is_some());
    let deleted = events(&app, "secret.deleted").await;
    assert!(deleted.iter().any(|e| e.details.contains("leak report")), "{deleted:?}");
    let mails = app.smtp.wait_for("admin@wmda.example", before + 1).await;
    let urgent = mails.iter().find(|m| m.subject().starts_with("Urgent:")).expect("the admins are told");
    let text = urgent.part("text/plain");
    assert!(text.contains("as a WMDA admin") && text.contains("has deleted it"), "{text}");
    // Reported again after deletion: not live any more.
    let res = post(&app, &body, Some((&keys.key, KEY_ID))).await;
    assert_eq!(res.json::<Value>().await.unwrap()[0]["label"], "false_positive");
}

/// Point 4: an exposed secret shows "Exposed" with the date and the URL (a link only for http(s),
/// escaped always) on the Manage page and the admin application page, with what to do; the admin
/// overview lists it before the secrets that expire soon. It still counts toward the limit.
#[tokio::test]
async fn an_exposed_secret_shows_on_the_pages_and_first_on_the_admin_overview() {
    let app = spawn(None, false).await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, jane_client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store
        .grant_credential_manager(jane.user_id, dm.id, &secret_portal::store::Actor::cli(), app.clock.now())
        .await
        .unwrap();
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let (value, _) = live(&app, &dm, "Found one").await;
    let (other, _) = live(&app, &dm, "Found two").await;
    // Expiring soon too, so the overview has both sections.
    app.seed_secret(dm.id, "Soon", app.clock.now(), app.clock.today() + Duration::days(5)).await;
    let url = "https://github.com/acme/repo/blob/main/.env?x=<b>";
    let body = serde_json::to_vec(&json!([item(&value, url), item(&other, "javascript:alert(1)")])).unwrap();
    assert_eq!(post(&app, &body, None).await.status(), 200);
    let on = app.clock.now().format("%Y-%m-%d %H:%M UTC").to_string();
    // Kept as a URL's ASCII form (<b> percent-encoded); a javascript: URL is no URL and is dropped.
    let kept = "https://github.com/acme/repo/blob/main/.env?x=%3Cb%3E";
    for (client, path) in
        [(&jane_client, "/manage-api-credentials".to_owned()), (&admin, format!("/admin/applications/{}", dm.id))]
    {
        let html = client.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains(r#"<span class="badge exposed">Exposed</span>"#), "{path}");
        assert!(
            html.contains(&format!(
                "Found in public {on} at <a href=\"{kept}\" rel=\"noopener noreferrer nofollow\">{kept}</a>"
            )),
            "{path}: {html}"
        );
        assert!(html.contains(&format!("Found in public {on}. Create")) && !html.contains("javascript:"), "{path}");
        assert!(html.contains("Create a replacement, update your system, then delete this one."), "{path}");
        assert!(!html.contains("<b>"), "{path}: the URL is escaped");
    }
    let overview = admin.get(app.url("/admin")).send().await.unwrap().text().await.unwrap();
    let found = overview.find("Secrets found in public").unwrap();
    let soon = overview.find("Secrets expiring within 30 days").unwrap();
    assert!(found < soon);
    let section = &overview[found..soon];
    assert!(section.contains("Found one") && section.contains("Found two") && !section.contains(">Soon<"), "{section}");
    // Three live secrets, exposed or not: the limit of 3 is reached.
    let page = jane_client.get(app.url("/manage-api-credentials")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("This application has 3 unexpired secrets, the most allowed."), "{page}");
}

/// A report whose signature verifies is never limited: after an address has sent 10 refused
/// (forged) reports and is answered 429, a correctly signed report from it is still taken.
#[tokio::test]
async fn refused_signatures_are_limited_per_address_but_verified_reports_never_are() {
    let keys = signer();
    let app = spawn(Some(&keys), false).await;
    let dm = world(&app).await;
    let (value, id) = live(&app, &dm, "Live").await;
    let body = serde_json::to_vec(&json!([item(&value, "https://example.com/x")])).unwrap();
    let stranger = SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    for i in 0..10 {
        let forged =
            if i % 2 == 0 { post(&app, &body, Some((&stranger, KEY_ID))).await } else { post(&app, &body, None).await };
        assert_eq!(forged.status(), 401, "report {i}");
    }
    assert_eq!(post(&app, &body, Some((&stranger, KEY_ID))).await.status(), 429);
    assert_eq!(post(&app, &body, None).await.status(), 429);
    assert!(exposure(&app, &dm, id).await.is_none());
    for _ in 0..3 {
        let res = post(&app, &body, Some((&keys.key, KEY_ID))).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()[0]["label"], "true_positive");
    }
    assert!(exposure(&app, &dm, id).await.is_some());
}

/// The keys file is re-read when it changes: a report signed with a key added since the start
/// is taken, and one signed with a key removed since is refused.
#[tokio::test]
async fn the_keys_file_is_re_read_when_it_changes() {
    let keys = signer();
    let app = spawn(Some(&keys), false).await;
    let dm = world(&app).await;
    let (value, id) = live(&app, &dm, "Live").await;
    let body = serde_json::to_vec(&json!([item(&value, "https://example.com/x")])).unwrap();
    let next = SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let pem = next.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    std::fs::write(
        &keys.path,
        json!({ "public_keys": [{ "key_identifier": "next", "key": pem, "is_current": true }] }).to_string(),
    )
    .unwrap();
    assert_eq!(post(&app, &body, Some((&keys.key, KEY_ID))).await.status(), 401, "the removed key is refused");
    assert!(exposure(&app, &dm, id).await.is_none());
    let res = post(&app, &body, Some((&next, "next"))).await;
    assert_eq!(res.status(), 200);
    assert!(exposure(&app, &dm, id).await.is_some());
}
