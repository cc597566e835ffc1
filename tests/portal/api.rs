//! Issue 16, points 1, 2, 4 and 7 (DESIGN.md section 8): the machine API over HTTP. SQLite, and
//! Postgres with TEST_DATABASE_URL.

use chrono::Duration;
use secret_portal::domain::{Api, ApplicationKind, Clock as _};
use secret_portal::store::{Actor, Application, UserRole};
use serde_json::{Value, json};

use crate::support::{TestApp, new_client};

struct World {
    app: TestApp,
    dm: Application,
    other: Application,
    /// Jane's session: she manages the DM application.
    jane: reqwest::Client,
    /// The caller's value and id: a secret of the DM application.
    caller: (String, uuid::Uuid),
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let other = app.register(org.id, ApplicationKind::Partner, Api::Smc).await;
    let (jane, client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store.grant_credential_manager(jane.user_id, dm.id, &Actor::cli(), app.clock.now()).await.unwrap();
    let (value, id) = app
        .seed_secret(dm.id, "Current", app.clock.now() - Duration::days(300), app.clock.today() + Duration::days(40))
        .await;
    app.store.set_self_rotation(dm.id, true).await.unwrap();
    World { app, dm, other, jane: client, caller: (value.expose().to_owned(), id) }
}

fn request(w: &World, method: reqwest::Method, path: &str, secret: &str) -> reqwest::RequestBuilder {
    new_client().request(method, w.app.url(path)).basic_auth(w.dm.client_id.to_string(), Some(secret))
}

async fn get_self(w: &World, secret: &str) -> reqwest::Response {
    request(w, reqwest::Method::GET, "/api/v1/self", secret).send().await.unwrap()
}

async fn create(w: &World, secret: &str) -> reqwest::Response {
    request(w, reqwest::Method::POST, "/api/v1/self/secrets", secret).send().await.unwrap()
}

async fn delete(w: &World, secret: &str, id: &str) -> reqwest::Response {
    request(w, reqwest::Method::DELETE, &format!("/api/v1/self/secrets/{id}"), secret).send().await.unwrap()
}

async fn problem(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, res.json().await.unwrap())
}

fn reason(p: &Value) -> &str {
    p["type"].as_str().unwrap().strip_prefix("urn:wmda:secret-portal:problem:").unwrap()
}

async fn live(w: &World, a: &Application) -> usize {
    w.app.store.list_client_secrets(a.id).await.unwrap().iter().filter(|s| s.deleted_at.is_none()).count()
}

/// Point 1: `GET /self` shows the application and its secrets (never a value or hash), with the
/// caller marked; a wrong, expired, deleted or exposed caller, another scheme or none get one
/// and the same 401.
#[tokio::test]
async fn the_caller_reads_its_application_and_every_other_caller_gets_the_same_401() {
    let w = world().await;
    let (value, id) = w.caller.clone();
    let res = get_self(&w, &value).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let text = res.text().await.unwrap();
    assert!(!text.contains(&value));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["client_id"], w.dm.client_id.to_string());
    assert_eq!((body["name"].as_str().unwrap(), body["self_rotation"].as_bool()), (w.dm.name.as_str(), Some(true)));
    assert_eq!(body["secret_limit"], 3);
    assert!(body["resources"].as_array().unwrap().iter().all(|r| r["audience"].is_string()));
    let secrets = body["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        (secrets[0]["id"].as_str().unwrap(), secrets[0]["is_caller"].as_bool()),
        (id.to_string().as_str(), Some(true))
    );
    assert_eq!(secrets[0]["created_by"], json!({ "kind": "wmda" }));
    assert_eq!(secrets[0]["hint"], format!("wmdacs_{}", &value[7..10]));

    let now = w.app.clock.now();
    let (expired, _) =
        w.app.seed_secret(w.dm.id, "Expired", now - Duration::days(400), w.app.clock.today() - Duration::days(1)).await;
    let (deleted, deleted_id) =
        w.app.seed_secret(w.dm.id, "Deleted", now, w.app.clock.today() + Duration::days(10)).await;
    let none = |_: &secret_portal::store::DeletedSecret, _: &[(String, String)]| Vec::new();
    w.app.store.admin_delete_secret((w.dm.id, deleted_id), "test", &Actor::cli(), &none, now).await.unwrap();
    let (exposed, _) = w.app.seed_secret(w.dm.id, "Exposed", now, w.app.clock.today() + Duration::days(10)).await;
    let report =
        json!([{ "token": exposed.expose(), "type": "t", "url": "https://example.com/x", "source": "content" }]);
    assert_eq!(new_client().post(w.app.url("/api/v1/leaks")).json(&report).send().await.unwrap().status(), 200);
    let mut answers = Vec::new();
    for bad in [expired.expose(), deleted.expose(), exposed.expose(), "wrong", &value[..44]] {
        let res = get_self(&w, bad).await;
        assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"secret-portal\"");
        answers.push(problem(res).await);
    }
    let bare = new_client().get(w.app.url("/api/v1/self")).send().await.unwrap();
    answers.push(problem(bare).await);
    let bearer = new_client().get(w.app.url("/api/v1/self")).bearer_auth("x").send().await.unwrap();
    answers.push(problem(bearer).await);
    for (status, p) in &answers {
        assert_eq!((*status, reason(p)), (401, "invalid-client"));
        assert_eq!(p, &answers[0].1);
    }
}

