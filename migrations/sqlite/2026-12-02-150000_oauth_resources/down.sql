ALTER TABLE refresh_tokens DROP COLUMN resources;
ALTER TABLE oauth_clients DROP COLUMN default_resource;
DROP TABLE oauth_resources;
