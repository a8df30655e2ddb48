-- SAML service providers. Endpoint lists and the attribute mapping are JSON
-- text; flags are 0/1 integers (portable across both backends).
CREATE TABLE saml_service_providers (
    id TEXT NOT NULL PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    entity_id TEXT NOT NULL,
    name TEXT NOT NULL,
    acs_endpoints TEXT NOT NULL,
    slo_endpoints TEXT NOT NULL,
    certificate_pem TEXT,
    name_id_format TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sign_response BIGINT NOT NULL,
    sign_assertion BIGINT NOT NULL,
    want_authn_requests_signed BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT saml_sp_environment_entity_key UNIQUE (environment_id, entity_id)
);

-- The IdP's signing key and self-signed certificate; the private key is
-- AES-256-GCM ciphertext under the master key. state: next | current | retired.
CREATE TABLE saml_idp_keys (
    id TEXT NOT NULL PRIMARY KEY,
    state TEXT NOT NULL,
    private_key TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    not_after TIMESTAMP NOT NULL
);
