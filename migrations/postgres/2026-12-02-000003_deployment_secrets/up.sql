-- Secrets of the whole deployment (the persistent-NameID secret, the audit
-- chain's HMAC key), each sealed under the master key (AES-256-GCM, bound to
-- its name). Made once, on the first start that finds no row, and read from
-- here ever after, so that rotating the master key re-seals them instead of
-- changing them (`trusec master-key rotate`).
CREATE TABLE deployment_secrets (
    name TEXT NOT NULL PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
