-- Expand only (see README.md).
-- A disabled user (issue 16: the console's "disable", PATCH /v1/users/{id}
-- {"disabled": true}) keeps their record but cannot sign in or be granted
-- tokens; NULL means enabled, as every row of an earlier release is.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP;
