//! Applications, their naming, APIs, kinds, resources and client IDs (DESIGN.md section 3).

use std::fmt;

use uuid::Uuid;

use super::organisation::{CountryCode, OrganisationCode};

/// The WMDA API an application calls (seed guide: "DM (Data Manager), SMC (Search, Match &
/// Connect)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// Data Manager.
    Dm,
    /// Search, Match & Connect.
    Smc,
}

impl Api {
    /// Every API, in display order.
    pub const ALL: [Api; 2] = [Api::Dm, Api::Smc];

    /// `DM` or `SMC`, as in application names and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Dm => "DM",
            Api::Smc => "SMC",
        }
    }

    /// Parses `DM` or `SMC` (exact case).
    ///
    /// # Errors
    /// [`ApplicationRuleError::UnknownApi`].
    pub fn parse(input: &str) -> Result<Self, ApplicationRuleError> {
        match input.trim() {
            "DM" => Ok(Api::Dm),
            "SMC" => Ok(Api::Smc),
            _ => Err(ApplicationRuleError::UnknownApi),
        }
    }

    /// Human name: "Data Manager" or "Search, Match & Connect".
    pub fn title(self) -> &'static str {
        match self {
            Api::Dm => "Data Manager",
            Api::Smc => "Search, Match & Connect",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of an application: a normal `Partner` application or a `PartnerAlternative` one, given
/// on request for testing in the Match-Connect sandbox only (seed guide, section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApplicationKind {
    /// `Partner-<CC>-<code>-<API>`.
    Partner,
    /// `PartnerAlternative-<CC>-<code>-SMC`, Match-Connect sandbox only.
    PartnerAlternative,
}

impl ApplicationKind {
    /// Every kind, in display order.
    pub const ALL: [ApplicationKind; 2] = [ApplicationKind::Partner, ApplicationKind::PartnerAlternative];

    /// `Partner` or `PartnerAlternative`, as in names and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationKind::Partner => "Partner",
            ApplicationKind::PartnerAlternative => "PartnerAlternative",
        }
    }

    /// Parses `Partner` or `PartnerAlternative` (exact case).
    ///
    /// # Errors
    /// [`ApplicationRuleError::UnknownKind`].
    pub fn parse(input: &str) -> Result<Self, ApplicationRuleError> {
        match input.trim() {
            "Partner" => Ok(ApplicationKind::Partner),
            "PartnerAlternative" => Ok(ApplicationKind::PartnerAlternative),
            _ => Err(ApplicationRuleError::UnknownKind),
        }
    }
}

impl fmt::Display for ApplicationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a combination of kind, API and resources is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationRuleError {
    /// Not `DM` or `SMC`.
    #[error("The API is DM or SMC.")]
    UnknownApi,
    /// Not `Partner` or `PartnerAlternative`.
    #[error("The kind is Partner or PartnerAlternative.")]
    UnknownKind,
    /// A PartnerAlternative application for another API than SMC.
    #[error("A PartnerAlternative application is for the SMC API only (Match-Connect sandbox).")]
    AlternativeNeedsSmc,
    /// A resource the kind and API do not allow.
    #[error("{kind} {api} applications cannot hold the resource {resource}.")]
    ResourceNotAllowed {
        /// The application's kind.
        kind: ApplicationKind,
        /// The application's API.
        api: Api,
        /// The refused resource.
        resource: ResourceId,
    },
    /// No resource chosen.
    #[error("Choose at least one resource.")]
    NoResource,
}

/// An application's name, derived from kind, organisation and API, never entered:
/// `Partner-<CC>-<code>-<API>` or `PartnerAlternative-<CC>-<code>-SMC` (seed guide, section 2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationName(String);

impl ApplicationName {
    /// Derives the name.
    ///
    /// # Errors
    /// [`ApplicationRuleError::AlternativeNeedsSmc`] for a PartnerAlternative application of the DM API.
    pub fn derive(
        kind: ApplicationKind,
        country: &CountryCode,
        code: &OrganisationCode,
        api: Api,
    ) -> Result<Self, ApplicationRuleError> {
        if kind == ApplicationKind::PartnerAlternative && api != Api::Smc {
            return Err(ApplicationRuleError::AlternativeNeedsSmc);
        }
        Ok(Self(format!("{kind}-{country}-{code}-{api}")))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApplicationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Production or sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    /// The live service.
    Production,
    /// The test service.
    Sandbox,
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
        })
    }
}

