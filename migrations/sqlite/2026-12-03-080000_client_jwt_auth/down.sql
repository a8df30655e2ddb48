ALTER TABLE oauth_clients DROP COLUMN token_endpoint_auth_signing_alg;
ALTER TABLE oauth_clients DROP COLUMN jwks_uri;
ALTER TABLE oauth_clients DROP COLUMN jwks;
