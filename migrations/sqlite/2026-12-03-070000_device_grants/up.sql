-- RFC 8628 device authorization grants. The database, not the ephemeral
-- store, is the authority on a grant's state, so that a device code redeems
-- once even if the store is flushed. Only SHA-256 hashes of the device code
-- and of the (normalised) user code are kept.
CREATE TABLE device_grants (
    device_code_hash TEXT NOT NULL PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    client_id TEXT NOT NULL,
    -- JSON list of the requested scopes and of the RFC 8707 resources.
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    -- pending, approved, denied, redeemed
    status TEXT NOT NULL,
    -- Set when the user approves (the sign-in that approved it).
    user_id TEXT,
    auth_time BIGINT,
    session_id TEXT,
    amr TEXT,
    -- The polling interval in seconds (RFC 8628 §3.5: raised by slow_down).
    interval_secs BIGINT NOT NULL,
    last_poll_at TIMESTAMP,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX device_grants_expires_at ON device_grants (expires_at);
