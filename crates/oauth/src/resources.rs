//! API resources (RFC 8707): whom an access token is for.
//!
//! Every access token has one audience: this server itself ([`Audience::Own`],
//! `aud` = the issuer, the identity and management scopes: `/v1` and
//! userinfo accept only these) or one registered API ([`Audience::Api`],
//! `aud` = its identifier, only its scopes, its lifetime and algorithm).
//!
//! Which one: the request's `resource` (§2). An authorization request may
//! name several (§2.1: the grant covers them all); a token request names at
//! most one of the grant's (§2.2: we audience-restrict each access token to
//! a single resource, so a token for one API is never accepted by another).
//! Without `resource` (§2: "a predefined default resource value"): a
//! request for management scopes, or for identity scopes only, is for this
//! server; one for resource scopes is for the client's `default_resource`,
//! and without one it is refused (`invalid_target`).

use crate::OAuthState;
use crate::client_metadata::FieldError;
use crate::crypto::Alg;
use crate::error::OAuthError;
use crate::form::Params;
use crate::scopes::{self, ScopeSet};
use std::collections::BTreeMap;
use std::time::Duration;
use trusec_storage::clients::ClientRow;
use trusec_storage::resources::{self, ResourceFields, ResourceRow, ResourceScope};

const MAX_IDENTIFIER_LEN: usize = 512;
const MAX_NAME: usize = 128;
const MAX_SCOPES: usize = 100;
const MAX_DESCRIPTION: usize = 200;
/// Shorter-lived tokens than this are more trouble than protection.
const MIN_LIFETIME_SECS: i64 = 60;

/// Whom an access token is for.
#[derive(Clone, Debug)]
pub enum Audience {
    /// This server: `/v1` and userinfo.
    Own,
    /// A registered API.
    Api(ResourceRow),
}

impl Audience {
    /// The token's `aud`, and the value a grant records for it.
    pub fn identifier<'a>(&'a self, issuer: &'a str) -> &'a str {
        match self {
            Self::Own => issuer,
            Self::Api(r) => &r.identifier,
        }
    }

    /// Whether a token for this audience may carry `scope`.
    fn holds(&self, scope: &str) -> bool {
        match self {
            Self::Own => scopes::is_supported(scope),
            Self::Api(r) => r.has_scope(scope),
        }
    }

    /// The scopes of `granted` that a token for this audience carries.
    pub fn token_scope(&self, granted: &ScopeSet) -> ScopeSet {
        granted.filtered(|s| self.holds(s))
    }

    /// The access-token lifetime: the resource's, but never longer than
    /// the server's (revocation markers and retired keys are kept for that).
    pub fn lifetime(&self, server: Duration) -> Duration {
        match self {
            Self::Own => server,
            Self::Api(r) => r
                .access_token_lifetime_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(server, |s| Duration::from_secs(s).min(server)),
        }
    }

    pub fn alg(&self) -> Alg {
        match self {
            Self::Own => crate::issue::ACCESS_TOKEN_ALG,
            Self::Api(r) => r.signing_alg,
        }
    }
}

/// RFC 8707 §2: "an absolute URI ... MUST NOT include a fragment". A query
/// is refused too (§2: "SHOULD NOT").
fn well_formed(identifier: &str) -> bool {
    identifier.len() <= MAX_IDENTIFIER_LEN
        && url::Url::parse(identifier)
            .is_ok_and(|u| u.fragment().is_none() && u.query().is_none() && !u.cannot_be_a_base())
}

/// The audience a `resource` value names in this environment.
///
/// # Errors
/// `invalid_target` for a malformed or unknown one; database failures.
async fn lookup(state: &OAuthState, identifier: &str) -> Result<Audience, OAuthError> {
    if identifier == state.settings.issuer {
        return Ok(Audience::Own);
    }
    if !well_formed(identifier) {
        return Err(OAuthError::invalid_target(
            "resource must be an absolute URI without a fragment or query (RFC 8707 §2)",
        ));
    }
    let (env, id) = (state.env().id.clone(), identifier.to_owned());
    state
        .core()
        .db
        .run(move |c| resources::find_by_identifier(c, &env, &id))
        .await?
        .map(Audience::Api)
        .ok_or_else(|| OAuthError::invalid_target(format!("unknown resource {identifier}")))
}

