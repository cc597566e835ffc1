//! The token endpoint over HTTP: both request shapes, the JWT verified by an independent library
//! against the JWKS, expiry and deletion, errors, brute-force limits, usage records, key rotation.
//! SQLite, and Postgres with TEST_DATABASE_URL.

use std::collections::HashSet;

use crate::support::{TestApp, TestDb, new_client};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Duration;
use jwt_simple::prelude::*;
use secret_portal::domain::{Api, ApplicationKind, ClientId, Clock as _};
use secret_portal::store::{Actor, Application, UserRole};

struct World {
    app: TestApp,
    smc: Application,
    alt: Application,
    secret: String,
    secret_id: uuid::Uuid,
}

async fn seed(app: &TestApp, a: &Application, expires_in_days: i64) -> (String, uuid::Uuid) {
    let created_at = app.clock.now() - Duration::days(1);
    let (value, id) =
        app.seed_secret(a.id, "Token test", created_at, app.clock.today() + Duration::days(expires_in_days)).await;
    (value.expose().to_owned(), id)
}

async fn world_with(app: TestApp) -> World {
    let org = app.create_org("NL", "DemoRegistry").await;
    let smc = app.register(org.id, ApplicationKind::Partner, Api::Smc).await;
    let alt = app.register(org.id, ApplicationKind::PartnerAlternative, Api::Smc).await;
    let (secret, secret_id) = seed(&app, &smc, 30).await;
    World { app, smc, alt, secret, secret_id }
}

async fn world() -> World {
    world_with(TestApp::spawn().await).await
}

async fn post(w: &World, form: &[(&str, &str)]) -> reqwest::Response {
    new_client().post(w.app.url("/oauth2/token")).form(form).send().await.unwrap()
}

/// The partner-style request (form fields, `resource=`) from loopback, or from `ip` through
/// `X-Forwarded-For` when the portal trusts loopback as a proxy; owned arguments, so it can be
/// spawned.
async fn request_token(url: String, ip: Option<String>, client_id: String, secret: String) -> reqwest::Response {
    let mut request = new_client().post(url);
    if let Some(ip) = ip {
        request = request.header("x-forwarded-for", ip);
    }
    request
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("resource", "match-connect-sandbox"),
        ])
        .send()
        .await
        .unwrap()
}

fn basic(id: &str, secret: &str) -> String {
    // RFC 6749 2.3.1: form-urlencode, then Base64.
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
}

async fn json(res: reqwest::Response) -> serde_json::Value {
    res.json().await.unwrap()
}

#[derive(Serialize, Deserialize)]
struct Custom {
    client_id: String,
    scope: String,
}

/// Verifies a token with jwt-simple (an independent implementation) against the JWKS.
async fn verify(w: &World, token: &str, audience: &str) -> JWTClaims<Custom> {
    let jwks = json(new_client().get(w.app.url("/.well-known/jwks.json")).send().await.unwrap()).await;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).expect("the kid is published");
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let key = ES256PublicKey::from_bytes(&point).unwrap();
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from(["http://127.0.0.1:8080".to_owned()])),
        allowed_audiences: Some(HashSet::from([audience.to_owned()])),
        required_key_id: Some(kid.to_owned()),
        artificial_time: Some(UnixTimeStamp::from_secs(w.app.clock.now().timestamp() as u64)),
        ..Default::default()
    };
    key.verify_token::<Custom>(token, Some(options)).expect("the token verifies")
}

#[tokio::test]
async fn the_partner_style_request_gets_a_verifiable_token() {
    let w = world().await;
    let client_id = w.smc.client_id.to_string();
    let res = post(
        &w,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &w.secret),
            ("resource", "match-connect-production"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    assert!(res.headers().get("set-cookie").is_none());
    let body = json(res).await;
    let now = w.app.clock.now().timestamp();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["expires_on"], now + 3600);
    assert_eq!(body["not_before"], now);
    assert_eq!(body["resource"], "match-connect-production");
    assert_eq!(body["scope"], "api://wmda/match-connect-production/.default");
    assert!(body.get("refresh_token").is_none());
    assert!(body["expires_in"].is_number() && body["expires_on"].is_number());
    let claims = verify(&w, body["access_token"].as_str().unwrap(), "api://wmda/match-connect-production").await;
    assert_eq!(claims.subject.as_deref(), Some(client_id.as_str()));
    assert_eq!(claims.custom.client_id, client_id);
    assert_eq!(claims.custom.scope, "api://wmda/match-connect-production/.default");
    assert!(claims.jwt_id.is_some());
    assert_eq!(claims.expires_at.unwrap().as_secs() as i64, now + 3600);
}

