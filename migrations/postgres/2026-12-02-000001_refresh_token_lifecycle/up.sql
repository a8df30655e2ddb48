-- Expand: what ends a refresh-token family (contract, OAuth section).
--
-- offline_access: the grant included `offline_access` (OIDC Core §11), so
--   ending the sign-in does not end the family. Existing rows: read from
--   their scope.
-- session_bound: ending the sign-in session `session_id` revokes the
--   family. FALSE for every existing family (and for rows an instance of
--   the previous release writes during a rolling upgrade): they were issued
--   before the binding existed and keep working until they expire, are
--   reused or the user's password changes.
-- family_expires_at: the family's absolute expiry, which rotation copies
--   and never extends. Existing families: their first token's created_at +
--   90 days (the default lifetime), or now + 90 days when that is already
--   past, so that no family stops working at the upgrade. NULL only on
--   rows the previous release writes during the upgrade; the code then
--   counts the lifetime from the row's own created_at.
ALTER TABLE refresh_tokens ADD COLUMN offline_access BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE refresh_tokens ADD COLUMN session_bound BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE refresh_tokens ADD COLUMN family_expires_at TIMESTAMP;

UPDATE refresh_tokens SET offline_access = TRUE
WHERE ' ' || scope || ' ' LIKE '% offline_access %';

UPDATE refresh_tokens SET family_expires_at = (
    SELECT CASE
        WHEN MIN(f.created_at) + INTERVAL '90 days' > (now() AT TIME ZONE 'UTC')
            THEN MIN(f.created_at) + INTERVAL '90 days'
        ELSE (now() AT TIME ZONE 'UTC') + INTERVAL '90 days'
    END
    FROM refresh_tokens f
    WHERE f.family_id = refresh_tokens.family_id
);

-- Ending a session, or all of a user's, finds their families by index.
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
