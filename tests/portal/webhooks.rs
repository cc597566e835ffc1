//! Issue 17, points 3 and 5 (DESIGN.md section 9), first slice: the delivery transport's SSRF
//! guard and the `standard` signature. A name that resolves to a private address is refused by
//! the client's own resolver (an injected one: no test opens a connection to a private address
//! through the guard); with `allow_private` a local sink receives a signed delivery, which the
//! independent `standardwebhooks` crate verifies, and a redirect is not followed.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use secret_portal::domain::webhook::{SigningSecret, WebhookUrl};
use secret_portal::webhooks::{DeliveryError, GuardedResolver, Lookup, SystemLookup, client, post};

/// A resolver that answers every name with fixed addresses, and counts the lookups.
struct Fixed(Vec<IpAddr>, Mutex<usize>);

#[async_trait::async_trait]
impl Lookup for Fixed {
    async fn lookup(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
        *self.1.lock().unwrap() += 1;
        Ok(self.0.clone())
    }
}

fn fixed(addresses: &[&str]) -> Arc<Fixed> {
    Arc::new(Fixed(addresses.iter().map(|a| a.parse().unwrap()).collect(), Mutex::new(0)))
}

#[tokio::test]
async fn the_guard_keeps_only_globally_reachable_addresses_and_refuses_a_name_with_none() {
    let mixed =
        GuardedResolver::new(fixed(&["10.0.0.1", "8.8.8.8", "::1", "2606:4700:4700::1111", "169.254.169.254"]), false);
    let kept = mixed.addresses("hooks.example.org").await.unwrap();
    assert_eq!(kept, ["8.8.8.8".parse::<IpAddr>().unwrap(), "2606:4700:4700::1111".parse().unwrap()]);

    for addresses in [
        &["127.0.0.1"][..],
        &["10.0.0.1", "192.168.1.10", "172.16.5.4"],
        &["::ffff:127.0.0.1", "fd00::1", "fe80::1"],
        &["100.64.0.1", "198.18.0.1", "0.0.0.0", "64:ff9b::a00:1"],
        &[],
    ] {
        let guard = GuardedResolver::new(fixed(addresses), false);
        let err = guard.addresses("internal.example").await.unwrap_err();
        assert!(err.to_string().contains("does not deliver to"), "{addresses:?}: {err}");
    }
    assert_eq!(GuardedResolver::new(fixed(&["127.0.0.1"]), true).addresses("x").await.unwrap().len(), 1);

    // Through the client: refused before any connection, one lookup only, and the error names the
    // host, never the URL's path (a Slack or Teams URL is a credential).
    let lookup = fixed(&["127.0.0.1", "10.1.2.3"]);
    let client = client(lookup.clone(), false).unwrap();
    let url = WebhookUrl::parse("https://internal.example/services/T000/B000/XXXXSECRETPATH", false).unwrap();
    match post(&client, &url, &[], b"{}".to_vec()).await {
        Err(DeliveryError::Refused(why)) => {
            assert!(why.contains("internal.example") && !why.contains("SECRETPATH"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*lookup.1.lock().unwrap(), 1, "one lookup: the connection uses what it returned");
}

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A receiver on loopback: `/ok` answers 200 with a megabyte, `/moved` a redirect to `/ok`.
async fn sink() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = |path: &'static str, seen: Seen| {
        move |headers: HeaderMap, body: Bytes| async move {
            seen.lock().unwrap().push((path.to_owned(), headers, body));
        }
    };
    let ok = record("/ok", seen.clone());
    let moved = record("/moved", seen.clone());
    let app = axum::Router::new()
        .route(
            "/ok",
            axum::routing::post(move |h: HeaderMap, b: Bytes| async move {
                ok(h, b).await;
                vec![b'x'; 1024 * 1024]
            }),
        )
        .route(
            "/moved",
            axum::routing::post(move |h: HeaderMap, b: Bytes| async move {
                moved(h, b).await;
                (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, "/ok")])
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), seen)
}

#[tokio::test]
async fn a_signed_delivery_verifies_with_the_reference_library_and_redirects_are_not_followed() {
    let (base, seen) = sink().await;
    let client = client(Arc::new(SystemLookup), true).unwrap();
    let secret = SigningSecret::generate();
    let body = br#"{"type":"secret.created","timestamp":"2026-12-07T10:00:00Z","data":{"name":"Build"}}"#.to_vec();
    let (id, at) = ("msg_0193a0b6-0000-7000-8000-000000000001", {
        use secret_portal::domain::Clock as _;
        secret_portal::domain::SystemClock.now().timestamp()
    });
    let headers = [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", at.to_string()),
        ("webhook-signature", secret.sign(id, at, &body)),
    ];
    let url = WebhookUrl::parse(&format!("{base}/ok"), true).unwrap();
    assert_eq!(post(&client, &url, &headers, body.clone()).await.unwrap(), 200);
    let (path, got_headers, got_body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!((path.as_str(), &got_body[..]), ("/ok", &body[..]));
    assert_eq!(got_headers["content-type"], "application/json");
    let verifier = standardwebhooks::Webhook::new(secret.expose()).unwrap();
    verifier.verify(&got_body, &got_headers).expect("the reference library accepts the signature");
    let mut altered = got_body.to_vec();
    altered[2] ^= 1;
    assert!(verifier.verify(&altered, &got_headers).is_err());
    let other = standardwebhooks::Webhook::new(SigningSecret::generate().expose()).unwrap();
    assert!(other.verify(&got_body, &got_headers).is_err());

    let moved = WebhookUrl::parse(&format!("{base}/moved"), true).unwrap();
    assert_eq!(post(&client, &moved, &headers, body).await.unwrap(), 302);
    let paths: Vec<String> = seen.lock().unwrap().iter().map(|(p, _, _)| p.clone()).collect();
    assert_eq!(paths, ["/moved"], "the redirect was not followed");

    // The guarded client (no allow_private) refuses plain http before anything is sent.
    let strict = secret_portal::webhooks::client(Arc::new(SystemLookup), false).unwrap();
    assert!(post(&strict, &url, &[], b"{}".to_vec()).await.is_err());
    assert!(seen.lock().unwrap().len() == 1);
}
