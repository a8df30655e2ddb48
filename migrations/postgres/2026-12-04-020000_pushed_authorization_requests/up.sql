-- Expand only (see README.md).
-- RFC 9126 pushed authorization requests. The database, not the ephemeral
-- store, holds them, so that a request_uri is used once even if the store
-- is flushed (§4): it is taken by one conditional DELETE. Only the SHA-256
-- of the request_uri's random part is kept; `request` is the validated
-- authorization request as JSON.
CREATE TABLE pushed_authorization_requests (
    request_uri_hash TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    client_id TEXT NOT NULL,
    request TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX pushed_authorization_requests_expires_at ON pushed_authorization_requests (expires_at);
-- RFC 9126 §6: a client that must push its authorization requests.
ALTER TABLE oauth_clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE;
