//! Validation of client metadata, shared by `/v1/oauth/clients` and RFC 7591
//! registration. Redirect URIs are matched exactly later, so they are
//! checked strictly here (RFC 9700 §4.1.3, RFC 8252 for native apps: only
//! a client registered as `application_type: native` gets loopback and
//! private-use scheme redirect URIs, OIDC Registration §2).

use crate::crypto::Alg;
use crate::scopes;
use trusec_storage::clients::{
    ApplicationType, AuthMethod, ClientKeys, ClientType, GrantType, NewClient, RegisteredBy,
};
use trusec_storage::scopes::ScopeSet;
use url::Url;

const MAX_URIS: usize = 20;
const MAX_URI_LEN: usize = 2048;
const MAX_NAME: usize = 128;

/// What a caller asks for; `None` takes the default.
#[derive(Clone, Debug, Default)]
pub struct ClientInput {
    pub name: Option<String>,
    pub client_type: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub refresh_token_leeway_seconds: Option<i64>,
    /// `None`: not a resource server.
    pub resource_server: Option<bool>,
    /// The identifier of a registered resource (RFC 8707), or `None`.
    pub default_resource: Option<String>,
    /// A JWK Set of public keys (`private_key_jwt`, RFC 7591 §2).
    pub jwks: Option<serde_json::Value>,
    /// Or where the client publishes it.
    pub jwks_uri: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// RFC 9126 §6; `None`: false.
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 7591 §2 `web` or `native`; `None`: web.
    pub application_type: Option<String>,
    /// RFC 9449 §5.2; `None`: false.
    pub dpop_bound_access_tokens: Option<bool>,
    /// The environment's resources: their scopes may be allowed too.
    pub catalog: crate::resources::Catalog,
    /// What a `jwks_uri` may point at.
    pub outbound: crate::fetch::OutboundSettings,
}

/// A field that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub(crate) fn bad(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Validated metadata, complete with defaults.
#[derive(Clone, Debug)]
pub struct ValidClient {
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub token_endpoint_auth_method: AuthMethod,
    /// Whether the caller named the method (then it is enforced) or it is
    /// the default.
    pub token_endpoint_auth_method_chosen: bool,
    pub id_token_signed_response_alg: Alg,
    pub refresh_token_leeway_seconds: i64,
    pub resource_server: bool,
    pub default_resource: Option<String>,
    pub keys: ClientKeys,
    pub require_pushed_authorization_requests: bool,
    pub application_type: ApplicationType,
    pub dpop_bound_access_tokens: bool,
}

impl ValidClient {
    /// The client to insert, in `environment_id`.
    pub fn into_new(
        self,
        environment_id: String,
        secret_hash: Option<String>,
        registered_by: RegisteredBy,
    ) -> NewClient {
        NewClient {
            environment_id,
            name: self.name,
            client_type: self.client_type,
            secret_hash,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            scopes: self.scopes,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            refresh_token_leeway_seconds: self.refresh_token_leeway_seconds,
            registered_by,
            resource_server: self.resource_server,
            token_endpoint_auth_method_chosen: self.token_endpoint_auth_method_chosen,
            default_resource: self.default_resource,
            jwks: self.keys.jwks,
            jwks_uri: self.keys.jwks_uri,
            token_endpoint_auth_signing_alg: self.keys.token_endpoint_auth_signing_alg,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            application_type: self.application_type,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
        }
    }
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// One redirect URI: absolute, no fragment, no wildcard; https, or for a
/// native app (RFC 8252) http on a loopback host (§7.3: any port at use)
/// or a private-use scheme such as `com.example.app:/callback` (§7.1: a
/// reverse-DNS name). OIDC Registration §2: a web client registers https
/// only.
///
/// # Errors
/// Why it is refused.
pub fn check_redirect_uri(uri: &str, app: ApplicationType) -> Result<(), String> {
    let native = match app {
        ApplicationType::Native => true,
        ApplicationType::Web => false,
    };
    if uri.len() > MAX_URI_LEN {
        return Err(format!("longer than {MAX_URI_LEN} characters"));
    }
    if uri.contains('*') {
        return Err("wildcards are not allowed: redirect URIs are matched exactly".into());
    }
    let url = Url::parse(uri).map_err(|e| format!("not an absolute URL ({e})"))?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment (RFC 6749 §3.1.2)".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host_str() {
            Some(h) if is_loopback(h) && native => Ok(()),
            Some(h) if is_loopback(h) => Err(
                "http on a loopback host is for native apps: register application_type native"
                    .into(),
            ),
            _ => Err(
                "http is allowed only for loopback hosts (127.0.0.1, [::1]) of native apps".into(),
            ),
        },
        "javascript" | "data" | "file" | "vbscript" => Err("this scheme is not allowed".into()),
        scheme if native && scheme.contains('.') => Ok(()),
        scheme if scheme.contains('.') => {
            Err("a private-use scheme is for native apps: register application_type native".into())
        }
        _ => Err(
            "use https (or, for native apps, a private-use scheme like com.example.app:/cb)".into(),
        ),
    }
}

