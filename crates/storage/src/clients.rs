//! OAuth clients. Confidential clients keep only the SHA-256 of their 256-bit
//! secret (a fast hash is right for a random secret: see [`crate::secrets`]).
//! Closed sets are stored by name and list-valued fields as JSON text (see
//! [`crate::sql_types`]): a row is typed when it is read, so a stored value
//! that does not parse is a query error, never a default.

use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::page::{Page, PageRequest};
use crate::schema::oauth_clients;
use crate::scopes::ScopeSet;
use crate::sealed::{self, SealKey};
use crate::signing_keys::Alg;
use crate::sql_types::Json;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// RFC 6749 §2.1.
    pub enum ClientType as "client type" {
        /// Can keep a secret: authenticates at the token endpoint.
        Confidential = "confidential",
        /// Cannot (native and browser apps): no secret, PKCE required.
        Public = "public",
    }
}

crate::text_enum! {
    /// The grants of the token endpoint (RFC 6749 §4.1, §6, §4.4).
    pub enum GrantType as "grant type" {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
        /// RFC 8628 §3.4: the device authorization grant.
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
    }
}

crate::text_enum! {
    /// How a client authenticates at the token endpoint (RFC 7591 §2).
    pub enum AuthMethod as "token endpoint auth method" {
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
        /// A JWT signed with one of the client's registered public keys
        /// (RFC 7523 §2.2, OIDC Core §9).
        PrivateKeyJwt = "private_key_jwt",
        /// A JWT MACed with the client secret (OIDC Core §9).
        ClientSecretJwt = "client_secret_jwt",
        /// A public client: no authentication.
        None = "none",
    }
}

crate::text_enum! {
    /// RFC 7591 §2 / OIDC Registration §2 `application_type`: which redirect
    /// URIs a client may register.
    pub enum ApplicationType as "application type" {
        /// A web application: https redirect URIs only (the default).
        Web = "web",
        /// A native application (RFC 8252): loopback (`http://127.0.0.1`,
        /// `http://[::1]`) and private-use scheme redirect URIs too.
        Native = "native",
    }
}

impl Default for ApplicationType {
    /// RFC 7591 §2: `web` unless said otherwise (and every cached row of an
    /// earlier release, which knew only web clients' rules).
    fn default() -> Self {
        Self::Web
    }
}

crate::text_enum! {
    /// The JWS algorithms of client assertions (RFC 7518 §3.1). `none` is
    /// no member: an unsigned assertion proves nothing.
    pub enum AssertionAlg as "client assertion algorithm" {
        Es256 = "ES256",
        Ps256 = "PS256",
        EdDsa = "EdDSA",
        Rs256 = "RS256",
        Hs256 = "HS256",
        Hs384 = "HS384",
        Hs512 = "HS512",
    }
}

impl AssertionAlg {
    /// The method whose assertions this algorithm signs: an HMAC only with
    /// the client secret, a signature only with a registered public key
    /// (so an HS256 assertion "signed" with a public key is never checked).
    pub fn method(self) -> AuthMethod {
        match self {
            Self::Es256 | Self::Ps256 | Self::EdDsa | Self::Rs256 => AuthMethod::PrivateKeyJwt,
            Self::Hs256 | Self::Hs384 | Self::Hs512 => AuthMethod::ClientSecretJwt,
        }
    }
}

/// A client's public keys (RFC 7517 §5), checked at registration to hold
/// public members only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientJwks {
    pub keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