/// Point 2: ten concurrent `POST`s from one caller create exactly one secret; the other nine get
/// 409 `pending-successor` naming its id and hint.
#[tokio::test]
async fn ten_concurrent_creates_from_one_caller_make_one_successor() {
    let w = world().await;
    let value = w.caller.0.clone();
    let posts = (0..10).map(|_| {
        let req = request(&w, reqwest::Method::POST, "/api/v1/self/secrets", &value);
        async move { req.send().await.unwrap() }
    });
    let answers = futures_join_all(posts).await;
    let mut created = Vec::new();
    let mut conflicts = Vec::new();
    for res in answers {
        match res.status().as_u16() {
            201 => created.push(res.json::<Value>().await.unwrap()),
            409 => conflicts.push(problem(res).await.1),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created.len(), conflicts.len()), (1, 9));
    let new = &created[0];
    let new_value = new["value"].as_str().unwrap();
    assert!(new_value.starts_with("wmdacs_") && new_value.len() == 45);
    assert_eq!(new["hint"], format!("wmdacs_{}", &new_value[7..10]));
    assert!(new["name"].as_str().unwrap().starts_with("Rotated automatically on "));
    assert_eq!(new["expires_on"], secret_portal::domain::ExpiryDate::max_for(w.app.clock.today()).to_string());
    for c in &conflicts {
        assert_eq!(reason(c), "pending-successor");
        assert_eq!((&c["successor"]["id"], &c["successor"]["hint"]), (&new["id"], &new["hint"]));
    }
    assert_eq!(live(&w, &w.dm).await, 2);
    // The new value works at the token endpoint and as a caller.
    assert_eq!(get_self(&w, new_value).await.status(), 200);
}