/// The audience `identifier` names, for `client`: an API only when the
/// client was registered for it, i.e. is allowed at least one of its
/// scopes. Without this a client could get a token whose `aud` is any API
/// of the environment (with an empty scope), which an API that checks only
/// `aud` would accept (RFC 8707 §2: an unauthorized target is
/// `invalid_target`).
///
/// # Errors
/// `invalid_target` for a malformed, unknown or unauthorized resource;
/// database failures.
async fn lookup_for(
    state: &OAuthState,
    client: &ClientRow,
    identifier: &str,
) -> Result<Audience, OAuthError> {
    let audience = lookup(state, identifier).await?;
    match &audience {
        Audience::Own => Ok(audience),
        Audience::Api(r) if client.scopes.0.iter().any(|s| r.has_scope(s)) => Ok(audience),
        Audience::Api(r) => Err(OAuthError::invalid_target(format!(
            "the client is not registered for resource {}: none of its scopes is the client's",
            r.identifier
        ))),
    }
}

/// The audience of a request that names no resource (RFC 8707 §2), from
/// the scopes it asks for (`None`: it asked for none, and gets the
/// client's default, or this server).
async fn default_for(
    state: &OAuthState,
    client: &ClientRow,
    requested: Option<&ScopeSet>,
) -> Result<Audience, OAuthError> {
    let for_api = requested.is_none_or(|scope| {
        let mut others = scope.iter().filter(|s| !scopes::OIDC.contains(s));
        let first = others.next();
        first.is_some() && !first.into_iter().chain(others).any(scopes::is_management)
    });
    match (&client.default_resource, for_api) {
        (Some(default), true) => lookup_for(state, client, default).await,
        (None, true) if requested.is_some() => Err(OAuthError::invalid_target(
            "name the resource these scopes are for with the resource parameter (RFC 8707 §2); \
             the client has no default_resource",
        )),
        (None | Some(_), _) => Ok(Audience::Own),
    }
}

/// Each requested scope must be an identity scope (it concerns the user's
/// grant, not an audience) or a scope of one of `audiences`.
///
/// # Errors
/// `invalid_scope` naming the first that is not.
pub fn check_scopes(requested: &ScopeSet, audiences: &[Audience]) -> Result<(), OAuthError> {
    match requested
        .iter()
        .find(|s| !scopes::OIDC.contains(s) && !audiences.iter().any(|a| a.holds(s)))
    {
        Some(s) => Err(OAuthError::invalid_scope(format!(
            "scope {s} is not a scope of the requested resource"
        ))),
        None => Ok(()),
    }
}

/// The audiences an authorization request is for (RFC 8707 §2.1: several
/// `resource` values allowed), its scopes checked against them.
///
/// # Errors
/// `invalid_target`, `invalid_scope`; database failures.
pub async fn for_authorization(
    state: &OAuthState,
    client: &ClientRow,
    params: &Params,
    scope: &ScopeSet,
) -> Result<Vec<Audience>, OAuthError> {
    let mut audiences = Vec::new();
    for identifier in params.all("resource") {
        let audience = lookup_for(state, client, identifier).await?;
        let id = audience.identifier(&state.settings.issuer);
        if !audiences
            .iter()
            .any(|a: &Audience| a.identifier(&state.settings.issuer) == id)
        {
            audiences.push(audience);
        }
    }
    if audiences.is_empty() {
        audiences.push(default_for(state, client, Some(scope)).await?);
    }
    check_scopes(scope, &audiences)?;
    Ok(audiences)
}

/// The one audience of an access token at the token endpoint (RFC 8707
/// §2.2). `granted` is what the grant was authorized for (a code's or a
/// refresh token's resources; `None` for client credentials, which may name
/// any); `requested` the scopes the request names, if it names any.
///
/// # Errors
/// `invalid_target` for several, unknown or unauthorized resources;
/// database failures.
pub async fn for_token(
    state: &OAuthState,
    client: &ClientRow,
    params: &Params,
    granted: Option<&[String]>,
    requested: Option<&ScopeSet>,
) -> Result<Audience, OAuthError> {
    let asked = match params.all("resource") {
        [] => None,
        [one] => Some(one.as_str()),
        _ => {
            return Err(OAuthError::invalid_target(
                "name one resource per token request: each access token has one audience",
            ));
        }
    };
    match (asked, granted) {
        // §2.2: the token may be for any resource of the grant, no other.
        (Some(r), Some(g)) if !g.iter().any(|x| x == r) => Err(OAuthError::invalid_target(
            format!("resource {r} was not part of the authorization grant"),
        )),
        (Some(r), _) => lookup_for(state, client, r).await,
        // Grants of earlier releases were all for this server.
        (None, Some([])) => Ok(Audience::Own),
        (None, Some([first, ..])) => lookup_for(state, client, first).await,
        (None, None) => default_for(state, client, requested).await,
    }
}