#[tokio::test]
async fn an_oauth_client_librarys_basic_and_scope_request_works_too() {
    let w = world().await;
    let client_id = w.smc.client_id.to_string();
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .header("authorization", basic(&client_id, &w.secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "api://wmda/search-match-sandbox/.default")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(body["scope"], "api://wmda/search-match-sandbox/.default");
    verify(&w, body["access_token"].as_str().unwrap(), "api://wmda/search-match-sandbox").await;
    // A hand-built header whose id is percent-encoded (RFC 6749 2.3.1) decodes to the same client.
    let encoded_id = client_id.replace('-', "%2D");
    let header = format!("Basic {}", STANDARD.encode(format!("{encoded_id}:{}", w.secret)));
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .header("authorization", header)
        .form(&[("grant_type", "client_credentials"), ("scope", "search-match-production")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A single-resource application needs no resource at all.
    let (alt_secret, _) = seed(&w.app, &w.alt, 10).await;
    let alt_id = w.alt.client_id.to_string();
    let body = json(
        post(&w, &[("grant_type", "client_credentials"), ("client_id", &alt_id), ("client_secret", &alt_secret)]).await,
    )
    .await;
    assert_eq!(body["resource"], "match-connect-sandbox");
}

#[tokio::test]
async fn expiry_caps_the_token_and_ends_the_secret_at_midnight_utc_after_its_date() {
    let w = world().await;
    let (secret, _) = seed(&w.app, &w.smc, 0).await;
    let id = w.smc.client_id.to_string();
    let form = |s: &str| {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", id.clone()),
            ("client_secret", s.to_owned()),
            ("resource", "match-connect-sandbox".to_owned()),
        ]
    };
    let midnight = (w.app.clock.today() + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap().and_utc();
    w.app.clock.set(midnight - Duration::seconds(100));
    let body = json(new_client().post(w.app.url("/oauth2/token")).form(&form(&secret)).send().await.unwrap()).await;
    assert_eq!(body["expires_in"], 100, "exp never passes the secret's expiry instant");
    assert_eq!(body["expires_on"], midnight.timestamp());
    w.app.clock.set(midnight);
    let res = new_client().post(w.app.url("/oauth2/token")).form(&form(&secret)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await["error"], "invalid_client");
}

#[tokio::test]
async fn a_deleted_secret_is_refused_on_the_very_next_request() {
    let w = world().await;
    let id = w.smc.client_id.to_string();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", w.secret.as_str()),
        ("resource", "match-connect-sandbox"),
    ];
    assert_eq!(post(&w, &form).await.status(), 200);
    let (jane, _) = w.app.account("jane@demo.example", UserRole::Member(w.smc.organisation_id)).await;
    w.app.store.grant_credential_manager(jane.user_id, w.smc.id, &Actor::cli(), w.app.clock.now()).await.unwrap();
    let now = w.app.clock.now();
    w.app.store.delete_client_secret((jane.user_id, &Actor::cli()), w.smc.client_id, w.secret_id, now).await.unwrap();
    let res = post(&w, &form).await;
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await["error"], "invalid_client");
}

#[tokio::test]
async fn unknown_client_ids_and_wrong_secrets_get_the_same_answer() {
    let w = world().await;
    let id = w.smc.client_id.to_string();
    let unknown = ClientId::generate().to_string();
    let a = post(
        &w,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &unknown),
            ("client_secret", &w.secret),
            ("resource", "match-connect-sandbox"),
        ],
    )
    .await;
    let b = post(
        &w,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "wrong"),
            ("resource", "match-connect-sandbox"),
        ],
    )
    .await;
    let c = post(
        &w,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "not-a-uuid"),
            ("client_secret", "wrong"),
            ("resource", "match-connect-sandbox"),
        ],
    )
    .await;
    let (sa, sb, sc) = (a.status(), b.status(), c.status());
    assert!(a.headers().get("www-authenticate").is_none(), "no Basic, no WWW-Authenticate");
    let (ja, jb, jc) = (json(a).await, json(b).await, json(c).await);
    assert_eq!(
        (sa, sb, sc),
        (reqwest::StatusCode::UNAUTHORIZED, reqwest::StatusCode::UNAUTHORIZED, reqwest::StatusCode::UNAUTHORIZED)
    );
    assert_eq!(ja, jb);
    assert_eq!(jb, jc);
    // With Basic, a 401 says so.
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .header("authorization", basic(&id, "wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
}

#[tokio::test]
async fn malformed_requests_get_rfc_6749_errors() {
    let w = world().await;
    let (issued, invalid_scope) = ("tokens_issued_total", r#"tokens_refused_total{error="invalid_scope"}"#);
    let (issued_before, invalid_scope_before) = (w.app.metric(issued).await, w.app.metric(invalid_scope).await);
    let id = w.smc.client_id.to_string();
    let s = w.secret.as_str();
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("grant_type", "password"), ("client_id", &id), ("client_secret", s)], 400, "unsupported_grant_type"),
        (vec![("client_id", &id), ("client_secret", s)], 400, "invalid_request"),
        (vec![("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", s)], 400, "invalid_request"),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", s),
                ("resource", "data-manager-production"),
            ],
            400,
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", s),
                ("scope", "a/.default b/.default"),
            ],
            400,
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", s),
                ("resource", "match-connect-sandbox"),
                ("scope", "search-match-sandbox/.default"),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", s),
                ("resource", "x"),
                ("resource", "y"),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (form, status, error) in cases {
        let res = post(&w, &form).await;
        assert_eq!(res.status().as_u16(), status, "{form:?}");
        assert_eq!(json(res).await["error"], error, "{form:?}");
    }
    // Both authentication methods at once.
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .header("authorization", basic(&id, s))
        .form(&[("grant_type", "client_credentials"), ("client_id", id.as_str()), ("client_secret", s)])
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await["error"], "invalid_request");
    // A JSON body.
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_request");
    // GET: 405.
    assert_eq!(new_client().get(w.app.url("/oauth2/token")).send().await.unwrap().status(), 405);
    // No CSRF check here: a request with a foreign Origin is a machine's, and it works.
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .header("origin", "https://elsewhere.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", s),
            ("resource", "match-connect-sandbox"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(w.app.metric(issued).await > issued_before, "the issued token was not counted");
    assert!(w.app.metric(invalid_scope).await > invalid_scope_before, "invalid_scope was not counted");
    let logs = w.app.logs();
    assert!(logs.contains("token request refused"), "this app's refusals were not captured");
    assert!(!logs.contains(s), "the secret reached the logs");
}