/// A successor over an hour old and never used is abandoned: the caller's next `POST` deletes it
/// (audited, emailed) and makes a new one; the third API secret within 24 hours is 429.
#[tokio::test]
async fn an_abandoned_successor_is_replaced_and_the_api_makes_at_most_two_a_day() {
    let w = world().await;
    let value = w.caller.0.clone();
    let first: Value = create(&w, &value).await.json().await.unwrap();
    assert_eq!(problem(create(&w, &value).await).await.0, 409);
    w.app.clock.advance(Duration::minutes(61));
    let res = create(&w, &value).await;
    assert_eq!(res.status(), 201);
    let second: Value = res.json().await.unwrap();
    let secrets = w.app.store.list_client_secrets(w.dm.id).await.unwrap();
    let abandoned = secrets.iter().find(|s| s.id.to_string() == first["id"].as_str().unwrap()).unwrap();
    assert!(abandoned.deleted_at.is_some());
    let events = w.app.store.recent_audit_events(100).await.unwrap();
    assert!(events.iter().any(|e| e.action == "secret.deleted" && e.details.contains("abandoned")));
    // The second successor, as a caller, makes a third API secret within 24 hours: refused, until
    // the first of the day's two leaves the window (Retry-After, in seconds).
    let res = create(&w, second["value"].as_str().unwrap()).await;
    assert_eq!(res.headers()["retry-after"], (24 * 3600 - 61 * 60).to_string());
    let (status, p) = problem(res).await;
    assert_eq!((status, reason(&p)), (429, "rate-limited"));
    // The first caller's successor is abandoned an hour later, but the day's two are made: the
    // 429 rolls everything back, so the successor is not deleted without a replacement.
    w.app.clock.advance(Duration::minutes(61));
    let (status, p) = problem(create(&w, &value).await).await;
    assert_eq!((status, reason(&p)), (429, "rate-limited"));
    let still = w.app.store.list_client_secrets(w.dm.id).await.unwrap();
    assert!(still.iter().any(|s| s.id.to_string() == second["id"].as_str().unwrap() && s.deleted_at.is_none()));
    w.app.clock.advance(Duration::hours(24));
    assert_eq!(create(&w, second["value"].as_str().unwrap()).await.status(), 201);
}

/// Point 2: a caller deletes only its ancestors; everything else is 404 and unchanged. A leaked
/// older secret can create a successor, but that successor cannot delete the secret a person made.
#[tokio::test]
async fn a_caller_deletes_only_its_ancestors_and_a_leaked_secret_cannot_remove_a_persons() {
    let w = world().await;
    let (c0, c0_id) = w.caller.clone();
    let c1: Value = create(&w, &c0).await.json().await.unwrap();
    let c1_value = c1["value"].as_str().unwrap().to_owned();
    let c2: Value = create(&w, &c1_value).await.json().await.unwrap();
    let c2_value = c2["value"].as_str().unwrap().to_owned();
    // A person's secret, made on the page after the leaked one.
    let form_id = w.app.create_form_id(&w.jane, &w.dm.client_id).await;
    // At the limit of 3 (c0, c1, c2): delete c0 through c2 first, as a rotation would.
    assert_eq!(delete(&w, &c2_value, &c0_id.to_string()).await.status(), 204, "the grandparent is an ancestor");
    let path = format!("/manage-api-credentials/{}/secrets", w.dm.client_id);
    let fields = [("name", "Person (Jane)"), ("expires_on", "2027-06-01"), ("form_id", form_id.as_str())];
    assert_eq!(w.app.post_form(&w.jane, &path, &fields).await.status(), 200);
    let person = w
        .app
        .store
        .list_client_secrets(w.dm.id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "Person (Jane)")
        .unwrap();
    let (other_value, other_id) =
        w.app.seed_secret(w.other.id, "Other app", w.app.clock.now(), w.app.clock.today() + Duration::days(9)).await;
    let _ = other_value;
    for target in [
        person.id.to_string(),
        c2["id"].as_str().unwrap().to_owned(),
        other_id.to_string(),
        "not-a-uuid".to_owned(),
        uuid::Uuid::new_v4().to_string(),
    ] {
        let (status, p) = problem(delete(&w, &c2_value, &target).await).await;
        assert_eq!((status, reason(&p)), (404, "not-found"), "{target}");
    }
    assert_eq!(delete(&w, &c2_value, c1["id"].as_str().unwrap()).await.status(), 204, "the parent");
    assert_eq!(delete(&w, &c2_value, c1["id"].as_str().unwrap()).await.status(), 204, "already deleted: 204 again");
    let live_ids: Vec<String> = w
        .app
        .store
        .list_client_secrets(w.dm.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.deleted_at.is_none())
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(live_ids.len(), 2);
    assert!(live_ids.contains(&person.id.to_string()) && live_ids.contains(&c2["id"].as_str().unwrap().to_owned()));
}

