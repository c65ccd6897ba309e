-- The secret list cursors are sealed with (services/ledger/present.py, issue 14 item 5): made once,
-- at random, by the database, and never rotated with any credential, so a cursor stays valid across
-- restarts, deployments and credential rotations, on every ledger process alike. gen_random_uuid()
-- draws from the server's cryptographic random source; three of them give 366 random bits.
CREATE TABLE ledger_secrets (
    name   text  PRIMARY KEY,
    secret bytea NOT NULL CHECK (length(secret) >= 32)
);

INSERT INTO ledger_secrets (name, secret)
VALUES ('list_cursor', uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
