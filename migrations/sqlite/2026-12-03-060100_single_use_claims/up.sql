-- Expand only (see README.md).
-- Single-use artifacts claimed once, in the database rather than in Redis
-- alone: a Redis flush, or a failover to a replica that missed the write
-- that took an artifact, must not let it be used twice (issue #12). `kind`
-- names the artifact (`authorization_code`, …), `hash` its SHA-256; a row
-- is useless once the artifact has expired and is purged then.
CREATE TABLE single_use_claims (
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kind, hash)
);
CREATE INDEX single_use_claims_expires_at ON single_use_claims (expires_at);
