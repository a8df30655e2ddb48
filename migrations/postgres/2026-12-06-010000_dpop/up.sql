-- Expand only (see README.md).
-- DPoP (RFC 9449): the JWK SHA-256 thumbprint (RFC 7638) of the key a
-- public client's refresh token is bound to (§5: a refresh must prove
-- possession of that key again); NULL for unbound tokens and every row of
-- earlier releases.
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
-- RFC 9449 §5.2 client metadata: every token request of the client must
-- carry a DPoP proof. FALSE for every client of earlier releases.
ALTER TABLE oauth_clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
