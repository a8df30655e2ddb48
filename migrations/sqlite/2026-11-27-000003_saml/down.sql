DROP TABLE saml_idp_keys;
DROP TABLE saml_service_providers;
