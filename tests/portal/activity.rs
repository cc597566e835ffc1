//! Issue 18, points 1 and 5 (DESIGN.md section 10): `/manage-api-credentials/activity` shows a
//! credential manager exactly the events of the applications granted to them now (events from
//! before the grant included), never sign-ins, account events or WMDA's own administration; bad
//! input gets a message, never a 5xx; the CSV export neutralises formulas. SQLite, and Postgres
//! with TEST_DATABASE_URL.

use std::collections::BTreeSet;

use secret_portal::domain::{Api, ApplicationKind, Clock as _};
use secret_portal::store::{ActivityFilter, Actor, Application, UserRole};

use crate::support::{TestApp, new_client};

const YES: &[(&str, &str)] = &[("confirm", "yes")];

struct World {
    app: TestApp,
    /// Organisation A's DM and SMC applications; organisation B's.
    a1: Application,
    a2: Application,
    b1: Application,
    /// Manages A1 and A2.
    ann: (uuid::Uuid, reqwest::Client),
    /// Manages A1 only, granted after A1's first events.
    bob: (uuid::Uuid, reqwest::Client),
    /// Managed A2 until the grant was revoked.
    cat: (uuid::Uuid, reqwest::Client),
    /// Manages A1, but is disabled.
    dan: uuid::Uuid,
    /// Manages B1.
    eve: (uuid::Uuid, reqwest::Client),
}

