//! The Manage API Credentials page over HTTP: listing, creating (shown once), deleting, the
//! limit, validation, and the authorisation matrix. SQLite, and Postgres with TEST_DATABASE_URL.

use base64::Engine as _;

use crate::support::flows::{between, location};
use crate::support::{TestApp, new_client};
use chrono::{Duration, NaiveDate};
use secret_portal::domain::{Api, ApplicationKind, Clock as _};
use secret_portal::store::{Application, Organisation, UserRole};

async fn seed(app: &TestApp, application: &Application, name: &str, expires_on: NaiveDate) -> uuid::Uuid {
    app.seed_secret(application.id, name, app.clock.now() - Duration::days(30), expires_on).await.1
}

struct World {
    app: TestApp,
    org: Organisation,
    dm: Application,
    smc: Application,
    other_org_app: Application,
    jane: reqwest::Client,
    jane_id: uuid::Uuid,
}

/// NL-DemoRegistry with a DM and an SMC application; Jane manages only the DM one. DE-Other has
/// an application of its own.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let other = app.create_org("DE", "Other").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let smc = app.register(org.id, ApplicationKind::Partner, Api::Smc).await;
    let other_org_app = app.register(other.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store
        .grant_credential_manager(jane.user_id, dm.id, &secret_portal::store::Actor::cli(), app.clock.now())
        .await
        .unwrap();
    World { app, org, dm, smc, other_org_app, jane: client, jane_id: jane.user_id }
}

fn secrets_path(a: &Application) -> String {
    format!("/manage-api-credentials/{}/secrets", a.client_id)
}

async fn page(w: &World) -> String {
    w.app.page(&w.jane, "/manage-api-credentials").await
}

async fn form_id(w: &World, a: &Application) -> String {
    w.app.create_form_id(&w.jane, &a.client_id).await
}

async fn create(w: &World, a: &Application, name: &str, expires_on: &str) -> reqwest::Response {
    let form_id = form_id(w, a).await;
    w.app
        .post_form(&w.jane, &secrets_path(a), &[("name", name), ("expires_on", expires_on), ("form_id", &form_id)])
        .await
}

fn shown_value(html: &str) -> String {
    between(html, "id=\"secret-value\">", "</code>").expect("the value on the page").to_owned()
}

async fn live_secrets(w: &World, a: &Application) -> usize {
    w.app.store.list_client_secrets(a.id).await.unwrap().iter().filter(|s| s.deleted_at.is_none()).count()
}

#[tokio::test]
async fn the_page_lists_exactly_the_granted_applications_with_their_facts() {
    let w = world().await;
    let today = w.app.clock.today();
    seed(&w.app, &w.dm, "Soon gone", today + Duration::days(12)).await;
    seed(&w.app, &w.dm, "Long lived", today + Duration::days(200)).await;
    seed(&w.app, &w.dm, "Old one", today - Duration::days(3)).await;
    seed(&w.app, &w.smc, "Not Janes", today + Duration::days(100)).await;
    let html = page(&w).await;
    assert!(html.contains(&w.dm.name) && !html.contains(&w.smc.name) && !html.contains(&w.other_org_app.name));
    assert!(html.contains(&w.dm.client_id.to_string()) && html.contains("Copy client ID"));
    assert!(html.contains("Data Manager production") && html.contains("Data Manager sandbox"));
    assert!(html.contains("Name of jane@demo.example"));
    assert!(html.contains("Fewer than two credential managers"));
    assert!(!html.contains("Not Janes"));
    assert!(html.contains("Soon gone") && html.contains("Expires soon: 12 days left"));
    assert!(html.contains("200 days left"));
    assert!(html.contains("<span class=\"badge expired\">Expired</span>"));
    assert!(html.contains("by WMDA") && html.contains("Never used"));
    // The API authentication panel.
    assert!(html.contains("API authentication") && html.contains("http://127.0.0.1:8080/oauth2/token"));
    assert!(html.contains("api://wmda/data-manager-production"));
    assert!(
        html.contains(&format!("client_id={}", w.dm.client_id)) && html.contains("resource=data-manager-production")
    );
    assert!(html.contains("read -rs CLIENT_SECRET") && html.contains("client_secret=$CLIENT_SECRET"));
    // The create dialog: labels, default and bounds of the date.
    let max = secret_portal::domain::ExpiryDate::max_for(today).to_string();
    assert!(
        html.contains("<dialog id=\"create-")
            && html.contains("Client secret name")
            && html.contains("Expiration date")
    );
    assert!(html.contains(&format!("value=\"{max}\" min=\"{today}\" max=\"{max}\"")));
    assert!(html.contains("Include your own name"));

    // A second manager removes the note.
    let (piet, _) = w.app.account("piet@demo.example", UserRole::Member(w.org.id)).await;
    w.app
        .store
        .grant_credential_manager(piet.user_id, w.dm.id, &secret_portal::store::Actor::cli(), w.app.clock.now())
        .await
        .unwrap();
    let html = page(&w).await;
    assert!(html.contains("Name of piet@demo.example") && !html.contains("Fewer than two credential managers"));
}

