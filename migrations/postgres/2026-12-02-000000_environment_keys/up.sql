-- Each environment is its own issuer, with its own JWT signing keys and SAML
-- IdP key (contract). Existing keys are the live environment's, so live
-- `kid`s, certificates and everything they signed stay valid; every other
-- environment gets keys of its own on the next start.
ALTER TABLE signing_keys ADD COLUMN environment_id TEXT NOT NULL DEFAULT 'env_live' REFERENCES environments (id);
ALTER TABLE saml_idp_keys ADD COLUMN environment_id TEXT NOT NULL DEFAULT 'env_live' REFERENCES environments (id);
CREATE INDEX signing_keys_environment_idx ON signing_keys (environment_id, algorithm, state);
CREATE INDEX saml_idp_keys_environment_idx ON saml_idp_keys (environment_id, state);
