ALTER TABLE oauth_clients DROP COLUMN application_type;
ALTER TABLE oauth_clients DROP COLUMN secret_sealed;