#[tokio::test]
async fn a_user_without_grants_is_told_who_grants_the_role() {
    let w = world().await;
    let (_, piet) = w.app.account("piet@demo.example", UserRole::Member(w.org.id)).await;
    let res = piet.get(w.app.url("/manage-api-credentials")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("The WMDA team grants the credential manager role") && html.contains("support@wmda.example"));
}

#[tokio::test]
async fn a_created_secret_is_shown_once_and_only_its_hint_remains() {
    let w = world().await;
    let res = create(&w, &w.dm, "  Build server (Jane Doe) ", &w.app.clock.today().to_string()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let value = shown_value(&html);
    // Issue 15, point 1: the v2 format of DESIGN.md section 7, checksum included.
    assert_eq!(value.len(), 45);
    assert!(value.starts_with("wmdacs_"), "{value}");
    assert_eq!(secret_portal::domain::Shape::of(&value), secret_portal::domain::Shape::WellFormedV2);
    let hint = format!("wmdacs_{}", &value[7..10]);
    assert!(html.contains("Copy secret") && html.contains("can never be shown again"));
    let listed = page(&w).await;
    assert!(!listed.contains(&value));
    assert!(listed.contains("Build server (Jane Doe)") && listed.contains(&format!("<code>{hint}…</code>")));
    assert!(listed.contains("by Name of jane@demo.example"));
    assert!(listed.contains("expires today"));
    let events = w.app.store.recent_audit_events(50).await.unwrap();
    let created = events.iter().find(|e| e.action == "secret.created").expect("an audit event");
    assert_eq!(created.actor_user_id, Some(w.jane_id));
    assert_eq!(created.ip.as_deref(), Some("127.0.0.1"));
    let details: serde_json::Value = serde_json::from_str(&created.details).unwrap();
    assert_eq!(details["name"], "Build server (Jane Doe)");
    assert_eq!(details["hint"], hint.as_str());
    assert_eq!(details["expires_on"], w.app.clock.today().to_string());
}

#[tokio::test]
async fn submitting_the_same_form_again_creates_nothing_and_shows_nothing() {
    let w = world().await;
    let form_id = form_id(&w, &w.dm).await;
    let fields = [("name", "Double click"), ("expires_on", "2027-06-01"), ("form_id", form_id.as_str())];
    let first = w.app.post_form(&w.jane, &secrets_path(&w.dm), &fields).await;
    let value = shown_value(&first.text().await.unwrap());
    // A double click, a replay, a reload of the result: the same form_id.
    let posts: Vec<_> = (0..5).map(|_| w.jane.post(w.app.url(&secrets_path(&w.dm))).form(&fields).send()).collect();
    for p in posts {
        let res = p.await.unwrap();
        assert_eq!(res.status(), 409);
        let html = res.text().await.unwrap();
        assert!(!html.contains(&value) && html.contains("can never be shown again"));
    }
    assert_eq!(live_secrets(&w, &w.dm).await, 1);
}

#[tokio::test]
async fn bad_input_re_renders_the_form_with_a_message_and_stores_nothing() {
    let w = world().await;
    let today = w.app.clock.today();
    let too_far = (secret_portal::domain::ExpiryDate::max_for(today) + Duration::days(1)).to_string();
    let yesterday = (today - Duration::days(1)).to_string();
    let long = "n".repeat(101);
    let cases: Vec<(String, String, &str)> = vec![
        ("".into(), "2027-01-01".into(), "Enter a name"),
        ("   ".into(), "2027-01-01".into(), "Enter a name"),
        (long.clone(), "2027-01-01".into(), "use at most 100"),
        ("tab\there".into(), "2027-01-01".into(), "control characters"),
        ("abc\u{202E}cba".into(), "2027-01-01".into(), "text-direction"),
        ("Fine".into(), yesterday.clone(), "cannot be in the past"),
        ("Fine".into(), too_far.clone(), "at most one year ahead"),
        ("Fine".into(), "12/11/2026".into(), "YYYY-MM-DD"),
        ("Fine".into(), "2026-13-01".into(), "no such day"),
        ("Fine".into(), "not-a-date".into(), "This is not a date"),
        ("Fine".into(), "".into(), "Enter an expiration date"),
    ];
    for (name, date, expected) in cases {
        let res = create(&w, &w.dm, &name, &date).await;
        assert_eq!(res.status(), 422, "{name:?} {date:?}");
        let html = res.text().await.unwrap();
        assert!(html.contains(expected), "{expected}: {html}");
        assert!(html.contains("aria-invalid=\"true\""));
        if !name.trim().is_empty() && !name.contains('\t') {
            assert!(html.contains(&format!("value=\"{}\"", name)), "typed name kept: {name:?}");
        }
        assert!(html.contains(&format!("value=\"{date}\"")), "typed date kept: {date}");
    }
    // Missing fields altogether.
    let res = w.app.post_form(&w.jane, &secrets_path(&w.dm), &[]).await;
    assert_eq!(res.status(), 422);
    let res = w.app.post_form(&w.jane, &secrets_path(&w.dm), &[("name", "Fine"), ("expires_on", "2027-01-01")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("This form is incomplete"));
    assert_eq!(live_secrets(&w, &w.dm).await, 0);
}

#[tokio::test]
async fn one_year_from_29_february_ends_on_28_february() {
    let w = world().await;
    w.app.clock.set(chrono::DateTime::parse_from_rfc3339("2028-02-29T10:00:00Z").unwrap().to_utc());
    // The clock jumped past Jane's session; a new manager signs in on the leap day.
    let (_, client) = w.app.account("leap@demo.example", UserRole::Member(w.org.id)).await;
    let user = w
        .app
        .store
        .find_user_by_email(&secret_portal::domain::EmailAddress::parse("leap@demo.example").unwrap())
        .await
        .unwrap();
    w.app
        .store
        .grant_credential_manager(user.id, w.dm.id, &secret_portal::store::Actor::cli(), w.app.clock.now())
        .await
        .unwrap();
    let page =
        client.get(w.app.url(&format!("{}/new", secrets_path(&w.dm)))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("max=\"2029-02-28\""), "{page}");
    let form_id = between(&page, "name=\"form_id\" value=\"", "\"").unwrap().to_owned();
    let res = w
        .app
        .post_form(
            &client,
            &secrets_path(&w.dm),
            &[("name", "Leap"), ("expires_on", "2029-03-01"), ("form_id", &form_id)],
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = w
        .app
        .post_form(
            &client,
            &secrets_path(&w.dm),
            &[("name", "Leap"), ("expires_on", "2029-02-28"), ("form_id", &form_id)],
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn at_most_three_unexpired_secrets_and_concurrent_creates_never_pass_the_limit() {
    let w = world().await;
    let today = w.app.clock.today();
    seed(&w.app, &w.dm, "Expired one", today - Duration::days(1)).await;
    seed(&w.app, &w.dm, "One", today + Duration::days(100)).await;
    seed(&w.app, &w.dm, "Two", today + Duration::days(100)).await;
    // Ten concurrent creates at limit - 1.
    let mut form_ids = Vec::new();
    for _ in 0..10 {
        form_ids.push(form_id(&w, &w.dm).await);
    }
    let url = w.app.url(&secrets_path(&w.dm));
    let handles: Vec<_> = form_ids
        .into_iter()
        .map(|f| {
            let client = w.jane.clone();
            let url = url.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .form(&[("name", "Racer"), ("expires_on", "2027-06-01"), ("form_id", f.as_str())])
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for h in handles {
        let res = h.await.unwrap();
        match res.status().as_u16() {
            200 => created += 1,
            422 => assert!(res.text().await.unwrap().contains("the most allowed")),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    let live = w
        .app
        .store
        .list_client_secrets(w.dm.id)
        .await
        .unwrap()
        .iter()
        .filter(|s| s.deleted_at.is_none() && s.expires_on >= today)
        .count();
    assert_eq!(live, 3);
    let html = page(&w).await;
    assert!(html.contains("the most allowed") && !html.contains("data-dialog=\"create-"));
}

#[tokio::test]
async fn deleting_asks_first_is_post_only_and_says_already_deleted_the_second_time() {
    let w = world().await;
    let id = seed(&w.app, &w.dm, "To delete", w.app.clock.today() + Duration::days(50)).await;
    let secret_path = format!("{}/{id}", secrets_path(&w.dm));
    let confirm = w.jane.get(w.app.url(&secret_path)).send().await.unwrap().text().await.unwrap();
    assert!(
        confirm.contains("To delete")
            && confirm.contains("Never used")
            && confirm.contains("can no longer obtain new tokens")
    );
    assert!(confirm.contains("at most 60 minutes"));
    let delete = format!("{secret_path}/delete");
    assert_eq!(w.jane.get(w.app.url(&delete)).send().await.unwrap().status(), 405);
    let res = w.app.post_form(&w.jane, &delete, &[]).await;
    assert_eq!(res.status(), 303);
    let back = location(&res);
    let html = w.jane.get(w.app.url(&back)).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("Deleted the client secret \"To delete\"")
            || html.contains("Deleted the client secret &#34;To delete&#34;")
            || html.contains("Deleted the client secret &quot;To delete&quot;"),
        "{html}"
    );
    let res = w.app.post_form(&w.jane, &delete, &[]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("already deleted"));
    let deleted = w.app.store.list_client_secrets(w.dm.id).await.unwrap();
    assert!(deleted[0].deleted_at.is_some());
    let events = w.app.store.recent_audit_events(50).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.action == "secret.deleted").count(), 1);
}

#[tokio::test]
async fn every_route_answers_404_outside_the_users_grants() {
    let w = world().await;
    let today = w.app.clock.today();
    let mine = seed(&w.app, &w.dm, "Mine", today + Duration::days(50)).await;
    let same_org_ungranted = seed(&w.app, &w.smc, "Sibling", today + Duration::days(50)).await;
    let other_org = seed(&w.app, &w.other_org_app, "Foreign", today + Duration::days(50)).await;
    let deleted = seed(&w.app, &w.dm, "Deleted", today + Duration::days(50)).await;
    let res = w.app.post_form(&w.jane, &format!("{}/{deleted}/delete", secrets_path(&w.dm)), &[]).await;
    assert_eq!(res.status(), 303);

    let fid = form_id(&w, &w.dm).await;
    let create_fields = [("name", "Sneaky"), ("expires_on", "2027-06-01"), ("form_id", fid.as_str())];
    // (application in the path, secret id)
    let matrix = [
        (&w.smc, same_org_ungranted),
        (&w.other_org_app, other_org),
        // A secret of one application under another application's client ID.
        (&w.dm, same_org_ungranted),
        (&w.smc, mine),
        (&w.dm, other_org),
    ];
    for (a, secret) in matrix {
        let base = secrets_path(a);
        let get_new = w.jane.get(w.app.url(&format!("{base}/new"))).send().await.unwrap().status();
        let get_secret = w.jane.get(w.app.url(&format!("{base}/{secret}"))).send().await.unwrap().status();
        let post_delete = w.app.post_form(&w.jane, &format!("{base}/{secret}/delete"), &[]).await.status();
        let post_create =
            if a.id == w.dm.id { 404 } else { w.app.post_form(&w.jane, &base, &create_fields).await.status().as_u16() };
        assert_eq!(get_secret, 404, "{} {secret}", a.name);
        assert_eq!(post_delete, 404, "{} {secret}", a.name);
        if a.id != w.dm.id {
            assert_eq!(get_new, 404, "{}", a.name);
            assert_eq!(post_create, 404, "{}", a.name);
        }
    }
    // Nonsense ids are 404 too, never 500.
    for path in ["/manage-api-credentials/not-a-uuid/secrets/new", &format!("{}/not-a-uuid", secrets_path(&w.dm))] {
        assert_eq!(w.jane.get(w.app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }
    // A deleted secret: "already deleted" on its own page, nothing else.
    let html = w
        .jane
        .get(w.app.url(&format!("{}/{deleted}", secrets_path(&w.dm))))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("already deleted"));
    assert!(!page(&w).await.contains("Deleted</td>"));
    // Nothing of the others changed.
    for a in [&w.smc, &w.other_org_app] {
        assert_eq!(live_secrets(&w, a).await, 1, "{}", a.name);
    }
    // WMDA admins are not credential managers: 404.
    let (_, admin) = w.app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    assert_eq!(admin.get(w.app.url(&format!("{}/new", secrets_path(&w.dm)))).send().await.unwrap().status(), 404);
    // Signed out: sign in first.
    let res = new_client().get(w.app.url(&format!("{}/new", secrets_path(&w.dm)))).send().await.unwrap();
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn names_with_markup_and_any_script_show_as_plain_text_everywhere() {
    let w = world().await;
    let names =
        ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "مفتاح الخادم", "🔑👩\u{200D}💻 e\u{301}"];
    for name in names {
        let res = create(&w, &w.dm, name, "2027-06-01").await;
        assert_eq!(res.status(), 200, "{name}");
        let html = res.text().await.unwrap();
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{name}");
        let page = page(&w).await;
        assert!(!page.contains("<script>alert") && !page.contains("<img src=x"));
        // Delete again to stay under the limit; check the confirmation and the notice too.
        let id = w
            .app
            .store
            .list_client_secrets(w.dm.id)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.deleted_at.is_none())
            .unwrap()
            .id;
        let confirm =
            w.jane.get(w.app.url(&format!("{}/{id}", secrets_path(&w.dm)))).send().await.unwrap().text().await.unwrap();
        assert!(!confirm.contains("<script>alert") && !confirm.contains("<img src=x"));
        let res = w.app.post_form(&w.jane, &format!("{}/{id}/delete", secrets_path(&w.dm)), &[]).await;
        let notice = w.jane.get(w.app.url(&location(&res))).send().await.unwrap().text().await.unwrap();
        assert!(!notice.contains("<script>alert") && !notice.contains("<img src=x"));
    }
    // Right-to-left text and emoji are stored as given (after NFC).
    let stored: Vec<String> =
        w.app.store.list_client_secrets(w.dm.id).await.unwrap().into_iter().map(|s| s.name).collect();
    assert!(stored.contains(&"مفتاح الخادم".to_owned()));
    assert!(stored.contains(&"🔑👩\u{200D}💻 é".to_owned()));
}

/// DESIGN.md section 6: a client secret's value appears in its one response and nowhere else:
/// not in logs, the database (session records included), URLs or emails.
#[tokio::test]
async fn a_secret_value_appears_nowhere_but_its_one_response() {
    let w = world().await;
    let form_id = form_id(&w, &w.dm).await;
    let res = w
        .app
        .post_form(
            &w.jane,
            &secrets_path(&w.dm),
            &[("name", "Needle"), ("expires_on", "2027-06-01"), ("form_id", &form_id)],
        )
        .await;
    let mut urls = vec![res.url().to_string()];
    urls.extend(res.headers().get("location").map(|l| l.to_str().unwrap().to_owned()));
    let value = shown_value(&res.text().await.unwrap());
    // Use the portal around it: the page, the confirmation, the deletion, an email.
    let id = w.app.store.list_client_secrets(w.dm.id).await.unwrap()[0].id;
    for path in ["/manage-api-credentials".to_owned(), format!("{}/{id}", secrets_path(&w.dm))] {
        let res = w.jane.get(w.app.url(&path)).send().await.unwrap();
        urls.push(res.url().to_string());
        assert!(!res.text().await.unwrap().contains(&value), "{path}");
    }
    // Used at the token endpoint, by form fields and by HTTP Basic (issue 8: create, use, delete).
    let client_id = w.dm.client_id.to_string();
    let token = |basic: bool| {
        let mut req = reqwest::Client::new().post(w.app.url("/oauth2/token"));
        let mut form = vec![("grant_type", "client_credentials"), ("resource", "data-manager-production")];
        if basic {
            req = req.basic_auth(&client_id, Some(&value));
        } else {
            form.extend([("client_id", client_id.as_str()), ("client_secret", value.as_str())]);
        }
        req.form(&form).send()
    };
    assert_eq!(token(false).await.unwrap().status(), 200);
    assert_eq!(token(true).await.unwrap().status(), 200);
    let res = w.app.post_form(&w.jane, &format!("{}/{id}/delete", secrets_path(&w.dm)), &[]).await;
    urls.extend(res.headers().get("location").map(|l| l.to_str().unwrap().to_owned()));
    assert_eq!(token(false).await.unwrap().status(), 401);
    assert_eq!(token(true).await.unwrap().status(), 401);
    w.app.post_form(&new_client(), "/password/forgot", &[("email", "jane@demo.example")]).await;
    w.app.smtp.wait_for("jane@demo.example", 2).await;

    assert!(urls.iter().all(|u| !u.contains(&value)), "{urls:?}");
    let logs = w.app.logs();
    // The searches can find things: the logs carry the requests, the dump carries the name.
    assert!(logs.contains("/manage-api-credentials/{client_id}/secrets"), "the logs were not captured");
    assert!(logs.contains("token request refused"), "the refusals were not logged");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{value}"));
    for line in logs.lines() {
        assert!(!line.contains(&value) && !line.contains(&basic), "the value is in the logs: {line}");
    }
    let dump = w.app.db.dump();
    let hex_value = hex::encode(value.as_bytes());
    let dump_text = String::from_utf8_lossy(&dump);
    assert!(dump_text.contains("Needle"), "the dump holds nothing");
    assert!(!dump_text.contains(&value) && !dump_text.contains(&hex_value), "the value is in the database");
    for mail in w.app.smtp.messages() {
        assert!(!mail.raw.contains(&value), "the value is in an email");
    }
}

/// Issue 13, point 6: the typed path extractors. A segment that is no client ID (or no UUID)
/// answers 404 to a signed-in user, but a signed-out one is sent to sign in first, whatever the
/// path holds; every spelling `ClientId::parse` accepts (upper case, no hyphens) names the
/// application, and the nil UUID, which it refuses, is 404.
#[tokio::test]
async fn path_ids_answer_404_after_the_sign_in_check_and_accept_what_client_id_parse_accepts() {
    let w = world().await;
    let id = w.dm.client_id.to_string();
    let secret = seed(&w.app, &w.dm, "Path", w.app.clock.today() + Duration::days(30)).await;
    for path in ["/manage-api-credentials/not-a-client-id/secrets/new", &format!("{}/{secret}", secrets_path(&w.dm))] {
        let res = new_client().get(w.app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert!(location(&res).starts_with("/login"), "{path}");
    }
    for spelling in [id.to_uppercase(), id.replace('-', ""), format!("{{{id}}}")] {
        let path = format!("/manage-api-credentials/{spelling}/secrets/new");
        assert_eq!(w.jane.get(w.app.url(&path)).send().await.unwrap().status(), 200, "{spelling}");
        let path = format!("/manage-api-credentials/{spelling}/secrets/{secret}");
        assert_eq!(w.jane.get(w.app.url(&path)).send().await.unwrap().status(), 200, "{spelling}");
    }
    for bad in ["not-a-client-id", "00000000-0000-0000-0000-000000000000", "%00"] {
        let path = format!("/manage-api-credentials/{bad}/secrets/new");
        let status = w.jane.get(w.app.url(&path)).send().await.unwrap().status();
        assert!(status == 404 || (bad == "%00" && status == 400), "{bad}: {status}");
        let path = format!("{}/{bad}", secrets_path(&w.dm));
        let status = w.jane.get(w.app.url(&path)).send().await.unwrap().status();
        assert!(status == 404 || (bad == "%00" && status == 400), "{bad}: {status}");
    }
    let (_, admin) = w.app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    for path in
        ["/admin/organisations/x", "/admin/applications/x", "/admin/applications/00000000-0000-0000-0000-000000000000"]
    {
        assert_eq!(admin.get(w.app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }
}

/// Issue 14, point 11: the created-secret page repeats the client ID and offers a token request
/// that reads the secret from a variable; pasted into bash with the secret on its input, it gets
/// a token, and the value is nowhere in the command.
#[tokio::test]
async fn the_created_page_offers_a_token_request_that_reads_the_secret_from_a_variable() {
    let w = world().await;
    let res = create(&w, &w.dm, "Shell", "2027-06-01").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let value = shown_value(&html);
    assert!(html.contains(&format!(r#"<code id="client-id">{}</code>"#, w.dm.client_id)), "{html}");
    let request = between(&html, r#"<code id="token-request">"#, "</code>").expect("a token request");
    let request = request.replace("&#39;", "'").replace("&#34;", "\"").replace("&quot;", "\"").replace("&amp;", "&");
    assert!(request.starts_with("read -rs CLIENT_SECRET"), "{request}");
    assert!(request.contains(r#"--data-urlencode "client_secret=$CLIENT_SECRET""#) && !request.contains(&value));
    // The portal's own address stands in the command; the test portal listens elsewhere.
    let script = request.replace("http://127.0.0.1:8080", &w.app.url("")).replace("curl ", "curl -s ");
    let mut bash = std::process::Command::new("bash")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    writeln!(bash.stdin.take().unwrap(), "{value}").unwrap();
    let out = tokio::task::spawn_blocking(move || bash.wait_with_output().unwrap()).await.unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(answer["access_token"].is_string(), "{}", String::from_utf8_lossy(&out.stdout));
}
