ALTER TABLE oauth_clients
    DROP COLUMN token_endpoint_auth_method_chosen,
    DROP COLUMN resource_server;
