-- Expand only (see README.md).
-- Passkeys (WebAuthn, issue 14): several per user, each named. `passkey` is
-- the credential as webauthn-rs keeps it (public key, signature counter,
-- backup flags) as JSON; `credential_id` is its WebAuthn credential id in
-- base64url, unique per environment: a discoverable sign-in finds the
-- passkey by it, and one credential never belongs to two accounts
-- (WebAuthn Level 3 §7.1 step 26).
CREATE TABLE passkeys (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL,
    passkey TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE UNIQUE INDEX passkeys_credential_idx ON passkeys (environment_id, credential_id);
CREATE INDEX passkeys_user_idx ON passkeys (user_id);
