//! Sign-in journeys as a browser does them, for tests that need a signed-in user.

use secret_portal::auth::TotpSeed;
use secret_portal::auth::invitation::invite_user;
use secret_portal::domain::Clock as _;
use secret_portal::domain::organisation::OrganisationDisplayName;
use secret_portal::domain::{Api, ApplicationKind, ClientId, CountryCode, EmailAddress, OrganisationCode};
use secret_portal::domain::{PlainSecret, ResourceId};
use secret_portal::store::{Actor, Application, NewApplication, NewUser, Organisation, SeedSecret, UserRole};

use super::TestApp;

/// A password zxcvbn rates as hard to guess.
pub const PASSWORD: &str = "correct horse battery staple 42";

/// A user who has accepted their invitation and enrolled TOTP.
pub struct Account {
    pub email: String,
    pub password: String,
    pub seed: TotpSeed,
    pub recovery_codes: Vec<String>,
    pub user_id: uuid::Uuid,
}

/// The text between `start` and the next `end` after it.
pub fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    let to = html[from..].find(end)? + from;
    Some(&html[from..to])
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

impl TestApp {
    pub async fn post_form(&self, client: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        client.post(self.url(path)).form(fields).send().await.expect("request")
    }

    /// Posts a change that ends on a page (303, issue 14, point 4) and opens that page with the
    /// same client: (the page's path, its HTML, with the change's notice).
    pub async fn post_and_follow(
        &self,
        client: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (String, String) {
        let res = self.post_form(client, path, fields).await;
        assert_eq!(res.status(), 303, "{path} did not end on a page: {}", res.text().await.unwrap_or_default());
        let page = location(&res);
        let res = client.get(self.url(&page)).send().await.expect("request");
        assert_eq!(res.status(), 200, "{page}");
        (page, res.text().await.expect("body"))
    }

    /// The HTML of the page at `path` as `client` sees it; it must answer 200.
    pub async fn page(&self, client: &reqwest::Client, path: &str) -> String {
        let res = client.get(self.url(path)).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path}");
        res.text().await.expect("body")
    }

    /// The one-time id of a fresh create form of the application `client_id`, as `client` gets it.
    pub async fn create_form_id(&self, client: &reqwest::Client, client_id: &impl std::fmt::Display) -> String {
        let html = self.page(client, &format!("/manage-api-credentials/{client_id}/secrets/new")).await;
        between(&html, "name=\"form_id\" value=\"", "\"").expect("a form id").to_owned()
    }

    pub async fn create_org(&self, cc: &str, code: &str) -> Organisation {
        self.store
            .create_organisation(
                &OrganisationDisplayName::parse(&format!("{code} registry")).unwrap(),
                &CountryCode::parse(cc).unwrap(),
                &OrganisationCode::parse(code).unwrap(),
                &Actor::cli(),
                self.clock.now(),
            )
            .await
            .unwrap()
    }

    /// The stored user of `id`.
    pub async fn user(&self, id: uuid::Uuid) -> secret_portal::store::User {
        self.store.find_user(id).await.unwrap()
    }

    /// Registers an application of `kind` for `api` in the store for the organisation: a
    /// generated client ID and every resource the pair allows.
    pub async fn register(&self, organisation_id: uuid::Uuid, kind: ApplicationKind, api: Api) -> Application {
        let new = NewApplication {
            organisation_id,
            kind,
            api,
            client_id: ClientId::generate(),
            resources: ResourceId::allowed(kind, api),
        };
        self.store.create_application(&new, &Actor::cli(), self.clock.now()).await.unwrap()
    }

    /// Seeds a client secret named `name` (created by nobody at `created_at`, UTC) and returns
    /// its value and id.
    pub async fn seed_secret(
        &self,
        application_id: uuid::Uuid,
        name: &str,
        created_at: chrono::DateTime<chrono::Utc>,
        expires_on: chrono::NaiveDate,
    ) -> (PlainSecret, uuid::Uuid) {
        self.seed_secret_value(application_id, name, created_at, expires_on, PlainSecret::generate()).await
    }

