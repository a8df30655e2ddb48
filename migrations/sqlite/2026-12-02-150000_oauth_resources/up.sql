-- Expand only (see README.md).
-- API resources (RFC 8707): APIs that apps protect with this server's
-- tokens. `identifier` is the absolute URI a token for it carries as `aud`;
-- `scopes` a JSON array of {name, description}; an empty lifetime means
-- the server's access-token lifetime.
CREATE TABLE oauth_resources (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    identifier TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    access_token_lifetime_seconds BIGINT,
    signing_alg TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT oauth_resources_environment_identifier_key UNIQUE (environment_id, identifier)
);
-- The resource (by identifier) a client's tokens are for when its request
-- names none and asks for resource scopes. NULL: none.
ALTER TABLE oauth_clients ADD COLUMN default_resource TEXT;
-- The resources a refresh token's grant was authorized for (JSON array of
-- identifiers, RFC 8707 §2.2). NULL for rows of earlier releases, whose
-- grants were all for this server itself.
ALTER TABLE refresh_tokens ADD COLUMN resources TEXT;
