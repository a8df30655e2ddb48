-- Expand only (see README.md).
-- `resource_server`: the client may introspect access tokens issued to
-- other clients of its environment (RFC 7662 §4). Nobody is one until an
-- operator says so.
ALTER TABLE oauth_clients ADD COLUMN resource_server BOOLEAN NOT NULL DEFAULT FALSE;
-- `token_endpoint_auth_method_chosen`: whether the registered
-- `token_endpoint_auth_method` was chosen, and so is enforced (RFC 7591 §2).
-- Clients made through `/v1/oauth/clients` before this release never chose
-- (the field took a default), so they keep accepting both secret methods;
-- RFC 7591 registration always chooses (the default is
-- `client_secret_basic`). The default FALSE keeps rows that a previous
-- release inserts during a rolling upgrade as lenient as they were.
ALTER TABLE oauth_clients ADD COLUMN token_endpoint_auth_method_chosen BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE oauth_clients SET token_endpoint_auth_method_chosen = TRUE
    WHERE registered_by <> 'management_api';
