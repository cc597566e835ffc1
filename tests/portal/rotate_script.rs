//! Issue 16, point 6 (DESIGN.md section 8): `docs/examples/rotate.sh` against a real portal. The
//! first run rotates a short-lived secret (the token endpoint accepts the new value); a second
//! run with `DELETE_AFTER_HOURS=0` deletes the predecessor; a third changes nothing. No secret is
//! printed or passed to curl in its arguments (a `curl` wrapper records them). Needs `sh`, `curl`
//! and `jq`.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Duration;
use secret_portal::domain::{Api, ApplicationKind, Clock as _};
use secret_portal::store::{Actor, UserRole};

use crate::support::{TestApp, new_client};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/rotate.sh");

struct Run {
    status: i32,
    output: String,
}

/// Runs the script with `env`, `curl` on the PATH being a wrapper that appends its arguments to
/// `argv.log` in `dir` before it runs the real curl. Off the test's runtime, which serves the portal.
async fn run(dir: &Path, env: &[(&str, &str)]) -> Run {
    let dir = dir.to_owned();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tokio::task::spawn_blocking(move || run_blocking(&dir, &env)).await.unwrap()
}

fn run_blocking(dir: &Path, env: &[(String, String)]) -> Run {
    let real_curl = which("curl");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("curl");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            dir.join("argv.log").display(),
            real_curl.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .arg(SCRIPT)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    }
}

fn which(tool: &str) -> PathBuf {
    let found =
        std::env::var("PATH").unwrap_or_default().split(':').map(|d| Path::new(d).join(tool)).find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("the rotation script's test needs {tool} on the PATH (apt-get install {tool})"))
}

