//! Issue 12, points 1 and 2: bounded work for every request (body limits, parameter counts, the
//! accept loop's timeouts, panics), and every sign-in stage bound to the credentials that started
//! it. Over HTTP against the real application; SQLite, and Postgres with TEST_DATABASE_URL.

use std::time::{Duration as StdDuration, Instant};

use crate::support::flows::{Account, PASSWORD, location};
use crate::support::{TestApp, new_client};
use chrono::Duration;
use secret_portal::domain::{Clock as _, EmailAddress};
use secret_portal::domain::{LinkPurpose, LinkToken};
use secret_portal::store::{Actor, Conflict, NewLink, NewUser, StoreError, UserRole};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn admin_and_jane() -> (TestApp, reqwest::Client, Account, reqwest::Client) {
    let app = TestApp::spawn().await;
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let (jane, jane_client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    (app, admin, jane, jane_client)
}

// ---- Point 1: bounded work and memory ----

#[tokio::test]
async fn bodies_past_a_routes_limit_are_refused_with_413_and_change_nothing() {
    let app = TestApp::spawn().await;
    let big_email = "a".repeat(9 * 1024);
    let res = app.post_form(&new_client(), "/login", &[("email", &big_email), ("password", "x")]).await;
    assert_eq!(res.status(), 413);
    let page = res.text().await.unwrap();
    assert!(page.contains("The request is too large"), "{page}");
    assert!(app.store.recent_audit_events(10).await.unwrap().is_empty(), "nothing was recorded");
    // The token endpoint answers in its own format (RFC 6749 5.2 JSON).
    let res = new_client()
        .post(app.url("/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "x"), ("client_secret", &big_email)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // A form within the limit is read as before.
    let res = app.post_form(&new_client(), "/login", &[("email", "a@b.example"), ("password", "x")]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn forms_and_queries_with_more_parameters_than_the_route_knows_are_refused_at_once() {
    let app = TestApp::spawn().await;
    // Many distinct parameters within the body limit: refused before any field is used, on
    // every form route and the token endpoint, as fast as reading them.
    let many: String = (0..1_000).map(|i| format!("p{i}=&")).collect();
    let routes = ["/login", "/login/mfa", "/mfa/setup", "/password/forgot", "/invite/abc", "/password/reset/abc"];
    for path in routes {
        let started = Instant::now();
        let res = new_client()
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("{many}email=a%40b.example&password=x"))
            .send()
            .await
            .unwrap();
        assert!(matches!(res.status().as_u16(), 400 | 303), "{path}: {}", res.status());
        assert!(started.elapsed() < StdDuration::from_secs(2), "{path}");
    }
    let res = new_client()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{many}email=a%40b.example&password=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("more fields than this page uses"));
    let res = new_client()
        .post(app.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{many}grant_type=client_credentials&client_id=a&client_secret=b"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    // Query strings too.
    let query: String = (0..100).map(|i| format!("q{i}=1")).collect::<Vec<_>>().join("&");
    let res = new_client().get(app.url(&format!("/login?{query}"))).send().await.unwrap();
    assert_eq!(res.status(), 400);
    // Nothing was recorded as a sign-in failure.
    assert!(app.store.recent_audit_events(10).await.unwrap().is_empty());
    // A page form that is not a form is a 400 page, not internals.
    let res = new_client().post(app.url("/login")).header("content-type", "text/plain").body("email=a").send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), 400);
    assert!(!res.text().await.unwrap().contains("Failed to deserialize"));
}

#[tokio::test]
async fn a_handler_panic_renders_the_error_page_and_the_connection_serves_on() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                if "a".len() == 1 {
                    panic!("a bug");
                }
                "never"
            }),
        )
        .route("/ok", axum::routing::get(|| async { "fine" }))
        .layer(secret_portal::web::catch_panic_layer());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(secret_portal::startup::serve(listener, app, async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let res = client.get(format!("http://{addr}/boom")).send().await.expect("an answer, not a reset");
    assert_eq!(res.status(), 500);
    let page = res.text().await.unwrap();
    assert!(page.contains("Something went wrong") && !page.contains("a bug"), "{page}");
    assert_eq!(client.get(format!("http://{addr}/ok")).send().await.unwrap().text().await.unwrap(), "fine");
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

/// Reads until the peer closes the connection (or `limit` passes); true when it closed.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: StdDuration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_hundred_slow_clients_neither_block_others_nor_keep_their_sockets_past_the_timeout() {
    let app = TestApp::spawn().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Half a request line, then nothing.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        slow.push(s);
    }
    // A kept-alive connection that finished its request and then idles.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 512];
    let n = idle.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // Others are served at once.
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(new_client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
    }
    assert!(started.elapsed() < StdDuration::from_secs(2), "{:?}", started.elapsed());
    // Every slow socket, and the idle one, is closed by the server within the 10 s timeout.
    let limit = secret_portal::startup::HEADER_READ_TIMEOUT + StdDuration::from_secs(3);
    let checks: Vec<_> =
        slow.into_iter().map(|mut s| tokio::spawn(async move { closed_within(&mut s, limit).await })).collect();
    let mut open = 0;
    for check in checks {
        if !check.await.unwrap() {
            open += 1;
        }
    }
    assert_eq!(open, 0, "{open} of 100 slow sockets still open");
    assert!(closed_within(&mut idle, StdDuration::from_secs(2)).await, "the idle keep-alive connection stayed open");
}

