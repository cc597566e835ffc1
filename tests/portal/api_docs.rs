//! Issue 16, point 5 (DESIGN.md section 8): the OpenAPI 3.1 document at
//! `GET /api/v1/openapi.json`, valid against the OpenAPI Initiative's schema and covering every
//! route under `/api/v1` but itself; `/api/docs`, rendered on the server from it; the rotation
//! script beside it.

use std::collections::BTreeSet;

use secret_portal::domain::{Api, ApplicationKind, Clock as _};
use secret_portal::store::{Actor, UserRole};
use serde_json::Value;

use crate::support::{TestApp, new_client};

/// The routes nested under `/api/v1` in the router's source (`src/web/mod.rs`), as
/// (method, path): what the document must cover, so a route added without documenting fails here.
fn routes_in_the_router() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/mod.rs")).unwrap();
    let start = source.find(".nest(\n            \"/api/v1\"").expect("the /api/v1 nest in src/web/mod.rs");
    let end = start + source[start..].find(".fallback(").expect("the nest's fallback");
    let route =
        regex::Regex::new(r#"\.route\(\s*"(/[^"]*)",\s*(?:axum::routing::)?(get|post|put|patch|delete)\("#).unwrap();
    let found: BTreeSet<(String, String)> = route
        .captures_iter(&source[start..end])
        .map(|c| (c[2].to_owned(), format!("/api/v1{}", &c[1])))
        .filter(|(_, path)| path != "/api/v1/openapi.json")
        .collect();
    assert!(found.len() >= 4, "the routes were not found in the source: {found:?}");
    found
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "options", "head", "patch", "trace"] {
            if item.get(method).is_some() {
                found.insert((method.to_owned(), path.clone()));
            }
        }
    }
    found
}

/// The document is OpenAPI 3.1, valid against the OpenAPI Initiative's JSON Schema, with every
/// route under `/api/v1` (and only those, each answering), the Basic scheme on the `self` routes,
/// every schema a `$ref` names, and every problem type.
#[tokio::test]
async fn the_openapi_document_is_valid_and_covers_every_api_route() {
    let app = TestApp::spawn().await;
    let res = new_client().get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], app.config.base_url.as_str());

    let schema: Value = serde_json::from_str(include_str!("../fixtures/openapi-3.1-schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator catches a broken document (so the check above means something).
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/self"]["get"]["responses"] = Value::String("none".into());
    assert!(!validator.is_valid(&broken));

    assert_eq!(documented(&doc), routes_in_the_router());
    for (method, path) in documented(&doc) {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let path = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let res = new_client().request(method.clone(), app.url(&path)).send().await.unwrap();
        // Unauthenticated: refused by the route itself, never "no such route".
        assert!(![404, 405].contains(&res.status().as_u16()), "{method} {path}: {}", res.status());
    }

    assert_eq!(doc["components"]["securitySchemes"]["client"]["scheme"], "basic");
    for path in ["/api/v1/self", "/api/v1/self/secrets", "/api/v1/self/secrets/{id}"] {
        for (_, op) in doc["paths"][path].as_object().unwrap() {
            assert_eq!(op["security"][0]["client"], serde_json::json!([]), "{path}");
            assert!(op["responses"]["401"]["content"]["application/problem+json"].is_object(), "{path}");
        }
    }
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for r in regex::Regex::new(r##""\$ref":"#/components/schemas/([A-Za-z]+)""##).unwrap().captures_iter(&text) {
        assert!(schemas.contains_key(&r[1]), "{} is named but not defined", &r[1]);
    }
    let problem_types: Vec<&str> =
        schemas["ProblemType"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for reason in [
        "invalid-client",
        "at-limit",
        "pending-successor",
        "self-rotation-off",
        "not-found",
        "validation",
        "unsupported-media-type",
        "body-too-large",
        "rate-limited",
    ] {
        assert!(problem_types.contains(&format!("urn:wmda:secret-portal:problem:{reason}").as_str()), "{reason}");
    }
    assert!(!text.contains("wmdacs_") || !regex::Regex::new("wmdacs_[0-9A-Za-z]{38}").unwrap().is_match(&text));
    // Written for partners: no internal references leak in from the code's doc comments.
    for internal in ["DESIGN", "[`", "issue 1", "ASVS"] {
        assert!(!text.contains(internal), "the document mentions {internal}");
    }

    // A field the answer always carries (null or not) is required in the schema, and the schema
    // names every field the answer carries.
    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (value, _) =
        app.seed_secret(dm.id, "Current", app.clock.now(), app.clock.today() + chrono::Duration::days(40)).await;
    let res = new_client()
        .get(app.url("/api/v1/self"))
        .basic_auth(dm.client_id.to_string(), Some(value.expose()))
        .send()
        .await
        .unwrap();
    let answer: Value = res.json().await.unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    let required = |name: &str| -> BTreeSet<String> {
        schemas[name]["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    let properties = |name: &str| keys(&schemas[name]["properties"]);
    for (name, object) in
        [("SelfOut", &answer), ("SecretOut", &answer["secrets"][0]), ("ResourceOut", &answer["resources"][0])]
    {
        assert_eq!(required(name), keys(object), "{name}");
        assert_eq!(properties(name), keys(object), "{name}");
    }
}

/// `/api/docs` is rendered from the document: every operation, its answers, every problem type,
/// the schemas and curl examples that take the secret on standard input; no third-party or
/// inline script. The rotation script is served beside it, and the Manage page links to both.
#[tokio::test]
async fn the_docs_page_is_made_from_the_document() {
    let app = TestApp::spawn().await;
    let doc: Value = new_client().get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let res = new_client().get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    for (method, path) in documented(&doc) {
        assert!(page.contains(&format!("{} {path}", method.to_uppercase())), "{method} {path}");
    }
    for t in doc["components"]["schemas"]["ProblemType"]["enum"].as_array().unwrap() {
        assert!(page.contains(t.as_str().unwrap()), "{t}");
    }
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(page.contains(&format!("id=\"schema-{name}\"")), "{name}");
    }
    assert!(page.contains("is_caller") && page.contains("pending-successor"));
    assert!(
        page.contains("curl -sS --fail-with-body -K -") && page.contains("$(cat &#34;$SECRET_FILE&#34;)"),
        "{page}"
    );
    // The site's own script file only (the page works without it); nothing inline.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains(r#"<script src="/static/portal.js" defer></script>"#));
    assert!(!page.contains("cdn") && !page.contains("unpkg"));

    let res = new_client().get(app.url("/api/docs/rotate.sh")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    let script = res.text().await.unwrap();
    assert_eq!(
        script,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/rotate.sh")).unwrap()
    );

    let org = app.create_org("NL", "DemoRegistry").await;
    let dm = app.register(org.id, ApplicationKind::Partner, Api::Dm).await;
    let (jane, client) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    app.store.grant_credential_manager(jane.user_id, dm.id, &Actor::cli(), app.clock.now()).await.unwrap();
    let manage = app.page(&client, "/manage-api-credentials").await;
    let panel = &manage[manage.find("<summary>API authentication</summary>").unwrap()..];
    assert!(panel.contains(r#"<a href="/api/docs">machine API</a>"#), "{panel}");
}