/// Bad input, found by an outside tester: only the id as GET /self gives it deletes (not braced,
/// urn:uuid: or bare hex spellings of it); a JSON array is not an object; a body of spaces is a
/// body; the self-rotation-off detail says when WMDA forbade it; an exposed successor does not
/// block its creator's next POST.
#[tokio::test]
async fn odd_spellings_and_bodies_change_nothing() {
    let w = world().await;
    let (c0, _) = w.caller.clone();
    let c1: Value = create(&w, &c0).await.json().await.unwrap();
    let c1_value = c1["value"].as_str().unwrap().to_owned();
    let c0_id = w.caller.1;
    let simple = c0_id.simple().to_string();
    // (A percent-encoded hyphen is the same URL, RFC 3986 section 6.2.2.2: not an odd spelling.)
    for spelling in [format!("{{{c0_id}}}"), format!("urn:uuid:{c0_id}"), simple] {
        let (status, p) = problem(delete(&w, &c1_value, &spelling).await).await;
        assert_eq!((status, reason(&p)), (404, "not-found"), "{spelling}");
    }
    assert_eq!(live(&w, &w.dm).await, 2, "nothing deleted");
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut req = request(&w, reqwest::Method::POST, "/api/v1/self/secrets", &c1_value);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        async move { req.body(body).send().await.unwrap() }
    };
    for (body, ct, status) in [
        (r#"["x", "2027-01-01"]"#, Some("application/json"), 422),
        ("null", Some("application/json"), 422),
        ("   ", None, 415),
        ("   ", Some("application/json"), 422),
    ] {
        let (got, p) = problem(post(body, ct).await).await;
        assert_eq!(got, status, "{body:?}: {p}");
        assert!(!p["detail"].as_str().unwrap().contains("ApiSecretRequest"), "{p}");
    }
    assert_eq!(live(&w, &w.dm).await, 2, "nothing created");

    // c1 is found in public: c0 may make a new successor (c1 no longer counts as pending).
    let report = json!([{ "token": c1_value, "type": "wmda_client_secret" }]);
    assert_eq!(new_client().post(w.app.url("/api/v1/leaks")).json(&report).send().await.unwrap().status(), 200);
    w.app.clock.advance(Duration::hours(25));
    assert_eq!(create(&w, &c0).await.status(), 201);
}

/// Forbidden by WMDA: the self-rotation-off detail says so, and GET /self shows it.
#[tokio::test]
async fn a_forbidden_self_rotation_says_so() {
    let w = world().await;
    let (c0, _) = w.caller.clone();
    let actor = secret_portal::store::Actor::cli();
    let render = |_: &secret_portal::store::SelfRotationFacts, _: &[(String, String)]| Vec::new();
    w.app.store.forbid_self_rotation(w.dm.id, true, &actor, &render, w.app.clock.now()).await.unwrap();
    let (status, p) = problem(create(&w, &c0).await).await;
    assert_eq!((status, reason(&p)), (409, "self-rotation-off"));
    assert!(p["detail"].as_str().unwrap().contains("WMDA does not allow"), "{p}");
    let me: Value = get_self(&w, &c0).await.json().await.unwrap();
    assert_eq!((me["self_rotation"].as_bool(), me["self_rotation_forbidden"].as_bool()), (Some(false), Some(true)));
}

