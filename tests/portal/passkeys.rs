//! Issue 19 (DESIGN.md section 11): `/account` and passkeys over HTTP, with a software
//! authenticator (webauthn-authenticator-rs, `softpasskey`) for real registration and assertion
//! ceremonies, and for the answers a browser cannot make: another origin, an altered signature,
//! a replay, a wrong user handle, a cloned authenticator, another session's or an expired
//! challenge. Each refusal has a clear message and changes nothing. SQLite, and Postgres with
//! TEST_DATABASE_URL.

use secret_portal::auth::passkey::PASSKEYS_OFF;
use secret_portal::domain::{BaseUrl, Clock as _};
use secret_portal::store::UserRole;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse, Url};

use crate::support::flows::Account;
use crate::support::flows::location;
use crate::support::{TestApp, TestDb, new_client};

const ORIGIN: &str = "http://localhost:8080";

async fn localhost_app() -> TestApp {
    TestApp::spawn_with(TestDb::new().await, |c| c.base_url = BaseUrl::parse(ORIGIN).unwrap()).await
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

/// A POST of `body` as JSON; (status, the answer's JSON).
async fn post_json(app: &TestApp, client: &reqwest::Client, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let res =
        client.post(app.url(path)).header("content-type", "application/json").body(body.to_vec()).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

/// A form POST answered with JSON; (status, JSON).
async fn post_for_json(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let res = app.post_form(client, path, fields).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

/// Registers a passkey named `name` for the signed-in `client` with `key`; the answer's JSON.
async fn register(app: &TestApp, client: &reqwest::Client, key: &mut SoftPasskey, name: &str) -> serde_json::Value {
    let (status, options) = post_for_json(app, client, "/account/passkeys/options", &[("name", name)]).await;
    assert_eq!(status, 200, "{options}");
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = key.do_registration(origin(), options).unwrap();
    let (status, json) = post_json(app, client, "/account/passkeys", &serde_json::to_vec(&answer).unwrap()).await;
    assert_eq!(status, 200, "{json}");
    json
}

/// A fresh client past the password step of `account`.
async fn at_second_step(app: &TestApp, account: &Account) -> reqwest::Client {
    let client = new_client();
    let res = app.password_step(&client, &account.email, &account.password, "").await;
    assert_eq!(location(&res), "/login/mfa");
    client
}

/// The options of the second step with a passkey, and the authenticator's answer to them from
/// `at` (an origin).
async fn second_step_answer(
    app: &TestApp,
    client: &reqwest::Client,
    key: &mut SoftPasskey,
    at: &str,
) -> PublicKeyCredential {
    let (status, options) = post_for_json(app, client, "/login/mfa/passkey/options", &[]).await;
    assert_eq!(status, 200, "{options}");
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    key.do_authentication(Url::parse(at).unwrap(), options).unwrap()
}

async fn signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    let res = client.get(app.url("/account")).send().await.unwrap();
    res.status() == 200
}

async fn last_used(app: &TestApp, user_id: uuid::Uuid) -> Vec<Option<chrono::DateTime<chrono::Utc>>> {
    app.store.list_passkeys(user_id).await.unwrap().iter().map(|p| p.last_used_at).collect()
}

#[tokio::test]
async fn the_account_page_says_passkeys_need_a_host_name_on_an_ip_address() {
    let app = TestApp::spawn().await;
    let (_, client) = app.account("ip@example.org", UserRole::WmdaAdmin).await;
    let html = client.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(PASSKEYS_OFF), "{html}");
    assert!(html.contains("10 of 10 left"), "{html}");
    assert!(!html.contains("passkey.js"));
    let (status, json) = post_for_json(&app, &client, "/account/passkeys/options", &[("name", "Laptop")]).await;
    assert_eq!(status, 404);
    assert_eq!(json["error"], PASSKEYS_OFF);
    let (status, _) = post_for_json(&app, &new_client(), "/login/passkey/options", &[]).await;
    assert_eq!(status, 404);
    // The header links to the page on every signed-in page.
    let home = client.get(app.url("/admin")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("href=\"/account\""));
}

#[tokio::test]
async fn a_registered_passkey_replaces_the_code_at_the_second_step() {
    let app = localhost_app().await;
    let (account, client) = app.account("pk@example.org", UserRole::WmdaAdmin).await;
    let mut key = SoftPasskey::new(true);
    let mails_before = app.smtp.messages_to(&account.email).len();
    let json = register(&app, &client, &mut key, "  Work laptop ").await;
    assert_eq!(json["redirect"], "/account");
    let html = client.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Passkey “Work laptop” added"), "{html}");
    assert!(html.contains("<td>Work laptop</td>") && html.contains("<td>never</td>"), "{html}");
    let mails = app.smtp.wait_for(&account.email, mails_before + 1).await;
    let text = mails.last().unwrap().part("text/plain");
    assert!(text.contains("A passkey named “Work laptop” was added to your account."), "{text}");
    let events = app.store.recent_audit_events(5).await.unwrap();
    assert!(events.iter().any(|e| e.action == "passkey.added"));

    // The second step with the passkey: signed in, as with a code.
    let other = at_second_step(&app, &account).await;
    let page = other.get(app.url("/login/mfa")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Use a passkey instead") && page.contains("/static/passkey.js"), "{page}");
    let answer = second_step_answer(&app, &other, &mut key, ORIGIN).await;
    let (status, json) = post_json(&app, &other, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    assert_eq!((status, json["redirect"].as_str()), (200, Some("/admin")), "{json}");
    assert!(signed_in(&app, &other).await);
    assert!(last_used(&app, account.user_id).await[0].is_some());
    let events = app.store.recent_audit_events(5).await.unwrap();
    let sign_in = events.iter().find(|e| e.action == "auth.sign_in").unwrap();
    assert!(sign_in.details.contains("\"passkey\""), "{}", sign_in.details);

    // TOTP keeps working beside it.
    let third = new_client();
    let res = app.sign_in(&third, &account).await;
    assert_eq!(res.status(), 303);
    assert!(signed_in(&app, &third).await);
}

#[tokio::test]
async fn forged_replayed_and_stale_passkey_answers_are_refused_and_change_nothing() {
    let app = localhost_app().await;
    let (account, client) = app.account("forge@example.org", UserRole::WmdaAdmin).await;
    let (other_account, _) = app.account("other@example.org", UserRole::WmdaAdmin).await;
    let mut key = SoftPasskey::new(true);
    register(&app, &client, &mut key, "Key").await;
    let before = last_used(&app, account.user_id).await;

    // Each refusal counts against the (email, address) pair, 5 in a row block it (tested at the
    // end): the count is cleared after each case here, as a success would.
    let throttle = &app.state.services.throttle;
    let ip: std::net::IpAddr = [127, 0, 0, 1].into();
    let refuse = |status: u16, json: &serde_json::Value, text: &str| {
        assert!(status == 403 || status == 400, "{status} {json}");
        assert!(json["error"].as_str().unwrap_or_default().contains(text), "{json}");
        throttle.forget_pair(&account.email, ip);
    };

    // Made for another origin: the same host on another port, and a phishing site that relays
    // the portal's challenge under its own relying-party id.
    let c = at_second_step(&app, &account).await;
    let answer = second_step_answer(&app, &c, &mut key, "http://localhost:9999").await;
    let (s, j) = post_json(&app, &c, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    refuse(s, &j, "another web address");
    assert!(!signed_in(&app, &c).await);
    let c = at_second_step(&app, &account).await;
    let (_, mut options) = post_for_json(&app, &c, "/login/mfa/passkey/options", &[]).await;
    options["publicKey"]["rpId"] = serde_json::json!("evil.example");
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = key.do_authentication(Url::parse("https://evil.example").unwrap(), options).unwrap();
    let (s, j) = post_json(&app, &c, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    refuse(s, &j, "another web address");
    assert!(!signed_in(&app, &c).await);

    // An altered signature.
    let c = at_second_step(&app, &account).await;
    let mut answer = second_step_answer(&app, &c, &mut key, ORIGIN).await;
    let last = answer.response.signature.len() - 1;
    answer.response.signature[last] ^= 1;
    let (s, j) = post_json(&app, &c, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    refuse(s, &j, "could not be verified");
    assert!(!signed_in(&app, &c).await);

    // A wrong user handle.
    let c = at_second_step(&app, &account).await;
    let mut answer = second_step_answer(&app, &c, &mut key, ORIGIN).await;
    answer.response.user_handle = Some(other_account.user_id.as_bytes().to_vec());
    let (s, j) = post_json(&app, &c, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    refuse(s, &j, "names another account");
    assert!(!signed_in(&app, &c).await);

    // A challenge of another session: the answer is posted in a session that asked for none.
    let c = at_second_step(&app, &account).await;
    let answer = second_step_answer(&app, &c, &mut key, ORIGIN).await;
    let elsewhere = at_second_step(&app, &account).await;
    let (s, j) = post_json(&app, &elsewhere, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    refuse(s, &j, "not waiting in this browser session");
    assert!(!signed_in(&app, &elsewhere).await);

    // An expired challenge (over 5 minutes by the portal's clock).
    let c = at_second_step(&app, &account).await;
    let answer = second_step_answer(&app, &c, &mut key, ORIGIN).await;
    app.clock.advance(chrono::Duration::seconds(301));
    let (s, j) = post_json(&app, &c, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    refuse(s, &j, "expired after 5 minutes");
    assert!(!signed_in(&app, &c).await);
    assert_eq!(last_used(&app, account.user_id).await, before, "no refusal changed the passkey");

    // A replay: the same answer twice; the challenge went with the first.
    let c = at_second_step(&app, &account).await;
    let answer = serde_json::to_vec(&second_step_answer(&app, &c, &mut key, ORIGIN).await).unwrap();
    let (s, _) = post_json(&app, &c, "/login/mfa/passkey", &answer).await;
    assert_eq!(s, 200);
    let c2 = at_second_step(&app, &account).await;
    let (s, j) = post_json(&app, &c2, "/login/mfa/passkey", &answer).await;
    refuse(s, &j, "not waiting in this browser session");
    assert!(!signed_in(&app, &c2).await);

    // Copies of one answer sent at once in one session (each request holds its own copy of
    // the session's ceremony): one counts. SoftPasskey counts up; a synced passkey's counter
    // stays 0, so the counter cannot be what refuses the copies.
    let c3 = at_second_step(&app, &account).await;
    let answer = serde_json::to_vec(&second_step_answer(&app, &c3, &mut key, ORIGIN).await).unwrap();
    let (a, b, d) = tokio::join!(
        post_json(&app, &c3, "/login/mfa/passkey", &answer),
        post_json(&app, &c3, "/login/mfa/passkey", &answer),
        post_json(&app, &c3, "/login/mfa/passkey", &answer)
    );
    // The others are refused: the ceremony is used (403), or the session was cycled by the
    // one that counted (401), whichever they meet first.
    let statuses = [a.0, b.0, d.0];
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{a:?} {b:?} {d:?}");
    assert!(statuses.iter().all(|s| [200, 401, 403].contains(s)), "{a:?} {b:?} {d:?}");
    throttle.forget_pair(&account.email, ip);

    let used = last_used(&app, account.user_id).await;
    // A cloned authenticator: the stored counter is ahead of the one the key signs.
    let stored = &app.store.list_passkeys(account.user_id).await.unwrap()[0];
    let mut credential: serde_json::Value = serde_json::from_str(&stored.credential).unwrap();
    credential["cred"]["counter"] = serde_json::json!(1000);
    raw_sql!(app.store, "update passkey set credential = $1 where id = $2", credential.to_string(), stored.id).unwrap();
    let c = at_second_step(&app, &account).await;
    let answer = second_step_answer(&app, &c, &mut key, ORIGIN).await;
    let (s, j) = post_json(&app, &c, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    refuse(s, &j, "counter went backwards");
    assert!(!signed_in(&app, &c).await);
    assert_eq!(last_used(&app, account.user_id).await, used);

    // Not JSON: a clear refusal, not a 5xx.
    let c = at_second_step(&app, &account).await;
    second_step_answer(&app, &c, &mut key, ORIGIN).await;
    let (s, j) = post_json(&app, &c, "/login/mfa/passkey", b"{not json").await;
    assert_eq!(s, 400, "{j}");
    assert!(j["error"].as_str().unwrap().contains("could not be read"));

    // Five refusals in a row block the pair: the fifth is answered 429 with the wait.
    throttle.forget_pair(&account.email, ip);
    for attempt in 0..5 {
        let c = at_second_step(&app, &account).await;
        let mut answer = second_step_answer(&app, &c, &mut key, ORIGIN).await;
        answer.response.signature[0] ^= 1;
        let (s, _) = post_json(&app, &c, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
        assert_eq!(s, if attempt < 4 { 403 } else { 429 }, "attempt {attempt}");
    }

    let events = app.store.recent_audit_events(60).await.unwrap();
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e.action == "auth.sign_in_failed" && e.details.contains("\"passkey\""))
        .map(|e| e.details.as_str())
        .collect();
    for reason in
        ["wrong_origin", "invalid_assertion", "wrong_user_handle", "no_ceremony", "expired", "counter_went_backwards"]
    {
        assert!(reasons.iter().any(|d| d.contains(reason)), "{reason} not audited: {reasons:?}");
    }
}

#[tokio::test]
async fn a_discoverable_passkey_signs_in_alone() {
    let app = localhost_app().await;
    let (account, client) =
        app.account("alone@example.org", UserRole::Member(app.create_org("NL", "Alone").await.id)).await;
    let mut key = SoftPasskey::new(true);
    register(&app, &client, &mut key, "Phone").await;
    let login = new_client().get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("Sign in with a passkey"), "{login}");
    let stored = app.store.list_passkeys(account.user_id).await.unwrap().remove(0);

    // The software authenticator holds no resident keys: it is told which credential to use,
    // and its answer gets the user handle a discoverable credential carries.
    let answer = |key: &mut SoftPasskey, options: serde_json::Value, handle: Option<Vec<u8>>| {
        let mut options = options;
        let parsed: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        assert!(parsed.public_key.allow_credentials.is_empty(), "any credential of the site");
        assert!(parsed.mediation.is_none(), "a modal request");
        use base64::Engine as _;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&stored.credential_id);
        options["publicKey"]["allowCredentials"] = serde_json::json!([{ "type": "public-key", "id": id }]);
        let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let mut answer = key.do_authentication(origin(), options).unwrap();
        answer.response.user_handle = handle;
        serde_json::to_vec(&answer).unwrap()
    };

    // Without a user handle: refused.
    let c = new_client();
    let (_, options) = post_for_json(&app, &c, "/login/passkey/options", &[]).await;
    let body = answer(&mut key, options, None);
    let (s, j) = post_json(&app, &c, "/login/passkey", &body).await;
    assert_eq!(s, 403, "{j}");
    assert!(!signed_in(&app, &c).await);

    let c = new_client();
    let (_, options) = post_for_json(&app, &c, "/login/passkey/options", &[]).await;
    let body = answer(&mut key, options, Some(account.user_id.as_bytes().to_vec()));
    let (s, j) = post_json(&app, &c, "/login/passkey?next=/manage-api-credentials/activity", &body).await;
    assert_eq!((s, j["redirect"].as_str()), (200, Some("/manage-api-credentials/activity")), "{j}");
    assert!(signed_in(&app, &c).await);

    // A disabled account is refused, passkey or not.
    raw_sql!(app.store, "update portal_user set disabled_at = $1 where id = $2", app.clock.now(), account.user_id)
        .unwrap();
    let c = new_client();
    let (_, options) = post_for_json(&app, &c, "/login/passkey/options", &[]).await;
    let body = answer(&mut key, options, Some(account.user_id.as_bytes().to_vec()));
    let (s, _) = post_json(&app, &c, "/login/passkey", &body).await;
    assert_eq!(s, 403);
    assert!(!signed_in(&app, &c).await);
}

#[tokio::test]
async fn account_changes_ask_for_the_password_after_five_minutes_and_are_emailed() {
    let app = localhost_app().await;
    let (account, client) = app.account("codes@example.org", UserRole::WmdaAdmin).await;
    let mails_before = app.smtp.messages_to(&account.email).len();
    app.clock.advance(chrono::Duration::minutes(6));
    let res = app.post_form(&client, "/account/recovery-codes", &[]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Enter your current password"));
    let res = app.post_form(&client, "/account/recovery-codes", &[("current_password", "wrong password!")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("The current password is wrong."));
    let res = app.post_form(&client, "/account/recovery-codes", &[("current_password", &account.password)]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let codes: Vec<String> =
        html.split("<li><code>").skip(1).filter_map(|s| s.split("</code>").next()).map(str::to_owned).collect();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| !account.recovery_codes.contains(c)));
    let mails = app.smtp.wait_for(&account.email, mails_before + 1).await;
    assert!(mails.last().unwrap().part("text/plain").contains("New recovery codes were made"));

    // A double submit: the second request, seconds later, keeps the codes the first showed.
    let res = app.post_form(&client, "/account/recovery-codes", &[]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("made for your account seconds ago"));
    let (a, b) = tokio::join!(
        app.post_form(&client, "/account/recovery-codes", &[]),
        app.post_form(&client, "/account/recovery-codes", &[])
    );
    assert_eq!(
        (a.status(), b.status()),
        (reqwest::StatusCode::UNPROCESSABLE_ENTITY, reqwest::StatusCode::UNPROCESSABLE_ENTITY)
    );
    // The password just typed counts as a fresh factor: the next change within 5 minutes needs none.
    app.clock.advance(chrono::Duration::seconds(11));
    let (a, b) = tokio::join!(
        app.post_form(&client, "/account/recovery-codes", &[]),
        app.post_form(&client, "/account/recovery-codes", &[])
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422], "of two at once, one makes codes and the other says so");

    // An old code no longer signs in; a new one does.
    let c = at_second_step(&app, &account).await;
    let res = app.post_form(&c, "/login/mfa", &[("recovery_code", &account.recovery_codes[0])]).await;
    assert!(res.text().await.unwrap().contains("wrong or was used before"));
    let html = client.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("10 of 10 left"));

    // Guessing the current password in a taken-over session meets the sign-in throttle.
    app.clock.advance(chrono::Duration::minutes(6));
    let mut last = String::new();
    for _ in 0..5 {
        let res = app.post_form(&client, "/account/recovery-codes", &[("current_password", "a guess, wrong")]).await;
        assert_eq!(res.status(), 422);
        last = res.text().await.unwrap();
    }
    assert!(last.contains("Too many attempts"), "{last}");
    let res = app.post_form(&client, "/account/recovery-codes", &[("current_password", &account.password)]).await;
    assert_eq!(res.status(), 422, "blocked even with the right password");
    let events = app.store.recent_audit_events(10).await.unwrap();
    assert!(events.iter().any(|e| e.action == "auth.sign_in_failed" && e.details.contains("\"account\"")));
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_keeps_this_one() {
    let app = localhost_app().await;
    let (account, client) = app.account("pw@example.org", UserRole::WmdaAdmin).await;
    let mails_before = app.smtp.messages_to(&account.email).len();
    let other = new_client();
    app.sign_in(&other, &account).await;
    assert!(signed_in(&app, &other).await);
    let new_password = "a new and quite long passphrase 42";
    for (current, password, confirm, message) in [
        ("", new_password, new_password, "Enter your current password."),
        ("not my password!", new_password, new_password, "The current password is wrong."),
        (account.password.as_str(), "short", "short", "at least 12"),
        (account.password.as_str(), new_password, "different confirmation", "differ"),
        (account.password.as_str(), account.password.as_str(), account.password.as_str(), "is your current one"),
    ] {
        let res = app
            .post_form(
                &client,
                "/account/password",
                &[("current_password", current), ("password", password), ("password_confirm", confirm)],
            )
            .await;
        assert_eq!(res.status(), 422, "{message}");
        let html = res.text().await.unwrap();
        assert!(html.contains(message), "{message}: {html}");
    }
    assert!(signed_in(&app, &other).await, "a refused change ends nothing");
    app.clock.advance(chrono::Duration::seconds(1));
    let fields = [
        ("current_password", account.password.as_str()),
        ("password", new_password),
        ("password_confirm", new_password),
    ];
    let (path, html) = app.post_and_follow(&client, "/account/password", &fields).await;
    assert_eq!(path, "/account");
    assert!(html.contains("Every other session of your account has ended"), "{html}");
    assert!(signed_in(&app, &client).await, "this session goes on");
    assert!(!signed_in(&app, &other).await, "the other session ended");
    let events = app.store.recent_audit_events(5).await.unwrap();
    assert!(events.iter().any(|e| e.action == "account.password_changed"));
    let mails = app.smtp.wait_for(&account.email, mails_before + 1).await;
    assert!(mails.iter().any(|m| m.part("text/plain").contains("Your password was changed.")));
    // The new password signs in.
    let c = new_client();
    let res = app.password_step(&c, &account.email, new_password, "").await;
    assert_eq!(location(&res), "/login/mfa");
}

#[tokio::test]
async fn passkeys_are_renamed_and_removed_by_their_owner_only() {
    let app = localhost_app().await;
    let (account, client) = app.account("ren@example.org", UserRole::WmdaAdmin).await;
    let (_, stranger) = app.account("stranger@example.org", UserRole::WmdaAdmin).await;
    let mut key = SoftPasskey::new(true);
    register(&app, &client, &mut key, "Old name").await;
    let id = app.store.list_passkeys(account.user_id).await.unwrap()[0].id;
    // Another user's passkey is not found.
    let res = app.post_form(&stranger, &format!("/account/passkeys/{id}/rename"), &[("name", "Mine")]).await;
    assert_eq!(res.status(), 404);
    let res = app.post_form(&stranger, &format!("/account/passkeys/{id}/remove"), &[]).await;
    assert_eq!(res.status(), 404);
    // Bad names get a message.
    let long = "x".repeat(61);
    for (name, message) in [
        ("  ", "Give the passkey a name"),
        ("\u{200B}\u{FEFF}", "Give the passkey a name"),
        (long.as_str(), "at most 60"),
        ("\u{202E}YubiKey", "change the text direction"),
        ("a\u{2028}b", "one line"),
    ] {
        let res = app.post_form(&client, &format!("/account/passkeys/{id}/rename"), &[("name", name)]).await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains(message));
    }
    let (_, html) =
        app.post_and_follow(&client, &format!("/account/passkeys/{id}/rename"), &[("name", "New name")]).await;
    assert!(html.contains("renamed to “New name”") && html.contains("<td>New name</td>"), "{html}");
    let (_, html) = app.post_and_follow(&client, &format!("/account/passkeys/{id}/remove"), &[]).await;
    assert!(html.contains("Passkey “New name” removed") && html.contains("You have no passkeys yet"), "{html}");
    let actions: Vec<String> = app.store.recent_audit_events(5).await.unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"passkey.renamed".to_owned()) && actions.contains(&"passkey.removed".to_owned()));
    // Each change is emailed to the owner: added, renamed, removed.
    let mails = app.smtp.wait_for(&account.email, 4).await;
    let texts: Vec<String> = mails.iter().map(|m| m.part("text/plain")).collect();
    for what in [
        "A passkey named “Old name” was added",
        "Your passkey “Old name” was renamed to “New name”.",
        "Your passkey “New name” was removed",
    ] {
        assert!(texts.iter().any(|t| t.contains(what)), "{what}: {texts:?}");
    }
    // Removed: the second step no longer offers it.
    let c = at_second_step(&app, &account).await;
    let page = c.get(app.url("/login/mfa")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Use a passkey instead"));
}

async fn passkey_mode_app(db: TestDb) -> TestApp {
    TestApp::spawn_with(db, |c| {
        c.base_url = BaseUrl::parse(ORIGIN).unwrap();
        c.admin_mfa = secret_portal::config::AdminMfa::Passkey;
    })
    .await
}

/// Registers the first passkey at `/passkey/setup` in `client`'s session (at the passkey
/// enrolment stage); the answer's JSON.
async fn first_passkey(app: &TestApp, client: &reqwest::Client, key: &mut SoftPasskey) -> serde_json::Value {
    let page = client.get(app.url("/passkey/setup")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Register your passkey"));
    let (status, options) = post_for_json(app, client, "/passkey/setup/options", &[("name", "YubiKey")]).await;
    assert_eq!(status, 200, "{options}");
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = key.do_registration(origin(), options).unwrap();
    let (status, json) = post_json(app, client, "/passkey/setup", &serde_json::to_vec(&answer).unwrap()).await;
    assert_eq!(status, 200, "{json}");
    json
}

#[tokio::test]
async fn under_admin_passkey_mode_admins_sign_in_with_a_passkey_only() {
    let app = passkey_mode_app(TestDb::new().await).await;
    // The invitation's TOTP enrolment leads to the passkey, not into the portal.
    let (admin, client) = app.account("boss@example.org", UserRole::WmdaAdmin).await;
    assert!(!signed_in(&app, &client).await);
    let mut key = SoftPasskey::new(true);
    let json = first_passkey(&app, &client, &mut key).await;
    assert_eq!(json["redirect"], "/admin");
    assert!(signed_in(&app, &client).await);

    // A code no longer signs the admin in; nothing is checked or counted.
    let c = at_second_step(&app, &admin).await;
    let page = c.get(app.url("/login/mfa")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("WMDA admins sign in with a passkey") && page.contains("Use your passkey"), "{page}");
    app.clock.advance(chrono::Duration::seconds(30));
    let code = admin.seed.code_at(app.clock.now());
    let res = app.post_form(&c, "/login/mfa", &[("code", &code)]).await;
    assert_eq!(res.status(), 403);
    let res = app.post_form(&c, "/login/mfa", &[("recovery_code", &admin.recovery_codes[0])]).await;
    assert_eq!(res.status(), 403);
    assert!(!signed_in(&app, &c).await);
    // The passkey does.
    let answer = second_step_answer(&app, &c, &mut key, ORIGIN).await;
    let (s, j) = post_json(&app, &c, "/login/mfa/passkey", &serde_json::to_vec(&answer).unwrap()).await;
    assert_eq!(s, 200, "{j}");
    assert!(signed_in(&app, &c).await);

    // The admin's last passkey stays.
    let id = app.store.list_passkeys(admin.user_id).await.unwrap()[0].id;
    let res = app.post_form(&c, &format!("/account/passkeys/{id}/remove"), &[]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("This is your last passkey"));
    assert_eq!(app.store.list_passkeys(admin.user_id).await.unwrap().len(), 1);
    // With two, removing both at once leaves one: the removals go one after the other.
    register(&app, &c, &mut SoftPasskey::new(true), "Spare").await;
    let ids: Vec<_> = app.store.list_passkeys(admin.user_id).await.unwrap().iter().map(|p| p.id).collect();
    let paths: Vec<String> = ids.iter().map(|id| format!("/account/passkeys/{id}/remove")).collect();
    let (a, b) = tokio::join!(app.post_form(&c, &paths[0], &[]), app.post_form(&client, &paths[1], &[]));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 422]);
    assert_eq!(app.store.list_passkeys(admin.user_id).await.unwrap().len(), 1);

    // A credential manager is not bound by the mode.
    let org = app.create_org("NL", "Free").await;
    let (_, member) = app.account("member@example.org", UserRole::Member(org.id)).await;
    assert!(signed_in(&app, &member).await);
}

#[tokio::test]
async fn turning_admin_passkey_mode_on_ends_code_sessions_and_mails_enrolment_links() {
    // Under `any`, two admins sign in with codes.
    let app = localhost_app().await;
    let (ann, ann_client) = app.account("ann@example.org", UserRole::WmdaAdmin).await;
    let (bob, _) = app.account("bob@example.org", UserRole::WmdaAdmin).await;
    // The users page shows each user's factors.
    let users = ann_client.get(app.url("/admin/users")).send().await.unwrap().text().await.unwrap();
    assert!(users.contains("TOTP, 10 recovery codes"), "{users}");
    assert!(users.contains("Send passkey link to bob@example.org"), "{users}");

    // The mode goes on (a replica with it, on the same database and sessions).
    let db = app.db.same();
    let key = app.config.master_key.clone();
    let strict = TestApp::spawn_with(db, |c| {
        c.master_key = key;
        c.base_url = BaseUrl::parse(ORIGIN).unwrap();
        c.admin_mfa = secret_portal::config::AdminMfa::Passkey;
    })
    .await;
    strict.clock.set(app.clock.now());
    // A session signed in with a code ends there.
    let res = ann_client.get(strict.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(!signed_in(&strict, &ann_client).await);

    // Each admin without a passkey gets one link, once.
    let sent =
        secret_portal::auth::link::send_passkey_links(&strict.store, &strict.config.base_url, strict.clock.now())
            .await
            .unwrap();
    assert_eq!(sent, 2);
    let again =
        secret_portal::auth::link::send_passkey_links(&strict.store, &strict.config.base_url, strict.clock.now())
            .await
            .unwrap();
    assert_eq!(again, 0, "an unused link is not sent again");
    strict.state.services.mailer.wake();
    let mails = strict.smtp.wait_for(&bob.email, 1).await;
    let link = mails.last().unwrap().link_path("/passkey/enrol/");

    // The link asks for the password and a code; wrong ones are refused.
    let c = new_client();
    assert_eq!(c.get(strict.url(&link)).send().await.unwrap().status(), 200);
    let res = strict.post_form(&c, &link, &[("password", "not the password"), ("code", "123456")]).await;
    assert!(res.text().await.unwrap().contains("The password is wrong."));
    let res = strict.post_form(&c, &link, &[("password", &bob.password), ("code", "000000")]).await;
    assert!(res.text().await.unwrap().contains("The code is wrong"));
    strict.clock.advance(chrono::Duration::seconds(30));
    let code = bob.seed.code_at(strict.clock.now());
    let res = strict.post_form(&c, &link, &[("password", &bob.password), ("code", &code)]).await;
    assert_eq!(location(&res), "/passkey/setup");
    let mut key = SoftPasskey::new(true);
    let json = first_passkey(&strict, &c, &mut key).await;
    assert_eq!(json["redirect"], "/admin");
    assert!(signed_in(&strict, &c).await);
    // Used up.
    let res = new_client().get(strict.url(&link)).send().await.unwrap();
    assert_ne!(res.status(), 200);
    let actions: Vec<String> =
        strict.store.recent_audit_events(20).await.unwrap().into_iter().map(|e| e.action).collect();
    for action in ["passkey.link_sent", "passkey.enrolment_started", "passkey.added"] {
        assert!(actions.contains(&action.to_owned()), "{action}: {actions:?}");
    }
    let users = c.get(strict.url("/admin/users")).send().await.unwrap().text().await.unwrap();
    assert!(users.contains("TOTP, 1 passkey, 10 recovery codes"), "{users}");
    // A first passkey only: with one, no link is sent, and an unused one stops working.
    let ann_link = mails_link(&strict, &ann.email).await;
    let bob_user = strict.store.find_user(bob.user_id).await.unwrap();
    let refused = secret_portal::auth::link::send_passkey_link(
        &strict.store,
        &strict.config.base_url,
        &bob_user,
        &secret_portal::store::Actor::cli(),
        strict.clock.now(),
    )
    .await;
    assert!(matches!(refused, Err(secret_portal::auth::link::PasskeyLinkError::NotApplicable(_))));
    assert!(!users.contains("Send passkey link to bob@example.org"), "{users}");
    assert!(users.contains("Send passkey link to ann@example.org"), "{users}");
    let ann_user = strict.store.find_user(ann.user_id).await.unwrap();
    let ann_key_client = new_client();
    raw_sql!(
        strict.store,
        "insert into passkey (id, user_id, name, credential_id, credential, sign_count, discoverable, created_at)
         values ($1, $2, 'Elsewhere', $3, '{}', 0, $4, $5)",
        uuid::Uuid::new_v4(),
        ann_user.id,
        vec![7u8; 16],
        false,
        strict.clock.now()
    )
    .unwrap();
    let res = ann_key_client.get(strict.url(&ann_link)).send().await.unwrap();
    assert_eq!(res.status(), 410);
    assert!(res.text().await.unwrap().contains("You have a passkey already"));
}

/// The passkey enrolment link of the latest such email to `to`.
async fn mails_link(app: &TestApp, to: &str) -> String {
    let mails = app.smtp.wait_for(to, 1).await;
    mails.iter().rev().find(|m| m.part("text/plain").contains("/passkey/enrol/")).unwrap().link_path("/passkey/enrol/")
}

#[tokio::test]
async fn two_passkeys_of_one_name_are_refused_even_when_registered_at_once() {
    let app = localhost_app().await;
    let (account, first) = app.account("twins@example.org", UserRole::WmdaAdmin).await;
    let second = new_client();
    app.sign_in(&second, &account).await;
    // Both sessions ask before either registers: each check passes.
    let mut answers = Vec::new();
    for client in [&first, &second] {
        let (status, options) = post_for_json(&app, client, "/account/passkeys/options", &[("name", "Twin")]).await;
        assert_eq!(status, 200, "{options}");
        let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        answers.push(SoftPasskey::new(true).do_registration(origin(), options).unwrap());
    }
    let bodies: Vec<Vec<u8>> = answers.iter().map(|a| serde_json::to_vec(a).unwrap()).collect();
    let (a, b) = tokio::join!(
        post_json(&app, &first, "/account/passkeys", &bodies[0]),
        post_json(&app, &second, "/account/passkeys", &bodies[1])
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let refused = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(refused["error"], "You have a passkey of this name. Choose another.");
    assert_eq!(app.store.list_passkeys(account.user_id).await.unwrap().len(), 1);

    // Renaming another passkey to a taken name gets the same message.
    register(&app, &first, &mut SoftPasskey::new(true), "Other").await;
    let other =
        app.store.list_passkeys(account.user_id).await.unwrap().into_iter().find(|p| p.name == "Other").unwrap();
    let res = app.post_form(&first, &format!("/account/passkeys/{}/rename", other.id), &[("name", "Twin")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("You have a passkey of this name"));
}

#[tokio::test]
async fn of_two_first_passkeys_registered_at_once_under_admin_passkey_mode_one_counts() {
    let app = localhost_app().await;
    let (admin, _) = app.account("race@example.org", UserRole::WmdaAdmin).await;
    let key = app.config.master_key.clone();
    let strict = TestApp::spawn_with(app.db.same(), |c| {
        c.master_key = key;
        c.base_url = BaseUrl::parse(ORIGIN).unwrap();
        c.admin_mfa = secret_portal::config::AdminMfa::Passkey;
    })
    .await;
    strict.clock.set(app.clock.now());
    let user = strict.store.find_user(admin.user_id).await.unwrap();
    // Two sessions at the enrolment stage, each from a link of its own.
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let link = secret_portal::auth::link::send_passkey_link(
            &strict.store,
            &strict.config.base_url,
            &user,
            &secret_portal::store::Actor::cli(),
            strict.clock.now(),
        )
        .await
        .unwrap();
        let path = link.url.replace(strict.config.base_url.as_str(), "");
        let c = new_client();
        strict.clock.advance(chrono::Duration::seconds(30));
        let code = admin.seed.code_at(strict.clock.now());
        let res = strict.post_form(&c, &path, &[("password", &admin.password), ("code", &code)]).await;
        assert_eq!(location(&res), "/passkey/setup");
        sessions.push(c);
    }
    let mut bodies = Vec::new();
    for (c, name) in sessions.iter().zip(["A", "B"]) {
        let (status, options) = post_for_json(&strict, c, "/passkey/setup/options", &[("name", name)]).await;
        assert_eq!(status, 200, "{options}");
        let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let answer = SoftPasskey::new(true).do_registration(origin(), options).unwrap();
        bodies.push(serde_json::to_vec(&answer).unwrap());
    }
    let (a, b) = tokio::join!(
        post_json(&strict, &sessions[0], "/passkey/setup", &bodies[0]),
        post_json(&strict, &sessions[1], "/passkey/setup", &bodies[1])
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{a:?} {b:?}");
    assert_eq!(strict.store.list_passkeys(admin.user_id).await.unwrap().len(), 1);
}
