ALTER TABLE refresh_tokens DROP COLUMN acr;
ALTER TABLE sessions DROP COLUMN authenticated_at;