#[tokio::test]
async fn only_http_1_1_is_served_so_an_http2_preface_gets_no_http2_connection() {
    let app = TestApp::spawn().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // The HTTP/2 connection preface (RFC 9113 3.4) and an empty SETTINGS frame.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(StdDuration::from_secs(5), s.read_to_end(&mut answer)).await;
    // An HTTP/2 server's first bytes are its SETTINGS frame (type 4 at offset 3).
    assert!(!(answer.len() >= 9 && answer[3] == 4), "an HTTP/2 SETTINGS frame came back: {answer:?}");
    assert!(closed_within(&mut s, StdDuration::from_secs(11)).await, "the connection is closed");
}

#[tokio::test]
async fn request_headers_past_64_kib_are_refused() {
    let app = TestApp::spawn().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let header = "a".repeat(70 * 1024);
    let _ = s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {header}\r\n\r\n").as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(StdDuration::from_secs(5), s.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 431"), "{text}");
    assert_eq!(new_client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

// ---- Point 2: every sign-in stage is bound to the credentials that started it ----

#[tokio::test]
async fn a_password_step_is_over_once_the_account_is_disabled_and_enabled_again() {
    let (app, admin, jane, _) = admin_and_jane().await;
    let client = new_client();
    assert_eq!(location(&app.password_step(&client, &jane.email, PASSWORD, "").await), "/login/mfa");
    app.clock.advance(Duration::seconds(5));
    for action in ["disable", "enable"] {
        let res =
            app.post_form(&admin, &format!("/admin/users/{}/{action}", jane.user_id), &[("confirm", "yes")]).await;
        assert_eq!(res.status(), 303);
    }
    app.clock.advance(Duration::seconds(30));
    let res = app.post_form(&client, "/login/mfa", &[("code", &jane.seed.code_at(app.clock.now()))]).await;
    assert_eq!(location(&res), "/login", "the TOTP step after a status change");
    assert_eq!(client.get(app.url("/manage-api-credentials")).send().await.unwrap().status(), 303);
    // A fresh password step works.
    assert_eq!(app.sign_in(&new_client(), &jane).await.status(), 303);
}

#[tokio::test]
async fn a_password_step_is_over_once_the_password_was_reset_elsewhere() {
    let (app, _, jane, _) = admin_and_jane().await;
    let attacker = new_client();
    assert_eq!(location(&app.password_step(&attacker, &jane.email, PASSWORD, "").await), "/login/mfa");
    // Jane resets her password from the emailed link.
    app.clock.advance(Duration::seconds(5));
    let before = app.smtp.messages_to(&jane.email).len();
    app.post_form(&new_client(), "/password/forgot", &[("email", &jane.email)]).await;
    let link = app.smtp.wait_for(&jane.email, before + 1).await.last().unwrap().link_path("/password/reset/");
    let link = link.replace("http://127.0.0.1:8080", "");
    let new_password = "a brand new passphrase for jane";
    let res =
        app.post_form(&new_client(), &link, &[("password", new_password), ("password_confirm", new_password)]).await;
    assert_eq!(res.status(), 200);
    app.clock.advance(Duration::seconds(30));
    let res = app.post_form(&attacker, "/login/mfa", &[("code", &jane.seed.code_at(app.clock.now()))]).await;
    assert_eq!(location(&res), "/login");
    assert_eq!(attacker.get(app.url("/manage-api-credentials")).send().await.unwrap().status(), 303);
}

#[tokio::test]
async fn an_enrolment_in_progress_is_over_once_the_account_changed_and_completing_one_ends_other_sessions() {
    let (app, admin, jane, jane_client) = admin_and_jane().await;
    // An MFA reset: Jane's sessions end and a re-enrolment link is emailed.
    let before = app.smtp.messages_to(&jane.email).len();
    assert_eq!(
        app.post_form(&admin, &format!("/admin/users/{}/reset-mfa", jane.user_id), &[("confirm", "yes")])
            .await
            .status(),
        303
    );
    let link = app.smtp.wait_for(&jane.email, before + 1).await.last().unwrap().link_path("/invite/");
    let link = link.replace("http://127.0.0.1:8080", "");
    app.clock.advance(Duration::seconds(5));
    let enrolling = new_client();
    assert_eq!(location(&app.post_form(&enrolling, &link, &[("password", PASSWORD)]).await), "/mfa/setup");
    assert_eq!(enrolling.get(app.url("/mfa/setup")).send().await.unwrap().status(), 200);
    // The admin disables and enables Jane meanwhile: the enrolment stage is over.
    app.clock.advance(Duration::seconds(5));
    for action in ["disable", "enable"] {
        app.post_form(&admin, &format!("/admin/users/{}/{action}", jane.user_id), &[("confirm", "yes")]).await;
    }
    assert_eq!(location(&enrolling.get(app.url("/mfa/setup")).send().await.unwrap()), "/login");
    let res = app.post_form(&enrolling, "/mfa/setup", &[("code", "123456")]).await;
    assert_eq!(location(&res), "/login");
    assert_eq!(jane_client.get(app.url("/manage-api-credentials")).send().await.unwrap().status(), 303);

    // Completing an enrolment ends the account's other sessions (the store sets the instant).
    let now = app.clock.now();
    let creds = app.store.find_credentials(jane.user_id).await.unwrap().unwrap();
    assert!(creds.totp_secret_enc.is_none());
    let seed = secret_portal::auth::TotpSeed::generate();
    app.store.set_pending_totp(jane.user_id, &seed.encrypt(&app.config.master_key)).await.unwrap();
    let (user, cli) = (app.user(jane.user_id).await, Actor::cli());
    assert!(app.store.complete_totp_enrolment((&user, &cli), 1, &[], now).await.unwrap());
    let creds = app.store.find_credentials(jane.user_id).await.unwrap().unwrap();
    assert_eq!(creds.sessions_valid_after, Some(now));
    // And never replaces an active authenticator: no pending seed is kept, none completes.
    let other = secret_portal::auth::TotpSeed::generate();
    app.store.set_pending_totp(jane.user_id, &other.encrypt(&app.config.master_key)).await.unwrap();
    let creds = app.store.find_credentials(jane.user_id).await.unwrap().unwrap();
    assert!(creds.totp_pending_enc.is_none());
    assert!(!app.store.complete_totp_enrolment((&user, &cli), 2, &[], now).await.unwrap());
}

#[tokio::test]
async fn an_invitation_is_resent_only_to_an_account_without_a_password() {
    let (app, admin, jane, _) = admin_and_jane().await;
    // After an MFA reset Jane has a password and no authenticator.
    assert_eq!(
        app.post_form(&admin, &format!("/admin/users/{}/reset-mfa", jane.user_id), &[("confirm", "yes")])
            .await
            .status(),
        303
    );
    let mails = app.smtp.wait_for(&jane.email, 2).await.len();
    let users = admin.get(app.url("/admin/users")).send().await.unwrap().text().await.unwrap();
    assert!(!users.contains(&format!("/admin/users/{}/resend", jane.user_id)), "no Resend button for her");
    let res = app.post_form(&admin, &format!("/admin/users/{}/resend", jane.user_id), &[]).await;
    let page = res.text().await.unwrap();
    assert!(page.contains("already chosen a password"), "{page}");
    // The command line's invite is refused the same way.
    let new = NewUser {
        email: EmailAddress::parse(&jane.email).unwrap(),
        display_name: String::new(),
        role: app.store.find_user(jane.user_id).await.unwrap().role,
    };
    let refused = secret_portal::auth::invitation::invite_user(
        &app.store,
        &app.config.base_url,
        &new,
        &Actor::cli(),
        app.clock.now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, StoreError::Conflict(Conflict::HasPassword)), "{refused:?}");
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(app.smtp.messages_to(&jane.email).len(), mails, "no invitation was emailed");
    // An invitation link made before the password was chosen cannot be used now either.
    let token = LinkToken::generate();
    let purpose = LinkPurpose::Invitation;
    let link = NewLink { token_hash: token.hash(), purpose, expires_at: app.clock.now() + Duration::hours(72) };
    let mail = secret_portal::mail::views::link_email(purpose, &jane.email, "", "http://x");
    let user = app.store.find_user(jane.user_id).await.unwrap();
    app.store.issue_link(&user, &link, &mail, &Actor::cli(), app.clock.now()).await.unwrap();
    let res = new_client().get(app.url(&purpose.path(&token))).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn while_an_mfa_re_enrolment_is_pending_a_password_reset_opens_no_path_to_enrol() {
    let (app, admin, jane, _) = admin_and_jane().await;
    // A reset link Jane asked for before the MFA reset.
    app.post_form(&new_client(), "/password/forgot", &[("email", &jane.email)]).await;
    let early = app.smtp.wait_for(&jane.email, 2).await.last().unwrap().link_path("/password/reset/");
    let early = early.replace("http://127.0.0.1:8080", "");
    assert_eq!(
        app.post_form(&admin, &format!("/admin/users/{}/reset-mfa", jane.user_id), &[("confirm", "yes")])
            .await
            .status(),
        303
    );
    let reenrol = app.smtp.wait_for(&jane.email, 3).await.last().unwrap().link_path("/invite/");
    let reenrol = reenrol.replace("http://127.0.0.1:8080", "");
    // Someone with the mailbox asks for a reset: the same answer, and no link is sent.
    let known = app.post_form(&new_client(), "/password/forgot", &[("email", &jane.email)]).await;
    let unknown = app.post_form(&new_client(), "/password/forgot", &[("email", "nobody@demo.example")]).await;
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(app.smtp.messages_to(&jane.email).len(), 3, "no reset link while the re-enrolment is pending");
    // The earlier reset link is dead.
    let new_password = "the mailbox owner's new passphrase";
    let res =
        app.post_form(&new_client(), &early, &[("password", new_password), ("password_confirm", new_password)]).await;
    assert_eq!(res.status(), 404);
    // So the re-enrolment link still asks for the password Jane chose, not a new one.
    let res = app.post_form(&new_client(), &reenrol, &[("password", new_password)]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("The password is wrong"));
    // Jane re-enrols with her own password; the old reset link stays dead afterwards.
    let c = new_client();
    assert_eq!(location(&app.post_form(&c, &reenrol, &[("password", PASSWORD)]).await), "/mfa/setup");
    let res =
        app.post_form(&new_client(), &early, &[("password", new_password), ("password_confirm", new_password)]).await;
    assert_eq!(res.status(), 404);
}

// ---- Point 3: throttles an attacker cannot spread or aim (the in-memory part) ----

async fn throttled_events(app: &TestApp) -> Vec<serde_json::Value> {
    let events = app.store.recent_audit_events(1000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.action == "auth.throttled")
        .map(|e| serde_json::from_str(&e.details).unwrap())
        .collect()
}

#[tokio::test]
async fn bad_link_tokens_have_their_own_window_and_never_lock_an_office_out_of_signing_in() {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    // A page of image tags pointing at dead links, all from the office's one address.
    for i in 0..30 {
        let path = if i % 2 == 0 { format!("/invite/bogus{i}") } else { format!("/password/reset/bogus{i}") };
        assert_eq!(new_client().get(app.url(&path)).send().await.unwrap().status(), 404, "{path}");
    }
    assert_eq!(new_client().get(app.url("/invite/one-more")).send().await.unwrap().status(), 429);
    // Signing in from the same address still works.
    assert_eq!(app.sign_in(&new_client(), &jane).await.status(), 303);
    assert_eq!(throttled_events(&app).await.len(), 1, "one audit event for the link block");
}

#[tokio::test]
async fn a_block_writes_one_audit_event_however_many_requests_it_refuses() {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    // The (email, IP) pair: five wrong passwords, then twenty refused attempts.
    for _ in 0..5 {
        app.password_step(&new_client(), &jane.email, "wrong password", "").await;
    }
    for _ in 0..20 {
        let res = app.password_step(&new_client(), &jane.email, "wrong password", "").await;
        assert_eq!(res.status(), 429);
    }
    assert_eq!(throttled_events(&app).await.len(), 1);
    // The address: thirty failures for other emails, then twenty refused requests.
    for i in 0..25 {
        app.password_step(&new_client(), &format!("nobody{i}@demo.example"), "wrong password", "").await;
    }
    for _ in 0..20 {
        let res = app.password_step(&new_client(), "someone@demo.example", "x", "").await;
        assert_eq!(res.status(), 429);
    }
    let events = throttled_events(&app).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().any(|d| d["scope"] == "ip"));
    // Refused requests count in the address's window: ten minutes after the first failures it is
    // still blocked, because it kept trying.
    app.clock.advance(Duration::minutes(9));
    for _ in 0..30 {
        assert_eq!(app.password_step(&new_client(), "someone@demo.example", "x", "").await.status(), 429);
    }
    app.clock.advance(Duration::minutes(2));
    assert_eq!(app.password_step(&new_client(), "someone@demo.example", "x", "").await.status(), 429);
    app.clock.advance(Duration::minutes(11));
    assert_eq!(app.password_step(&new_client(), "someone@demo.example", "x", "").await.status(), 200);
}

