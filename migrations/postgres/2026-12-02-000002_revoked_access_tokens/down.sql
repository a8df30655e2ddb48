DROP TABLE revoked_access_tokens;