crate::text_enum! {
    /// Who registered a client.
    pub enum RegisteredBy as "registrant" {
        /// The management API.
        ManagementApi = "management_api",
        /// RFC 7591 registration with an API key.
        ApiKey = "api_key",
        /// Open RFC 7591 registration: anyone could have chosen its
        /// redirect URIs.
        Anonymous = "anonymous",
        /// The server itself: the admin console of the environment
        /// (registered at start-up, one per environment).
        Console = "console",
        /// Nobody: the client published its own metadata at its
        /// `client_id` URL (draft-ietf-oauth-client-id-metadata-document).
        /// Such a row is built from the document at each use and never
        /// stored.
        MetadataDocument = "metadata_document",
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = oauth_clients)]
pub struct ClientRow {
    pub id: String,
    pub environment_id: String,
    pub name: String,
    pub client_type: ClientType,
    pub secret_hash: Option<String>,
    pub redirect_uris: Json<Vec<String>>,
    pub post_logout_redirect_uris: Json<Vec<String>>,
    pub grant_types: Json<Vec<GrantType>>,
    pub scopes: Json<ScopeSet>,
    pub token_endpoint_auth_method: AuthMethod,
    pub id_token_signed_response_alg: Alg,
    pub refresh_token_leeway_seconds: i64,
    pub registered_by: RegisteredBy,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// May introspect access tokens issued to other clients of its
    /// environment (RFC 7662 §4). `default`: rows cached by a previous
    /// release have no such field.
    #[serde(default)]
    pub resource_server: bool,
    /// Whether `token_endpoint_auth_method` was chosen (and so is enforced)
    /// or is the default of a `/v1` client that never named one (either
    /// secret method is accepted). See [`ClientRow::accepts`].
    #[serde(default)]
    pub token_endpoint_auth_method_chosen: bool,
    /// The resource (RFC 8707 identifier) this client's tokens are for when
    /// a request names none and asks for resource scopes; for a resource
    /// server, the resource whose tokens it may introspect.
    #[serde(default)]
    pub default_resource: Option<String>,
    /// The public keys of a `private_key_jwt` client, inline.
    #[serde(default)]
    pub jwks: Option<Json<ClientJwks>>,
    /// Or the https URL where it publishes them.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The only algorithm its assertions may use, when it registered one.
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<AssertionAlg>,
    /// RFC 9126 §6: its authorization requests must be pushed (`/oauth/par`).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// RFC 7591 §2: `web` or `native`.
    #[serde(default)]
    pub application_type: ApplicationType,
    /// RFC 9449 §5.2: every token request of the client must carry a DPoP
    /// proof, so its access tokens are always sender-constrained.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
}