fn uris(
    field: &'static str,
    list: Vec<String>,
    app: ApplicationType,
) -> Result<Vec<String>, FieldError> {
    if list.len() > MAX_URIS {
        return Err(bad(field, format!("at most {MAX_URIS} URIs")));
    }
    let mut out = Vec::with_capacity(list.len());
    for uri in list {
        check_redirect_uri(&uri, app).map_err(|why| bad(field, format!("{uri}: {why}")))?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// Checks a full client description.
///
/// # Errors
/// The first field that is wrong.
pub fn validate(input: ClientInput) -> Result<ValidClient, FieldError> {
    let name = name(input.name)?;
    let client_type = client_type(input.client_type.as_deref())?;
    let app = application_type(input.application_type.as_deref())?;
    let grant_types = grant_types(input.grant_types, client_type)?;
    let redirect_uris = uris(
        "redirect_uris",
        input.redirect_uris.unwrap_or_default(),
        app,
    )?;
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(bad(
            "redirect_uris",
            "at least one redirect URI for authorization_code",
        ));
    }
    let post_logout_redirect_uris = uris(
        "post_logout_redirect_uris",
        input.post_logout_redirect_uris.unwrap_or_default(),
        app,
    )?;
    let method = auth_method(input.token_endpoint_auth_method.as_deref(), client_type)?;
    let keys = crate::client_keys::validate(
        method,
        input.jwks,
        input.jwks_uri,
        input.token_endpoint_auth_signing_alg.as_deref(),
        input.outbound,
    )?;
    // Fields in the order they are checked: the first wrong one is reported.
    Ok(ValidClient {
        name,
        client_type,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes: scopes(input.scopes, &input.catalog)?,
        token_endpoint_auth_method: method,
        token_endpoint_auth_method_chosen: input.token_endpoint_auth_method.is_some(),
        id_token_signed_response_alg: id_token_alg(input.id_token_signed_response_alg.as_deref())?,
        refresh_token_leeway_seconds: leeway(input.refresh_token_leeway_seconds)?,
        resource_server: resource_server(input.resource_server, client_type)?,
        default_resource: default_resource(input.default_resource, &input.catalog)?,
        keys,
        require_pushed_authorization_requests: input
            .require_pushed_authorization_requests
            .unwrap_or(false),
        application_type: app,
        dpop_bound_access_tokens: input.dpop_bound_access_tokens.unwrap_or(false),
    })
}

/// RFC 7591 §2: `web` unless said otherwise.
fn application_type(name: Option<&str>) -> Result<ApplicationType, FieldError> {
    match name {
        None => Ok(ApplicationType::Web),
        Some(a) => ApplicationType::parse(a)
            .ok_or_else(|| bad("application_type", "must be web or native")),
    }
}

/// A registered resource of the client's environment.
fn default_resource(
    identifier: Option<String>,
    catalog: &crate::resources::Catalog,
) -> Result<Option<String>, FieldError> {
    match identifier {
        Some(id) if !catalog.identifiers.contains(&id) => Err(bad(
            "default_resource",
            format!("no resource {id} is registered (POST /v1/oauth/resources)"),
        )),
        other => Ok(other),
    }
}

/// Only a confidential client can introspect (RFC 7662 §2.1), so only one
/// can be a resource server.
fn resource_server(flag: Option<bool>, client_type: ClientType) -> Result<bool, FieldError> {
    match (flag.unwrap_or(false), client_type) {
        (true, ClientType::Public) => Err(bad(
            "resource_server",
            "only confidential clients can introspect tokens",
        )),
        (flag, ClientType::Public | ClientType::Confidential) => Ok(flag),
    }
}

fn name(name: Option<String>) -> Result<String, FieldError> {
    let name = name.map(|n| n.trim().to_owned()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(bad(
            "name",
            format!("must be 1 to {MAX_NAME} printable characters"),
        ));
    }
    Ok(name)
}

/// Confidential unless said otherwise.
fn client_type(name: Option<&str>) -> Result<ClientType, FieldError> {
    match name {
        None => Ok(ClientType::Confidential),
        Some(t) => {
            ClientType::parse(t).ok_or_else(|| bad("type", "must be confidential or public"))
        }
    }
}

/// Code and refresh unless said otherwise; client credentials only for a
/// client that can keep a secret (RFC 6749 §4.4).
fn grant_types(
    names: Option<Vec<String>>,
    client_type: ClientType,
) -> Result<Vec<GrantType>, FieldError> {
    let grants = match names {
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        Some(names) => names
            .iter()
            .map(|g| {
                GrantType::parse(g)
                    .ok_or_else(|| bad("grant_types", format!("unsupported grant type {g}")))
            })
            .collect::<Result<_, _>>()?,
    };
    if grants.is_empty() {
        return Err(bad("grant_types", "at least one grant type"));
    }
    match client_type {
        ClientType::Public if grants.contains(&GrantType::ClientCredentials) => Err(bad(
            "grant_types",
            "client_credentials needs a confidential client",
        )),
        ClientType::Public | ClientType::Confidential => Ok(grants),
    }
}

/// The OIDC scopes unless said otherwise; only scopes this server knows or
/// a resource of the environment registered.
fn scopes(
    names: Option<Vec<String>>,
    catalog: &crate::resources::Catalog,
) -> Result<ScopeSet, FieldError> {
    let names = names.unwrap_or_else(|| {
        ["openid", "profile", "email", "offline_access"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    });
    if let Some(s) = names
        .iter()
        .find(|s| !scopes::is_supported(s) && !catalog.scopes.contains(s))
    {
        return Err(bad("scopes", format!("unknown scope {s}")));
    }
    ScopeSet::from_tokens(&names).map_err(|e| bad("scopes", e.to_string()))
}

/// RFC 7591 §2: `none` for public clients, a secret method for
/// confidential ones (`client_secret_basic` unless said otherwise).
fn auth_method(name: Option<&str>, client_type: ClientType) -> Result<AuthMethod, FieldError> {
    let method = match (name, client_type) {
        (None, ClientType::Public) => Some(AuthMethod::None),
        (None, ClientType::Confidential) => Some(AuthMethod::ClientSecretBasic),
        (Some(m), _) => AuthMethod::parse(m),
    };
    let fits = |method: &AuthMethod| match method {
        AuthMethod::None => client_type == ClientType::Public,
        AuthMethod::ClientSecretBasic
        | AuthMethod::ClientSecretPost
        | AuthMethod::PrivateKeyJwt
        | AuthMethod::ClientSecretJwt => client_type == ClientType::Confidential,
    };
    method.filter(fits).ok_or_else(|| {
        bad(
            "token_endpoint_auth_method",
            "public clients use none; confidential ones client_secret_basic, client_secret_post, \
             private_key_jwt or client_secret_jwt",
        )
    })
}

/// RS256 unless said otherwise (OIDC Registration §2).
fn id_token_alg(name: Option<&str>) -> Result<Alg, FieldError> {
    match name {
        None => Ok(Alg::Rs256),
        Some(a) => Alg::parse(a).ok_or_else(|| {
            bad(
                "id_token_signed_response_alg",
                "must be RS256, ES256 or EdDSA",
            )
        }),
    }
}

fn leeway(seconds: Option<i64>) -> Result<i64, FieldError> {
    let leeway = seconds.unwrap_or(0);
    if (0..=60).contains(&leeway) {
        Ok(leeway)
    } else {
        Err(bad(
            "refresh_token_leeway_seconds",
            "must be between 0 and 60",
        ))
    }
}

/// Whether the client is part of this server (the admin console, which
/// registers itself): it asks no consent, and the console shows it but
/// does not let it be edited.
pub fn is_first_party(client: &trusec_storage::clients::ClientRow) -> bool {
    use trusec_storage::clients::RegisteredBy;
    match client.registered_by {
        RegisteredBy::Console => true,
        RegisteredBy::ManagementApi
        | RegisteredBy::ApiKey
        | RegisteredBy::Anonymous
        | RegisteredBy::MetadataDocument => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        use ApplicationType::{Native, Web};
        assert!(check_redirect_uri("https://app.example.com/cb", Web).is_ok());
        assert!(check_redirect_uri("https://app.example.com/cb", Native).is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8000/cb", Native).is_ok());
        assert!(check_redirect_uri("http://[::1]/cb", Native).is_ok());
        assert!(check_redirect_uri("http://localhost/cb", Native).is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8000/cb", Web).is_err());
        assert!(check_redirect_uri("http://[::1]/cb", Web).is_err());
        assert!(check_redirect_uri("http://app.example.com/cb", Native).is_err());
        assert!(check_redirect_uri("https://*.example.com/cb", Web).is_err());
        assert!(check_redirect_uri("https://app.example.com/cb#x", Web).is_err());
        assert!(check_redirect_uri("com.example.app:/cb", Native).is_ok());
        assert!(check_redirect_uri("com.example.app:/cb", Web).is_err());
        assert!(check_redirect_uri("javascript:alert(1)", Native).is_err());
        assert!(check_redirect_uri("/relative", Native).is_err());
    }

    #[test]
    fn defaults_and_rules() {
        let ok = validate(ClientInput {
            name: Some("App".into()),
            redirect_uris: Some(vec!["https://a.example/cb".into()]),
            ..ClientInput::default()
        })
        .unwrap();
        assert_eq!(ok.client_type, ClientType::Confidential);
        assert_eq!(ok.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(ok.id_token_signed_response_alg, Alg::Rs256);
        assert_eq!(
            ok.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(ok.scopes.to_string(), "openid profile email offline_access");
        let public_cc = validate(ClientInput {
            name: Some("App".into()),
            client_type: Some("public".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            ..ClientInput::default()
        });
        assert_eq!(public_cc.unwrap_err().field, "grant_types");
        let leeway = validate(ClientInput {
            name: Some("App".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            refresh_token_leeway_seconds: Some(61),
            ..ClientInput::default()
        });
        assert_eq!(leeway.unwrap_err().field, "refresh_token_leeway_seconds");
    }

    #[test]
    fn unknown_names_are_refused_by_field() {
        type Spoil = fn(&mut ClientInput);
        let cases: [(Spoil, &str); 6] = [
            (
                |i| i.grant_types = Some(vec!["password".into()]),
                "grant_types",
            ),
            (|i| i.client_type = Some("robot".into()), "type"),
            (
                |i| i.token_endpoint_auth_method = Some("private_key_jwt".into()),
                "jwks",
            ),
            (
                |i| {
                    i.client_type = Some("public".into());
                    i.token_endpoint_auth_method = Some("client_secret_post".into());
                },
                "token_endpoint_auth_method",
            ),
            (
                |i| i.id_token_signed_response_alg = Some("HS256".into()),
                "id_token_signed_response_alg",
            ),
            (
                |i| i.scopes = Some(vec!["openid".into(), "admin".into()]),
                "scopes",
            ),
        ];
        for (spoil, field) in cases {
            let mut input = ClientInput {
                name: Some("App".into()),
                redirect_uris: Some(vec!["https://a.example/cb".into()]),
                ..ClientInput::default()
            };
            spoil(&mut input);
            assert_eq!(validate(input).unwrap_err().field, field);
        }
    }
}