/// A code that is not the one `seed` shows now (nor in the steps around it).
fn wrong_code(seed: &secret_portal::auth::TotpSeed, now: chrono::DateTime<chrono::Utc>) -> String {
    let near: Vec<String> = (-2..=2).map(|s| seed.code_at(now + Duration::seconds(30 * s))).collect();
    (0..1_000_000).map(|n| format!("{n:06}")).find(|c| !near.contains(c)).unwrap()
}

#[tokio::test]
async fn twenty_wrong_codes_from_many_addresses_lock_the_second_factor_and_email_the_user() {
    let app = TestApp::spawn_with(crate::support::TestDb::new().await, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let (admin_account, _) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    let post = |client: &reqwest::Client, ip: &str, path: &str, form: Vec<(&'static str, String)>| {
        client.post(app.url(path)).header("x-forwarded-for", ip).form(&form).send()
    };
    for round in 0..4 {
        // Each round from another address: the per-address limits never see more than five.
        let ip = format!("198.51.100.{}", round + 1);
        let client = new_client();
        let res = post(&client, &ip, "/login", vec![("email", jane.email.clone()), ("password", PASSWORD.into())])
            .await
            .unwrap();
        assert_eq!(location(&res), "/login/mfa", "round {round}");
        for attempt in 0..5 {
            let code = wrong_code(&jane.seed, app.clock.now());
            let field = if attempt % 2 == 0 { "code" } else { "recovery_code" };
            let value =
                if field == "code" { code } else { secret_portal::auth::RecoveryCode::generate().expose().to_owned() };
            let res = post(&client, &ip, "/login/mfa", vec![(field, value)]).await.unwrap();
            let page = res.text().await.unwrap();
            if attempt < 4 {
                assert!(!page.contains("Sign in again") && !page.contains("Sign-in locked"), "{round}/{attempt}");
            } else if round < 3 {
                assert!(page.contains("Sign in again"), "after five failures the password step again: {page}");
            } else {
                assert!(page.contains("Sign-in locked"), "the twentieth failure locks: {page}");
            }
        }
        // The session is back at the start.
        assert_eq!(location(&client.get(app.url("/login/mfa")).send().await.unwrap()), "/login");
        app.clock.advance(Duration::seconds(40));
    }
    // One email, at the lock.
    let mails = app.smtp.wait_for(&jane.email, 2).await;
    let lock_mail = mails.last().unwrap();
    assert_eq!(lock_mail.subject(), "Someone knows your WMDA secret portal password: reset it");
    assert!(lock_mail.part("text/plain").contains("/password/forgot"));
    // The right password and the right code now meet the lock, from anywhere.
    let c = new_client();
    let res = post(&c, "203.0.113.50", "/login", vec![("email", jane.email.clone()), ("password", PASSWORD.into())])
        .await
        .unwrap();
    assert_eq!(location(&res), "/login/mfa");
    app.clock.advance(Duration::seconds(30));
    let code = jane.seed.code_at(app.clock.now());
    let res = post(&c, "203.0.113.50", "/login/mfa", vec![("code", code)]).await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(c.get(app.url("/manage-api-credentials")).send().await.unwrap().status(), 303);
    // A password reset from the mailbox does not lift it.
    app.post_form(&new_client(), "/password/forgot", &[("email", &jane.email)]).await;
    let reset = app.smtp.wait_for(&jane.email, 3).await.last().unwrap().link_path("/password/reset/");
    let reset = reset.replace("http://127.0.0.1:8080", "");
    let new_password = "a brand new passphrase for jane";
    let res =
        app.post_form(&new_client(), &reset, &[("password", new_password), ("password_confirm", new_password)]).await;
    assert_eq!(res.status(), 200);
    let creds = app.store.find_credentials(jane.user_id).await.unwrap().unwrap();
    assert!(creds.mfa_locked_until.is_some_and(|u| u > app.clock.now()), "still locked after the reset");
    let actions: Vec<String> =
        app.store.recent_audit_events(1000).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "auth.mfa_locked").count(), 1);
    // It ends after 24 hours.
    app.clock.advance(Duration::hours(24));
    let unlocked = Account { password: new_password.into(), ..jane };
    assert_eq!(app.sign_in(&new_client(), &unlocked).await.status(), 303);
    // An admin's MFA reset lifts a lock at once.
    let (locked_user, cli) = (app.user(unlocked.user_id).await, Actor::cli());
    let lock_email =
        secret_portal::mail::views::second_factor_locked_email(&unlocked.email, "", app.clock.now(), "x", "y");
    let mut locked = None;
    for _ in 0..20 {
        let limit = secret_portal::auth::stage::SECOND_FACTOR_FAILURES_BEFORE_LOCK;
        let until = app.clock.now() + Duration::hours(24);
        let (_, now_locked) = app
            .store
            .record_second_factor_failure((&locked_user, &cli), limit, until, &lock_email, app.clock.now())
            .await
            .unwrap();
        locked = now_locked;
    }
    assert!(locked.is_some(), "twenty failures lock");
    let admin = new_client();
    assert_eq!(app.sign_in(&admin, &admin_account).await.status(), 303);
    assert_eq!(
        app.post_form(&admin, &format!("/admin/users/{}/reset-mfa", unlocked.user_id), &[("confirm", "yes")])
            .await
            .status(),
        303
    );
    let creds = app.store.find_credentials(unlocked.user_id).await.unwrap().unwrap();
    assert!(creds.mfa_locked_until.is_none());
}