/// What a grant records of its audiences (their identifiers).
pub fn identifiers(state: &OAuthState, audiences: &[Audience]) -> Vec<String> {
    audiences
        .iter()
        .map(|a| a.identifier(&state.settings.issuer).to_owned())
        .collect()
}

/// The consent page's words for the resource scopes among `scope`.
pub fn descriptions(audiences: &[Audience], scope: &ScopeSet) -> BTreeMap<String, String> {
    let mut words = BTreeMap::new();
    for audience in audiences {
        if let Audience::Api(r) = audience {
            for s in r.scopes.iter().filter(|s| scope.contains(&s.name)) {
                words
                    .entry(s.name.clone())
                    .or_insert_with(|| s.description.clone());
            }
        }
    }
    words
}

/// The consent page's words for a grant stored with its resources'
/// identifiers (the device flow, RFC 8628), each looked up again for
/// `client`.
///
/// # Errors
/// `invalid_target` for a resource gone since; database failures.
pub async fn descriptions_of(
    state: &OAuthState,
    client: &ClientRow,
    identifiers: &[String],
    scope: &ScopeSet,
) -> Result<BTreeMap<String, String>, OAuthError> {
    let mut audiences = Vec::new();
    for identifier in identifiers {
        audiences.push(lookup_for(state, client, identifier).await?);
    }
    Ok(descriptions(&audiences, scope))
}

/// What an environment's resources offer, for checking a client's `scopes`
/// and `default_resource`.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub identifiers: Vec<String>,
    pub scopes: Vec<String>,
}

impl Catalog {
    /// The catalog of environment `env`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn of(
        core: &trusec_storage::Core,
        env: &str,
    ) -> Result<Self, trusec_storage::StorageError> {
        let env = env.to_owned();
        let rows = core.db.run(move |c| resources::all(c, &env)).await?;
        Ok(Self {
            identifiers: rows.iter().map(|r| r.identifier.clone()).collect(),
            scopes: rows
                .iter()
                .flat_map(|r| r.scopes.iter().map(|s| s.name.clone()))
                .collect(),
        })
    }
}

/// What `/v1/oauth/resources` is given.
#[derive(Clone, Debug, Default)]
pub struct ResourceInput {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<ResourceScope>,
    pub access_token_lifetime_seconds: Option<i64>,
    pub signing_alg: Option<String>,
}

