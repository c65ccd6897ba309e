-- Indexes for the queries of public-api-2.md section 11 ("Finding things"); docs/queries.md shows
-- the plan each query gets on a million rows and what each index costs a write.
--
-- Few, and partial where most rows never need to be found through them: every index on transfers,
-- transactions and account_entries is written by every transfer (and again by every non-HOT update,
-- i.e. every post, void or expiry, since those change the indexed status). Not indexed, on purpose:
-- account_entries.at (the entry and statement reads binary-search the primary key, at never
-- decreasing with seq per account), created_at (see transfers_by_tenant_seq) and the debit/credit
-- account of a transfer (0001 has them).
--
-- IF NOT EXISTS: on a large ledger an operator may build these beforehand with CREATE INDEX
-- CONCURRENTLY under the same names (docs/queries.md), and this migration then only records them.

-- Transfers ---------------------------------------------------------------------------------------
-- The tenant's transfers in applied order: the list without an account filter, with a frequent
-- status (posted) or a broad metadata filter, as a scan that stops after a page; and with a
-- created_at range, between the seq bounds a binary search over this same index finds (seq and
-- created_at follow each other, queries.py seq_window), so created_at needs no index of its own.
CREATE INDEX IF NOT EXISTS transfers_by_tenant_seq ON transfers (tenant_id, seq);
-- The rare statuses, in applied order; posted transfers (most of them) never enter it.
CREATE INDEX IF NOT EXISTS transfers_unposted ON transfers (tenant_id, status, seq) WHERE status <> 'posted';
-- metadata[KEY]=VALUE as containment; transfers without metadata never enter it (the queries add
-- the implied `metadata <> '{}'` so the planner can use it).
CREATE INDEX IF NOT EXISTS transfers_metadata ON transfers USING gin (metadata jsonb_path_ops)
    WHERE metadata <> '{}'::jsonb;

-- Transactions: the same three ----------------------------------------------------------------------
CREATE INDEX IF NOT EXISTS transactions_by_tenant_seq ON transactions (tenant_id, seq);
CREATE INDEX IF NOT EXISTS transactions_unposted ON transactions (tenant_id, status, seq) WHERE status <> 'posted';
CREATE INDEX IF NOT EXISTS transactions_metadata ON transactions USING gin (metadata jsonb_path_ops)
    WHERE metadata <> '{}'::jsonb;

-- The transactions of one account: its transaction creation entries in its applied order (entries
-- of transfers and of posts, voids and expiries never enter it).
CREATE INDEX IF NOT EXISTS account_entries_transactions ON account_entries (tenant_id, account_id, seq)
    WHERE source_type = 'transaction' AND kind IN ('posted', 'pending');

-- Accounts: status and metadata never change with a movement, so the per-transfer counter updates
-- stay HOT (no index entry) with these in place. Open accounts (most) are found through
-- accounts_by_tenant (0001); frozen and closed ones here.
CREATE INDEX IF NOT EXISTS accounts_not_open ON accounts (tenant_id, status, pk) WHERE status <> 'open';
CREATE INDEX IF NOT EXISTS accounts_metadata ON accounts USING gin (metadata jsonb_path_ops)
    WHERE metadata <> '{}'::jsonb;
