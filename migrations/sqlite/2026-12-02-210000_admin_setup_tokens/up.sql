-- Single-use links that let a person create an administrator account
-- (member of `trusec-admins`) in one environment: printed by `trusec serve`
-- on a deployment with no administrator, or by `trusec admins add EMAIL`.
-- Only the SHA-256 of the 256-bit token is kept; a row is deleted when it is
-- used, and refused after `expires_at`.
CREATE TABLE admin_setup_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    -- NULL: the first administrator chooses their email; otherwise the
    -- account must be this address (`trusec admins add EMAIL`).
    email TEXT,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX admin_setup_tokens_expires_at ON admin_setup_tokens (expires_at);