#[tokio::test]
async fn ten_failures_a_minute_block_the_pair_but_not_the_client_elsewhere() {
    let app =
        TestApp::spawn_with(TestDb::new().await, |c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let w = world_with(app).await;
    let id = w.smc.client_id.to_string();
    let from = |ip: &'static str, secret: String| {
        let url = w.app.url("/oauth2/token");
        let id = id.clone();
        async move {
            new_client()
                .post(url)
                .header("x-forwarded-for", ip)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("resource", "match-connect-sandbox"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..10 {
        assert_eq!(from("203.0.113.9", "guess".into()).await.status(), 401);
    }
    let blocked = from("203.0.113.9", w.secret.clone()).await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers()["retry-after"].to_str().unwrap().parse::<i64>().unwrap() > 0);
    assert_eq!(
        from("198.51.100.20", w.secret.clone()).await.status(),
        200,
        "the legitimate client elsewhere is blocked"
    );
    w.app.clock.advance(Duration::seconds(61));
    assert_eq!(from("203.0.113.9", w.secret.clone()).await.status(), 200);
}

#[tokio::test]
async fn every_spelling_of_a_client_id_and_every_address_of_a_64_is_one_throttle_key() {
    let app =
        TestApp::spawn_with(TestDb::new().await, |c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let w = world_with(app).await;
    let id = w.smc.client_id.as_uuid();
    let spellings = [
        id.hyphenated().to_string(),
        id.hyphenated().to_string().to_uppercase(),
        id.simple().to_string(),
        id.braced().to_string(),
        id.urn().to_string(),
        format!("  {}  ", id.hyphenated()),
    ];
    let request = |ip: String, client_id: String, secret: String| {
        request_token(w.app.url("/oauth2/token"), Some(ip), client_id, secret)
    };
    // Ten failures, each from another address of one IPv6 /64 and with another spelling.
    for i in 0..10 {
        let ip = format!("2001:db8:7:7::{:x}", i + 1);
        let res = request(ip, spellings[i % spellings.len()].clone(), "guess".into()).await;
        assert_eq!(res.status(), 401);
    }
    let blocked = request("2001:db8:7:7:ffff::1".into(), id.to_string(), w.secret.clone()).await;
    assert_eq!(blocked.status(), 429);
    assert_eq!(blocked.json::<serde_json::Value>().await.unwrap()["error"], "slow_down");
    // The next /64, and an IPv4 client, are not refused.
    assert_eq!(request("2001:db8:7:8::1".into(), id.to_string(), w.secret.clone()).await.status(), 200);
    assert_eq!(request("198.51.100.20".into(), id.to_string(), w.secret.clone()).await.status(), 200);
}

#[tokio::test]
async fn scheme_names_and_media_types_are_compared_as_their_rfcs_say() {
    let w = world().await;
    let credentials = STANDARD.encode(format!("{}:{}", w.smc.client_id, w.secret));
    for (scheme, content_type) in [
        ("Basic", "application/x-www-form-urlencoded"),
        ("BASIC", "Application/X-WWW-Form-URLEncoded; charset=UTF-8"),
        ("basic", "application/x-www-form-urlencoded;charset=utf-8"),
    ] {
        let res = new_client()
            .post(w.app.url("/oauth2/token"))
            .header("authorization", format!("{scheme}  {credentials}"))
            .header("content-type", content_type)
            .body("grant_type=client_credentials&resource=match-connect-sandbox")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{scheme} / {content_type}");
    }
    // The scheme alone is missing credentials: invalid_client, with the Basic challenge.
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .header("authorization", "Basic")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn uses_are_recorded_off_the_request_path_about_once_a_minute() {
    let w = world().await;
    let id = w.smc.client_id.to_string();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", w.secret.as_str()),
        ("resource", "match-connect-sandbox"),
    ];
    let first = w.app.clock.now();
    assert_eq!(post(&w, &form).await.status(), 200);
    let secret = || async {
        w.app.store.list_client_secrets(w.smc.id).await.unwrap().into_iter().find(|s| s.id == w.secret_id).unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while secret().await.last_used_at.is_none() {
        assert!(std::time::Instant::now() < deadline, "the use was not recorded");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(secret().await.first_used_at, Some(first));
    // Within the minute: coalesced, nothing written.
    w.app.clock.advance(Duration::seconds(30));
    post(&w, &form).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(secret().await.last_used_at, Some(first));
    // A minute later: written.
    w.app.clock.advance(Duration::seconds(31));
    let later = w.app.clock.now();
    post(&w, &form).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while secret().await.last_used_at != Some(later) {
        assert!(std::time::Instant::now() < deadline, "the later use was not recorded");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(secret().await.first_used_at, Some(first));
}

#[tokio::test]
async fn a_rotation_leaves_no_gap_for_a_verifier_that_refetches_on_an_unknown_kid() {
    // Issue 12, point 5: the new key is published before any replica signs with it, and a
    // retired key stays published until its last token, and any cached JWKS, have expired.
    let w = world().await;
    let id = w.smc.client_id.to_string();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", w.secret.as_str()),
        ("resource", "match-connect-sandbox"),
    ];
    let kid_of = |token: &str| -> String {
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    let published = || async {
        let jwks = json(new_client().get(w.app.url("/.well-known/jwks.json")).send().await.unwrap()).await;
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let keys = &w.app.state.services.tokens.issuer.keys;
    let schedule = w.app.config.key_schedule;
    let mut tokens = vec![json(post(&w, &form).await).await["access_token"].as_str().unwrap().to_owned()];
    let old_kid = kid_of(&tokens[0]);
    let t0 = w.app.clock.now();
    let r = secret_portal::oauth::keys::rotate(&w.app.store, &w.app.config.master_key, schedule, t0).await.unwrap();
    assert_eq!(r.active_from, t0 + Duration::seconds(2 * 30 + 60));
    assert_eq!(r.retired_kid.as_deref(), Some(old_kid.as_str()));
    assert_eq!(r.retired_published_until, r.active_from + Duration::seconds(30 + 86_400 + 60));
    // Published at once; no replica signs with it yet, reloaded or not.
    assert!(published().await.contains(&r.kid));
    keys.reload(w.app.clock.now()).await.unwrap();
    for _ in 0..3 {
        w.app.clock.advance(Duration::seconds(39));
        let token = json(post(&w, &form).await).await["access_token"].as_str().unwrap().to_owned();
        assert_eq!(kid_of(&token), old_kid, "before active_from");
        tokens.push(token);
    }
    // From active_from on, the new key signs.
    w.app.clock.set(r.active_from);
    let token = json(post(&w, &form).await).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&token), r.kid);
    tokens.push(token);
    // Every token verifies until its exp against the JWKS a verifier would fetch then.
    for token in &tokens {
        verify(&w, token, "api://wmda/match-connect-sandbox").await;
    }
    let latest_old = w.app.clock.now() + Duration::seconds(30);
    w.app.clock.set(latest_old + Duration::seconds(86_400));
    assert!(published().await.contains(&old_kid), "a token the old key signed one reload late may still be live");
    // Once that and a cached JWKS have expired, the retired key is gone.
    w.app.clock.set(r.retired_published_until - Duration::seconds(1));
    assert!(published().await.contains(&old_kid));
    w.app.clock.set(r.retired_published_until + Duration::seconds(1));
    assert_eq!(published().await, vec![r.kid.clone()]);
    let jwks = new_client().get(w.app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=60");
    // The metadata documents.
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let m = json(new_client().get(w.app.url(path)).send().await.unwrap()).await;
        assert_eq!(m["issuer"], "http://127.0.0.1:8080");
        assert_eq!(m["token_endpoint"], "http://127.0.0.1:8080/oauth2/token");
        assert_eq!(m["jwks_uri"], "http://127.0.0.1:8080/.well-known/jwks.json");
        assert_eq!(m["grant_types_supported"], serde_json::json!(["client_credentials"]));
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post"])
        );
    }
}

/// An OAuth 2.0 client library (the `oauth2` crate) as partner systems' newer integrations use
/// it: HTTP Basic client authentication and a `.default` scope.
#[tokio::test]
async fn the_oauth2_crate_gets_a_token() {
    use oauth2::basic::BasicClient;
    use oauth2::{ClientId as OClientId, ClientSecret, Scope, TokenResponse as _, TokenUrl};
    let w = world().await;
    let client = BasicClient::new(OClientId::new(w.smc.client_id.to_string()))
        .set_client_secret(ClientSecret::new(w.secret.clone()))
        .set_token_uri(TokenUrl::new(w.app.url("/oauth2/token")).unwrap());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("api://wmda/search-match-production/.default".into()))
        .request_async(&http)
        .await
        .expect("the library accepts the answer");
    assert_eq!(token.expires_in(), Some(std::time::Duration::from_secs(3600)));
    verify(&w, token.access_token().secret(), "api://wmda/search-match-production").await;
}

/// Rows the shared throttle holds in a scope.
pub(crate) async fn throttle_rows(app: &TestApp, scope: &str) -> i64 {
    match app.store.backend() {
        secret_portal::store::Backend::Postgres(pool) => {
            sqlx::query_scalar("select count(*) from throttle_window where scope = $1")
                .bind(scope)
                .fetch_one(pool)
                .await
                .unwrap()
        }
        secret_portal::store::Backend::Sqlite(pool) => {
            sqlx::query_scalar("select count(*) from throttle_window where scope = $1")
                .bind(scope)
                .fetch_one(pool)
                .await
                .unwrap()
        }
    }
}

#[tokio::test]
async fn two_replicas_on_one_database_allow_what_one_allows() {
    let w = world().await;
    let b = w.app.replica().await;
    let id = w.smc.client_id.to_string();
    let attempt =
        |app: &TestApp, secret: &str| request_token(app.url("/oauth2/token"), None, id.clone(), secret.to_owned());
    // Ten failures, five on each replica, each replica writing its batch (as it does every
    // second) before the next: either alone counted five, under its limit of ten.
    for i in 0..10 {
        let app = if i % 2 == 0 { &w.app } else { &b };
        assert_eq!(attempt(app, "guess").await.status(), 401, "failure {i}");
        app.flush_throttles().await;
    }
    // Both replicas refuse the pair now, even with the right secret: the block rides on the one
    // secret lookup, and once learnt is answered from memory.
    for app in [&w.app, &b, &w.app, &b] {
        let res = attempt(app, &w.secret).await;
        assert_eq!(res.status(), 429);
        assert!(res.headers()["retry-after"].to_str().unwrap().parse::<i64>().unwrap() > 0);
        assert_eq!(json(res).await["error"], "slow_down");
    }
    // Without the batches written, each replica alone would still allow: the tolerance is one
    // unwritten batch per replica. Once the minute is over, both issue tokens again.
    for app in [&w.app, &b] {
        app.clock.advance(Duration::seconds(61));
        app.flush_throttles().await;
    }
    assert_eq!(attempt(&w.app, &w.secret).await.status(), 200);
    assert_eq!(attempt(&b, &w.secret).await.status(), 200);
}

#[tokio::test]
async fn a_flood_of_random_client_ids_from_one_address_stops_at_the_pre_limit_without_writes() {
    let w = world().await;
    let flood = |i: usize| {
        let url = w.app.url("/oauth2/token");
        let client_id = if i % 2 == 0 { ClientId::generate().to_string() } else { format!("random-{i}") };
        async move {
            new_client()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", "guess"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let mut statuses = Vec::new();
    for i in 0..300 {
        statuses.push(flood(i).await.as_u16());
    }
    w.app.flush_throttles().await;
    let limit = secret_portal::oauth::throttle::ADDRESS_FAILURES_PER_MINUTE;
    assert!(statuses[..limit].iter().all(|s| *s == 401));
    assert!(statuses[limit..].iter().all(|s| *s == 429), "past the pre-limit every request is refused");
    // One row per client ID that got as far as the database, none for the refused ones.
    assert_eq!(throttle_rows(&w.app, "token").await, limit as i64);
    // The pre-limit refuses the address whatever the client ID, the right secret too, and no
    // header lets a client step around it (no trusted proxy here).
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .header("x-forwarded-for", "198.51.100.30")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", w.smc.client_id.to_string().as_str()),
            ("client_secret", w.secret.as_str()),
            ("resource", "match-connect-sandbox"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    // The counts go once their window ended.
    w.app.clock.advance(Duration::minutes(2));
    assert_eq!(w.app.store.prune_throttle_counts(w.app.clock.now()).await.unwrap(), limit as u64);
}

#[tokio::test]
async fn a_secret_sent_as_the_client_id_never_reaches_the_logs() {
    let w = world().await;
    let id = w.smc.client_id.to_string();
    for (client_id, secret) in [(w.secret.as_str(), id.as_str()), (w.secret.as_str(), w.secret.as_str())] {
        let res =
            post(&w, &[("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", secret)])
                .await;
        assert_eq!(res.status(), 401);
    }
    let res = new_client()
        .post(w.app.url("/oauth2/token"))
        .header("authorization", basic(&w.secret, ""))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let logs = w.app.logs();
    assert!(logs.contains("token request refused"), "this app's refusals were not captured");
    assert!(!logs.contains(&w.secret), "the secret reached the logs");
}

#[tokio::test]
async fn a_burst_of_simultaneous_guesses_is_tried_at_most_up_to_the_limit() {
    let w = world().await;
    let id = w.smc.client_id.to_string();
    // Fifty requests at once, the right secret among them: at most ten are tried.
    let requests = (0..50).map(|i| {
        let url = w.app.url("/oauth2/token");
        let secret = if i == 25 { w.secret.clone() } else { format!("guess-{i}") };
        let id = id.clone();
        tokio::spawn(async move { request_token(url, None, id, secret).await.status().as_u16() })
    });
    let mut statuses = Vec::new();
    for r in requests.collect::<Vec<_>>() {
        statuses.push(r.await.unwrap());
    }
    let tried = statuses.iter().filter(|s| **s != 429).count();
    assert!(tried <= 10, "{tried} of 50 were tried: {statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 401).count() <= 10);
}