#[tokio::test]
async fn reset_and_invitation_emails_are_limited_per_account_and_per_address() {
    let app = TestApp::spawn_with(crate::support::TestDb::new().await, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    // Invitations: five an hour per account, then the admin is told to wait.
    app.post_and_follow(
        &admin,
        "/admin/users",
        &[("email", "piet@demo.example"), ("organisation", &org.id.to_string())],
    )
    .await;
    let piet = app.store.find_user_by_email(&EmailAddress::parse("piet@demo.example").unwrap()).await.unwrap();
    for _ in 0..4 {
        let (_, page) = app.post_and_follow(&admin, &format!("/admin/users/{}/resend", piet.id), &[]).await;
        assert!(page.contains("A new invitation was emailed"));
    }
    let res = app.post_form(&admin, &format!("/admin/users/{}/resend", piet.id), &[]).await;
    assert!(res.text().await.unwrap().contains("wait before sending another"));
    let forgot = |ip: String, email: String| {
        new_client().post(app.url("/password/forgot")).header("x-forwarded-for", ip).form(&[("email", email)]).send()
    };
    // Per account: five requests from five addresses, three emails; the answers are all alike.
    let before = app.smtp.messages_to(&jane.email).len();
    let suppressed = r#"link_emails_suppressed_total{email="password_reset"}"#;
    let suppressed_before = app.metric(suppressed).await;
    let mut pages = Vec::new();
    for i in 0..5 {
        let res = forgot(format!("198.51.100.{}", i + 1), jane.email.clone()).await.unwrap();
        assert_eq!(res.status(), 200);
        pages.push(res.text().await.unwrap());
    }
    let unknown = forgot("198.51.100.9".into(), "nobody@demo.example".into()).await.unwrap().text().await.unwrap();
    assert!(pages.iter().all(|p| *p == unknown));
    app.smtp.wait_for(&jane.email, before + 3).await;
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(app.smtp.messages_to(&jane.email).len(), before + 3, "at most three reset emails an hour");
    assert_eq!(app.metric(suppressed).await - suppressed_before, 2.0, "two reset emails suppressed");
    // An hour later she can ask again.
    app.clock.advance(Duration::minutes(61));
    forgot("198.51.100.1".into(), jane.email.clone()).await.unwrap();
    app.smtp.wait_for(&jane.email, before + 4).await;

    // Per address: ten requests an hour, then 429 for known and unknown emails alike.
    for i in 0..10 {
        let email = if i % 2 == 0 { jane.email.clone() } else { format!("nobody{i}@demo.example") };
        assert_eq!(forgot("203.0.113.7".into(), email).await.unwrap().status(), 200);
    }
    assert_eq!(forgot("203.0.113.7".into(), jane.email.clone()).await.unwrap().status(), 429);
    assert_eq!(forgot("203.0.113.7".into(), "nobody@demo.example".into()).await.unwrap().status(), 429);
    assert_eq!(forgot("203.0.113.8".into(), "nobody@demo.example".into()).await.unwrap().status(), 200);
}

// ---- Points 6 and 7: numbers and dates from URLs; CSV export ----

#[tokio::test]
async fn odd_query_strings_on_every_page_that_takes_one_never_give_a_5xx() {
    let (app, admin, jane, jane_client) = admin_and_jane().await;
    let org = app.store.find_user(jane.user_id).await.unwrap().role;
    let org_id = match org {
        UserRole::Member(id) => id,
        UserRole::WmdaAdmin => unreachable!(),
    };
    let long = "a".repeat(5_000);
    let odd = [
        "-1",
        "0",
        "99999999999999999999",
        "2147483648",
        "9223372036854775807",
        "9223372036854775808",
        "1e3",
        "%00",
        "%ff%fe",
        "%E2%80%AE",
        "+10000-01-01",
        "0000-01-01",
        "-0001-01-01",
        "2026-02-30",
        long.as_str(),
    ];
    let pages: Vec<(&reqwest::Client, String, &[&str])> = vec![
        (&admin, "/admin/audit".into(), &["page", "from", "to", "actor", "organisation", "action", "format"]),
        (&admin, "/admin/users".into(), &["organisation", "role", "status"]),
        (&admin, format!("/admin/organisations/{org_id}/applications/new"), &["kind", "api"]),
        (&jane_client, "/manage-api-credentials".into(), &["deleted"]),
    ];
    for (client, path, fields) in &pages {
        for field in *fields {
            for value in odd {
                let url = app.url(&format!("{path}?{field}={value}"));
                let res = client.get(&url).send().await.unwrap();
                assert!(
                    res.status().as_u16() < 500,
                    "{path}?{field}={}: {}",
                    &value[..value.len().min(30)],
                    res.status()
                );
            }
            // A repeated field too.
            let res = client.get(app.url(&format!("{path}?{field}=1&{field}=2"))).send().await.unwrap();
            assert!(res.status().as_u16() < 500, "{path} repeated {field}: {}", res.status());
        }
    }
    for value in odd {
        let res = new_client().get(app.url(&format!("/login?next={value}"))).send().await.unwrap();
        assert!(res.status().as_u16() < 500, "/login?next={}", &value[..value.len().min(30)]);
    }
    // Past the end: the last page, and it says so; a page that is no number says that.
    let page = admin.get(app.url("/admin/audit?page=1000000")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("There is no page 1000000: showing the last page, 1."), "{page}");
    let page = admin.get(app.url("/admin/audit?page=99999999999999999999")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("The page must be a whole number from 1 to 1,000,000."), "{page}");
    let page = admin.get(app.url("/admin/audit?from=%2B10000-01-01")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("between 1970-01-01 and 9999-12-31"), "{page}");
}

#[tokio::test]
async fn the_csv_export_has_no_formula_cell_for_a_semicolon_locale_spreadsheet() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let now = app.clock.now();
    let labels =
        ["ok;=cmd|' /C calc'!A0", "a, +1", "tab\t@SUM(A1)", "＝HYPERLINK(\"x\")", "line\n－1", "  -2", "x;  ＋3"];
    for label in labels {
        let mut e = Actor { user_id: None, label: label.into(), ip: Some("192.0.2.1".into()) }
            .event(secret_portal::store::AuditAction::DemoLoaded, now);
        e.details = serde_json::json!({ "note": label });
        app.store.record_audit_event(&e).await.unwrap();
    }
    let body =
        admin.get(app.url("/admin/audit?action=demo.loaded&format=csv")).send().await.unwrap().text().await.unwrap();
    // Split as a spreadsheet in a `;` locale might (and a `,` one): on both, on tabs and lines.
    let mut cells = 0;
    for piece in body.split([',', ';', '\t', '\r', '\n']) {
        let cell = piece.trim_matches([' ', '"']);
        cells += 1;
        assert!(!cell.starts_with(['=', '+', '-', '@', '＝', '＋', '－', '＠']), "a formula cell {cell:?} in\n{body}");
    }
    assert!(cells > labels.len() * 7);
}

