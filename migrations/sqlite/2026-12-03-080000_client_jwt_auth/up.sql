-- Expand only (see README.md).
-- private_key_jwt (RFC 7523 §2.2, OIDC Core §9): the client's public keys,
-- as a JWK Set (JSON text, public members only), or the https URL it
-- publishes them at (RFC 7591 §2: one or the other, never both), and the
-- one JWS algorithm it signs its assertions with when it registered one.
-- NULL for every client of earlier releases, which used secrets.
ALTER TABLE oauth_clients ADD COLUMN jwks TEXT;
ALTER TABLE oauth_clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE oauth_clients ADD COLUMN token_endpoint_auth_signing_alg TEXT;