/// DESIGN.md section 8: a successor made by a secret later reported in public is flagged on the
/// Manage page and the admin page ("created by an exposed secret"); a tombstone says why it went.
#[tokio::test]
async fn a_successor_of_an_exposed_secret_is_flagged_and_tombstones_say_why() {
    let w = world().await;
    let (c0, c0_id) = w.caller.clone();
    let c1: Value = create(&w, &c0).await.json().await.unwrap();
    let c1_value = c1["value"].as_str().unwrap().to_owned();
    let page = || w.app.page(&w.jane, "/manage-api-credentials");
    assert!(!page().await.contains("Created by an exposed secret"));
    // c0 is found in public: c1, which it made, is flagged.
    let report = json!([{ "token": c0, "type": "wmda_client_secret", "url": "https://example.org/leak" }]);
    let res = new_client().post(w.app.url("/api/v1/leaks")).json(&report).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = page().await;
    let row = &html[html.find(c1["name"].as_str().unwrap()).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("Created by an exposed secret"), "{row}");
    assert_eq!(html.matches("Created by an exposed secret").count(), 1, "only the successor");
    let (_, admin) = w.app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let admin_page = w.app.page(&admin, &format!("/admin/applications/{}", w.dm.id)).await;
    assert!(admin_page.contains("Created by an exposed secret"));
    // The successor deletes its (exposed) creator: the secret's page says why it went.
    assert_eq!(delete(&w, &c1_value, &c0_id.to_string()).await.status(), 204);
    let gone = w.app.page(&w.jane, &format!("/manage-api-credentials/{}/secrets/{c0_id}", w.dm.client_id)).await;
    assert!(gone.contains("already been deleted by the application, through the API."), "{gone}");
}

