ALTER TABLE saml_service_providers DROP COLUMN assertion_cipher;
ALTER TABLE saml_service_providers DROP COLUMN encrypt_assertions;
ALTER TABLE saml_service_providers DROP COLUMN encryption_certificate_pem;
