-- The ledger model of public-api-2.md sections 8-10 (issue 11; ADR 0008): multi-leg transactions,
-- reversals, account lifecycle, overdraft limits and versions, plus the per-account entries (running
-- balances) every counter change writes. Existing rows are backfilled so an upgraded ledger verifies.

-- Accounts --------------------------------------------------------------------------------------
-- version: +1 per operation that changes the counters, status, limit or metadata.
-- last_entry_seq: the seq of the account's newest row in account_entries (0: none yet).
-- limit_allowance: how far the account may still be past its limit because a PATCH lowered the
--   limit below what was already used; it only ratchets down (the write path keeps it at
--   max(0, min(allowance, excess over the limit))), so no write can ever take an account further
--   past its limit, and the CHECKs below hold at every commit.
ALTER TABLE accounts
    ADD COLUMN status          text   NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'frozen', 'closed')),
    ADD COLUMN overdraft_limit bigint NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
    ADD COLUMN limit_allowance bigint NOT NULL DEFAULT 0 CHECK (limit_allowance >= 0),
    ADD COLUMN version         bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    ADD COLUMN last_entry_seq  bigint NOT NULL DEFAULT 0 CHECK (last_entry_seq >= 0);

-- The limit CHECKs of 0001 become the overdraft rule (0001 left them unnamed: find them by text).
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
              WHERE conrelid = 'accounts'::regclass AND contype = 'c'
                AND pg_get_constraintdef(oid) LIKE '%must_not_exceed%'
    LOOP
        EXECUTE format('ALTER TABLE accounts DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
ALTER TABLE accounts
    ADD CONSTRAINT accounts_debit_limit CHECK (NOT debits_must_not_exceed_credits
        OR debits_posted::numeric + debits_pending <= credits_posted::numeric + overdraft_limit + limit_allowance),
    ADD CONSTRAINT accounts_credit_limit CHECK (NOT credits_must_not_exceed_debits
        OR credits_posted::numeric + credits_pending <= debits_posted::numeric + overdraft_limit + limit_allowance),
    -- A closed account holds nothing, for ever.
    ADD CONSTRAINT accounts_closed_empty CHECK (status <> 'closed'
        OR (debits_posted = credits_posted AND debits_pending = 0 AND credits_pending = 0));

-- Transfers: reversals ----------------------------------------------------------------------------
ALTER TABLE transfers
    ADD COLUMN reverses        uuid,
    ADD COLUMN reversed_amount bigint NOT NULL DEFAULT 0
        CHECK (reversed_amount >= 0 AND reversed_amount <= posted_amount);
CREATE INDEX transfers_reversals ON transfers (tenant_id, reverses) WHERE reverses IS NOT NULL;

-- Transactions ------------------------------------------------------------------------------------
-- Ids are per tenant and a namespace of their own. entries: the legs as requested, in order
-- ([{"account_id", "direction", "amount", "currency"}]); each leg's effect on its account is also a
-- row of account_entries. reversed_by: the transaction that reversed this one (only a whole
-- reversal exists, so at most one).
CREATE TABLE transactions (
    tenant_id          uuid        NOT NULL,
    id                 uuid        NOT NULL,
    entries            jsonb       NOT NULL CHECK (jsonb_typeof(entries) = 'array'
                                                   AND jsonb_array_length(entries) BETWEEN 2 AND 100),
    pending            boolean     NOT NULL,
    timeout_seconds    integer     NOT NULL CHECK (timeout_seconds BETWEEN 0 AND 31536000),
    status             text        NOT NULL CHECK (status IN ('posted', 'pending', 'voided', 'expired')),
    expires_at         timestamptz,
    metadata           jsonb       NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    seq                bigint      NOT NULL,
    resolved_seq       bigint,
    reverses           uuid,
    reversed_by        uuid,
    created_by_key_id  text CHECK (length(created_by_key_id) <= 64),
    resolved_by_key_id text CHECK (length(resolved_by_key_id) <= 64),
    PRIMARY KEY (tenant_id, id),
    CHECK (pending OR (status = 'posted' AND timeout_seconds = 0)),
    CHECK (reversed_by IS NULL OR status = 'posted')
);
CREATE INDEX transactions_expiring ON transactions (expires_at)
    WHERE status = 'pending' AND expires_at IS NOT NULL;

-- Entries: every change to an account's counters, in applied order -------------------------------
-- seq counts 1, 2, 3... per account (accounts.last_entry_seq is the newest). The four counters are
-- the account's state right after the change (running balances). A transfer's creation is one row
-- per account ('posted' or 'pending'); a post is 'pending_posted' (the amount posted) and, for a
-- partial post, 'pending_released' (the rest); a void or an expiry is 'pending_released'.
-- at: the database clock when the change was applied (for an expiry, when it was processed, a few
-- milliseconds at most after expires_at).
CREATE TABLE account_entries (
    tenant_id       uuid        NOT NULL,
    account_id      uuid        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq > 0),
    at              timestamptz NOT NULL,
    source_type     text        NOT NULL CHECK (source_type IN ('transfer', 'transaction')),
    source_id       uuid        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('posted', 'pending', 'pending_posted', 'pending_released')),
    direction       text        NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount          bigint      NOT NULL CHECK (amount > 0),
    debits_posted   bigint      NOT NULL,
    credits_posted  bigint      NOT NULL,
    debits_pending  bigint      NOT NULL,
    credits_pending bigint      NOT NULL,
    version         bigint      NOT NULL,
    event_seq       bigint      NOT NULL,
    PRIMARY KEY (tenant_id, account_id, seq)
);

