-- Environments are rows, so more than live/test can be added without a schema change.
CREATE TABLE environments (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO environments (id, name, created_at) VALUES
    ('env_live', 'live', CURRENT_TIMESTAMP),
    ('env_test', 'test', CURRENT_TIMESTAMP);

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    password_hash TEXT,
    name TEXT,
    given_name TEXT,
    family_name TEXT,
    groups TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT users_environment_email_key UNIQUE (environment_id, email_normalized)
);

CREATE TABLE api_keys (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    key_type TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    last_four TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    rotated_to TEXT
);
CREATE INDEX api_keys_environment_idx ON api_keys (environment_id, id);

CREATE TABLE sessions (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX sessions_user_idx ON sessions (user_id, id);

-- The audit log is a hash chain ordered by seq; user_id has no foreign key so
-- events outlive the users they describe.
CREATE TABLE audit_events (
    id TEXT NOT NULL PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    environment_id TEXT,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    user_id TEXT,
    ip TEXT,
    user_agent TEXT,
    outcome TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_environment_idx ON audit_events (environment_id, seq);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, seq);
CREATE INDEX audit_events_type_idx ON audit_events (event_type, seq);