/// Point 4: an application with no credential manager who can sign in: its API writes are
/// emailed to the WMDA admins instead, with the admin page's link (as reminders and leak reports).
#[tokio::test]
async fn api_writes_of_an_application_without_managers_go_to_the_wmda_admins() {
    let w = world().await;
    let (_, _admin) = w.app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let before = w.app.smtp.messages_to("admin@wmda.example").len();
    let (value, _) =
        w.app.seed_secret(w.other.id, "Current", w.app.clock.now(), w.app.clock.today() + Duration::days(40)).await;
    w.app.store.set_self_rotation(w.other.id, true).await.unwrap();
    let res = new_client()
        .post(w.app.url("/api/v1/self/secrets"))
        .basic_auth(w.other.client_id.to_string(), Some(value.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mails = w.app.smtp.wait_for("admin@wmda.example", before + 1).await;
    let text = mails.last().unwrap().part("text/plain");
    assert!(
        text.contains("as a WMDA admin") && text.contains(&format!("/admin/applications/{}", w.other.id)),
        "{text}"
    );
    // Jane manages only the DM application: she is not told.
    assert!(w.app.smtp.messages_to("jane@demo.example").iter().all(|m| !m.subject().contains(&w.other.name)));
}

/// Point 3 in part: self-rotation is off by default; reading and deleting ancestors stay allowed.
#[tokio::test]
async fn self_rotation_off_refuses_creation_only() {
    let w = world().await;
    let value = w.caller.0.clone();
    w.app.store.set_self_rotation(w.dm.id, false).await.unwrap();
    let (status, p) = problem(create(&w, &value).await).await;
    assert_eq!((status, reason(&p)), (409, "self-rotation-off"));
    assert_eq!(get_self(&w, &value).await.status(), 200);
    assert_eq!(live(&w, &w.dm).await, 1);
    let stored = w.app.store.all_applications(Some(w.other.id), None).await.unwrap().pop().unwrap();
    assert!(!stored.application.self_rotation, "off by default");
}

/// Points 4 and 7: an API write is audited with the application as actor and emailed to the
/// credential managers; the pages say "by the application"; bad input changes nothing.
#[tokio::test]
async fn api_writes_are_audited_and_emailed_and_bad_input_changes_nothing() {
    let w = world().await;
    let value = w.caller.0.clone();
    let post = |body: Vec<u8>, content_type: Option<&'static str>| {
        let mut req = request(&w, reqwest::Method::POST, "/api/v1/self/secrets", &value);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        async move { req.body(body).send().await.unwrap() }
    };
    let json_ct = Some("application/json");
    // (body, Content-Type, status, problem reason, words of the detail)
    type Case = (Vec<u8>, Option<&'static str>, u16, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (b"[1]".to_vec(), json_ct, 422, "validation", "JSON object"),
        (br#"{"name":"x","colour":"red"}"#.to_vec(), json_ct, 422, "validation", "colour"),
        (br#"{"name":"   "}"#.to_vec(), json_ct, 422, "validation", "Enter a name"),
        (br#"{"expires_on":"2020-01-01"}"#.to_vec(), json_ct, 422, "validation", "cannot be in the past"),
        (br#"{"expires_on":"12/11/2027"}"#.to_vec(), json_ct, 422, "validation", "YYYY-MM-DD"),
        (br#"{"name":"x"}"#.to_vec(), Some("text/plain"), 415, "unsupported-media-type", "application/json"),
        (format!(r#"{{"name":"{}"}}"#, "x".repeat(17 * 1024)).into_bytes(), json_ct, 413, "body-too-large", "16 KiB"),
    ];
    for (body, ct, status, why, words) in cases {
        let (got, p) = problem(post(body, ct).await).await;
        assert_eq!((got, reason(&p)), (status, why), "{p}");
        assert!(p["detail"].as_str().unwrap().contains(words), "{p}");
    }
    let (_, p) = problem(post(br#"{"expires_on":"2020-01-01"}"#.to_vec(), json_ct).await).await;
    assert_eq!(p["field"], "expires_on");
    assert_eq!(live(&w, &w.dm).await, 1, "nothing was created");

    let before = w.app.smtp.messages_to("jane@demo.example").len();
    let res = post(br#"{"name":"Build server (auto)","expires_on":"2027-06-01"}"#.to_vec(), json_ct).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["name"], "Build server (auto)");
    let event =
        w.app.store.recent_audit_events(10).await.unwrap().into_iter().find(|e| e.action == "secret.created").unwrap();
    assert_eq!(event.actor_label, format!("application {}", w.dm.client_id));
    assert_eq!((event.ip.as_deref(), event.actor_user_id), (Some("127.0.0.1"), None));
    let mails = w.app.smtp.wait_for("jane@demo.example", before + 1).await;
    let mail = mails.last().unwrap();
    assert_eq!(mail.subject(), format!("{} created a client secret itself", w.dm.name));
    let text = mail.part("text/plain");
    let hint = created["hint"].as_str().unwrap();
    assert!(
        text.contains("127.0.0.1") && text.contains(hint) && text.contains(&format!("#app-{}", w.dm.client_id)),
        "{text}"
    );
    assert!(!mail.raw.contains(created["value"].as_str().unwrap()));
    let page = w.app.page(&w.jane, "/manage-api-credentials").await;
    assert!(page.contains("by the application"), "{page}");
}

/// Every answer under `/api/v1` is a problem: an unknown path, a wrong method, a path without
/// an id.
#[tokio::test]
async fn unknown_routes_and_methods_under_the_api_answer_with_problems() {
    let w = world().await;
    let value = w.caller.0.clone();
    for (method, path, status, why) in [
        (reqwest::Method::GET, "/api/v1/nope", 404, "not-found"),
        (reqwest::Method::DELETE, "/api/v1/self/secrets/", 404, "not-found"),
        (reqwest::Method::PUT, "/api/v1/self", 405, "method-not-allowed"),
        (reqwest::Method::DELETE, "/api/v1/self/secrets/%FF", 404, "not-found"),
        (reqwest::Method::DELETE, "/api/v1/self/secrets/not-a-uuid", 404, "not-found"),
        (reqwest::Method::GET, "/api/v1/self%00", 400, "validation"),
        (reqwest::Method::GET, "/api/v1/self?a=%00", 400, "validation"),
        (reqwest::Method::GET, "/api/v1/self/secrets", 405, "method-not-allowed"),
    ] {
        let (got, p) = problem(request(&w, method.clone(), path, &value).send().await.unwrap()).await;
        assert_eq!((got, reason(&p)), (status, why), "{method} {path}");
    }
    // The routes themselves still answer.
    assert_eq!(get_self(&w, &value).await.status(), 200);
    assert_eq!(new_client().post(w.app.url("/api/v1/leaks")).json(&json!([])).send().await.unwrap().status(), 200);
}

/// `futures::future::join_all` without the crate: spawn each and wait for all.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<reqwest::Response>
where
    F: std::future::Future<Output = reqwest::Response> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Point 2: the per-application limit holds when the page and the API create at once: from 2
/// live secrets (limit 3), four page creates and one API create leave exactly 3.
#[tokio::test]
async fn the_limit_holds_against_concurrent_page_and_api_creates() {
    let w = world().await;
    w.app.seed_secret(w.dm.id, "Second", w.app.clock.now(), w.app.clock.today() + Duration::days(60)).await;
    let mut form_ids = Vec::new();
    for _ in 0..4 {
        form_ids.push(w.app.create_form_id(&w.jane, &w.dm.client_id).await);
    }
    let path = w.app.url(&format!("/manage-api-credentials/{}/secrets", w.dm.client_id));
    let mut handles = Vec::new();
    for (i, form_id) in form_ids.into_iter().enumerate() {
        let (jane, path) = (w.jane.clone(), path.clone());
        handles.push(tokio::spawn(async move {
            let name = format!("Page {i} (Jane)");
            let fields = [("name", name.as_str()), ("expires_on", "2027-06-01"), ("form_id", form_id.as_str())];
            jane.post(path)
                .header("origin", "http://127.0.0.1:8080")
                .form(&fields)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let api = request(&w, reqwest::Method::POST, "/api/v1/self/secrets", &w.caller.0);
    handles.push(tokio::spawn(async move { api.send().await.unwrap().status().as_u16() }));
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap());
    }
    assert_eq!(live(&w, &w.dm).await, 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200 || **s == 201).count(), 1, "{statuses:?}");
    // Every page create reached the limit check (200, or 422 with the limit message): no CSRF or
    // session refusal hides the race.
    assert!(statuses[..4].iter().all(|s| *s == 200 || *s == 422), "{statuses:?}");
}

/// Tombstones record why (DESIGN.md section 8): `api` for an ancestor the API deleted,
/// `abandoned` for a replaced successor, `admin` for a WMDA admin's deletion.
#[tokio::test]
async fn tombstones_record_why_the_secret_went() {
    let w = world().await;
    let (c0, c0_id) = w.caller.clone();
    let first: Value = create(&w, &c0).await.json().await.unwrap();
    w.app.clock.advance(Duration::minutes(61));
    let second: Value = create(&w, &c0).await.json().await.unwrap();
    assert_eq!(delete(&w, second["value"].as_str().unwrap(), &c0_id.to_string()).await.status(), 204);
    let (_, admin_id) =
        w.app.seed_secret(w.dm.id, "Admin's", w.app.clock.now(), w.app.clock.today() + Duration::days(9)).await;
    let none = |_: &secret_portal::store::DeletedSecret, _: &[(String, String)]| Vec::new();
    w.app
        .store
        .admin_delete_secret((w.dm.id, admin_id), "test", &Actor::cli(), &none, w.app.clock.now())
        .await
        .unwrap();
    let reason_of = |id: String| {
        let app = &w.app;
        async move {
            let id = uuid::Uuid::parse_str(&id).unwrap();
            let sql = "select deleted_reason from client_secret where id = $1";
            match app.store.backend() {
                secret_portal::store::Backend::Postgres(p) => {
                    sqlx::query_scalar::<_, Option<String>>(sql).bind(id).fetch_one(p).await.unwrap()
                }
                secret_portal::store::Backend::Sqlite(p) => {
                    sqlx::query_scalar::<_, Option<String>>(sql).bind(id).fetch_one(p).await.unwrap()
                }
            }
        }
    };
    assert_eq!(reason_of(first["id"].as_str().unwrap().to_owned()).await.as_deref(), Some("abandoned"));
    assert_eq!(reason_of(c0_id.to_string()).await.as_deref(), Some("api"));
    assert_eq!(reason_of(admin_id.to_string()).await.as_deref(), Some("admin"));
    assert_eq!(reason_of(second["id"].as_str().unwrap().to_owned()).await, None);
}