-- Account changes that are not movements (creation, freeze, unfreeze, close, PATCH) --------------
-- One row per change with the account's status, limit and metadata after it; with account_entries
-- it accounts for every version number (verify checks both).
CREATE TABLE account_changes (
    tenant_id       uuid        NOT NULL,
    account_id      uuid        NOT NULL,
    version         bigint      NOT NULL,
    at              timestamptz NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('created', 'frozen', 'unfrozen', 'closed', 'updated')),
    status          text        NOT NULL,
    overdraft_limit bigint      NOT NULL,
    metadata        jsonb       NOT NULL,
    key_id          text CHECK (length(key_id) <= 64),
    event_seq       bigint      NOT NULL,
    PRIMARY KEY (tenant_id, account_id, version)
);

-- Backfill ----------------------------------------------------------------------------------------
INSERT INTO account_changes (tenant_id, account_id, version, at, kind, status, overdraft_limit, metadata, key_id,
                             event_seq)
SELECT tenant_id, id, 0, created_at, 'created', 'open', 0, metadata, created_by_key_id, 0 FROM accounts;

WITH moves AS (
    SELECT tenant_id, debit_account_id AS account_id, seq AS event_seq, 0 AS sub, created_at AS at, id,
           CASE WHEN pending THEN 'pending' ELSE 'posted' END AS kind, 'debit' AS direction, amount
      FROM transfers
    UNION ALL
    SELECT tenant_id, credit_account_id, seq, 0, created_at, id,
           CASE WHEN pending THEN 'pending' ELSE 'posted' END, 'credit', amount
      FROM transfers
    UNION ALL
    SELECT tenant_id, a, resolved_seq, 1, updated_at, id, 'pending_posted', d, posted_amount
      FROM transfers, LATERAL (VALUES (debit_account_id, 'debit'), (credit_account_id, 'credit')) AS s(a, d)
     WHERE resolved_seq IS NOT NULL AND posted_amount > 0
    UNION ALL
    SELECT tenant_id, a, resolved_seq, 2, updated_at, id, 'pending_released', d, amount - posted_amount
      FROM transfers, LATERAL (VALUES (debit_account_id, 'debit'), (credit_account_id, 'credit')) AS s(a, d)
     WHERE resolved_seq IS NOT NULL AND amount > posted_amount
), deltas AS (
    SELECT m.*,
           CASE WHEN direction = 'debit' THEN
                CASE kind WHEN 'posted' THEN amount WHEN 'pending_posted' THEN amount ELSE 0 END ELSE 0 END AS dp,
           CASE WHEN direction = 'credit' THEN
                CASE kind WHEN 'posted' THEN amount WHEN 'pending_posted' THEN amount ELSE 0 END ELSE 0 END AS cp,
           CASE WHEN direction = 'debit' THEN
                CASE kind WHEN 'pending' THEN amount WHEN 'posted' THEN 0 ELSE -amount END ELSE 0 END AS dpe,
           CASE WHEN direction = 'credit' THEN
                CASE kind WHEN 'pending' THEN amount WHEN 'posted' THEN 0 ELSE -amount END ELSE 0 END AS cpe
      FROM moves m
), numbered AS (
    SELECT d.*,
           row_number() OVER w AS seq,
           dense_rank() OVER (PARTITION BY tenant_id, account_id ORDER BY event_seq) AS version,
           sum(dp) OVER w AS r_dp, sum(cp) OVER w AS r_cp, sum(dpe) OVER w AS r_dpe, sum(cpe) OVER w AS r_cpe
      FROM deltas d
    WINDOW w AS (PARTITION BY tenant_id, account_id ORDER BY event_seq, sub
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
INSERT INTO account_entries (tenant_id, account_id, seq, at, source_type, source_id, kind, direction, amount,
                             debits_posted, credits_posted, debits_pending, credits_pending, version, event_seq)
SELECT tenant_id, account_id, seq, at, 'transfer', id, kind, direction, amount,
       r_dp, r_cp, r_dpe, r_cpe, version, event_seq
  FROM numbered;

UPDATE accounts a
   SET last_entry_seq = e.last_seq, version = e.last_version
  FROM (SELECT tenant_id, account_id, max(seq) AS last_seq, max(version) AS last_version
          FROM account_entries GROUP BY tenant_id, account_id) e
 WHERE a.tenant_id = e.tenant_id AND a.id = e.account_id;

-- The write path's functions (as in 0006/0008/0010, extended) ---------------------------------------
-- Lock-and-read also returns each account's lifecycle columns, each transfer's reversal columns, the
-- transactions the requests name and the pending transactions due to expire on the locked accounts.
DROP FUNCTION ledger_lock_and_read(uuid[], uuid[], uuid[], uuid[]);

CREATE FUNCTION ledger_lock_and_read(
    account_tenants     uuid[],
    account_ids         uuid[],
    transfer_tenants    uuid[],
    transfer_ids        uuid[],
    transaction_tenants uuid[],
    transaction_ids     uuid[]
) RETURNS TABLE (
    kind                           text,
    pk                             bigint,
    tenant_id                      uuid,
    id                             uuid,
    currency                       text,
    debits_must_not_exceed_credits boolean,
    credits_must_not_exceed_debits boolean,
    debits_posted                  bigint,
    credits_posted                 bigint,
    debits_pending                 bigint,
    credits_pending                bigint,
    debit_account_id               uuid,
    credit_account_id              uuid,
    amount                         bigint,
    pending                        boolean,
    timeout_seconds                integer,
    status                         text,
    posted_amount                  bigint,
    expires_at                     timestamptz,
    metadata                       jsonb,
    created_at                     timestamptz,
    updated_at                     timestamptz,
    seq                            bigint,
    resolved_seq                   bigint,
    created_by_key_id              text,
    resolved_by_key_id             text,
    block                          bigint,
    now                            timestamptz,
    normal_balance                 text,
    overdraft_limit                bigint,
    limit_allowance                bigint,
    version                        bigint,
    last_entry_seq                 bigint,
    reverses                       uuid,
    reversed_amount                bigint,
    reversed_by                    uuid,
    entries                        jsonb
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_block bigint;
    v_now   timestamptz;
BEGIN
    RETURN QUERY
    SELECT 'account', a.pk, a.tenant_id, a.id, a.currency, a.debits_must_not_exceed_credits,
           a.credits_must_not_exceed_debits, a.debits_posted, a.credits_posted, a.debits_pending,
           a.credits_pending, NULL::uuid, NULL::uuid, NULL::bigint, NULL::boolean, NULL::integer,
           a.status, NULL::bigint, NULL::timestamptz, a.metadata, a.created_at,
           NULL::timestamptz, NULL::bigint, NULL::bigint, a.created_by_key_id, NULL::text, NULL::bigint,
           NULL::timestamptz, a.normal_balance, a.overdraft_limit, a.limit_allowance, a.version,
           a.last_entry_seq, NULL::uuid, NULL::bigint, NULL::uuid, NULL::jsonb
      FROM accounts a
      JOIN unnest(account_tenants, account_ids) AS k(t, i) ON a.tenant_id = k.t AND a.id = k.i
     ORDER BY a.pk
       FOR UPDATE OF a;

    -- Taken after the locks: orders this transaction after every earlier writer of these accounts.
    v_block := nextval('ledger_block_seq');
    v_now := clock_timestamp();

    -- Named transfers, then due reservations on the locked accounts (a transfer may come twice).
    RETURN QUERY
    SELECT 'transfer', NULL::bigint, t.tenant_id, t.id, t.currency, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, t.debit_account_id,
           t.credit_account_id, t.amount, t.pending, t.timeout_seconds, t.status, t.posted_amount,
           t.expires_at, t.metadata, t.created_at, t.updated_at, t.seq, t.resolved_seq,
           t.created_by_key_id, t.resolved_by_key_id, v_block, v_now, NULL::text, NULL::bigint,
           NULL::bigint, NULL::bigint, NULL::bigint, t.reverses, t.reversed_amount, NULL::uuid, NULL::jsonb
      FROM transfers t
      JOIN unnest(transfer_tenants, transfer_ids) AS w(wt, wi) ON t.tenant_id = w.wt AND t.id = w.wi;

    RETURN QUERY
    SELECT 'transfer', NULL::bigint, t.tenant_id, t.id, t.currency, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, t.debit_account_id,
           t.credit_account_id, t.amount, t.pending, t.timeout_seconds, t.status, t.posted_amount,
           t.expires_at, t.metadata, t.created_at, t.updated_at, t.seq, t.resolved_seq,
           t.created_by_key_id, t.resolved_by_key_id, v_block, v_now, NULL::text, NULL::bigint,
           NULL::bigint, NULL::bigint, NULL::bigint, t.reverses, t.reversed_amount, NULL::uuid, NULL::jsonb
      FROM transfers t
     WHERE t.status = 'pending' AND t.expires_at <= v_now
       AND ((t.tenant_id, t.debit_account_id) IN (SELECT * FROM unnest(account_tenants, account_ids))
         OR (t.tenant_id, t.credit_account_id) IN (SELECT * FROM unnest(account_tenants, account_ids)));

    -- Named transactions, then due pending transactions with an entry on a locked account.
    IF cardinality(transaction_ids) > 0 THEN
        RETURN QUERY
        SELECT 'transaction', NULL::bigint, x.tenant_id, x.id, NULL::text, NULL::boolean, NULL::boolean,
               NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, NULL::uuid, NULL::bigint,
               x.pending, x.timeout_seconds, x.status, NULL::bigint, x.expires_at, x.metadata, x.created_at,
               x.updated_at, x.seq, x.resolved_seq, x.created_by_key_id, x.resolved_by_key_id, v_block, v_now,
               NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, x.reverses, NULL::bigint,
               x.reversed_by, x.entries
          FROM transactions x
          JOIN unnest(transaction_tenants, transaction_ids) AS w(wt, wi) ON x.tenant_id = w.wt AND x.id = w.wi;
    END IF;

    RETURN QUERY
    SELECT 'transaction', NULL::bigint, x.tenant_id, x.id, NULL::text, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, NULL::uuid, NULL::bigint,
           x.pending, x.timeout_seconds, x.status, NULL::bigint, x.expires_at, x.metadata, x.created_at,
           x.updated_at, x.seq, x.resolved_seq, x.created_by_key_id, x.resolved_by_key_id, v_block, v_now,
           NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, x.reverses, NULL::bigint,
           x.reversed_by, x.entries
      FROM transactions x
     WHERE x.status = 'pending' AND x.expires_at <= v_now
       AND EXISTS (SELECT 1 FROM jsonb_array_elements(x.entries) AS e(leg)
                    WHERE (x.tenant_id, (e.leg->>'account_id')::uuid)
                          IN (SELECT * FROM unnest(account_tenants, account_ids)));

    RETURN QUERY
    SELECT 'clock', NULL::bigint, NULL::uuid, NULL::uuid, NULL::text, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, NULL::uuid, NULL::bigint,
           NULL::boolean, NULL::integer, NULL::text, NULL::bigint, NULL::timestamptz, NULL::jsonb,
           NULL::timestamptz, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::text, NULL::text,
           v_block, v_now, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid,
           NULL::bigint, NULL::uuid, NULL::jsonb;
END
$$;

-- The document now has, each optional: "new" and "updated" transfers, "transactions_new",
-- "transactions_updated", "accounts" (pk plus the columns that changed: a missing or null key keeps
-- the stored value), "entries" (account_entries rows) and "changes" (account_changes rows). The
-- large-group path (write.py WRITE over arrays) writes transfers, entries and account counters
-- itself and passes the rest here.
CREATE OR REPLACE FUNCTION ledger_write(doc jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_array_length(coalesce(doc->'new', '[]')) > 0 THEN
        INSERT INTO transfers (tenant_id, id, debit_account_id, credit_account_id, amount, currency, pending,
                               timeout_seconds, status, posted_amount, expires_at, metadata, created_at,
                               updated_at, seq, resolved_seq, created_by_key_id, resolved_by_key_id, reverses)
        SELECT x.tenant_id, x.id, x.debit_account_id, x.credit_account_id, x.amount, x.currency, x.pending,
               x.timeout_seconds, x.status, x.posted_amount, x.expires_at, x.metadata, x.created_at,
               x.updated_at, x.seq, x.resolved_seq, x.created_by_key_id, x.resolved_by_key_id, x.reverses
          FROM jsonb_to_recordset(doc->'new') AS x(
               tenant_id uuid, id uuid, debit_account_id uuid, credit_account_id uuid, amount bigint,
               currency text, pending boolean, timeout_seconds integer, status text, posted_amount bigint,
               expires_at timestamptz, metadata jsonb, created_at timestamptz, updated_at timestamptz,
               seq bigint, resolved_seq bigint, created_by_key_id text, resolved_by_key_id text, reverses uuid)
        ON CONFLICT (tenant_id, id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'new') THEN
            RAISE EXCEPTION 'a concurrent writer took one of the new transfer ids' USING ERRCODE = 'LW001';
        END IF;
    END IF;

    IF jsonb_array_length(coalesce(doc->'updated', '[]')) > 0 THEN
        UPDATE transfers t
           SET status = u.status, posted_amount = u.posted_amount, updated_at = u.updated_at,
               resolved_seq = u.resolved_seq, resolved_by_key_id = u.resolved_by_key_id,
               reversed_amount = u.reversed_amount
          FROM jsonb_to_recordset(doc->'updated') AS u(
               tenant_id uuid, id uuid, status text, posted_amount bigint, updated_at timestamptz,
               resolved_seq bigint, resolved_by_key_id text, reversed_amount bigint)
         WHERE t.tenant_id = u.tenant_id AND t.id = u.id;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'updated') THEN
            RAISE EXCEPTION 'write mismatch: % of % updated transfers', n,
                jsonb_array_length(doc->'updated') USING ERRCODE = 'LW002';
        END IF;
    END IF;

    IF jsonb_array_length(coalesce(doc->'transactions_new', '[]')) > 0 THEN
        INSERT INTO transactions (tenant_id, id, entries, pending, timeout_seconds, status, expires_at, metadata,
                                  created_at, updated_at, seq, resolved_seq, reverses, reversed_by,
                                  created_by_key_id, resolved_by_key_id)
        SELECT x.tenant_id, x.id, x.entries, x.pending, x.timeout_seconds, x.status, x.expires_at, x.metadata,
               x.created_at, x.updated_at, x.seq, x.resolved_seq, x.reverses, x.reversed_by,
               x.created_by_key_id, x.resolved_by_key_id
          FROM jsonb_to_recordset(doc->'transactions_new') AS x(
               tenant_id uuid, id uuid, entries jsonb, pending boolean, timeout_seconds integer, status text,
               expires_at timestamptz, metadata jsonb, created_at timestamptz, updated_at timestamptz,
               seq bigint, resolved_seq bigint, reverses uuid, reversed_by uuid, created_by_key_id text,
               resolved_by_key_id text)
        ON CONFLICT (tenant_id, id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'transactions_new') THEN
            RAISE EXCEPTION 'a concurrent writer took one of the new transaction ids' USING ERRCODE = 'LW001';
        END IF;
    END IF;

    IF jsonb_array_length(coalesce(doc->'transactions_updated', '[]')) > 0 THEN
        UPDATE transactions x
           SET status = u.status, updated_at = u.updated_at, resolved_seq = u.resolved_seq,
               resolved_by_key_id = u.resolved_by_key_id, reversed_by = u.reversed_by
          FROM jsonb_to_recordset(doc->'transactions_updated') AS u(
               tenant_id uuid, id uuid, status text, updated_at timestamptz, resolved_seq bigint,
               resolved_by_key_id text, reversed_by uuid)
         WHERE x.tenant_id = u.tenant_id AND x.id = u.id;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'transactions_updated') THEN
            RAISE EXCEPTION 'write mismatch: % of % updated transactions', n,
                jsonb_array_length(doc->'transactions_updated') USING ERRCODE = 'LW002';
        END IF;
    END IF;

    IF jsonb_array_length(coalesce(doc->'entries', '[]')) > 0 THEN
        INSERT INTO account_entries (tenant_id, account_id, seq, at, source_type, source_id, kind, direction,
                                     amount, debits_posted, credits_posted, debits_pending, credits_pending,
                                     version, event_seq)
        SELECT e.tenant_id, e.account_id, e.seq, e.at, e.source_type, e.source_id, e.kind, e.direction,
               e.amount, e.debits_posted, e.credits_posted, e.debits_pending, e.credits_pending, e.version,
               e.event_seq
          FROM jsonb_to_recordset(doc->'entries') AS e(
               tenant_id uuid, account_id uuid, seq bigint, at timestamptz, source_type text, source_id uuid,
               kind text, direction text, amount bigint, debits_posted bigint, credits_posted bigint,
               debits_pending bigint, credits_pending bigint, version bigint, event_seq bigint);
    END IF;

    IF jsonb_array_length(coalesce(doc->'changes', '[]')) > 0 THEN
        INSERT INTO account_changes (tenant_id, account_id, version, at, kind, status, overdraft_limit, metadata,
                                     key_id, event_seq)
        SELECT c.tenant_id, c.account_id, c.version, c.at, c.kind, c.status, c.overdraft_limit, c.metadata,
               c.key_id, c.event_seq
          FROM jsonb_to_recordset(doc->'changes') AS c(
               tenant_id uuid, account_id uuid, version bigint, at timestamptz, kind text, status text,
               overdraft_limit bigint, metadata jsonb, key_id text, event_seq bigint);
    END IF;

    IF jsonb_array_length(coalesce(doc->'accounts', '[]')) > 0 THEN
        UPDATE accounts a
           SET debits_posted   = coalesce(u.debits_posted, a.debits_posted),
               credits_posted  = coalesce(u.credits_posted, a.credits_posted),
               debits_pending  = coalesce(u.debits_pending, a.debits_pending),
               credits_pending = coalesce(u.credits_pending, a.credits_pending),
               version         = coalesce(u.version, a.version),
               last_entry_seq  = coalesce(u.last_entry_seq, a.last_entry_seq),
               limit_allowance = coalesce(u.limit_allowance, a.limit_allowance),
               status          = coalesce(u.status, a.status),
               overdraft_limit = coalesce(u.overdraft_limit, a.overdraft_limit),
               metadata        = coalesce(u.metadata, a.metadata)
          FROM jsonb_to_recordset(doc->'accounts') AS u(
               pk bigint, debits_posted bigint, credits_posted bigint, debits_pending bigint,
               credits_pending bigint, version bigint, last_entry_seq bigint, limit_allowance bigint,
               status text, overdraft_limit bigint, metadata jsonb)
         WHERE a.pk = u.pk;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'accounts') THEN
            RAISE EXCEPTION 'write mismatch: % of % accounts updated', n,
                jsonb_array_length(doc->'accounts') USING ERRCODE = 'LW002';
        END IF;
    END IF;
END
$$;
