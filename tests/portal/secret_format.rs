//! Issue 15, points 1-3 (DESIGN.md section 7): secrets in the leak-detectable v2 format, their
//! prefixed hint on every surface, v1 secrets that keep working, and the refusal of a malformed
//! `wmdacs_` value before any query or throttle. SQLite, and Postgres with TEST_DATABASE_URL.

use chrono::Duration;
use secret_portal::domain::{Api, ApplicationKind, Clock as _, PlainSecret, SecretFormat, Shape};
use secret_portal::store::{Application, UserRole};

use crate::support::{TestApp, new_client};

async fn token(app: &TestApp, a: &Application, secret: &str, basic: bool) -> reqwest::Response {
    let client_id = a.client_id.to_string();
    let mut request = new_client().post(app.url("/oauth2/token"));
    let mut form = vec![("grant_type", "client_credentials"), ("resource", "data-manager-production")];
    if basic {
        request = request.basic_auth(&client_id, Some(secret));
    } else {
        form.extend([("client_id", client_id.as_str()), ("client_secret", secret)]);
    }
    request.form(&form).send().await.unwrap()
}

/// Status, `WWW-Authenticate` and body: what a client can tell two refusals apart by.
async fn answer(res: reqwest::Response) -> (u16, Option<String>, String) {
    let status = res.status().as_u16();
    let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, res.text().await.unwrap())
}