#[tokio::test]
async fn the_rotation_script_rotates_then_deletes_the_predecessor_then_does_nothing() {
    which("jq");
    let app = TestApp::spawn().await;
    // The script reads the real time: the portal's clock shows it too.
    app.clock.set(secret_portal::domain::SystemClock.now());
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, _) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store.grant_credential_manager(jane.user_id, dm.id, &Actor::cli(), app.clock.now()).await.unwrap();
    let (old, old_id) = app
        .seed_secret(dm.id, "Short-lived", app.clock.now() - Duration::days(1), app.clock.today() + Duration::days(10))
        .await;
    let old = old.expose().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{old}\n")).unwrap();
    // Read-only to its owner, as secrets often are: the new file keeps that mode.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o440)).unwrap();
    let (url, client_id, file) = (app.url(""), dm.client_id.to_string(), secret_file.display().to_string());
    let env = [("PORTAL_URL", url.as_str()), ("CLIENT_ID", client_id.as_str()), ("SECRET_FILE", file.as_str())];

    // Self-rotation off: refused, the file unchanged, the reason said.
    let refused = run(dir.path(), &env).await;
    assert_eq!(refused.status, 1, "{}", refused.output);
    assert!(refused.output.contains("self-rotation-off"), "{}", refused.output);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), format!("{old}\n"));
    app.store.set_self_rotation(dm.id, true).await.unwrap();

    // 1. Rotates: a new value in the file, accepted by the token endpoint; the predecessor stays.
    let first = run(dir.path(), &env).await;
    assert_eq!(first.status, 0, "{}", first.output);
    assert!(first.output.contains("rotated: the new secret"), "{}", first.output);
    let new = std::fs::read_to_string(&secret_file).unwrap().trim_end().to_owned();
    assert!(new.starts_with("wmdacs_") && new != old);
    assert_eq!(std::fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777, 0o440, "the mode is kept");
    let res = new_client()
        .post(app.url("/oauth2/token"))
        .basic_auth(&client_id, Some(&new))
        .form(&[("grant_type", "client_credentials"), ("resource", "data-manager-production")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let secrets = app.store.list_client_secrets(dm.id).await.unwrap();
    let live: Vec<_> = secrets.iter().filter(|s| s.deleted_at.is_none()).collect();
    assert_eq!(live.len(), 2, "never deletes in the run that rotated");
    let state = std::fs::read_to_string(dir.path().join("client-secret.state")).unwrap();
    assert!(state.contains(&format!("predecessor={old_id}")), "{state}");

    // SECRET_FILE restored to the old value (a backup, configuration management): the script
    // does not delete what it no longer holds the successor of, and keeps its state.
    let mut env0 = env.to_vec();
    env0.push(("DELETE_AFTER_HOURS", "0"));
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(&secret_file, format!("{old}\n")).unwrap();
    let restored = run(dir.path(), &env0).await;
    assert_eq!(restored.status, 1, "{}", restored.output);
    assert!(restored.output.contains("no longer holds the secret this script rotated to"), "{}", restored.output);
    assert_eq!(
        app.store.list_client_secrets(dm.id).await.unwrap().iter().filter(|s| s.deleted_at.is_none()).count(),
        2
    );
    std::fs::write(&secret_file, format!("{new}\r\n")).unwrap();

    // A run the same day with the default DELETE_AFTER_HOURS keeps the predecessor.
    let kept = run(dir.path(), &env).await;
    assert_eq!(kept.status, 0, "{}", kept.output);
    assert!(kept.output.contains("keeping the predecessor"), "{}", kept.output);

    // 2. DELETE_AFTER_HOURS=0, the predecessor unused: deleted, through the API.
    let second = run(dir.path(), &env0).await;
    assert_eq!(second.status, 0, "{}", second.output);
    assert!(second.output.contains(&format!("deleted the predecessor {old_id}")), "{}", second.output);
    let secrets = app.store.list_client_secrets(dm.id).await.unwrap();
    assert!(secrets.iter().find(|s| s.id == old_id).unwrap().deleted_at.is_some());
    assert!(!dir.path().join("client-secret.state").exists());

    // 3. Nothing to do.
    let third = run(dir.path(), &env0).await;
    assert_eq!(third.status, 0, "{}", third.output);
    assert!(third.output.contains("nothing to do"), "{}", third.output);
    // (Token use is recorded off the request path, so first and last use may land in between.)
    let shape = |all: &[secret_portal::store::ClientSecret]| -> Vec<_> {
        all.iter().map(|s| (s.id, s.name.clone(), s.expires_on, s.deleted_at)).collect()
    };
    assert_eq!(
        shape(&app.store.list_client_secrets(dm.id).await.unwrap()),
        shape(&secrets),
        "the third run changed nothing"
    );
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap().trim_end(), new);

    // No secret was printed or put in curl's arguments.
    let argv = std::fs::read_to_string(dir.path().join("argv.log")).unwrap();
    for (what, text) in [
        ("output", [refused.output, first.output, restored.output, kept.output, second.output, third.output].concat()),
        ("curl's arguments", argv),
    ] {
        assert!(!text.contains(&old) && !text.contains(&new), "a secret in {what}: {text}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 3, "{leftovers:?}"); // client-secret, bin, argv.log
}

/// A successor whose value this host does not hold is explained, not retried blindly; one kept
/// beside SECRET_FILE by an interrupted run is put in place by the next run.
#[tokio::test]
async fn the_rotation_script_explains_a_lost_successor_and_finishes_with_a_kept_one() {
    which("jq");
    let app = TestApp::spawn().await;
    app.clock.set(secret_portal::domain::SystemClock.now());
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (old, old_id) = app
        .seed_secret(dm.id, "Short-lived", app.clock.now() - Duration::days(1), app.clock.today() + Duration::days(10))
        .await;
    let old = old.expose().to_owned();
    app.store.set_self_rotation(dm.id, true).await.unwrap();
    let client_id = dm.client_id.to_string();
    // The successor made by a run that died before it wrote the value anywhere.
    let res =
        new_client().post(app.url("/api/v1/self/secrets")).basic_auth(&client_id, Some(&old)).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let (kept, kept_id) = (created["value"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned());

    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{old}\n")).unwrap();
    let (url, file) = (app.url(""), secret_file.display().to_string());
    let env = [("PORTAL_URL", url.as_str()), ("CLIENT_ID", client_id.as_str()), ("SECRET_FILE", file.as_str())];

    // A leftover that holds the current secret (a copy an older version left) is no successor.
    std::fs::write(dir.path().join("client-secret.new.copy01"), format!("{old}\n")).unwrap();
    let lost = run(dir.path(), &env).await;
    assert!(lost.output.contains("it holds the current secret, not a successor"), "{}", lost.output);
    assert_eq!(lost.status, 1, "{}", lost.output);
    assert!(lost.output.contains(&format!("already created the successor {kept_id}")), "{}", lost.output);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), format!("{old}\n"));
    let files = || {
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    assert_eq!(files(), ["argv.log", "bin", "client-secret"]);

    // The value was kept beside SECRET_FILE (say the token endpoint did not answer): finished now.
    std::fs::write(dir.path().join("client-secret.new.kept01"), format!("{kept}\n")).unwrap();
    let finished = run(dir.path(), &env).await;
    assert_eq!(finished.status, 0, "{}", finished.output);
    assert!(finished.output.contains(&format!("found the successor {kept_id}")), "{}", finished.output);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), format!("{kept}\n"));
    let state = std::fs::read_to_string(dir.path().join("client-secret.state")).unwrap();
    assert!(
        state.contains(&format!("predecessor={old_id}")) && state.contains(&format!("successor={kept_id}")),
        "{state}"
    );
    assert_eq!(files(), ["argv.log", "bin", "client-secret", "client-secret.state"]);
    let argv = std::fs::read_to_string(dir.path().join("argv.log")).unwrap();
    let output = [lost.output, finished.output].concat();
    assert!(!argv.contains(&old) && !argv.contains(&kept) && !output.contains(&old) && !output.contains(&kept));
}

/// Bad settings get a usage error (2) and change nothing; an unreadable answer is not mistaken
/// for success.
#[tokio::test]
async fn the_rotation_script_refuses_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, "wmdacs_x\n").unwrap();
    let file = secret_file.display().to_string();
    for (env, words) in [
        (vec![("CLIENT_ID", "x"), ("SECRET_FILE", file.as_str())], "set PORTAL_URL"),
        (vec![("PORTAL_URL", "http://127.0.0.1:9"), ("SECRET_FILE", file.as_str())], "set CLIENT_ID"),
        (
            vec![("PORTAL_URL", "http://127.0.0.1:9"), ("CLIENT_ID", "x"), ("SECRET_FILE", "/nonexistent/x")],
            "cannot read",
        ),
        (
            vec![
                ("PORTAL_URL", "http://127.0.0.1:9"),
                ("CLIENT_ID", "x"),
                ("SECRET_FILE", file.as_str()),
                ("RENEW_DAYS", "-3"),
            ],
            "whole numbers",
        ),
    ] {
        let r = run(dir.path(), &env).await;
        assert_eq!(r.status, 2, "{}", r.output);
        assert!(r.output.contains(words), "{}", r.output);
    }
    let r =
        run(dir.path(), &[("PORTAL_URL", "http://127.0.0.1:9"), ("CLIENT_ID", "x"), ("SECRET_FILE", file.as_str())])
            .await;
    assert_eq!(r.status, 1, "{}", r.output);
    assert!(r.output.contains("cannot reach"), "{}", r.output);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), "wmdacs_x\n");
}