/// A WMDA resource (an API environment) an application can be granted (seed guide, section 2;
/// DESIGN.md section 3, Resources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceId {
    /// `search-match-production` (SMC).
    SearchMatchProduction,
    /// `search-match-sandbox` (SMC).
    SearchMatchSandbox,
    /// `match-connect-production` (SMC).
    MatchConnectProduction,
    /// `match-connect-sandbox` (SMC; the only one for PartnerAlternative).
    MatchConnectSandbox,
    /// `data-manager-production` (DM).
    DataManagerProduction,
    /// `data-manager-sandbox` (DM).
    DataManagerSandbox,
}

/// A resource's token audience, the `aud` of every token for it, e.g.
/// `api://wmda/match-connect-production` (DESIGN.md section 3, Resources): after trimming, 1 to
/// 200 characters, none a control character, and never a resource id (so a `resource=` or
/// `scope=` value names one resource only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(String);

/// Why a text is not an [`Audience`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("An audience is 1 to 200 characters on one line, and never a resource id.")]
pub struct InvalidAudience;

impl Audience {
    /// Parses an audience as an admin typed it (trimmed).
    ///
    /// # Errors
    /// [`InvalidAudience`] for an empty value, more than 200 characters, a control character,
    /// or a resource id.
    pub fn parse(input: &str) -> Result<Self, InvalidAudience> {
        let value = input.trim();
        if value.is_empty()
            || value.chars().count() > 200
            || value.chars().any(super::text::breaks_one_line)
            || ResourceId::parse(value).is_ok()
        {
            return Err(InvalidAudience);
        }
        Ok(Audience(value.to_owned()))
    }

    /// The audience.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a text is not a [`ResourceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("There is no resource with this id.")]
pub struct UnknownResource;

impl ResourceId {
    /// Every resource, in display order.
    pub const ALL: [ResourceId; 6] = [
        ResourceId::SearchMatchProduction,
        ResourceId::SearchMatchSandbox,
        ResourceId::MatchConnectProduction,
        ResourceId::MatchConnectSandbox,
        ResourceId::DataManagerProduction,
        ResourceId::DataManagerSandbox,
    ];

