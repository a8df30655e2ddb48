-- Expand only (see README.md).
-- client_secret_jwt (RFC 7523 §2.2, OIDC Core §9): the MAC key is the
-- client secret itself, which a hash cannot check, so a client registered
-- for that method also keeps its secret sealed under the master key
-- (AES-256-GCM, the client id as associated data; re-sealed by master-key
-- rotation). NULL for every other client, and for every client of earlier
-- releases.
ALTER TABLE oauth_clients ADD COLUMN secret_sealed TEXT;
-- RFC 7591 §2 / OIDC Registration §2 `application_type`: `web` (the
-- default) or `native`, which alone may register loopback and private-use
-- scheme redirect URIs (RFC 8252 §7.1, §7.3). A client of an earlier
-- release that already has a redirect URI other than https is native.
ALTER TABLE oauth_clients ADD COLUMN application_type TEXT NOT NULL DEFAULT 'web';
UPDATE oauth_clients SET application_type = 'native'
WHERE (LENGTH(redirect_uris) - LENGTH(REPLACE(redirect_uris, '"', '')))
    <> 2 * ((LENGTH(redirect_uris) - LENGTH(REPLACE(redirect_uris, '"https://', ''))) / 9)
  AND registered_by <> 'console';