    /// [`TestApp::seed_secret`] with a value of the caller's (a v1 value made before issue 15).
    pub async fn seed_secret_value(
        &self,
        application_id: uuid::Uuid,
        name: &str,
        created_at: chrono::DateTime<chrono::Utc>,
        expires_on: chrono::NaiveDate,
        value: PlainSecret,
    ) -> (PlainSecret, uuid::Uuid) {
        let id = self
            .store
            .seed_client_secret(&SeedSecret {
                application_id,
                name: name.into(),
                hint: value.hint(),
                hash: value.hash(),
                expires_on,
                created_by: None,
                created_at,
            })
            .await
            .unwrap();
        (value, id)
    }

    /// Invites `email` and returns the invitation link's path, taken from the email the SMTP
    /// server received.
    pub async fn invite(&self, email: &str, role: UserRole) -> String {
        let before = self.smtp.messages_to(email).len();
        let new =
            NewUser { email: EmailAddress::parse(email).unwrap(), display_name: format!("Name of {email}"), role };
        invite_user(&self.store, &self.config.base_url, &new, &Actor::cli(), self.clock.now()).await.unwrap();
        self.state.services.mailer.wake();
        let mails = self.smtp.wait_for(email, before + 1).await;
        mails.last().unwrap().link_path("/invite/").replace("http://127.0.0.1:8080", "")
    }

    /// Accepts an invitation in `client`'s session: password, then TOTP enrolment. Returns the
    /// seed read off the page and the recovery codes shown.
    pub async fn enrol(&self, client: &reqwest::Client, invite_path: &str, password: &str) -> (TotpSeed, Vec<String>) {
        let page = client.get(self.url(invite_path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "invitation page");
        let res = self.post_form(client, invite_path, &[("password", password), ("password_confirm", password)]).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        assert_eq!(location(&res), "/mfa/setup");
        let setup = client.get(self.url("/mfa/setup")).send().await.unwrap().text().await.unwrap();
        let key = between(&setup, "id=\"totp-key\">", "</code>").expect("key on the page");
        let seed = TotpSeed::from_base32(key).expect("a base32 key");
        let code = seed.code_at(self.clock.now());
        let res = self.post_form(client, "/mfa/setup", &[("code", &code)]).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        let codes: Vec<String> =
            html.split("<li><code>").skip(1).filter_map(|s| s.split("</code>").next()).map(str::to_owned).collect();
        assert_eq!(codes.len(), 10, "{html}");
        (seed, codes)
    }

    /// An invited, enrolled account and a client signed in as it.
    pub async fn account(&self, email: &str, role: UserRole) -> (Account, reqwest::Client) {
        let client = super::new_client();
        let path = self.invite(email, role).await;
        let (seed, recovery_codes) = self.enrol(&client, &path, PASSWORD).await;
        let user_id = self.store.find_user_by_email(&EmailAddress::parse(email).unwrap()).await.unwrap().id;
        (Account { email: email.to_owned(), password: PASSWORD.to_owned(), seed, recovery_codes, user_id }, client)
    }

    /// The password step; returns the response (303 to /login/mfa when right).
    pub async fn password_step(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
        next: &str,
    ) -> reqwest::Response {
        self.post_form(client, "/login", &[("email", email), ("password", password), ("next", next)]).await
    }

    /// Signs in with password and a fresh TOTP code (the clock moves on one step first, so the
    /// code is never a replay). Returns the TOTP step's response.
    pub async fn sign_in(&self, client: &reqwest::Client, account: &Account) -> reqwest::Response {
        let res = self.password_step(client, &account.email, &account.password, "").await;
        assert_eq!(location(&res), "/login/mfa");
        self.clock.advance(chrono::Duration::seconds(30));
        let code = account.seed.code_at(self.clock.now());
        self.post_form(client, "/login/mfa", &[("code", &code)]).await
    }
}