    /// The id, e.g. `match-connect-sandbox`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceId::SearchMatchProduction => "search-match-production",
            ResourceId::SearchMatchSandbox => "search-match-sandbox",
            ResourceId::MatchConnectProduction => "match-connect-production",
            ResourceId::MatchConnectSandbox => "match-connect-sandbox",
            ResourceId::DataManagerProduction => "data-manager-production",
            ResourceId::DataManagerSandbox => "data-manager-sandbox",
        }
    }

    /// Parses an id exactly as [`ResourceId::as_str`] writes it.
    ///
    /// # Errors
    /// [`UnknownResource`].
    pub fn parse(input: &str) -> Result<Self, UnknownResource> {
        Self::ALL.into_iter().find(|r| r.as_str() == input).ok_or(UnknownResource)
    }

    /// The API the resource belongs to.
    pub fn api(self) -> Api {
        match self {
            ResourceId::DataManagerProduction | ResourceId::DataManagerSandbox => Api::Dm,
            _ => Api::Smc,
        }
    }

    /// Production or sandbox.
    pub fn environment(self) -> Environment {
        match self {
            ResourceId::SearchMatchProduction
            | ResourceId::MatchConnectProduction
            | ResourceId::DataManagerProduction => Environment::Production,
            _ => Environment::Sandbox,
        }
    }

    /// Human name, e.g. "Match-Connect sandbox".
    pub fn title(self) -> &'static str {
        match self {
            ResourceId::SearchMatchProduction => "Search and Match production",
            ResourceId::SearchMatchSandbox => "Search and Match sandbox",
            ResourceId::MatchConnectProduction => "Match-Connect production",
            ResourceId::MatchConnectSandbox => "Match-Connect sandbox",
            ResourceId::DataManagerProduction => "Data Manager production",
            ResourceId::DataManagerSandbox => "Data Manager sandbox",
        }
    }

    /// The audience a new database starts with: `api://wmda/<id>`. Admins may change it.
    pub fn default_audience(self) -> String {
        format!("api://wmda/{}", self.as_str())
    }

    /// Whether an application of this kind and API may hold the resource: DM applications hold Data
    /// Manager resources only, SMC applications Search and Match and Match-Connect only,
    /// PartnerAlternative applications `match-connect-sandbox` only.
    pub fn allowed_for(self, kind: ApplicationKind, api: Api) -> bool {
        match kind {
            ApplicationKind::Partner => self.api() == api,
            ApplicationKind::PartnerAlternative => api == Api::Smc && self == ResourceId::MatchConnectSandbox,
        }
    }

    /// The resources an application of this kind and API may hold, in display order.
    pub fn allowed(kind: ApplicationKind, api: Api) -> Vec<ResourceId> {
        Self::ALL.into_iter().filter(|r| r.allowed_for(kind, api)).collect()
    }

    /// Checks a chosen set of resources against the kind and API; at least one is needed.
    ///
    /// # Errors
    /// [`ApplicationRuleError::NoResource`] or [`ApplicationRuleError::ResourceNotAllowed`].
    pub fn check_all(kind: ApplicationKind, api: Api, resources: &[ResourceId]) -> Result<(), ApplicationRuleError> {
        if resources.is_empty() {
            return Err(ApplicationRuleError::NoResource);
        }
        match resources.iter().find(|r| !r.allowed_for(kind, api)) {
            Some(&resource) => Err(ApplicationRuleError::ResourceNotAllowed { kind, api, resource }),
            None => Ok(()),
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An application's client ID: a UUID, permanent (seed guide: "Is permanent and does not change").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Uuid);

/// Why a text is not a [`ClientId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("A client ID is a UUID like 0f8fad5b-d9cb-469f-a165-70867728950e.")]
pub struct InvalidClientId;

/// The path of an application's section of the Manage API Credentials page,
/// `/manage-api-credentials#app-<client id>` (the section's id in `templates/manage/page.html`):
/// where emails, webhook events and notices about one application send its managers.
pub fn manage_section_path(client_id: &str) -> String {
    format!("/manage-api-credentials#app-{client_id}")
}

/// The path of "Create replacement" of the secret `secret_id` of the application `client_id`:
/// its create form with the secret's name and the latest date (issue 18, point 3), where
/// reminder emails and `secret.expiring` webhook events send its managers.
pub fn replace_path(client_id: &str, secret_id: uuid::Uuid) -> String {
    format!("/manage-api-credentials/{client_id}/secrets/new?replaces={secret_id}")
}

impl ClientId {
    /// A new random (version 4) client ID.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a UUID in any of its usual text forms; the nil UUID is refused.
    ///
    /// # Errors
    /// [`InvalidClientId`].
    pub fn parse(input: &str) -> Result<Self, InvalidClientId> {
        match Uuid::try_parse(input.trim()) {
            Ok(u) if !u.is_nil() => Ok(Self(u)),
            _ => Err(InvalidClientId),
        }
    }

    /// Wraps a UUID read from the store.
    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lower-case hyphenated, the form partners copy.
        write!(f, "{}", self.0.hyphenated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nl() -> (CountryCode, OrganisationCode) {
        (CountryCode::parse("NL").unwrap(), OrganisationCode::parse("OrganisationName").unwrap())
    }

    #[test]
    fn names_follow_the_seed_guide() {
        let (cc, code) = nl();
        let name = |k, a| ApplicationName::derive(k, &cc, &code, a).map(|n| n.to_string());
        assert_eq!(name(ApplicationKind::Partner, Api::Dm).unwrap(), "Partner-NL-OrganisationName-DM");
        assert_eq!(name(ApplicationKind::Partner, Api::Smc).unwrap(), "Partner-NL-OrganisationName-SMC");
        assert_eq!(
            name(ApplicationKind::PartnerAlternative, Api::Smc).unwrap(),
            "PartnerAlternative-NL-OrganisationName-SMC"
        );
        assert_eq!(name(ApplicationKind::PartnerAlternative, Api::Dm), Err(ApplicationRuleError::AlternativeNeedsSmc));
    }

    #[test]
    fn resources_follow_api_and_kind() {
        use ResourceId::*;
        assert_eq!(
            ResourceId::allowed(ApplicationKind::Partner, Api::Dm),
            vec![DataManagerProduction, DataManagerSandbox]
        );
        assert_eq!(
            ResourceId::allowed(ApplicationKind::Partner, Api::Smc),
            vec![SearchMatchProduction, SearchMatchSandbox, MatchConnectProduction, MatchConnectSandbox]
        );
        assert_eq!(ResourceId::allowed(ApplicationKind::PartnerAlternative, Api::Smc), vec![MatchConnectSandbox]);
        assert!(ResourceId::allowed(ApplicationKind::PartnerAlternative, Api::Dm).is_empty());
        assert_eq!(
            ResourceId::check_all(ApplicationKind::PartnerAlternative, Api::Smc, &[MatchConnectProduction]),
            Err(ApplicationRuleError::ResourceNotAllowed {
                kind: ApplicationKind::PartnerAlternative,
                api: Api::Smc,
                resource: MatchConnectProduction
            })
        );
        assert_eq!(
            ResourceId::check_all(ApplicationKind::Partner, Api::Dm, &[]),
            Err(ApplicationRuleError::NoResource)
        );
    }

    #[test]
    fn resource_ids_round_trip_and_audiences_are_never_ids() {
        for r in ResourceId::ALL {
            assert_eq!(ResourceId::parse(r.as_str()), Ok(r));
            assert!(ResourceId::parse(&r.default_audience()).is_err());
        }
        assert!(ResourceId::parse("Match-Connect-Sandbox").is_err());
    }

    #[test]
    fn client_ids_are_uuids_but_not_nil() {
        let id = ClientId::parse(" 0F8FAD5B-D9CB-469F-A165-70867728950E ").unwrap();
        assert_eq!(id.to_string(), "0f8fad5b-d9cb-469f-a165-70867728950e");
        assert!(ClientId::parse("00000000-0000-0000-0000-000000000000").is_err());
        assert!(ClientId::parse("not-a-uuid").is_err());
        // An audience is one line: no control character, no Unicode line separator.
        assert!(Audience::parse("api://wmda/x").is_ok());
        for broken in ["api://wmda/\nx", "api://wmda/\u{2028}x", "api://wmda/\u{2029}x"] {
            assert!(Audience::parse(broken).is_err(), "{broken:?}");
        }
    }

    fn kinds() -> impl Strategy<Value = ApplicationKind> {
        prop_oneof![Just(ApplicationKind::Partner), Just(ApplicationKind::PartnerAlternative)]
    }
    fn apis() -> impl Strategy<Value = Api> {
        prop_oneof![Just(Api::Dm), Just(Api::Smc)]
    }

    proptest! {
        #[test]
        fn derived_names_carry_kind_country_code_and_api(kind in kinds(), api in apis(), code in "[A-Za-z0-9]{2,40}") {
            let cc = CountryCode::parse("DE").unwrap();
            let code = OrganisationCode::parse(&code).unwrap();
            match ApplicationName::derive(kind, &cc, &code, api) {
                Ok(name) => {
                    prop_assert_eq!(name.as_str().split('-').collect::<Vec<_>>(), vec![kind.as_str(), "DE", code.as_str(), api.as_str()]);
                }
                Err(e) => {
                    prop_assert_eq!(e, ApplicationRuleError::AlternativeNeedsSmc);
                    prop_assert_eq!((kind, api), (ApplicationKind::PartnerAlternative, Api::Dm));
                }
            }
        }

        #[test]
        fn allowed_resources_always_belong_to_the_api(kind in kinds(), api in apis()) {
            for r in ResourceId::allowed(kind, api) {
                prop_assert_eq!(r.api(), api);
                prop_assert!(ResourceId::check_all(kind, api, &[r]).is_ok());
            }
        }
    }
}
