DROP TABLE audit_events;
DROP TABLE sessions;
DROP TABLE api_keys;
DROP TABLE users;
DROP TABLE environments;
