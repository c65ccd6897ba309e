-- The pgbench reference: what PostgreSQL alone does for one transfer per transaction, written the
-- plain way. Loaded into a private scratch database by cli/bench/reference.py; :naccounts is
-- substituted there (10,000 uniform accounts with ids 1..10000, plus the hot sink 10001; the hot
-- sources are 1..10, so every transfer locks its source before the sink, in id order; the contended
-- script moves between distinct pairs of 1..10).
--
-- The transfer table carries what a ledger needs per transfer (a UUID key, the history indexes by
-- debit and credit account), so each reference transfer writes as many index entries as ours.

CREATE TABLE bench_accounts (
    id      integer PRIMARY KEY,
    debits  bigint  NOT NULL DEFAULT 0,
    credits bigint  NOT NULL DEFAULT 0
);

CREATE TABLE bench_transfers (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    debit_account_id  integer     NOT NULL,
    credit_account_id integer     NOT NULL,
    amount            bigint      NOT NULL CHECK (amount > 0),
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX bench_transfers_by_debit ON bench_transfers (debit_account_id, created_at);
CREATE INDEX bench_transfers_by_credit ON bench_transfers (credit_account_id, created_at);

INSERT INTO bench_accounts (id) SELECT generate_series(1, :naccounts + 1);

-- One transfer: lock both accounts in id order, update both balances, insert the transfer row.
CREATE FUNCTION bench_transfer(p_debit integer, p_credit integer, p_amount bigint) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    new_id uuid;
BEGIN
    PERFORM 1 FROM bench_accounts WHERE id IN (p_debit, p_credit) ORDER BY id FOR UPDATE;
    UPDATE bench_accounts SET debits = debits + p_amount WHERE id = p_debit;
    UPDATE bench_accounts SET credits = credits + p_amount WHERE id = p_credit;
    INSERT INTO bench_transfers (debit_account_id, credit_account_id, amount)
    VALUES (p_debit, p_credit, p_amount)
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

-- The one-transaction-per-batch reference: p_count uniformly random transfers among p_accounts
-- accounts in ONE transaction. All their accounts are locked first, in id order (so concurrent
-- batches cannot deadlock), then each transfer is applied exactly as bench_transfer does.
CREATE FUNCTION bench_transfer_batch(p_count integer, p_accounts integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    debit_ids  integer[] := '{}';
    credit_ids integer[] := '{}';
    a integer;
    b integer;
BEGIN
    FOR i IN 1..p_count LOOP
        a := 1 + floor(random() * p_accounts)::integer;
        b := 1 + floor(random() * (p_accounts - 1))::integer;
        debit_ids := debit_ids || a;
        credit_ids := credit_ids || ((a + b - 1) % p_accounts + 1);
    END LOOP;
    PERFORM 1 FROM bench_accounts WHERE id = ANY (debit_ids || credit_ids) ORDER BY id FOR UPDATE;
    FOR i IN 1..p_count LOOP
        UPDATE bench_accounts SET debits = debits + 1 WHERE id = debit_ids[i];
        UPDATE bench_accounts SET credits = credits + 1 WHERE id = credit_ids[i];
        INSERT INTO bench_transfers (debit_account_id, credit_account_id, amount)
        VALUES (debit_ids[i], credit_ids[i], 1);
    END LOOP;
    RETURN p_count;
END;
$$;
