-- Access tokens revoked before they expire (RFC 7009), the record behind
-- the ephemeral store's markers: a marker the store loses (evicted,
-- flushed, restarted) must not make a revoked token valid again. Rows are
-- useless once the token has expired and are purged then.
CREATE TABLE revoked_access_tokens (
    jti TEXT NOT NULL PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_idx ON revoked_access_tokens (expires_at);
