-- Expand only (see README.md).
-- Step-up (issue 14): when the user last actively authenticated in a
-- session (OIDC `auth_time`, SAML `AuthnInstant`). A second factor given
-- later, to meet an `acr_values` or `RequestedAuthnContext` request, moves
-- it; NULL means the session's `created_at` (no step-up since).
ALTER TABLE sessions ADD COLUMN authenticated_at TIMESTAMP;
-- The `acr` a refresh token's grant was issued with (OIDC Core §5.5.1.1:
-- the requested value it matched, which may be an alias of ours), so that
-- refreshed tokens say the same. NULL: derived from `amr`, as for rows of
-- earlier releases.
ALTER TABLE refresh_tokens ADD COLUMN acr TEXT;