/// Creates a secret named `name` on `application` through the Manage page as `client`.
async fn create(app: &TestApp, client: &reqwest::Client, application: &Application, name: &str) {
    let form_id = app.create_form_id(client, &application.client_id).await;
    let expires = (app.clock.today() + chrono::Duration::days(200)).to_string();
    let path = format!("/manage-api-credentials/{}/secrets", application.client_id);
    let res = app.post_form(client, &path, &[("name", name), ("expires_on", &expires), ("form_id", &form_id)]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

async fn secret_id(app: &TestApp, application: &Application, name: &str) -> uuid::Uuid {
    let all = app.store.all_applications(Some(application.id), None).await.unwrap().pop().unwrap();
    all.secrets.iter().find(|s| s.secret.name == name).unwrap().secret.id
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let a = app.create_org("NL", "AlphaRegistry").await;
    let b = app.create_org("DE", "BetaRegistry").await;
    let a1 = app.register(a.id, ApplicationKind::Partner, Api::Dm).await;
    let a2 = app.register(a.id, ApplicationKind::Partner, Api::Smc).await;
    let b1 = app.register(b.id, ApplicationKind::Partner, Api::Dm).await;
    let b2 = app.register(b.id, ApplicationKind::Partner, Api::Smc).await;
    let (ann, ann_c) = app.account("ann@alpha.example", UserRole::Member(a.id)).await;
    let (bob, bob_c) = app.account("bob@alpha.example", UserRole::Member(a.id)).await;
    let (cat, cat_c) = app.account("cat@alpha.example", UserRole::Member(a.id)).await;
    let (dan, _) = app.account("dan@alpha.example", UserRole::Member(a.id)).await;
    let (eve, eve_c) = app.account("eve@beta.example", UserRole::Member(b.id)).await;
    let (_, admin) = app.account("admin@wmda.example", UserRole::WmdaAdmin).await;
    // Names as people have them (the test accounts' names hold their addresses).
    for (user, name) in
        [(&ann, "Ann Alpha"), (&bob, "Bob Alpha"), (&cat, "Cat Alpha"), (&dan, "Dan Alpha"), (&eve, "Eve Beta")]
    {
        raw_sql!(app.store, "update portal_user set display_name = $1 where id = $2", name, user.user_id).unwrap();
    }
    let grant = |user, application| {
        let (app, now) = (&app, app.clock.now());
        async move { app.store.grant_credential_manager(user, application, &Actor::cli(), now).await.unwrap() }
    };
    grant(ann.user_id, a1.id).await;
    grant(ann.user_id, a2.id).await;
    grant(cat.user_id, a2.id).await;
    grant(dan.user_id, a1.id).await;
    grant(eve.user_id, b1.id).await;
    grant(eve.user_id, b2.id).await;

    // A1: Ann creates two secrets, deletes one; WMDA deletes the other with a reason.
    create(&app, &ann_c, &a1, "=HYPERLINK(\"http://evil.example\")").await;
    create(&app, &ann_c, &a1, "Production (Ann)").await;
    let first = secret_id(&app, &a1, "=HYPERLINK(\"http://evil.example\")").await;
    let path = format!("/manage-api-credentials/{}/secrets/{first}/delete", a1.client_id);
    assert_eq!(app.post_form(&ann_c, &path, &[]).await.status(), 303);
    let second = secret_id(&app, &a1, "Production (Ann)").await;
    let path = format!("/admin/applications/{}/secrets/{second}/delete", a1.id);
    let reason = "Seen in a public paste; =cmd|' /C calc'!A0";
    assert_eq!(app.post_form(&admin, &path, &[("reason", reason)]).await.status(), 303);
    // Bob is granted A1 only now: he sees what came before.
    grant(bob.user_id, a1.id).await;
    // A2: Ann creates one; Cat's grant is then revoked.
    create(&app, &ann_c, &a2, "Search (Ann)").await;
    let revoke = format!("/admin/applications/{}/grants/{}/revoke", a2.id, cat.user_id);
    assert_eq!(app.post_form(&admin, &revoke, YES).await.status(), 303);
    // B1: Eve creates one.
    create(&app, &eve_c, &b1, "Beta (Eve)").await;
    // Dan is disabled; Bob fails a sign-in; WMDA renames organisation A (admin-only).
    assert_eq!(app.post_form(&admin, &format!("/admin/users/{}/disable", dan.user_id), YES).await.status(), 303);
    app.password_step(&new_client(), "bob@alpha.example", "wrong password", "").await;
    let rename = format!("/admin/organisations/{}/rename", a.id);
    app.post_form(&admin, &rename, &[("display_name", "Alpha Registry Renamed")]).await;
    World {
        app,
        a1,
        a2,
        b1,
        ann: (ann.user_id, ann_c),
        bob: (bob.user_id, bob_c),
        cat: (cat.user_id, cat_c),
        dan: dan.user_id,
        eve: (eve.user_id, eve_c),
    }
}

/// (action, application name) of every event `user` sees, oldest first.
async fn seen(w: &World, user: uuid::Uuid) -> Vec<(String, String)> {
    let (events, total) = w.app.store.manager_activity(user, &ActivityFilter::default(), 1000, 0).await.unwrap();
    assert_eq!(usize::try_from(total).unwrap(), events.len());
    events.into_iter().rev().map(|e| (e.event.action, e.application)).collect()
}

fn pairs(list: &[(&str, &Application)]) -> Vec<(String, String)> {
    list.iter().map(|(a, app)| ((*a).to_owned(), app.name.clone())).collect()
}

/// A portal with an SMC application of organisation NL managed by Jane, and one of organisation
/// DE managed by Hans: (app, NL's, DE's, Jane (user id, client), Hans (user id, client)).
async fn two_organisations()
-> (TestApp, Application, Application, (uuid::Uuid, reqwest::Client), (uuid::Uuid, reqwest::Client)) {
    use secret_portal::domain::{Api, ApplicationKind};
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let other = app.create_org("DE", "OtherRegistry").await;
    let smc = app.register(org.id, ApplicationKind::Partner, Api::Smc).await;
    let theirs = app.register(other.id, ApplicationKind::Partner, Api::Smc).await;
    let (jane, jane_c) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    let (hans, hans_c) = app.account("hans@other.example", UserRole::Member(other.id)).await;
    let now = app.clock.now();
    app.store.grant_credential_manager(jane.user_id, smc.id, &Actor::cli(), now).await.unwrap();
    app.store.grant_credential_manager(hans.user_id, theirs.id, &Actor::cli(), now).await.unwrap();
    (app, smc, theirs, (jane.user_id, jane_c), (hans.user_id, hans_c))
}

/// The status of a partner-style token request for `client_id` with `secret`.
async fn token_status(app: &TestApp, client_id: &str, secret: &str) -> u16 {
    new_client()
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("resource", "match-connect-sandbox"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The authorisation matrix: each manager sees exactly the events of the applications granted
/// to them now.
#[tokio::test]
async fn each_manager_sees_exactly_the_events_of_the_applications_granted_now() {
    let w = world().await;
    let a1_events = [
        ("grant.added", &w.a1),
        ("grant.added", &w.a1),
        ("secret.created", &w.a1),
        ("secret.created", &w.a1),
        ("secret.deleted", &w.a1),
        ("secret.deleted", &w.a1),
        ("grant.added", &w.a1),
    ];
    let a2_events =
        [("grant.added", &w.a2), ("grant.added", &w.a2), ("secret.created", &w.a2), ("grant.revoked", &w.a2)];
    let ann: Vec<(String, String)> = seen(&w, w.ann.0).await;
    let mut expected: Vec<(String, String)> = pairs(&a1_events);
    expected.extend(pairs(&a2_events));
    assert_eq!(ann.iter().cloned().collect::<BTreeSet<_>>().len(), 6, "{ann:?}");
    let mut sorted = ann.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "Ann: both applications, every event");
    let mut bob = seen(&w, w.bob.0).await;
    bob.sort();
    let mut only_a1 = pairs(&a1_events);
    only_a1.sort();
    assert_eq!(bob, only_a1, "Bob: A1's events, those before his grant included");
    assert!(seen(&w, w.cat.0).await.is_empty(), "a revoked grant shows nothing, not even the past");
    assert!(seen(&w, w.dan).await.is_empty(), "a disabled user sees nothing");
    let eve = seen(&w, w.eve.0).await;
    assert!(eve.iter().all(|(_, app)| *app == w.b1.name || app.ends_with("-SMC")), "{eve:?}");
    assert_eq!(eve.iter().filter(|(a, _)| a == "secret.created").count(), 1);
    for user in [w.ann.0, w.bob.0, w.eve.0] {
        let (events, _) = w.app.store.manager_activity(user, &ActivityFilter::default(), 1000, 0).await.unwrap();
        for e in &events {
            assert!(
                !e.event.action.starts_with("auth.")
                    && !e.event.action.starts_with("user.")
                    && !e.event.action.starts_with("organisation.")
                    && e.event.action != "application.created",
                "{}",
                e.event.action
            );
        }
    }

    // The page shows Ann's events in words: people by name, WMDA's admin as "WMDA" with the
    // reason, the secret by name and hint, no email address anywhere.
    let page = w.app.page(&w.ann.1, "/manage-api-credentials/activity").await;
    assert!(page.contains("13 events") || page.contains(&format!("{} events", ann.len())), "{page}");
    assert!(page.contains("Client secret deleted") && page.contains("Reason: Seen in a public paste; =cmd"), "{page}");
    assert!(page.contains(">WMDA<") && page.contains("Credential manager role revoked"), "{page}");
    assert!(page.contains(">Ann Alpha<") && page.contains("Credential manager: Cat Alpha"), "{page}");
    assert!(page.contains("“Production (Ann)”"), "{page}");
    for address in ["@alpha.example", "@wmda.example", "@beta.example"] {
        assert!(!page.contains(address), "{address} shown");
    }
    assert!(!page.contains(&w.b1.name), "another organisation's application");
    let manage = w.app.page(&w.bob.1, "/manage-api-credentials").await;
    assert!(manage.contains("href=\"/manage-api-credentials/activity\""), "linked from the Manage page");
    // Filters: one application, one action, dates.
    let only = w
        .app
        .page(
            &w.ann.1,
            &format!("/manage-api-credentials/activity?application={}&action=secret.created", w.a2.client_id),
        )
        .await;
    assert!(only.contains("1 event.") && only.contains("Search (Ann)") && !only.contains("Production (Ann)"), "{only}");
    let today = w.app.clock.today();
    let dated = w.app.page(&w.ann.1, &format!("/manage-api-credentials/activity?from={today}&to={today}")).await;
    assert!(dated.contains(&format!("{} events", ann.len())), "{dated}");
    let none =
        w.app.page(&w.ann.1, &format!("/manage-api-credentials/activity?from={}", today.succ_opt().unwrap())).await;
    assert!(none.contains("0 events") && none.contains("No events."), "{none}");
}

/// Point 5: bad input gets a clear message (or an empty result), never a 5xx; the CSV export
/// neutralises formulas in every cell.
#[tokio::test]
async fn bad_input_gets_a_message_and_the_export_neutralises_formulas() {
    let w = world().await;
    let cases = [
        ("action=auth.sign_in", "There is no such action on this page", true),
        ("action=nope", "There is no such action on this page", true),
        ("from=2026-13-01", "The from date must be YYYY-MM-DD", false),
        ("to=yesterday", "The to date must be YYYY-MM-DD", false),
        ("from=2026-12-31&to=2026-01-01", "is after the to date", true),
        ("page=-1", "Showing the first page", false),
        ("page=99999999999999999999", "Showing the first page", false),
        ("page=500", "There is no page 500", false),
        ("application=not-a-client-id", "You are not a credential manager of that application", true),
        ("application=%00", "", true),
    ];
    for (query, message, empty) in cases {
        let res = w.ann.1.get(w.app.url(&format!("/manage-api-credentials/activity?{query}"))).send().await.unwrap();
        let status = res.status().as_u16();
        let page = res.text().await.unwrap();
        if query.contains("%00") {
            assert_eq!(status, 400, "{query}");
            continue;
        }
        assert_eq!(status, 200, "{query}: {page}");
        assert!(page.contains(message), "{query}: {message} not in {page}");
        if empty {
            assert!(page.contains("0 events") && page.contains("No events."), "{query}: {page}");
        }
    }
    // An export with a wrong date is not made (leaving the bound out would export everything).
    for query in ["from=2026-13-01", "to=bad", "from=2026-12-31&to=2026-01-01"] {
        let res = w
            .ann
            .1
            .get(w.app.url(&format!("/manage-api-credentials/activity?{query}&format=csv")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{query}");
        let page = res.text().await.unwrap();
        assert!(page.contains("Export not made") && !page.contains("\"time\",\"actor\""), "{query}: {page}");
    }
    let res = w.app.post_form(&w.ann.1, "/manage-api-credentials/activity", &[]).await;
    assert_eq!(res.status(), 405);
    // Another organisation's application: a message and nothing, by client ID.
    let theirs = format!("/manage-api-credentials/activity?application={}", w.b1.client_id);
    let page = w.app.page(&w.ann.1, &theirs).await;
    assert!(
        page.contains("You are not a credential manager of that application") && page.contains("0 events"),
        "{page}"
    );
    let res = w.ann.1.get(w.app.url(&format!("{theirs}&format=csv"))).send().await.unwrap();
    assert_eq!(res.status(), 422, "no export of another organisation's application");
    let page = res.text().await.unwrap();
    assert!(page.contains("You are not a credential manager of that application") && !page.contains(&w.b1.name));
    // Someone who manages nothing: an empty page, not an error.
    let (_, nobody) = w.app.account("zoe@alpha.example", UserRole::Member(w.a1.organisation_id)).await;
    let page = w.app.page(&nobody, "/manage-api-credentials/activity").await;
    assert!(page.contains("0 events"), "{page}");

    // The export: a header and one line per event; a person named like a formula and a reason
    // with a formula after a separator get an apostrophe before it.
    raw_sql!(w.app.store, "update portal_user set display_name = '=SUM(1+1)' where id = $1", w.ann.0).unwrap();
    let res = w.ann.1.get(w.app.url("/manage-api-credentials/activity?format=csv")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("activity.csv"));
    let csv = res.text().await.unwrap();
    let first = csv.lines().next().unwrap();
    assert_eq!(
        first,
        "\"time\",\"actor\",\"action\",\"action_words\",\"application\",\"client_id\",\"secret\",\"details\""
    );
    assert!(csv.contains("\"'=SUM(1+1)\"") && csv.contains("Seen in a public paste; '=cmd"), "{csv}");
    assert!(csv.contains("“=HYPERLINK("), "the secret's name is quoted: {csv}");
    for line in csv.lines() {
        for cell in line.split("\",\"") {
            let cell = cell.trim_matches('"');
            assert!(!cell.starts_with(['=', '+', '-', '@']), "a cell read as a formula: {cell} in {line}");
        }
    }
    assert!(!csv.contains("@alpha.example") && !csv.contains(&w.b1.name), "{csv}");
}

/// Point 2: every token and every `invalid_client` answer is counted per UTC day, off the request
/// path, with the last address; the Manage page says where a secret was last used from and how
/// many requests for the client ID were refused; the activity page lists the days. Another
/// organisation's manager sees none of it; a client ID of no application is not stored; days
/// past 90 are deleted.
#[tokio::test]
async fn token_usage_and_refusals_are_counted_per_day_and_shown_to_the_managers() {
    let (app, smc, _, (jane, jane_c), (hans, hans_c)) = two_organisations().await;
    let now = app.clock.now();
    let (value, secret_id) =
        app.seed_secret(smc.id, "Production", now, app.clock.today() + chrono::Duration::days(100)).await;
    let client_id = smc.client_id.to_string();
    for _ in 0..3 {
        assert_eq!(token_status(&app, &client_id, value.expose()).await, 200);
    }
    for _ in 0..2 {
        assert_eq!(token_status(&app, &client_id, "an old secret").await, 401);
    }
    assert_eq!(token_status(&app, &uuid::Uuid::new_v4().to_string(), "x").await, 401, "a client ID of no application");
    assert_eq!(token_status(&app, "not-a-client-id", "x").await, 401);

    // Written by the background flush (every second).
    let since = app.clock.today() - chrono::Duration::days(13);
    let mut waited = 0;
    let (usage, refusals) = loop {
        let (usage, refusals) = app.store.manager_usage(jane, since).await.unwrap();
        if usage.first().is_some_and(|u| u.issued == 3) && refusals.first().is_some_and(|r| r.refused == 2) {
            break (usage, refusals);
        }
        waited += 1;
        assert!(waited < 100, "not flushed: {usage:?} {refusals:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!((usage.len(), usage[0].secret_id, usage[0].last_ip.as_str()), (1, secret_id, "127.0.0.1"));
    assert_eq!((refusals.len(), refusals[0].application_id, refusals[0].last_ip.as_str()), (1, smc.id, "127.0.0.1"));
    let stored = raw_sql!(app.store, "update client_refusal_day set refused = refused where refused >= 0").unwrap();
    assert_eq!(stored, 1, "the unknown client ID was dropped");

    let page = app.page(&jane_c, "/manage-api-credentials").await;
    assert!(page.contains(" UTC from 127.0.0.1"), "{page}");
    assert!(page.contains("2 token requests for this client ID were refused yesterday and today"), "{page}");
    let activity = app.page(&jane_c, "/manage-api-credentials/activity").await;
    assert!(activity.contains("Token requests, the last 14 days"), "{activity}");
    assert!(
        activity.contains("data-label=\"Tokens issued\">3<") && activity.contains("data-label=\"Refused requests\">2<"),
        "{activity}"
    );
    // Another organisation's manager: nothing of it.
    let (usage, refusals) = app.store.manager_usage(hans, since).await.unwrap();
    assert!(usage.is_empty() && refusals.is_empty());
    let page = app.page(&hans_c, "/manage-api-credentials").await;
    assert!(!page.contains("were refused") && !page.contains("from 127.0.0.1"), "{page}");
    let activity = app.page(&hans_c, "/manage-api-credentials/activity").await;
    assert!(activity.contains("No tokens issued.") && activity.contains("No refused requests."), "{activity}");

    // Days past 90 go.
    let old = app.clock.today() - chrono::Duration::days(100);
    let count = secret_portal::store::DayCount { count: 5, last_at: now, last_ip: "192.0.2.9".to_owned() };
    app.store.add_usage_days(&[(secret_id, old, count)]).await.unwrap();
    assert_eq!(app.store.prune_usage_days(app.clock.today() - chrono::Duration::days(90)).await.unwrap(), 1);
    assert_eq!(app.store.manager_usage(jane, old).await.unwrap().0.len(), 1, "today's day stays");
}

/// Point 4: each secret shows the last instant it works, with its zone; `?sort=expiry` and
/// `?sort=last_used` order each application's secrets; anything else keeps newest first.
#[tokio::test]
async fn secrets_show_their_last_instant_and_sort_by_expiry_and_last_use() {
    use secret_portal::domain::{Api, ApplicationKind};
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let smc = app.register(org.id, ApplicationKind::Partner, Api::Smc).await;
    let (jane, jane_c) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    let now = app.clock.now();
    app.store.grant_credential_manager(jane.user_id, smc.id, &Actor::cli(), now).await.unwrap();
    let today = app.clock.today();
    let day = |n| today + chrono::Duration::days(n);
    // Created oldest to newest: Late (expires last), Early (expires first), Middle.
    let (_, late) = app.seed_secret(smc.id, "Late", now - chrono::Duration::days(3), day(300)).await;
    app.seed_secret(smc.id, "Early", now - chrono::Duration::days(2), day(20)).await;
    let (_, middle) = app.seed_secret(smc.id, "Middle", now - chrono::Duration::days(1), day(100)).await;
    app.store.record_secret_use(late, now - chrono::Duration::hours(5)).await.unwrap();
    app.store.record_secret_use(middle, now - chrono::Duration::hours(1)).await.unwrap();
    let order = |page: &str| {
        let mut found: Vec<(usize, &str)> =
            ["Late", "Early", "Middle"].iter().map(|n| (page.find(&format!(">{n}<")).unwrap(), *n)).collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
    };
    let page = app.page(&jane_c, "/manage-api-credentials").await;
    assert_eq!(order(&page), ["Middle", "Early", "Late"], "newest first");
    assert!(page.contains(&format!("works until {} 23:59:59 UTC", day(20))), "{page}");
    let page = app.page(&jane_c, "/manage-api-credentials?sort=expiry").await;
    assert_eq!(order(&page), ["Early", "Middle", "Late"]);
    assert!(page.contains("href=\"/manage-api-credentials?sort=expiry\" aria-current=\"true\""), "{page}");
    let page = app.page(&jane_c, "/manage-api-credentials?sort=last_used").await;
    assert_eq!(order(&page), ["Middle", "Late", "Early"], "never used last");
    let page = app.page(&jane_c, "/manage-api-credentials?sort=%3Cscript%3E").await;
    assert_eq!(order(&page), ["Middle", "Early", "Late"], "an unknown order is the default");
}

/// Point 3: "Create replacement" opens the create form with the old secret's name and the latest
/// date; after creating, the page gives the next steps; once the new secret has obtained a token,
/// the Manage page offers to delete the old one. Reminder emails link to it. A secret of another
/// application, an expired or unknown one: the plain form.
#[tokio::test]
async fn create_replacement_prefills_and_offers_to_delete_the_old_secret_once_the_new_one_is_used() {
    let (app, smc, theirs, (_, jane_c), _) = two_organisations().await;
    let now = app.clock.now();
    let today = app.clock.today();
    let (_, old) = app.seed_secret(smc.id, "Production", now, today + chrono::Duration::days(20)).await;
    let (_, expired) =
        app.seed_secret(smc.id, "Gone", now - chrono::Duration::days(30), today - chrono::Duration::days(1)).await;
    let (_, foreign) = app.seed_secret(theirs.id, "Theirs", now, today + chrono::Duration::days(20)).await;
    let new_path = format!("/manage-api-credentials/{}/secrets/new", smc.client_id);

    let page = app.page(&jane_c, "/manage-api-credentials").await;
    assert!(page.contains(&format!("{new_path}?replaces={old}")), "{page}");
    assert!(!page.contains(&format!("replaces={expired}")), "no replacement of an expired secret");
    let form = app.page(&jane_c, &format!("{new_path}?replaces={old}")).await;
    assert!(form.contains("Create a replacement for “Production”") && form.contains("value=\"Production\""), "{form}");
    assert!(form.contains(&format!("name=\"replaces\" value=\"{old}\"")), "{form}");
    let max = secret_portal::domain::ExpiryDate::max_for(today).to_string();
    assert!(form.contains(&format!("value=\"{max}\"")), "the latest date: {form}");
    for other in [expired.to_string(), foreign.to_string(), "nope".to_owned(), uuid::Uuid::new_v4().to_string()] {
        let plain = app.page(&jane_c, &format!("{new_path}?replaces={other}")).await;
        assert!(plain.contains("Create new secret for") && !plain.contains("name=\"replaces\""), "{other}: {plain}");
    }

    // Create it: the next steps name the old secret.
    let form_id = crate::support::flows::between(&form, "name=\"form_id\" value=\"", "\"").unwrap().to_owned();
    let fields =
        [("name", "Production"), ("expires_on", max.as_str()), ("form_id", &form_id), ("replaces", &old.to_string())];
    let res = app.post_form(&jane_c, &format!("/manage-api-credentials/{}/secrets", smc.client_id), &fields).await;
    assert_eq!(res.status(), 200);
    let created = res.text().await.unwrap();
    assert!(created.contains("Next steps") && created.contains(&format!("secrets/{old}\">Delete it now")), "{created}");
    let value = crate::support::flows::between(&created, "id=\"secret-value\">", "<").unwrap().to_owned();
    let page = app.page(&jane_c, "/manage-api-credentials").await;
    assert!(!page.contains("is in use: delete this one"), "not used yet");

    // The new secret obtains a token: the old one's row offers its deletion.
    assert_eq!(token_status(&app, &smc.client_id.to_string(), &value).await, 200);
    let mut waited = 0;
    loop {
        let page = app.page(&jane_c, "/manage-api-credentials").await;
        if page.contains("Its replacement “Production”") && page.contains("is in use: delete this one") {
            break;
        }
        waited += 1;
        assert!(waited < 100, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A forged replaces of another application's secret is not kept.
    let form_id = app.create_form_id(&jane_c, &smc.client_id).await;
    let fields =
        [("name", "Forged"), ("expires_on", max.as_str()), ("form_id", &form_id), ("replaces", &foreign.to_string())];
    let res = app.post_form(&jane_c, &format!("/manage-api-credentials/{}/secrets", smc.client_id), &fields).await;
    assert!(!res.text().await.unwrap().contains("Next steps"));
    let all = app.store.all_applications(Some(smc.id), None).await.unwrap().pop().unwrap();
    let forged = all.secrets.iter().find(|s| s.secret.name == "Forged").unwrap();
    assert_eq!(forged.replaces_secret_id, None);
    let replacement = all.secrets.iter().find(|s| s.replaces_secret_id == Some(old)).unwrap();
    assert_eq!(replacement.secret.name, "Production");
}

/// The activity page also shows the expiry reminders queued (recipients by name, never an
/// address) and the webhook deliveries given up.
#[tokio::test]
async fn reminders_queued_show_on_the_activity_page_by_name() {
    use secret_portal::domain::{Api, ApplicationKind};
    let app = TestApp::spawn().await;
    let org = app.create_org("NL", "DemoRegistry").await;
    let smc = app.register(org.id, ApplicationKind::Partner, Api::Smc).await;
    let (jane, jane_c) = app.account("jane@demo.example", UserRole::Member(org.id)).await;
    raw_sql!(app.store, "update portal_user set display_name = 'Jane Doe' where id = $1", jane.user_id).unwrap();
    let now = app.clock.now();
    app.store.grant_credential_manager(jane.user_id, smc.id, &Actor::cli(), now).await.unwrap();
    app.seed_secret(
        smc.id,
        "Build server",
        now - chrono::Duration::days(300),
        app.clock.today() + chrono::Duration::days(7),
    )
    .await;
    let base = app.config.base_url.clone();
    secret_portal::jobs::reminders::run_once(&app.store, &base, now, false).await.unwrap();
    let page = app.page(&jane_c, "/manage-api-credentials/activity?action=reminder.queued").await;
    assert!(page.contains("1 event.") && page.contains("Reminder queued"), "{page}");
    assert!(
        page.contains("Notice: 1 week before expiry; Sent to: Jane Doe") && page.contains("“Build server”"),
        "{page}"
    );
    assert!(page.contains(">the portal<") && !page.contains("@demo.example"), "{page}");
}
