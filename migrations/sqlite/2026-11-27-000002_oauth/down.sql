DROP TABLE refresh_tokens;
DROP TABLE oauth_consents;
DROP TABLE signing_keys;
DROP TABLE oauth_clients;
