//! The WMDA admin console over HTTP. SQLite, and Postgres with TEST_DATABASE_URL.

use crate::support::flows::{between, location};
use crate::support::{TestApp, new_client};
use chrono::Duration;
use secret_portal::domain::{Clock as _, EmailAddress, PlainSecret};
use secret_portal::store::{Actor, SeedSecret, UserRole};

/// The answer to a change that asks first (issue 14, point 4).
const YES: &[(&str, &str)] = &[("confirm", "yes")];

async fn admin_app() -> (TestApp, reqwest::Client) {
    let app = TestApp::spawn().await;
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    (app, admin)
}

async fn html(client: &reqwest::Client, app: &TestApp, path: &str) -> String {
    let res = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

async fn actions(app: &TestApp) -> Vec<String> {
    app.store.recent_audit_events(1000).await.unwrap().into_iter().map(|e| e.action).collect()
}

/// Creates NL-DemoRegistry through the console; returns its id.
async fn create_org(app: &TestApp, admin: &reqwest::Client) -> String {
    let res = app
        .post_form(
            admin,
            "/admin/organisations",
            &[("display_name", "Demo Registry"), ("country", "nl"), ("code", "DemoRegistry")],
        )
        .await;
    assert_eq!(res.status(), 303);
    location(&res).trim_start_matches("/admin/organisations/").to_owned()
}

/// Registers an application through the console; returns its id.
async fn register(
    app: &TestApp,
    admin: &reqwest::Client,
    org: &str,
    kind: &str,
    api: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut all = vec![("kind", kind), ("api", api)];
    all.extend_from_slice(fields);
    app.post_form(admin, &format!("/admin/organisations/{org}/applications"), &all).await
}

#[tokio::test]
async fn organisations_are_created_renamed_and_unique_per_country_ignoring_case() {
    let (app, admin) = admin_app().await;
    let org = create_org(&app, &admin).await;
    let list = html(&admin, &app, "/admin/organisations").await;
    assert!(list.contains("NL-DemoRegistry") && list.contains("Demo Registry"));
    let dup = app
        .post_form(
            &admin,
            "/admin/organisations",
            &[("display_name", "Again"), ("country", "NL"), ("code", "demoregistry")],
        )
        .await;
    assert_eq!(dup.status(), 409);
    assert!(dup.text().await.unwrap().contains("NL-demoregistry already exists"));
    let bad = app
        .post_form(&admin, "/admin/organisations", &[("display_name", ""), ("country", "XX"), ("code", "a-b")])
        .await;
    assert_eq!(bad.status(), 422);
    let text = bad.text().await.unwrap();
    assert!(
        text.contains("Enter the organisation")
            && text.contains("XX is not an ISO 3166-1")
            && text.contains("only letters")
    );
    // Another country may use the same code.
    let other = app
        .post_form(
            &admin,
            "/admin/organisations",
            &[("display_name", "B"), ("country", "BE"), ("code", "DemoRegistry")],
        )
        .await;
    assert_eq!(other.status(), 303);
    // Rename: the display name changes, the code does not.
    let res = app
        .post_form(&admin, &format!("/admin/organisations/{org}/rename"), &[("display_name", "Renamed Registry")])
        .await;
    assert_eq!(res.status(), 303);
    let page = html(&admin, &app, &format!("/admin/organisations/{org}")).await;
    assert!(page.contains("Renamed Registry") && page.contains("NL-DemoRegistry"));
    let all = actions(&app).await;
    assert!(
        all.iter().filter(|a| *a == "organisation.created").count() == 2
            && all.contains(&"organisation.renamed".to_owned())
    );
}

#[tokio::test]
async fn applications_get_their_derived_name_a_kept_or_generated_client_id_and_allowed_resources() {
    let (app, admin) = admin_app().await;
    let org = create_org(&app, &admin).await;
    let page = html(&admin, &app, &format!("/admin/organisations/{org}")).await;
    for name in ["Partner-NL-DemoRegistry-DM", "Partner-NL-DemoRegistry-SMC", "PartnerAlternative-NL-DemoRegistry-SMC"]
    {
        assert!(page.contains(name), "{name} is not offered");
    }
    assert!(!page.contains("PartnerAlternative-NL-DemoRegistry-DM"));
    // The form offers only what the kind and API allow.
    let form =
        html(&admin, &app, &format!("/admin/organisations/{org}/applications/new?kind=PartnerAlternative&api=SMC"))
            .await;
    assert!(form.contains("Register PartnerAlternative-NL-DemoRegistry-SMC"));
    assert!(form.contains("value=\"match-connect-sandbox\"") && !form.contains("value=\"match-connect-production\""));
    let res =
        register(&app, &admin, &org, "PartnerAlternative", "SMC", &[("resource", "match-connect-production")]).await;
    assert_eq!(res.status(), 422);
    // A partner's existing client ID is kept.
    let existing = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let res = register(
        &app,
        &admin,
        &org,
        "Partner",
        "DM",
        &[("client_id", existing), ("resource", "data-manager-production"), ("resource", "data-manager-sandbox")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let dm = location(&res);
    let page = html(&admin, &app, &dm).await;
    assert!(
        page.contains("Partner-NL-DemoRegistry-DM")
            && page.contains(existing)
            && page.contains("api://wmda/data-manager-sandbox")
    );
    // Generated when left empty; taken client IDs and a second DM application are refused.
    let res = register(
        &app,
        &admin,
        &org,
        "Partner",
        "SMC",
        &[("client_id", existing), ("resource", "search-match-sandbox")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("already belongs to another application"));
    let res = register(&app, &admin, &org, "Partner", "SMC", &[("resource", "search-match-sandbox")]).await;
    assert_eq!(res.status(), 303);
    let res = register(&app, &admin, &org, "Partner", "DM", &[("resource", "data-manager-sandbox")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("already has an application of this kind"));
    let res = register(
        &app,
        &admin,
        &org,
        "Partner",
        "SMC",
        &[("client_id", "not-a-uuid"), ("resource", "search-match-sandbox")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(actions(&app).await.iter().filter(|a| *a == "application.created").count() == 2);
    // No more DM offers on the organisation page.
    let page = html(&admin, &app, &format!("/admin/organisations/{org}")).await;
    assert!(!page.contains("applications/new?kind=Partner&amp;api=DM"));
}

#[tokio::test]
async fn audiences_are_unique_and_never_a_resource_id() {
    let (app, admin) = admin_app().await;
    let page = html(&admin, &app, "/admin/resources").await;
    assert!(page.contains("api://wmda/match-connect-sandbox"));
    let res = app
        .post_form(
            &admin,
            "/admin/resources/match-connect-sandbox",
            &[("audience", "https://api.wmda.example/mc-sandbox"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert!(html(&admin, &app, "/admin/resources").await.contains("https://api.wmda.example/mc-sandbox"));
    let taken = app
        .post_form(
            &admin,
            "/admin/resources/match-connect-production",
            &[("audience", "https://api.wmda.example/mc-sandbox"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(taken.status(), 422);
    assert!(taken.text().await.unwrap().contains("Another resource already has this audience"));
    let id = app
        .post_form(&admin, "/admin/resources/match-connect-production", &[("audience", "data-manager-sandbox")])
        .await;
    assert_eq!(id.status(), 422);
    assert!(id.text().await.unwrap().contains("never a resource id"));
    assert_eq!(app.post_form(&admin, "/admin/resources/no-such-resource", &[("audience", "x")]).await.status(), 404);
    let events = app.store.recent_audit_events(50).await.unwrap();
    let changed: Vec<_> = events.iter().filter(|e| e.action == "resource.audience_changed").collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].details.contains("api://wmda/match-connect-sandbox"), "the previous audience is recorded");
}

#[tokio::test]
async fn users_are_invited_listed_disabled_enabled_and_their_mfa_reset() {
    let (app, admin) = admin_app().await;
    let org = create_org(&app, &admin).await;
    let res = app
        .post_form(
            &admin,
            "/admin/users",
            &[("email", "Jane@Demo.example"), ("name", "Jane Doe"), ("organisation", &org)],
        )
        .await;
    assert_eq!(location(&res), "/admin/users");
    assert!(html(&admin, &app, "/admin/users").await.contains("Invitation emailed to jane@demo.example"));
    let first = app.smtp.wait_for("jane@demo.example", 1).await[0].link_path("/invite/");
    // Resend: a new link; the old one stops working.
    let jane = app.store.find_user_by_email(&EmailAddress::parse("jane@demo.example").unwrap()).await.unwrap();
    let res = app.post_form(&admin, &format!("/admin/users/{}/resend", jane.id), &[]).await;
    assert_eq!(res.status(), 303);
    let second = app.smtp.wait_for("jane@demo.example", 2).await[1].link_path("/invite/");
    assert_ne!(first, second);
    assert_eq!(new_client().get(app.url(&first)).send().await.unwrap().status(), 404);
    // Invalid invitations change nothing.
    let res = app.post_form(&admin, "/admin/users", &[("email", "not an email"), ("organisation", "")]).await;
    assert_eq!(res.status(), 422);
    // Filters.
    let invited = html(&admin, &app, "/admin/users?status=invited").await;
    assert!(invited.contains("jane@demo.example") && !invited.contains("admin@wmda.example</td>"));
    let admins = html(&admin, &app, "/admin/users?role=wmda-admin").await;
    assert!(admins.contains("admin@wmda.example") && !admins.contains("jane@demo.example"));
    let of_org = html(&admin, &app, &format!("/admin/users?organisation={org}")).await;
    assert!(of_org.contains("jane@demo.example") && !of_org.contains("admin@wmda.example</td>"));

    // Jane accepts, then is disabled: her session ends at once; enabled again she can sign in.
    let jane_client = new_client();
    let (seed, _) = app.enrol(&jane_client, &second, crate::support::flows::PASSWORD).await;
    assert_eq!(jane_client.get(app.url("/manage-api-credentials")).send().await.unwrap().status(), 200);
    assert!(html(&admin, &app, "/admin/users?status=active").await.contains("jane@demo.example"));
    assert_eq!(app.post_form(&admin, &format!("/admin/users/{}/disable", jane.id), YES).await.status(), 303);
    assert_eq!(jane_client.get(app.url("/manage-api-credentials")).send().await.unwrap().status(), 303);
    assert!(html(&admin, &app, "/admin/users?status=disabled").await.contains("jane@demo.example"));
    assert_eq!(app.post_form(&admin, &format!("/admin/users/{}/enable", jane.id), YES).await.status(), 303);
    let account = crate::support::flows::Account {
        email: "jane@demo.example".into(),
        password: crate::support::flows::PASSWORD.into(),
        seed,
        recovery_codes: vec![],
        user_id: jane.id,
    };
    let c = new_client();
    assert_eq!(app.sign_in(&c, &account).await.status(), 303);

    // MFA reset: sessions end, a re-enrolment link is emailed, the old authenticator is gone.
    let res = app.post_form(&admin, &format!("/admin/users/{}/reset-mfa", jane.id), YES).await;
    assert_eq!(res.status(), 303);
    assert_eq!(c.get(app.url("/manage-api-credentials")).send().await.unwrap().status(), 303);
    let mails = app.smtp.wait_for("jane@demo.example", 3).await;
    assert_eq!(mails[2].subject(), "Set up your authenticator again for the WMDA secret portal");
    let link = mails[2].link_path("/invite/");
    let page = new_client().get(app.url(&link)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Confirm your current password"));
    let c = new_client();
    let res = app.password_step(&c, "jane@demo.example", crate::support::flows::PASSWORD, "").await;
    assert_eq!(res.status(), 403, "a password alone must not lead anywhere after an MFA reset");
    // An admin cannot disable themselves.
    let me = app.store.find_user_by_email(&EmailAddress::parse("admin@wmda.example").unwrap()).await.unwrap();
    assert_eq!(app.post_form(&admin, &format!("/admin/users/{}/disable", me.id), YES).await.status(), 422);
    let all = actions(&app).await;
    for action in ["invitation.sent", "user.disabled", "user.enabled", "user.mfa_reset"] {
        assert!(all.contains(&action.to_owned()), "{action}");
    }
}

#[tokio::test]
async fn grants_go_to_the_applications_organisation_only_and_take_effect_at_once() {
    let (app, admin) = admin_app().await;
    let org = create_org(&app, &admin).await;
    let res = register(&app, &admin, &org, "Partner", "DM", &[("resource", "data-manager-sandbox")]).await;
    let app_path = location(&res);
    let app_id = app_path.trim_start_matches("/admin/applications/").to_owned();
    let org_id = uuid::Uuid::parse_str(&org).unwrap();
    let (jane, jane_client) = app.account("jane@demo.example", UserRole::Member(org_id)).await;
    let other = app.create_org("DE", "Other").await;
    let (hans, _) = app.account("hans@other.example", UserRole::Member(other.id)).await;
    let page = html(&admin, &app, &app_path).await;
    assert!(page.contains("Credential managers (0)") && page.contains("Fewer than two credential managers"));
    assert!(
        page.contains("jane@demo.example") && !page.contains("hans@other.example"),
        "candidates are of the organisation only"
    );

    let before = html(&jane_client, &app, "/manage-api-credentials").await;
    assert!(!before.contains("Partner-NL-DemoRegistry-DM"));
    let res = app.post_form(&admin, &format!("{app_path}/grants"), &[("user_id", &jane.user_id.to_string())]).await;
    assert_eq!(res.status(), 303);
    assert!(html(&jane_client, &app, "/manage-api-credentials").await.contains("Partner-NL-DemoRegistry-DM"));
    // Another organisation's user is refused, even when forged into the form.
    let res = app.post_form(&admin, &format!("{app_path}/grants"), &[("user_id", &hans.user_id.to_string())]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("only go to users of the application"));
    assert!(html(&admin, &app, &app_path).await.contains("Credential managers (1)"));
    // Revoke: the next request no longer sees it.
    let res = app.post_form(&admin, &format!("{app_path}/grants/{}/revoke", jane.user_id), YES).await;
    assert_eq!(res.status(), 303);
    assert!(!html(&jane_client, &app, "/manage-api-credentials").await.contains("Partner-NL-DemoRegistry-DM"));
    let all = actions(&app).await;
    assert!(all.contains(&"grant.added".to_owned()) && all.contains(&"grant.revoked".to_owned()));
    let _ = app_id;
}

#[tokio::test]
async fn the_overview_shows_what_needs_attention_and_admins_delete_compromised_secrets_with_a_reason() {
    let (app, admin) = admin_app().await;
    let org = create_org(&app, &admin).await;
    let res = register(&app, &admin, &org, "Partner", "DM", &[("resource", "data-manager-sandbox")]).await;
    let dm_path = location(&res);
    let dm_id = uuid::Uuid::parse_str(dm_path.trim_start_matches("/admin/applications/")).unwrap();
    register(&app, &admin, &org, "Partner", "SMC", &[("resource", "search-match-sandbox")]).await;
    let value = PlainSecret::generate();
    let secret_id = app
        .store
        .seed_client_secret(&SeedSecret {
            application_id: dm_id,
            name: "Leaked one".into(),
            hint: value.hint(),
            hash: value.hash(),
            expires_on: app.clock.today() + Duration::days(10),
            created_by: None,
            created_at: app.clock.now() - Duration::days(300),
        })
        .await
        .unwrap();
    let page = html(&admin, &app, "/admin").await;
    assert!(page.contains("Leaked one") && page.contains("10 days left"));
    let without = between(&page, "Applications without an unexpired secret", "</ul>").unwrap();
    assert!(without.contains("Partner-NL-DemoRegistry-SMC") && !without.contains("Partner-NL-DemoRegistry-DM"));
    let few = between(&page, "fewer than two credential managers", "</ul>").unwrap();
    assert!(few.contains("Partner-NL-DemoRegistry-DM") && few.contains("Partner-NL-DemoRegistry-SMC"));
    // Metadata only: no value, and deletion needs a reason.
    let app_page = html(&admin, &app, &dm_path).await;
    assert!(app_page.contains("Leaked one") && !app_page.contains(value.expose()));
    let res = app.post_form(&admin, &format!("{dm_path}/secrets/{secret_id}/delete"), &[("reason", "  ")]).await;
    assert_eq!(res.status(), 422);
    let res = app
        .post_form(
            &admin,
            &format!("{dm_path}/secrets/{secret_id}/delete"),
            &[("reason", "Posted in a public repository")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let page = html(&admin, &app, &location(&res)).await;
    assert!(page.contains("The client secret “Leaked one”") && page.contains("It has no credential manager to email."));
    assert!(!html(&admin, &app, &dm_path).await.contains("Leaked one"));
    let event =
        app.store.recent_audit_events(20).await.unwrap().into_iter().find(|e| e.action == "secret.deleted").unwrap();
    assert!(event.details.contains("Posted in a public repository"));
    assert_eq!(
        app.post_form(&admin, &format!("{dm_path}/secrets/{secret_id}/delete"), &[("reason", "again")]).await.status(),
        404
    );
}

#[tokio::test]
async fn the_audit_log_filters_pages_and_exports_csv_without_formulas() {
    let (app, admin) = admin_app().await;
    let org = create_org(&app, &admin).await;
    let now = app.clock.now();
    for i in 0..60 {
        let mut e = Actor::cli().event(secret_portal::store::AuditAction::DemoLoaded, now - Duration::days(3));
        e.details = serde_json::json!({ "i": i });
        app.store.record_audit_event(&e).await.unwrap();
    }
    let mut evil = Actor { user_id: None, label: "=HYPERLINK(\"http://evil\")".into(), ip: Some("192.0.2.1".into()) }
        .event(secret_portal::store::AuditAction::TotpReplayRefused, now);
    evil.details = serde_json::json!({ "note": "+1" });
    app.store.record_audit_event(&evil).await.unwrap();

    let page = html(&admin, &app, "/admin/audit").await;
    assert!(page.contains("Page 1 of") && page.contains("Older"));
    let filler = html(&admin, &app, "/admin/audit?action=demo.loaded").await;
    assert!(filler.contains("60 events"));
    let page2 = html(&admin, &app, "/admin/audit?action=demo.loaded&page=2").await;
    assert!(page2.contains("Page 2 of 2") && page2.contains("Newer"));
    let by_actor = html(&admin, &app, "/admin/audit?actor=ADMIN@wmda").await;
    assert!(
        by_actor.contains(r#"<span title="organisation.created">Organisation created</span>"#)
            && !by_actor.contains(r#"title="demo.loaded""#)
    );
    let by_org = html(&admin, &app, &format!("/admin/audit?organisation={org}")).await;
    assert!(by_org.contains("1 event") && by_org.contains("organisation.created"));
    let today = app.clock.today();
    let dated = html(
        &admin,
        &app,
        &format!("/admin/audit?from={}&to={}", today - Duration::days(3), today - Duration::days(3)),
    )
    .await;
    assert!(dated.contains("60 events"));
    let bad_date = admin.get(app.url("/admin/audit?from=yesterday")).send().await.unwrap();
    assert_eq!(bad_date.status(), 200);
    assert!(bad_date.text().await.unwrap().contains("must be YYYY-MM-DD"));

    let csv = admin.get(app.url("/admin/audit?action=auth.totp_replay_refused&format=csv")).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let body = csv.text().await.unwrap();
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert_eq!(
        lines[0],
        r#""time","actor","ip","action","action_words","organisation_id","target","target_name","details","details_json""#
    );
    assert!(lines[1].contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "{}", lines[1]);
    assert!(
        lines[1].contains(r#""Reused authentication code refused""#) && lines[1].contains(r#""Note: +1""#),
        "{}",
        lines[1]
    );
    let all = admin.get(app.url("/admin/audit?format=csv")).send().await.unwrap().text().await.unwrap();
    assert!(all.split("\r\n").filter(|l| !l.is_empty()).count() > 60);
    // A wrong date: no export (leaving the bound out would export everything), and why.
    let res = admin.get(app.url("/admin/audit?from=2026-02-30&format=csv")).send().await.unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("The from date must be YYYY-MM-DD"));
}

#[tokio::test]
async fn credential_managers_get_404_on_every_admin_route_and_cross_site_posts_are_refused() {
    let (app, admin) = admin_app().await;
    let org = create_org(&app, &admin).await;
    let org_id = uuid::Uuid::parse_str(&org).unwrap();
    let (jane, jane_client) = app.account("jane@demo.example", UserRole::Member(org_id)).await;
    let res = register(&app, &admin, &org, "Partner", "DM", &[("resource", "data-manager-sandbox")]).await;
    let app_path = location(&res);
    let gets = [
        "/admin".to_owned(),
        "/admin/organisations".into(),
        format!("/admin/organisations/{org}"),
        format!("/admin/organisations/{org}/applications/new?kind=Partner&api=SMC"),
        "/admin/applications".into(),
        app_path.clone(),
        "/admin/resources".into(),
        "/admin/users".into(),
        "/admin/audit".into(),
        "/admin/audit?format=csv".into(),
    ];
    for path in &gets {
        assert_eq!(jane_client.get(app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }
    let posts = [
        "/admin/organisations".to_owned(),
        format!("/admin/organisations/{org}/rename"),
        format!("/admin/organisations/{org}/applications"),
        format!("{app_path}/grants"),
        format!("{app_path}/grants/{}/revoke", jane.user_id),
        "/admin/resources/data-manager-sandbox".into(),
        "/admin/users".into(),
        format!("/admin/users/{}/disable", jane.user_id),
        format!("/admin/users/{}/reset-mfa", jane.user_id),
    ];
    for path in &posts {
        assert_eq!(
            app.post_form(&jane_client, path, &[("user_id", &jane.user_id.to_string())]).await.status(),
            404,
            "{path}"
        );
    }
    // Nothing changed: Jane is no manager.
    assert!(
        app.store
            .list_credential_managers(
                uuid::Uuid::parse_str(app_path.trim_start_matches("/admin/applications/")).unwrap()
            )
            .await
            .unwrap()
            .is_empty()
    );
    // A cross-site POST is refused before it reaches the handler, even for an admin.
    let res = admin
        .post(app.url("/admin/organisations"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("display_name", "Evil"), ("country", "NL"), ("code", "Evil")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(!html(&admin, &app, "/admin/organisations").await.contains("NL-Evil"));
    // Signed out: sign in first.
    assert_eq!(new_client().get(app.url("/admin/users")).send().await.unwrap().status(), 303);
}

/// Issue 14, point 3: when a WMDA admin deletes a secret as compromised, the application's
/// credential managers are emailed at once: which secret, why, and what to do next.
#[tokio::test]
async fn credential_managers_are_emailed_when_an_admin_deletes_their_secret() {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm =
        app.register(org.id, secret_portal::domain::ApplicationKind::Partner, secret_portal::domain::Api::Dm).await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store.grant_credential_manager(jane.user_id, dm.id, &Actor::cli(), app.clock.now()).await.unwrap();
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let created_at = app.clock.now() - Duration::days(30);
    let (value, secret_id) =
        app.seed_secret(dm.id, "Leaked <one>", created_at, app.clock.today() + Duration::days(90)).await;
    let before = app.smtp.messages_to("jane@demo.example").len();
    let path = format!("/admin/applications/{}/secrets/{secret_id}/delete", dm.id);
    let res = app.post_form(&admin, &path, &[("reason", "Posted in a public <b>repository</b>")]).await;
    assert_eq!(res.status(), 303);
    let mails = app.smtp.wait_for("jane@demo.example", before + 1).await;
    let mail = mails.last().unwrap();
    assert_eq!(mail.subject(), format!("Client secret \"Leaked <one>\" of {} was deleted by WMDA", dm.name));
    let text = mail.part("text/plain");
    let starts_with = format!("starts with {}", value.hint());
    assert!(starts_with.starts_with("starts with wmdacs_"), "{starts_with}");
    for expected in
        [starts_with.as_str(), &dm.client_id.to_string(), "Posted in a public <b>repository</b>", "create a new secret"]
    {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    let html = mail.part("text/html");
    assert!(!html.contains("<b>repository</b>") && !html.contains("Leaked <one>"), "escaped: {html}");
    assert!(!mail.raw.contains(value.expose()), "the value is in the email");
    assert!(app.smtp.messages_to("admin@wmda.example").iter().all(|m| !m.subject().contains("was deleted")));
}

/// Posts a change that asks first without its answer: the confirmation page (no JavaScript)
/// shows `question` and a form that sends `confirm=yes`, and nothing is recorded.
async fn asks_first(app: &TestApp, admin: &reqwest::Client, path: &str, fields: &[(&str, &str)], question: &str) {
    let before = app.store.recent_audit_events(1000).await.unwrap().len();
    let res = app.post_form(admin, path, fields).await;
    assert_eq!(res.status(), 200, "{path}");
    let page = res.text().await.unwrap();
    assert!(page.contains(&format!("<h1>{question}</h1>")), "{path}: {page}");
    assert!(page.contains(&format!(r#"action="{path}""#)) && page.contains(r#"name="confirm" value="yes""#), "{page}");
    for (name, value) in fields.iter().filter(|(name, _)| *name != "confirm") {
        assert!(page.contains(&format!(r#"name="{name}" value="{value}""#)), "{name} is carried: {page}");
    }
    assert_eq!(app.store.recent_audit_events(1000).await.unwrap().len(), before, "{path} changed something");
}

/// Issue 14, point 4: disabling, enabling, resetting MFA, revoking a grant and changing an
/// audience ask first (a dialog with JavaScript, whose question the form carries; a
/// confirmation page without) and change nothing until the answer is yes; every admin change
/// ends on a page (303, not the POST URL) that says once what happened; the application page
/// names its organisation; a user without a name shows their email; an empty overview says where
/// to start.
#[tokio::test]
async fn changes_to_access_ask_first_and_every_admin_change_ends_on_a_page_that_says_what_happened() {
    let (app, admin) = admin_app().await;
    assert!(
        html(&admin, &app, "/admin").await.contains(r#"<a href="/admin/organisations">Create an organisation</a>"#)
    );
    let fields = [("display_name", "Demo Registry"), ("country", "NL"), ("code", "DemoRegistry")];
    let (org_path, page) = app.post_and_follow(&admin, "/admin/organisations", &fields).await;
    assert!(page.contains("NL-DemoRegistry (Demo Registry) is created"), "{page}");
    assert!(!html(&admin, &app, &org_path).await.contains("is created"), "a notice is shown once");
    assert!(!html(&admin, &app, "/admin").await.contains("Create an organisation"));
    let rename = format!("{org_path}/rename");
    let (_, page) = app.post_and_follow(&admin, &rename, &[("display_name", "Demo Registry B.V.")]).await;
    assert!(page.contains("renamed to Demo Registry B.V."));
    let fields = [("kind", "Partner"), ("api", "DM"), ("resource", "data-manager-sandbox")];
    let (app_path, page) = app.post_and_follow(&admin, &format!("{org_path}/applications"), &fields).await;
    assert!(page.contains("Partner-NL-DemoRegistry-DM is registered with client ID"), "{page}");
    assert!(page.contains(&format!(r#"<a href="{org_path}">NL-DemoRegistry (Demo Registry B.V.)</a>"#)), "{page}");

    // An invitation without a name: the email stands where the name would.
    let org = org_path.trim_start_matches("/admin/organisations/").to_owned();
    let fields = [("email", "piet@demo.example"), ("name", ""), ("organisation", org.as_str())];
    let (users_path, page) = app.post_and_follow(&admin, "/admin/users", &fields).await;
    assert_eq!(users_path, "/admin/users");
    assert!(page.contains("Invitation emailed to piet@demo.example"));
    assert!(
        page.contains(
            r#"data-label="Email">piet@demo.example</td><td role="cell" data-label="Name">piet@demo.example</td>"#
        ),
        "{page}"
    );
    let org_id = uuid::Uuid::parse_str(&org).unwrap();
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org_id)).await;
    let grant = format!("{app_path}/grants");
    let (_, page) = app.post_and_follow(&admin, &grant, &[("user_id", &jane.user_id.to_string())]).await;
    assert!(page.contains("Name of jane@demo.example is now a credential manager of this application"), "{page}");
    let piet = app.store.find_user_by_email(&EmailAddress::parse("piet@demo.example").unwrap()).await.unwrap();
    let (_, page) = app.post_and_follow(&admin, &grant, &[("user_id", &piet.id.to_string())]).await;
    assert!(page.contains("piet@demo.example is now a credential manager"), "{page}");
    assert!(page.contains("<li>piet@demo.example\n"), "a manager without a name shows the email once: {page}");

    // The list pages carry each question for the dialog.
    let users = html(&admin, &app, "/admin/users").await;
    assert!(users.contains(r#"data-confirm="Disable Name of jane@demo.example?""#), "{users}");
    assert!(users.contains(r#"data-confirm="Reset the MFA of Name of jane@demo.example?""#));
    assert!(html(&admin, &app, &app_path).await.contains(
        r#"data-confirm="Revoke the credential manager role of Name of jane@demo.example on Partner-NL-DemoRegistry-DM?""#
    ));
    assert!(
        html(&admin, &app, "/admin/resources")
            .await
            .contains(r#"data-confirm="Change the audience of Data Manager sandbox?""#)
    );

    // Each asks first, then changes and says so.
    let jane_path = format!("/admin/users/{}", jane.user_id);
    // (path, fields, the question, the page it ends on, what that page says)
    type Step<'a> = (String, Vec<(&'a str, &'a str)>, &'a str, String, &'a str);
    let steps: [Step; 5] = [
        (
            format!("{jane_path}/disable"),
            vec![],
            "Disable Name of jane@demo.example?",
            "/admin/users".into(),
            "Name of jane@demo.example is disabled",
        ),
        (
            format!("{jane_path}/enable"),
            vec![],
            "Enable Name of jane@demo.example?",
            "/admin/users".into(),
            "Name of jane@demo.example is enabled",
        ),
        (
            format!("{jane_path}/reset-mfa"),
            vec![],
            "Reset the MFA of Name of jane@demo.example?",
            "/admin/users".into(),
            "MFA reset for Name of jane@demo.example",
        ),
        (
            format!("{app_path}/grants/{}/revoke", jane.user_id),
            vec![],
            "Revoke the credential manager role of Name of jane@demo.example on Partner-NL-DemoRegistry-DM?",
            app_path.clone(),
            "The credential manager role of Name of jane@demo.example on Partner-NL-DemoRegistry-DM is revoked",
        ),
        (
            "/admin/resources/data-manager-sandbox".into(),
            vec![("audience", "https://dm.wmda.example/sandbox")],
            "Change the audience of Data Manager sandbox?",
            "/admin/resources".into(),
            "The audience of Data Manager sandbox is now https://dm.wmda.example/sandbox",
        ),
    ];
    for (path, fields, question, page_path, said) in steps {
        asks_first(&app, &admin, &path, &fields, question).await;
        // Any other answer than yes is no answer.
        let mut no = fields.clone();
        no.push(("confirm", "no"));
        asks_first(&app, &admin, &path, &no, question).await;
        let mut yes = fields.clone();
        yes.push(("confirm", "yes"));
        let (landed, page) = app.post_and_follow(&admin, &path, &yes).await;
        assert_eq!(landed, page_path);
        assert!(page.contains(said), "{said}: {page}");
    }
    let all = actions(&app).await;
    for action in ["user.disabled", "user.enabled", "user.mfa_reset", "grant.revoked", "resource.audience_changed"] {
        assert_eq!(all.iter().filter(|a| *a == action).count(), 1, "{action}");
    }
    // Setting the audience it has asks nothing and changes nothing.
    let same = [("audience", "https://dm.wmda.example/sandbox")];
    let (_, page) = app.post_and_follow(&admin, "/admin/resources/data-manager-sandbox", &same).await;
    assert!(page.contains("is already https://dm.wmda.example/sandbox: nothing changed"));
    assert_eq!(actions(&app).await.iter().filter(|a| *a == "resource.audience_changed").count(), 1);
}

/// Issue 14, point 5: the audit log shows actions and details in words, targets by name (the
/// type and id on hover and in the CSV), the time on one line, and each filter's label with its
/// input.
#[tokio::test]
async fn the_audit_log_reads_as_words_with_targets_by_name_and_ids_on_hover_and_in_the_csv() {
    let (app, admin) = admin_app().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm =
        app.register(org.id, secret_portal::domain::ApplicationKind::Partner, secret_portal::domain::Api::Dm).await;
    let (jane, jane_client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    let grant = format!("/admin/applications/{}/grants", dm.id);
    app.post_and_follow(&admin, &grant, &[("user_id", &jane.user_id.to_string())]).await;
    let (value, secret_id) =
        app.seed_secret(dm.id, "Leaked one", app.clock.now(), app.clock.today() + Duration::days(90)).await;
    let hint = value.hint();
    let path = format!("/admin/applications/{}/secrets/{secret_id}/delete", dm.id);
    app.post_and_follow(&admin, &path, &[("reason", "Posted in a public repository")]).await;
    let _ = jane_client;

    let page = html(&admin, &app, "/admin/audit").await;
    for expected in [
        r#"<span title="secret.deleted">Client secret deleted</span>"#.to_owned(),
        format!(r#"<span title="client_secret {secret_id}">“Leaked one” ({hint}…) of {}</span>"#, dm.name),
        format!(
            "Application: {}; Name: Leaked one; Hint: {hint}…; Reason: Posted in a public repository; By: a WMDA admin",
            dm.name
        ),
        format!(r#"<span title="user {}">Name of jane@demo.example &#60;jane@demo.example&#62;</span>"#, jane.user_id),
        r#"<span title="grant.added">Credential manager role granted</span>"#.to_owned(),
        r#"<td role="cell" data-label="Time (UTC)" class="nowrap">"#.to_owned(),
        r#"<span class="field"><label for="action">Action</label>"#.to_owned(),
        r#"<option value="secret.deleted">Client secret deleted</option>"#.to_owned(),
    ] {
        assert!(page.contains(&expected), "{expected}: {page}");
    }
    assert!(!page.contains("{&#34;") && !page.contains("{\""), "no raw JSON on the page");
    let csv =
        admin.get(app.url("/admin/audit?action=secret.deleted&format=csv")).send().await.unwrap().text().await.unwrap();
    let line = csv.split("\r\n").nth(1).unwrap();
    assert!(line.contains(&format!(r#""client_secret {secret_id}""#)) && line.contains("“Leaked one”"), "{line}");
    assert!(line.contains(r#""{""application"":"#), "the stored details stay in the CSV: {line}");
}
