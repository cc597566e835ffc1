//! Issue 16, point 3 (DESIGN.md section 8): self-rotation is off by default; a credential
//! manager turns it on or off on the Manage page (audited, emailed to the other managers); a
//! WMDA admin can forbid it on the application page. SQLite, and Postgres with TEST_DATABASE_URL.

use chrono::Duration;
use secret_portal::domain::{Api, ApplicationKind, Clock as _};
use secret_portal::store::{Actor, Application, UserRole};
use serde_json::Value;

use crate::support::{TestApp, new_client};

struct World {
    app: TestApp,
    dm: Application,
    /// Jane manages the DM application (and switches).
    jane: reqwest::Client,
    /// Piet manages it too (and is told).
    piet_email: &'static str,
    /// Hans manages an application of another organisation.
    hans: reqwest::Client,
    /// A WMDA admin.
    admin: reqwest::Client,
    /// A live secret of the DM application.
    caller: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let other_org = app.create_org("DE", "OtherRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let theirs = app.register(other_org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, jane_client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    let (piet, _) = app.account("piet@demo.example", UserRole::Member(org.id)).await;
    let (hans, hans_client) = app.account("hans@other.example", UserRole::Member(other_org.id)).await;
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let now = app.clock.now();
    for (user, application) in [(jane.user_id, dm.id), (piet.user_id, dm.id), (hans.user_id, theirs.id)] {
        app.store.grant_credential_manager(user, application, &Actor::cli(), now).await.unwrap();
    }
    let (value, _) =
        app.seed_secret(dm.id, "Current", now - Duration::days(300), app.clock.today() + Duration::days(40)).await;
    World {
        app,
        dm,
        jane: jane_client,
        piet_email: "piet@demo.example",
        hans: hans_client,
        admin,
        caller: value.expose().to_owned(),
    }
}

async fn stored(w: &World) -> (bool, bool) {
    let a = w.app.store.all_applications(Some(w.dm.id), None).await.unwrap().pop().unwrap().application;
    (a.self_rotation, a.self_rotation_forbidden)
}

async fn api_create(w: &World) -> (u16, Value) {
    let res = new_client()
        .post(w.app.url("/api/v1/self/secrets"))
        .basic_auth(w.dm.client_id.to_string(), Some(&w.caller))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn events(w: &World, action: &str) -> Vec<secret_portal::store::AuditEvent> {
    w.app.store.recent_audit_events(100).await.unwrap().into_iter().filter(|e| e.action == action).collect()
}

fn details(e: &secret_portal::store::AuditEvent) -> Value {
    serde_json::from_str(&e.details).unwrap()
}

fn switch_path(w: &World) -> String {
    format!("/manage-api-credentials/{}/self-rotation", w.dm.client_id)
}

/// Off by default (the page says so and the API refuses); Jane turns it on: audited, Piet is
/// emailed (not Jane), the API creates; turning it on again changes nothing; off again refuses.
#[tokio::test]
async fn a_credential_manager_turns_self_rotation_on_and_off_audited_and_emailed() {
    let w = world().await;
    assert_eq!(stored(&w).await, (false, false), "off by default");
    let page = w.app.page(&w.jane, "/manage-api-credentials").await;
    assert!(page.contains("<strong>Off</strong>: only people create client secrets") && page.contains("Turn on"));
    let (status, p) = api_create(&w).await;
    assert_eq!((status, p["type"].as_str().unwrap()), (409, "urn:wmda:secret-portal:problem:self-rotation-off"));

    let before = (w.app.smtp.messages_to(w.piet_email).len(), w.app.smtp.messages_to("jane@demo.example").len());
    let (path, page) = w.app.post_and_follow(&w.jane, &switch_path(&w), &[("self_rotation", "on")]).await;
    assert_eq!(path, format!("/manage-api-credentials#app-{}", w.dm.client_id));
    assert!(
        page.contains("Self-rotation is on for") && page.contains("The other credential manager was emailed"),
        "{page}"
    );
    assert!(page.contains("<strong>On</strong>") && page.contains("Turn off"));
    assert_eq!(stored(&w).await, (true, false));
    let changed = events(&w, "application.self_rotation_changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].actor_label, "jane@demo.example");
    assert_eq!(details(&changed[0])["self_rotation"], "on");
    let mails = w.app.smtp.wait_for(w.piet_email, before.0 + 1).await;
    let mail = mails.last().unwrap();
    assert_eq!(mail.subject(), format!("{}: self-rotation turned on", w.dm.name));
    let text = mail.part("text/plain");
    assert!(text.contains(&format!("#app-{}", w.dm.client_id)) && text.contains("turned on self-rotation"), "{text}");
    // Emails go out in recipient order (jane before piet): Jane, who switched, got none.
    assert_eq!(w.app.smtp.messages_to("jane@demo.example").len(), before.1);

    let (status, created) = api_create(&w).await;
    assert_eq!(status, 201, "{created}");

    // Again: nothing changes, nothing is audited.
    let (_, page) = w.app.post_and_follow(&w.jane, &switch_path(&w), &[("self_rotation", "on")]).await;
    assert!(page.contains("Self-rotation was already on"), "{page}");
    assert_eq!(events(&w, "application.self_rotation_changed").await.len(), 1);

    let (_, page) = w.app.post_and_follow(&w.jane, &switch_path(&w), &[("self_rotation", "off")]).await;
    assert!(page.contains("Self-rotation is off for"), "{page}");
    assert_eq!(stored(&w).await, (false, false));
    assert_eq!(events(&w, "application.self_rotation_changed").await.len(), 2);
    w.app.smtp.wait_for(w.piet_email, before.0 + 2).await;
}

/// Bad input changes nothing: another value, no value, another organisation's manager (404, as
/// for an application that does not exist), a GET.
#[tokio::test]
async fn the_switch_refuses_bad_input_and_other_organisations() {
    let w = world().await;
    for value in ["yes", "ON", "", "on\u{0}"] {
        let res = w.app.post_form(&w.jane, &switch_path(&w), &[("self_rotation", value)]).await;
        assert_eq!(res.status(), 400, "{value:?}");
        let body = res.text().await.unwrap();
        let why = if value.contains('\0') { "NUL character" } else { "Choose whether to turn self-rotation on or off" };
        assert!(body.contains(why), "{value:?}: {body}");
    }
    let res = w.app.post_form(&w.jane, &switch_path(&w), &[]).await;
    assert_eq!(res.status(), 400);
    let res = w.app.post_form(&w.hans, &switch_path(&w), &[("self_rotation", "on")]).await;
    assert_eq!(res.status(), 404);
    let res = w
        .app
        .post_form(&w.jane, "/manage-api-credentials/not-a-client-id/self-rotation", &[("self_rotation", "on")])
        .await;
    assert_eq!(res.status(), 404);
    let res = w.jane.get(w.app.url(&switch_path(&w))).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(stored(&w).await, (false, false));
    assert!(events(&w, "application.self_rotation_changed").await.is_empty());
}

/// A WMDA admin forbids self-rotation: it turns off (the managers are emailed), the API refuses,
/// no manager can turn it on; allowed again, it stays off until a manager turns it on.
#[tokio::test]
async fn a_wmda_admin_forbids_self_rotation() {
    let w = world().await;
    w.app.post_and_follow(&w.jane, &switch_path(&w), &[("self_rotation", "on")]).await;
    let piet_before = w.app.smtp.wait_for(w.piet_email, 1).await.len();
    let jane_before = w.app.smtp.messages_to("jane@demo.example").len();

    let admin_path = format!("/admin/applications/{}/self-rotation", w.dm.id);
    let (_, page) = w.app.post_and_follow(&w.admin, &admin_path, &[("forbidden", "yes")]).await;
    assert!(
        page.contains("Self-rotation is forbidden and turned off") && page.contains("Its 2 credential managers"),
        "{page}"
    );
    assert!(page.contains("<strong>Forbidden</strong>") && page.contains("Allow self-rotation"));
    assert_eq!(stored(&w).await, (false, true));
    let mails = w.app.smtp.wait_for("jane@demo.example", jane_before + 1).await;
    assert_eq!(mails.last().unwrap().subject(), format!("{}: self-rotation turned off by WMDA", w.dm.name));
    w.app.smtp.wait_for(w.piet_email, piet_before + 1).await;
    let forbidden = events(&w, "application.self_rotation_forbidden").await;
    assert_eq!(forbidden.len(), 1);
    assert_eq!(
        (&details(&forbidden[0])["forbidden"], &details(&forbidden[0])["turned_off"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    let (status, p) = api_create(&w).await;
    assert_eq!((status, p["type"].as_str().unwrap()), (409, "urn:wmda:secret-portal:problem:self-rotation-off"));

    // A manager cannot turn it on; the page offers no switch.
    let (_, page) = w.app.post_and_follow(&w.jane, &switch_path(&w), &[("self_rotation", "on")]).await;
    assert!(page.contains("WMDA does not allow self-rotation") && !page.contains("Turn on"), "{page}");
    assert_eq!(stored(&w).await, (false, true));
    assert_eq!(events(&w, "application.self_rotation_changed").await.len(), 1);

    // Forbidding twice changes nothing; a bad value changes nothing; a manager cannot forbid.
    let (_, page) = w.app.post_and_follow(&w.admin, &admin_path, &[("forbidden", "yes")]).await;
    assert!(page.contains("already forbidden"));
    let res = w.app.post_form(&w.admin, &admin_path, &[("forbidden", "maybe")]).await;
    assert_eq!(res.status(), 422);
    assert_eq!(w.app.post_form(&w.jane, &admin_path, &[("forbidden", "no")]).await.status(), 404);
    assert_eq!(events(&w, "application.self_rotation_forbidden").await.len(), 1);

    // Allowed again: still off until a manager turns it on.
    let (_, page) = w.app.post_and_follow(&w.admin, &admin_path, &[("forbidden", "no")]).await;
    assert!(page.contains("stays off until a credential manager turns it on"), "{page}");
    assert_eq!(stored(&w).await, (false, false));
    w.app.post_and_follow(&w.jane, &switch_path(&w), &[("self_rotation", "on")]).await;
    assert_eq!(stored(&w).await, (true, false));
    let res = new_client()
        .get(w.app.url("/api/v1/self"))
        .basic_auth(w.dm.client_id.to_string(), Some(&w.caller))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["self_rotation"], true);
}
