ALTER TABLE saml_service_providers DROP COLUMN attribute_profile;