// ---- Any input: a NUL character is refused before it reaches a store ----

/// Postgres refuses U+0000 in text (SQLite keeps it and C strings cut there), so it is refused at
/// the edge, in every query string, path, form and the token endpoint, with a 400 (or the token
/// endpoint's `invalid_request`), and nothing is written.
#[tokio::test]
async fn a_nul_character_in_any_input_is_refused_with_400_and_changes_nothing() {
    let (app, admin, jane, _) = admin_and_jane().await;
    let before = app.store.recent_audit_events(1_000).await.unwrap().len();
    let nul = "\0";
    // Query strings and paths, raw %00 and inside a value.
    let gets = [
        "/admin/audit?actor=%00",
        "/admin/audit?action=auth%00x",
        "/admin/users?organisation=%00",
        "/manage-api-credentials?deleted=%00",
        "/login?next=/%00",
        "/admin/users/%00/resend",
        "/admin/organisations/%00",
        "/invite/%00",
        "/password/reset/ab%00cd",
        "/static/%00",
    ];
    for path in gets {
        let res = admin.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert!(res.text().await.unwrap().contains("NUL"), "{path} says why");
    }
    // Forms, signed in or not, in any field.
    let with_nul = format!("a{nul}b");
    let email_nul = format!("jane{nul}@demo.example");
    let forms: [(&str, Vec<(&str, &str)>); 3] = [
        ("/admin/users", vec![("email", "new@demo.example"), ("name", &with_nul), ("organisation", "")]),
        ("/admin/organisations", vec![("display_name", &with_nul), ("country", "NL"), ("code", "NulOrg")]),
        ("/admin/users", vec![("email", &email_nul), ("name", "x"), ("organisation", "")]),
    ];
    for (path, fields) in &forms {
        let res = app.post_form(&admin, path, fields).await;
        assert_eq!(res.status(), 400, "{path} {fields:?}");
    }
    let anonymous = new_client();
    for (path, fields) in [
        ("/login", vec![("email", email_nul.as_str()), ("password", PASSWORD)]),
        ("/login", vec![("email", jane.email.as_str()), ("password", &with_nul)]),
        ("/password/forgot", vec![("email", email_nul.as_str())]),
    ] {
        let res = app.post_form(&anonymous, path, &fields).await;
        assert_eq!(res.status(), 400, "{path} {fields:?}");
    }
    // The token endpoint: in the form, in a resource, and inside Basic credentials.
    let client_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    for fields in [
        vec![("grant_type", "client_credentials"), ("client_id", &with_nul), ("client_secret", "s")],
        vec![("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", &with_nul)],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", "s"),
            ("resource", &with_nul),
        ],
        vec![("grant_type", &with_nul), ("client_id", client_id), ("client_secret", "s")],
    ] {
        let res = anonymous.post(app.url("/oauth2/token")).form(&fields).send().await.unwrap();
        assert_eq!(res.status(), 400, "{fields:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{fields:?}");
    }
    let res = anonymous
        .post(app.url("/oauth2/token"))
        .basic_auth(client_id, Some(&with_nul))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // In the token endpoint's path or query: its JSON error too, not a page.
    for path in ["/oauth2/token?x=%00", "/oauth2/token%00"] {
        let res = anonymous
            .post(app.url(path))
            .form(&[("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", "s")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    let after = app.store.recent_audit_events(1_000).await.unwrap().len();
    assert_eq!(before, after, "nothing was recorded");
}