/// A well-formed v2 value with one character of its random part changed: same length and
/// alphabet, failing checksum.
fn with_bad_checksum(value: &str) -> String {
    let mut bytes = value.as_bytes().to_vec();
    bytes[12] = if bytes[12] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

async fn dm_world() -> (TestApp, Application) {
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    (app, dm)
}

/// Point 3: a `wmdacs_` value with a bad checksum or length gets exactly a wrong secret's answer
/// (form and Basic), touches no throttle (a hundred from one address never reach the per-address
/// pre-limit, and no throttle row is written), is counted in `client_secrets_malformed_total`,
/// and runs no query: with the database closed it is still a 401, while a well-formed wrong
/// value, which must be looked up, is a 503.
#[tokio::test]
async fn a_malformed_v2_value_is_refused_like_a_wrong_secret_before_any_query_or_throttle() {
    let (app, dm) = dm_world().await;
    let (value, _) = app.seed_secret(dm.id, "Live", app.clock.now(), app.clock.today() + Duration::days(30)).await;
    let value = value.expose().to_owned();
    assert_eq!(answer(token(&app, &dm, &value, false).await).await.0, 200);
    let malformed = [
        with_bad_checksum(&value),
        value[..44].to_owned(),
        format!("{value}0"),
        format!("{}-{}", &value[..20], &value[21..]),
        "wmdacs_".to_owned(),
    ];
    let before = app.metric("client_secrets_malformed_total").await;
    for basic in [false, true] {
        let wrong = answer(token(&app, &dm, PlainSecret::generate().expose(), basic).await).await;
        assert_eq!(wrong.0, 401);
        for m in &malformed {
            assert_eq!(Shape::of(m), Shape::MalformedV2, "{m}");
            assert_eq!(answer(token(&app, &dm, m, basic).await).await, wrong, "{m} (basic: {basic})");
        }
    }
    // Malformed values are counted, not logged: the log has the two wrong secrets' lines only.
    assert_eq!(app.logs().matches("token request refused").count(), 2, "{}", app.logs());
    // The two wrong secrets above are the only failures the throttle saw.
    app.flush_throttles().await;
    let failures_before = crate::tokens::throttle_rows(&app, "token").await;
    let limit = secret_portal::oauth::throttle::ADDRESS_FAILURES_PER_MINUTE;
    for i in 0..(limit * 3) {
        let m = &malformed[i % malformed.len()];
        assert_eq!(token(&app, &dm, m, false).await.status(), 401, "request {i}: never 429");
    }
    app.flush_throttles().await;
    assert_eq!(crate::tokens::throttle_rows(&app, "token").await, failures_before);
    let counted = app.metric("client_secrets_malformed_total").await - before;
    assert!(counted >= (2 * malformed.len() + limit * 3) as f64, "counted {counted}");
    // The right secret still works: nothing was blocked.
    assert_eq!(token(&app, &dm, &value, false).await.status(), 200);

    app.store.close().await;
    let (status, _, body) = answer(token(&app, &dm, &with_bad_checksum(&value), false).await).await;
    assert_eq!((status, body.contains("invalid_client")), (401, true), "{body}");
    let looked_up = token(&app, &dm, PlainSecret::generate().expose(), false).await;
    assert_eq!(looked_up.status(), 503, "a well-formed value needs the database");
    // The machine API authenticates through the same guard: the same refusal without a query.
    let api = |secret: String| {
        let req = new_client().get(app.url("/api/v1/self")).basic_auth(dm.client_id.to_string(), Some(secret));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(api(with_bad_checksum(&value)).await, 401);
    assert_eq!(api(PlainSecret::generate().expose().to_owned()).await, 503);
}

/// Point 2: a secret made before v2 (40 alphanumerics, `value_format` 1) keeps working and keeps
/// its unprefixed hint, beside a v2 secret of the same application that shows `wmdacs_` on the
/// Manage page and the admin application page.
#[tokio::test]
async fn a_secret_made_before_v2_keeps_working_and_its_hint_beside_a_v2_one() {
    let (app, dm) = dm_world().await;
    let now = app.clock.now();
    let expires = app.clock.today() + Duration::days(60);
    let (old, _) =
        app.seed_secret_value(dm.id, "Old", now - Duration::days(100), expires, PlainSecret::generate_v1()).await;
    let (new, _) = app.seed_secret(dm.id, "New", now, expires).await;
    assert_eq!((old.hint().format(), new.hint().format()), (SecretFormat::V1, SecretFormat::V2));
    for (value, basic) in [(&old, false), (&old, true), (&new, false), (&new, true)] {
        assert_eq!(token(&app, &dm, value.expose(), basic).await.status(), 200);
    }
    let (jane, client) = app.account("jane@demo.example", UserRole::Member(dm.organisation_id)).await;
    app.store.grant_credential_manager(jane.user_id, dm.id, &secret_portal::store::Actor::cli(), now).await.unwrap();
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    let old_hint = format!("<code>{}…</code>", &old.expose()[..3]);
    let new_hint = format!("<code>wmdacs_{}…</code>", &new.expose()[7..10]);
    for (who, path) in
        [(&client, "/manage-api-credentials".to_owned()), (&admin, format!("/admin/applications/{}", dm.id))]
    {
        let html = who.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains(&old_hint) && html.contains(&new_hint), "{path}: {html}");
        assert!(!html.contains(&format!("wmdacs_{}", &old.expose()[..3])), "{path}: a v1 hint got the prefix");
    }
}

/// Point 1: the demo data's secrets are v2 too.
#[tokio::test]
async fn the_demo_data_is_made_of_v2_secrets() {
    let app = TestApp::spawn().await;
    secret_portal::demo::load(&app.store, &app.config.base_url, app.clock.now()).await.unwrap();
    let mut seen = 0;
    for a in app.store.all_applications(None, None).await.unwrap() {
        for s in a.secrets {
            assert_eq!(s.secret.hint.format(), SecretFormat::V2, "{}", s.secret.name);
            seen += 1;
        }
    }
    assert!(seen > 0, "the demo data has no secrets");
}

/// The regexes shipped in `docs/secret-scanning/`, read from the files as a scanner reads them.
fn shipped_patterns() -> Vec<(&'static str, regex::Regex)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/secret-scanning");
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();
    let between = |text: &str, start: &str, end: &str| -> String {
        let from = text.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len();
        text[from..][..text[from..].find(end).unwrap()].to_owned()
    };
    let gitleaks = read("gitleaks.toml");
    assert!(gitleaks.contains("secretGroup = 1"));
    let trufflehog = read("trufflehog.yaml");
    let github = read("github-custom-pattern.md");
    let (format, before, after) = (
        between(&github, "Secret format: `", "`"),
        between(&github, "Before secret: `", "`"),
        between(&github, "After secret: `", "`"),
    );
    vec![
        ("gitleaks", regex::Regex::new(&between(&gitleaks, "regex = '''", "'''")).unwrap()),
        ("trufflehog", regex::Regex::new(&between(&trufflehog, "secret: '", "'\n")).unwrap()),
        ("github", regex::Regex::new(&format!("(?:{before})({format})(?:{after})")).unwrap()),
    ]
}

/// Point 6: each shipped rule finds fresh secrets inside typical text (group 1 is the value) and
/// none of a v1 secret, a v2 value one character short or long, or a UUID; a value of the right
/// shape with a wrong checksum matches, and `secrets check` refuses it.
#[test]
fn the_shipped_scanner_rules_find_secrets_in_text_and_nothing_else() {
    for (tool, re) in shipped_patterns() {
        for _ in 0..20 {
            let v = PlainSecret::generate().expose().to_owned();
            for text in [
                format!("WMDA_CLIENT_SECRET={v}\n"),
                format!(r#"{{"client_id": "x", "client_secret": "{v}"}}"#),
                format!("auth:\n  client_secret: {v}\n"),
                format!("https://example.com/token?client_secret={v}&grant_type=client_credentials"),
                v.clone(),
            ] {
                let found = re.captures(&text).unwrap_or_else(|| panic!("{tool} misses {text}"));
                assert_eq!(&found[1], v.as_str(), "{tool}: {text}");
            }
            let v1 = PlainSecret::generate_v1().expose().to_owned();
            for text in [
                format!("secret={v1}"),
                format!("secret={}", &v[..44]),
                format!("secret={v}a"),
                format!("secret=x{v}"),
                "secret=0f8fad5b-d9cb-469f-a165-70867728950e".to_owned(),
            ] {
                assert!(!re.is_match(&text), "{tool} matches {text}");
            }
        }
    }
}

#[test]
fn secrets_check_confirms_the_checksum_and_prints_no_value() {
    let good = PlainSecret::generate().expose().to_owned();
    let mut bad = good.clone().into_bytes();
    bad[20] = if bad[20] == b'x' { b'y' } else { b'x' };
    let bad = String::from_utf8(bad).unwrap();
    for (tool, re) in shipped_patterns() {
        assert!(re.is_match(&format!(" {bad} ")), "{tool}: the checksum is the verifier's to check");
    }
    let v1 = PlainSecret::generate_v1().expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let run = |input: String| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_secret-portal"))
            .args(["secrets", "check"])
            .env_clear()
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (code, out, _) = run(format!("{good}\n"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("line 1") && out.contains("a well-formed client secret (checksum valid)"), "{out}");
    let (code, out, err) = run(format!("{good}\n\n{bad}\r\n{v1}\n{}\n", &good[..44]));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("line 3") && out.contains("checksum does not match"), "{out}");
    assert!(out.contains("line 4") && out.contains("does not start with wmdacs_"), "{out}");
    assert!(out.contains("line 5") && out.contains("has 37 characters"), "{out}");
    assert!(out.contains("1 of 4 value(s) are well-formed"), "{out}");
    for v in [&good, &bad, &v1] {
        assert!(!out.contains(v.as_str()) && !err.contains(v.as_str()), "a value was printed");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "it needs no ./data and no master key");
}
