-- Encrypted assertions (issue #13): the certificate an SP publishes for
-- encryption (its metadata's KeyDescriptor use="encryption", or one
-- without `use`), whether assertions to it are encrypted, and the content
-- cipher (aes256-gcm, or aes256-cbc for an SP whose metadata asks for it).
-- Rows of earlier releases have no encryption certificate and stay
-- unencrypted, which is what they were sent; the previous release ignores
-- the new columns.
ALTER TABLE saml_service_providers ADD COLUMN encryption_certificate_pem TEXT;
ALTER TABLE saml_service_providers ADD COLUMN encrypt_assertions BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE saml_service_providers ADD COLUMN assertion_cipher TEXT NOT NULL DEFAULT 'aes256-gcm';
