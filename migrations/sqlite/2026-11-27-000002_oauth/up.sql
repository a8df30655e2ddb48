CREATE TABLE oauth_clients (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    name TEXT NOT NULL,
    client_type TEXT NOT NULL,
    secret_hash TEXT,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    id_token_signed_response_alg TEXT NOT NULL,
    refresh_token_leeway_seconds BIGINT NOT NULL,
    registered_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX oauth_clients_environment_idx ON oauth_clients (environment_id, id);

-- Private keys are AES-256-GCM ciphertext under the master key (base64).
-- state: next (published, not signing) -> current (signing) -> retired
-- (published until every token it signed has expired).
CREATE TABLE signing_keys (
    id TEXT NOT NULL PRIMARY KEY,
    algorithm TEXT NOT NULL,
    state TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    activated_at TIMESTAMP,
    retired_at TIMESTAMP,
    publish_until TIMESTAMP
);
CREATE INDEX signing_keys_algorithm_idx ON signing_keys (algorithm, state);

CREATE TABLE oauth_consents (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT oauth_consents_user_client_key UNIQUE (user_id, client_id)
);

-- Refresh tokens form families (one per authorization grant); reuse of a
-- rotated token revokes the family (RFC 9700 §4.14.2).
CREATE TABLE refresh_tokens (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    auth_time TIMESTAMP,
    session_id TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    rotated_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
