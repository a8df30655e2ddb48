DROP TRIGGER saml_sp_flags_from_bigint ON saml_service_providers;
DROP FUNCTION saml_sp_flags_from_bigint();
ALTER TABLE saml_service_providers
    DROP COLUMN requires_signed_authn_requests,
    DROP COLUMN signs_assertion,
    DROP COLUMN signs_response;
