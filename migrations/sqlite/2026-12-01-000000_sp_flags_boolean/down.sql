DROP TRIGGER saml_sp_flags_after_update;
DROP TRIGGER saml_sp_flags_after_insert;
ALTER TABLE saml_service_providers DROP COLUMN requires_signed_authn_requests;
ALTER TABLE saml_service_providers DROP COLUMN signs_assertion;
ALTER TABLE saml_service_providers DROP COLUMN signs_response;
