-- Expand only (see README.md).
-- The RFC 8176 `amr` values of the sign-in a refresh token's grant came
-- from (a JSON array of strings), so that tokens minted by refreshing carry
-- the same methods as the first ones (OIDC Core §12.2: a refreshed ID token
-- keeps the original authentication's claims). NULL for rows of earlier
-- releases, which did not record them.
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT;