/// A client as the API shows it (never the secret or its hash).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Client {
    pub client_id: String,
    pub environment: String,
    pub name: String,
    #[serde(rename = "type")]
    pub client_type: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub id_token_signed_response_alg: String,
    pub refresh_token_leeway_seconds: i64,
    /// May introspect other clients' access tokens (RFC 7662 §4).
    pub resource_server: bool,
    /// The identifier of the resource used when a request names none
    /// (RFC 8707 §2).
    pub default_resource: Option<String>,
    /// The public keys of a `private_key_jwt` client (RFC 7591 §2).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<ClientJwks>,
    pub jwks_uri: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Authorization requests must be pushed first (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// `web` or `native` (RFC 7591 §2).
    pub application_type: String,
    /// Token requests must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl ClientRow {
    pub fn is_public(&self) -> bool {
        match self.client_type {
            ClientType::Public => true,
            ClientType::Confidential => false,
        }
    }

    /// Whether the client may authenticate at the token endpoint with
    /// `method` (RFC 7591 §2: the registered method is the one to use; RFC
    /// 6749 §2.3). A public client only with `none`, a confidential one
    /// never with `none`; one that chose a secret method only with that
    /// method, one that never chose with either secret method.
    pub fn accepts(&self, method: AuthMethod) -> bool {
        match (self.client_type, method) {
            (ClientType::Public, AuthMethod::None) => true,
            (
                ClientType::Public,
                AuthMethod::ClientSecretBasic
                | AuthMethod::ClientSecretPost
                | AuthMethod::PrivateKeyJwt
                | AuthMethod::ClientSecretJwt,
            )
            | (ClientType::Confidential, AuthMethod::None) => false,
            // A JWT method only when registered: the keys (or the choice to
            // MAC with the secret) come with it.
            (ClientType::Confidential, AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt) => {
                self.token_endpoint_auth_method == method
            }
            (
                ClientType::Confidential,
                AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost,
            ) => {
                !self.token_endpoint_auth_method_chosen || self.token_endpoint_auth_method == method
            }
        }
    }

    /// Whether the client may use this grant.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    pub fn to_client(&self) -> Client {
        Client {
            client_id: self.id.clone(),
            environment: self.environment_id.clone(),
            name: self.name.clone(),
            client_type: self.client_type.as_str().to_owned(),
            redirect_uris: self.redirect_uris.to_vec(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.to_vec(),
            grant_types: self
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scopes: self.scopes.as_slice().to_vec(),
            token_endpoint_auth_method: self.token_endpoint_auth_method.as_str().to_owned(),
            id_token_signed_response_alg: self.id_token_signed_response_alg.as_str().to_owned(),
            refresh_token_leeway_seconds: self.refresh_token_leeway_seconds,
            resource_server: self.resource_server,
            default_resource: self.default_resource.clone(),
            jwks: self.jwks.as_ref().map(|j| j.0.clone()),
            jwks_uri: self.jwks_uri.clone(),
            token_endpoint_auth_signing_alg: self
                .token_endpoint_auth_signing_alg
                .map(|a| a.as_str().to_owned()),
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            application_type: self.application_type.as_str().to_owned(),
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// A validated new client.
#[derive(Clone, Debug)]
pub struct NewClient {
    pub environment_id: String,
    pub name: String,
    pub client_type: ClientType,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub token_endpoint_auth_method: AuthMethod,
    pub id_token_signed_response_alg: Alg,
    pub refresh_token_leeway_seconds: i64,
    pub registered_by: RegisteredBy,
    pub resource_server: bool,
    pub token_endpoint_auth_method_chosen: bool,
    pub default_resource: Option<String>,
    pub jwks: Option<ClientJwks>,
    pub jwks_uri: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<AssertionAlg>,
    pub require_pushed_authorization_requests: bool,
    pub application_type: ApplicationType,
    pub dpop_bound_access_tokens: bool,
}

impl NewClient {
    /// The row this client is under `id`, made `now`.
    pub fn into_row(self, id: String, now: NaiveDateTime) -> ClientRow {
        ClientRow {
            id,
            environment_id: self.environment_id,
            name: self.name,
            client_type: self.client_type,
            secret_hash: self.secret_hash,
            redirect_uris: Json(self.redirect_uris),
            post_logout_redirect_uris: Json(self.post_logout_redirect_uris),
            grant_types: Json(self.grant_types),
            scopes: Json(self.scopes),
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            refresh_token_leeway_seconds: self.refresh_token_leeway_seconds,
            registered_by: self.registered_by,
            created_at: now,
            updated_at: now,
            resource_server: self.resource_server,
            token_endpoint_auth_method_chosen: self.token_endpoint_auth_method_chosen,
            default_resource: self.default_resource,
            jwks: self.jwks.map(Json),
            jwks_uri: self.jwks_uri,
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            application_type: self.application_type,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
        }
    }
}

/// The secret of a `client_secret_jwt` client, to keep sealed under the
/// master key beside its hash: OIDC Core §9 makes the secret itself the
/// MAC key, which a hash cannot check. Never kept for another method.
pub struct MacSecret {
    pub key: SealKey,
    pub secret: secrecy::SecretString,
}

impl MacSecret {
    fn seal(&self, client_id: &str) -> Result<String, StorageError> {
        use secrecy::ExposeSecret as _;
        sealed::seal(
            self.key.expose(),
            &sealed::client_secret_aad(client_id),
            self.secret.expose_secret().as_bytes(),
        )
        .map_err(StorageError::backend)
    }
}

/// A validated partial update.
#[derive(Clone, Debug, Default)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub scopes: Option<ScopeSet>,
    pub id_token_signed_response_alg: Option<Alg>,
    pub refresh_token_leeway_seconds: Option<i64>,
    pub resource_server: Option<bool>,
    /// A method chosen now: from then on it is enforced.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// `Some(None)` clears it.
    pub default_resource: Option<Option<String>>,
    /// The key source, set together (one replaces the other): `Some` when
    /// the keys, the URL or the algorithm changed.
    pub keys: Option<ClientKeys>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub application_type: Option<ApplicationType>,
    pub dpop_bound_access_tokens: Option<bool>,
}

/// Where a client's assertion keys come from, and the algorithm it uses.
#[derive(Clone, Debug, Default)]
pub struct ClientKeys {
    pub jwks: Option<ClientJwks>,
    pub jwks_uri: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<AssertionAlg>,
}

#[derive(AsChangeset)]
#[diesel(table_name = oauth_clients)]
struct ClientChanges {
    name: Option<String>,
    redirect_uris: Option<Json<Vec<String>>>,
    post_logout_redirect_uris: Option<Json<Vec<String>>>,
    grant_types: Option<Json<Vec<GrantType>>>,
    scopes: Option<Json<ScopeSet>>,
    id_token_signed_response_alg: Option<Alg>,
    refresh_token_leeway_seconds: Option<i64>,
    resource_server: Option<bool>,
    token_endpoint_auth_method: Option<AuthMethod>,
    token_endpoint_auth_method_chosen: Option<bool>,
    default_resource: Option<Option<String>>,
    jwks: Option<Option<Json<ClientJwks>>>,
    jwks_uri: Option<Option<String>>,
    token_endpoint_auth_signing_alg: Option<Option<AssertionAlg>>,
    require_pushed_authorization_requests: Option<bool>,
    application_type: Option<ApplicationType>,
    dpop_bound_access_tokens: Option<bool>,
    /// Cleared when the method becomes one that is not `client_secret_jwt`.
    secret_sealed: Option<Option<String>>,
    updated_at: NaiveDateTime,
}

/// Inserts a client.
///
/// # Errors
/// Backend failures.
pub fn insert(
    conn: &mut DbConnection,
    new: NewClient,
    now: NaiveDateTime,
) -> Result<ClientRow, StorageError> {
    insert_sealing(conn, new, None, now)
}

/// Inserts a client, with the secret of a `client_secret_jwt` client sealed
/// under its new id.
///
/// # Errors
/// Backend and sealing failures.
pub fn insert_sealing(
    conn: &mut DbConnection,
    new: NewClient,
    mac: Option<MacSecret>,
    now: NaiveDateTime,
) -> Result<ClientRow, StorageError> {
    let row = new.into_row(ids::new_id(ids::CLIENT), now);
    let sealed = mac.map(|m| m.seal(&row.id)).transpose()?;
    diesel::insert_into(oauth_clients::table)
        .values((&row, oauth_clients::secret_sealed.eq(sealed)))
        .execute(conn)?;
    Ok(row)
}

/// The secret of a `client_secret_jwt` client of `env`, opened: `None` when
/// none is kept (another method, or a secret from before the client chose
/// this one). Read from the database each time, never cached: the store
/// holds no form of it, and a master-key rotation leaves nothing stale.
///
/// # Errors
/// Backend failures, or a value that does not open under `key`.
pub fn open_mac_secret(
    conn: &mut DbConnection,
    key: &SealKey,
    env: &str,
    id: &str,
) -> Result<Option<secrecy::SecretBox<[u8]>>, StorageError> {
    let sealed: Option<Option<String>> = oauth_clients::table
        .filter(oauth_clients::environment_id.eq(env))
        .filter(oauth_clients::id.eq(id))
        .filter(oauth_clients::token_endpoint_auth_method.eq(AuthMethod::ClientSecretJwt))
        .select(oauth_clients::secret_sealed)
        .first(conn)
        .optional()?;
    let Some(text) = sealed.flatten() else {
        return Ok(None);
    };
    let plain = sealed::unseal(key.expose(), &sealed::client_secret_aad(id), &text)
        .map_err(StorageError::backend)?;
    Ok(Some(secrecy::SecretBox::new(plain.into_boxed_slice())))
}

/// The client with this id in this environment.
///
/// # Errors
/// `NotFound` when there is none.
pub fn get(conn: &mut DbConnection, env: &str, id: &str) -> Result<ClientRow, StorageError> {
    Ok(oauth_clients::table
        .filter(oauth_clients::environment_id.eq(env))
        .filter(oauth_clients::id.eq(id))
        .select(ClientRow::as_select())
        .first(conn)?)
}

/// The client with this id in any environment: protocol endpoints learn the
/// environment from the client.
///
/// # Errors
/// Backend failures.
pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<ClientRow>, StorageError> {
    Ok(oauth_clients::table
        .filter(oauth_clients::id.eq(id))
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?)
}

/// Clients of this environment in creation order.
///
/// # Errors
/// Backend failures.
pub fn list(
    conn: &mut DbConnection,
    env: &str,
    page: &PageRequest,
) -> Result<Page<ClientRow>, StorageError> {
    let mut query = oauth_clients::table
        .filter(oauth_clients::environment_id.eq(env))
        .select(ClientRow::as_select())
        .order(oauth_clients::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(oauth_clients::id.gt(after.clone()));
    }
    Ok(Page::from_overfetch(query.load(conn)?, page.limit))
}

/// Applies a patch.
///
/// # Errors
/// `NotFound` when the client is not in this environment.
pub fn update(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    patch: ClientPatch,
    now: NaiveDateTime,
) -> Result<ClientRow, StorageError> {
    let changes = ClientChanges {
        name: patch.name,
        redirect_uris: patch.redirect_uris.map(Json),
        post_logout_redirect_uris: patch.post_logout_redirect_uris.map(Json),
        grant_types: patch.grant_types.map(Json),
        scopes: patch.scopes.map(Json),
        id_token_signed_response_alg: patch.id_token_signed_response_alg,
        refresh_token_leeway_seconds: patch.refresh_token_leeway_seconds,
        resource_server: patch.resource_server,
        token_endpoint_auth_method_chosen: patch.token_endpoint_auth_method.map(|_| true),
        token_endpoint_auth_method: patch.token_endpoint_auth_method,
        default_resource: patch.default_resource,
        jwks: patch.keys.as_ref().map(|k| k.jwks.clone().map(Json)),
        jwks_uri: patch.keys.as_ref().map(|k| k.jwks_uri.clone()),
        token_endpoint_auth_signing_alg: patch
            .keys
            .as_ref()
            .map(|k| k.token_endpoint_auth_signing_alg),
        require_pushed_authorization_requests: patch.require_pushed_authorization_requests,
        application_type: patch.application_type,
        dpop_bound_access_tokens: patch.dpop_bound_access_tokens,
        // Never kept for another method (a secret sealed for a client that
        // switches to client_secret_jwt comes with its next rotation).
        secret_sealed: patch
            .token_endpoint_auth_method
            .filter(|m| *m != AuthMethod::ClientSecretJwt)
            .map(|_| None),
        updated_at: now,
    };
    let n = diesel::update(
        oauth_clients::table
            .filter(oauth_clients::environment_id.eq(env))
            .filter(oauth_clients::id.eq(id)),
    )
    .set(&changes)
    .execute(conn)?;
    if n == 0 {
        return Err(StorageError::NotFound);
    }
    get(conn, env, id)
}

/// Deletes a client; its consents and refresh tokens go with it.
///
/// # Errors
/// `NotFound` when the client is not in this environment.
pub fn delete(conn: &mut DbConnection, env: &str, id: &str) -> Result<(), StorageError> {
    let n = diesel::delete(
        oauth_clients::table
            .filter(oauth_clients::environment_id.eq(env))
            .filter(oauth_clients::id.eq(id)),
    )
    .execute(conn)?;
    if n == 0 {
        Err(StorageError::NotFound)
    } else {
        Ok(())
    }
}

/// The admin console's own client in this environment, if registered.
///
/// # Errors
/// Backend failures.
pub fn find_console(conn: &mut DbConnection, env: &str) -> Result<Option<ClientRow>, StorageError> {
    Ok(oauth_clients::table
        .filter(oauth_clients::environment_id.eq(env))
        .filter(oauth_clients::registered_by.eq(RegisteredBy::Console))
        .select(ClientRow::as_select())
        .order(oauth_clients::id.asc())
        .first(conn)
        .optional()?)
}

/// Replaces a confidential client's secret (by its hash; for a
/// `client_secret_jwt` client also sealed, `mac`): the old secret stops
/// working at once, for every method.
///
/// # Errors
/// `NotFound` when the client is not in this environment.
pub fn set_secret_hash(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    secret_hash: &str,
    mac: Option<MacSecret>,
    now: NaiveDateTime,
) -> Result<ClientRow, StorageError> {
    let sealed = mac.map(|m| m.seal(id)).transpose()?;
    let n = diesel::update(
        oauth_clients::table
            .filter(oauth_clients::environment_id.eq(env))
            .filter(oauth_clients::id.eq(id))
            .filter(oauth_clients::secret_hash.is_not_null()),
    )
    .set((
        oauth_clients::secret_hash.eq(secret_hash),
        oauth_clients::secret_sealed.eq(sealed),
        oauth_clients::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StorageError::NotFound);
    }
    get(conn, env, id)
}
