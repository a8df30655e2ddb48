-- Second factors of hosted sign-in (issue 14): RFC 6238 TOTP today.
--
-- secret_sealed: the TOTP key, sealed under the master key with the
--   associated data `trusec-totp-secret:{id}` (`storage::sealed`), re-sealed
--   by `trusec master-key rotate`.
-- confirmed_at: NULL while the enrolment waits for its first code; only a
--   confirmed factor is asked for at sign-in.
-- last_used_step: the last RFC 6238 time step accepted. A code of that
--   step or an earlier one is refused (RFC 6238 §5.2: a code is accepted
--   once); the database is the authority, so flushing Redis replays nothing.
CREATE TABLE user_factors (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    confirmed_at TIMESTAMP,
    last_used_step BIGINT,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
-- One factor of each kind per user (a new enrolment replaces a pending one).
CREATE UNIQUE INDEX user_factors_user_kind_idx ON user_factors (user_id, kind);

-- Recovery codes: ten at a time, shown once, stored as SHA-256 (each is 80
-- random bits), each usable once (used_at).
CREATE TABLE recovery_codes (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX recovery_codes_user_idx ON recovery_codes (user_id, code_hash);

-- How a session's user authenticated (RFC 8176 values, a JSON list).
-- Existing hosted-login sessions were password sign-ins.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
UPDATE sessions SET amr = '["pwd"]' WHERE metadata LIKE '%"kind":"login"%';
