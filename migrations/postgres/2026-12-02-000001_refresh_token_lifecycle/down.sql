DROP INDEX refresh_tokens_user_idx;
DROP INDEX refresh_tokens_session_idx;
ALTER TABLE refresh_tokens
    DROP COLUMN family_expires_at,
    DROP COLUMN session_bound,
    DROP COLUMN offline_access;