fn bad(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

fn plain_text(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// Validates a resource for environment `issuer` (whose own identifier no
/// resource may take); `max_lifetime` is the server's access-token lifetime.
///
/// # Errors
/// The first field that is wrong.
pub fn validate(
    input: ResourceInput,
    issuer: &str,
    max_lifetime: Duration,
) -> Result<ResourceFields, FieldError> {
    if !well_formed(&input.identifier) {
        return Err(bad(
            "identifier",
            "must be an absolute URI without a fragment or query (RFC 8707 §2)",
        ));
    }
    if input.identifier.trim_end_matches('/') == issuer {
        return Err(bad("identifier", "is this server's own identifier"));
    }
    if !plain_text(&input.name, MAX_NAME) {
        return Err(bad("name", format!("must be 1 to {MAX_NAME} characters")));
    }
    validate_scopes(&input.scopes)?;
    let max = i64::try_from(max_lifetime.as_secs()).unwrap_or(i64::MAX);
    if let Some(l) = input.access_token_lifetime_seconds
        && !(MIN_LIFETIME_SECS..=max).contains(&l)
    {
        return Err(bad(
            "access_token_lifetime_seconds",
            format!(
                "must be from {MIN_LIFETIME_SECS} to {max} (the server's access-token lifetime)"
            ),
        ));
    }
    let signing_alg = match input.signing_alg.as_deref() {
        None => Alg::Es256,
        Some(a) => {
            Alg::parse(a).ok_or_else(|| bad("signing_alg", "must be ES256, RS256 or EdDSA"))?
        }
    };
    Ok(ResourceFields {
        identifier: input.identifier,
        name: input.name,
        scopes: input.scopes,
        access_token_lifetime_seconds: input.access_token_lifetime_seconds,
        signing_alg,
    })
}

/// RFC 6749 §3.3 tokens, each once, none of this server's own (a token
/// must never be able to mean both), each with words for the consent page.
fn validate_scopes(list: &[ResourceScope]) -> Result<(), FieldError> {
    if list.len() > MAX_SCOPES {
        return Err(bad("scopes", format!("at most {MAX_SCOPES}")));
    }
    let names = list.iter().map(|s| s.name.as_str());
    let set = ScopeSet::from_tokens(names).map_err(|e| bad("scopes", e.to_string()))?;
    if set.len() != list.len() {
        return Err(bad("scopes", "each scope name may appear once"));
    }
    if let Some(s) = set.iter().find(|s| scopes::is_supported(s)) {
        return Err(bad(
            "scopes",
            format!("{s} is one of this server's own scopes"),
        ));
    }
    if list
        .iter()
        .any(|s| !plain_text(&s.description, MAX_DESCRIPTION))
    {
        return Err(bad(
            "scopes",
            format!("each scope needs a description of 1 to {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ResourceInput {
        ResourceInput {
            identifier: "https://api.example.com/orders".into(),
            name: "Orders".into(),
            scopes: vec![ResourceScope {
                name: "orders:read".into(),
                description: "Read your orders".into(),
            }],
            access_token_lifetime_seconds: Some(300),
            signing_alg: None,
        }
    }

    fn field(change: impl FnOnce(&mut ResourceInput)) -> &'static str {
        let mut i = input();
        change(&mut i);
        validate(i, "https://idp.example", Duration::from_secs(900))
            .unwrap_err()
            .field
    }

    #[test]
    fn validates_each_field() {
        let ok = validate(input(), "https://idp.example", Duration::from_secs(900)).unwrap();
        assert_eq!(ok.signing_alg, Alg::Es256);
        assert_eq!(field(|i| i.identifier = "orders".into()), "identifier");
        assert_eq!(
            field(|i| i.identifier = "https://a/#x".into()),
            "identifier"
        );
        assert_eq!(
            field(|i| i.identifier = "https://idp.example/".into()),
            "identifier"
        );
        assert_eq!(field(|i| i.name = " ".into()), "name");
        assert_eq!(field(|i| i.scopes[0].name = "read:users".into()), "scopes");
        assert_eq!(field(|i| i.scopes[0].name = "two words".into()), "scopes");
        assert_eq!(field(|i| i.scopes[0].description = String::new()), "scopes");
        assert_eq!(field(|i| i.scopes.push(i.scopes[0].clone())), "scopes");
        assert_eq!(
            field(|i| i.access_token_lifetime_seconds = Some(901)),
            "access_token_lifetime_seconds"
        );
        assert_eq!(
            field(|i| i.signing_alg = Some("HS256".into())),
            "signing_alg"
        );
    }

    #[test]
    fn scopes_are_checked_against_the_audiences() {
        let api = Audience::Api(ResourceRow {
            id: "res_x".into(),
            environment_id: "env_live".into(),
            identifier: "https://api".into(),
            name: "API".into(),
            scopes: trusec_storage::sql_types::Json(input().scopes),
            access_token_lifetime_seconds: Some(60),
            signing_alg: Alg::Rs256,
            created_at: chrono::NaiveDateTime::default(),
            updated_at: chrono::NaiveDateTime::default(),
        });
        let asked = ScopeSet::parse("openid orders:read").unwrap();
        assert!(check_scopes(&asked, std::slice::from_ref(&api)).is_ok());
        assert!(check_scopes(&asked, &[Audience::Own]).is_err());
        assert_eq!(api.token_scope(&asked).to_string(), "orders:read");
        assert_eq!(Audience::Own.token_scope(&asked).to_string(), "openid");
        assert_eq!(
            api.lifetime(Duration::from_secs(900)),
            Duration::from_secs(60)
        );
        assert_eq!(api.alg(), Alg::Rs256);
        assert_eq!(api.identifier("https://idp"), "https://api");
    }
}
