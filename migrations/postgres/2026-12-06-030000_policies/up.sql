-- Expand only (see README.md).
-- Security policies (issue 14): one typed JSON document per environment
-- (`storage::policies::Policy`); an environment without a row has the
-- defaults.
CREATE TABLE policies (
    environment_id TEXT NOT NULL PRIMARY KEY REFERENCES environments (id),
    document TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
