//! OAuth client rows: typed when read, stored as the same text as ever, and
//! a stored value that does not parse is an error, never a default.

use crate::fresh_db;
use diesel::prelude::*;
use trusec_storage::clients::{
    self, ApplicationType, AuthMethod, ClientPatch, ClientType, GrantType, NewClient, RegisteredBy,
};
use trusec_storage::schema::oauth_clients;
use trusec_storage::scopes::ScopeSet;
use trusec_storage::signing_keys::Alg;
use trusec_storage::{Db, StorageError, ids};
use trusec_testdb::{Backend, fake_clock, on_every_backend};

on_every_backend!(stored_text_is_unchanged, a_corrupt_column_is_an_error);

pub fn new_client() -> NewClient {
    NewClient {
        environment_id: ids::ENV_LIVE.to_owned(),
        name: "CLI".to_owned(),
        client_type: ClientType::Public,
        secret_hash: None,
        redirect_uris: vec!["http://127.0.0.1:7777/cb".to_owned()],
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ScopeSet::parse("openid email").unwrap(),
        token_endpoint_auth_method: AuthMethod::None,
        id_token_signed_response_alg: Alg::EdDsa,
        refresh_token_leeway_seconds: 0,
        registered_by: RegisteredBy::Anonymous,
        resource_server: false,
        token_endpoint_auth_method_chosen: true,
        default_resource: None,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        require_pushed_authorization_requests: false,
        application_type: ApplicationType::Web,
        dpop_bound_access_tokens: false,
    }
}

type Stored = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

async fn stored(db: &Db, id: &str) -> Stored {
    let id = id.to_owned();
    db.run(move |conn| {
        Ok::<_, StorageError>(
            oauth_clients::table
                .filter(oauth_clients::id.eq(&id))
                .select((
                    oauth_clients::client_type,
                    oauth_clients::redirect_uris,
                    oauth_clients::post_logout_redirect_uris,
                    oauth_clients::grant_types,
                    oauth_clients::scopes,
                    oauth_clients::token_endpoint_auth_method,
                    oauth_clients::id_token_signed_response_alg,
                    oauth_clients::registered_by,
                ))
                .first::<Stored>(conn)?,
        )
    })
    .await
    .unwrap()
}

/// Existing databases keep working: the text written is what it always was.
async fn stored_text_is_unchanged(backend: Backend) {
    let (_test_db, db) = fresh_db(&backend);
    let now = fake_clock().now_naive();
    let row = db
        .run(move |conn| clients::insert(conn, new_client(), now))
        .await
        .unwrap();
    assert_eq!(
        stored(&db, &row.id).await,
        (
            "public".to_owned(),
            r#"["http://127.0.0.1:7777/cb"]"#.to_owned(),
            "[]".to_owned(),
            r#"["authorization_code","refresh_token"]"#.to_owned(),
            r#"["openid","email"]"#.to_owned(),
            "none".to_owned(),
            "EdDSA".to_owned(),
            "anonymous".to_owned(),
        )
    );
    let (env, id) = (row.environment_id.clone(), row.id.clone());
    let patch = ClientPatch {
        grant_types: Some(vec![GrantType::ClientCredentials]),
        scopes: Some(ScopeSet::parse("read:users").unwrap()),
        id_token_signed_response_alg: Some(Alg::Rs256),
        ..ClientPatch::default()
    };
    let updated = db
        .run(move |conn| clients::update(conn, &env, &id, patch, now))
        .await
        .unwrap();
    assert!(updated.allows(GrantType::ClientCredentials));
    assert!(!updated.allows(GrantType::AuthorizationCode));
    let text = stored(&db, &row.id).await;
    assert_eq!(
        (text.3.as_str(), text.4.as_str(), text.6.as_str()),
        (r#"["client_credentials"]"#, r#"["read:users"]"#, "RS256")
    );
    let read = db
        .run(move |conn| clients::find(conn, &row.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.client_type, ClientType::Public);
    assert_eq!(read.scopes.to_string(), "read:users");
}

async fn a_corrupt_column_is_an_error(backend: Backend) {
    let (_test_db, db) = fresh_db(&backend);
    let now = fake_clock().now_naive();
    for (column, corrupt) in [
        ("grant_types", r#"["password"]"#),
        ("grant_types", "authorization_code"),
        ("scopes", r#"["two words"]"#),
        ("client_type", "robot"),
        ("token_endpoint_auth_method", "tls_client_auth"),
        ("token_endpoint_auth_signing_alg", "none"),
        ("jwks", r#"[{"kty": "EC"}]"#),
        ("id_token_signed_response_alg", "none"),
        ("registered_by", ""),
    ] {
        let read = db
            .run(move |conn| {
                let row = clients::insert(conn, new_client(), now)?;
                // Test-owned literals only, so inlined rather than bound
                // (the two backends spell placeholders differently).
                let sql = format!(
                    "UPDATE oauth_clients SET {column} = '{corrupt}' WHERE id = '{}'",
                    row.id
                );
                assert_eq!(diesel::sql_query(sql).execute(conn)?, 1);
                clients::find(conn, &row.id)
            })
            .await;
        assert!(
            matches!(read, Err(StorageError::Backend(_))),
            "{column} = {corrupt:?}: {read:?}"
        );
    }
}
