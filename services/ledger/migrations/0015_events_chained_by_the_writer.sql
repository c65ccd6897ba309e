-- The write path chains its events itself (docs/performance.md, "The journal's cost"); the database
-- only checks that the chain continues from the head it was computed against, then inserts.
--
-- Why: in 0013 ledger_append_events built each event's canonical text and SHA-256 in PL/pgSQL, per
-- event, while the group's accounts were locked: about 80 us of PostgreSQL time per transfer, most
-- of the cost of the journal. The ledger process now reads each involved tenant's head (unlocked)
-- in lock-and-read, computes seq, prev_hash and hash for the group's events in Python, and sends
-- them. ledger_append_chained takes the head row lock as before (held to COMMIT, so seq order is
-- still commit order) and compares: if the head is still the one the events were chained from, the
-- rows go in as sent; if another writer appended meanwhile (another ledger process, the expiry
-- sweep, an account creation), the events are re-chained here with 0013's recipe, exactly as before.
-- Either way the stored chain is the recipe of docs/events.md, which `./scripts/admin verify` and
-- tests/ledger/test_events.py recompute independently.

DROP FUNCTION ledger_lock_and_read(uuid[], uuid[], uuid[], uuid[], uuid[], uuid[]);

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
    entries                        jsonb,
    hash                           text
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
           a.last_entry_seq, NULL::uuid, NULL::bigint, NULL::uuid, NULL::jsonb, NULL::text
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
           NULL::bigint, NULL::bigint, NULL::bigint, t.reverses, t.reversed_amount, NULL::uuid, NULL::jsonb, NULL::text
      FROM transfers t
      JOIN unnest(transfer_tenants, transfer_ids) AS w(wt, wi) ON t.tenant_id = w.wt AND t.id = w.wi;

    RETURN QUERY
    SELECT 'transfer', NULL::bigint, t.tenant_id, t.id, t.currency, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, t.debit_account_id,
           t.credit_account_id, t.amount, t.pending, t.timeout_seconds, t.status, t.posted_amount,
           t.expires_at, t.metadata, t.created_at, t.updated_at, t.seq, t.resolved_seq,
           t.created_by_key_id, t.resolved_by_key_id, v_block, v_now, NULL::text, NULL::bigint,
           NULL::bigint, NULL::bigint, NULL::bigint, t.reverses, t.reversed_amount, NULL::uuid, NULL::jsonb, NULL::text
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
               x.reversed_by, x.entries, NULL::text
          FROM transactions x
          JOIN unnest(transaction_tenants, transaction_ids) AS w(wt, wi) ON x.tenant_id = w.wt AND x.id = w.wi;
    END IF;

    RETURN QUERY
    SELECT 'transaction', NULL::bigint, x.tenant_id, x.id, NULL::text, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, NULL::uuid, NULL::bigint,
           x.pending, x.timeout_seconds, x.status, NULL::bigint, x.expires_at, x.metadata, x.created_at,
           x.updated_at, x.seq, x.resolved_seq, x.created_by_key_id, x.resolved_by_key_id, v_block, v_now,
           NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, x.reverses, NULL::bigint,
           x.reversed_by, x.entries, NULL::text
      FROM transactions x
     WHERE x.status = 'pending' AND x.expires_at <= v_now
       AND EXISTS (SELECT 1 FROM jsonb_array_elements(x.entries) AS e(leg)
                    WHERE (x.tenant_id, (e.leg->>'account_id')::uuid)
                          IN (SELECT * FROM unnest(account_tenants, account_ids)));

    -- The event heads of the tenants involved, unlocked: the write path chains its events from them
    -- and ledger_append_chained re-checks them under the head lock (0015).
    RETURN QUERY
    SELECT 'head', NULL::bigint, h.tenant_id, NULL::uuid, NULL::text, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, NULL::uuid, NULL::bigint,
           NULL::boolean, NULL::integer, NULL::text, NULL::bigint, NULL::timestamptz, NULL::jsonb,
           NULL::timestamptz, NULL::timestamptz, h.seq, NULL::bigint, NULL::text, NULL::text, NULL::bigint,
           NULL::timestamptz, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid,
           NULL::bigint, NULL::uuid, NULL::jsonb, h.hash
      FROM event_heads h
     WHERE h.tenant_id = ANY (account_tenants || transfer_tenants || transaction_tenants);

    RETURN QUERY
    SELECT 'clock', NULL::bigint, NULL::uuid, NULL::uuid, NULL::text, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, NULL::uuid, NULL::bigint,
           NULL::boolean, NULL::integer, NULL::text, NULL::bigint, NULL::timestamptz, NULL::jsonb,
           NULL::timestamptz, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::text, NULL::text,
           v_block, v_now, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid,
           NULL::bigint, NULL::uuid, NULL::jsonb, NULL::text;
END
$$;

-- chains: [{"tenant_id", "seq", "hash": the head the events were chained from (seq 0 and 64 zeros
-- for a tenant without one), "events": [[type, occurred_at, data, hash], ...] in applied order}].
-- Tenants are locked in id order, as ledger_append_events does, so two writers never wait for each
-- other's heads in opposite orders.
CREATE FUNCTION ledger_append_chained(chains jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c         jsonb;
    t         uuid;
    n         integer;
    head_seq  bigint;
    head_hash text;
BEGIN
    FOR c IN SELECT a.x FROM jsonb_array_elements(chains) AS a(x) ORDER BY (a.x->>'tenant_id')::uuid LOOP
        t := (c->>'tenant_id')::uuid;
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM event_heads h WHERE h.tenant_id = t FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO event_heads (tenant_id, seq, hash) VALUES (t, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
            SELECT h.seq, h.hash INTO head_seq, head_hash FROM event_heads h WHERE h.tenant_id = t FOR UPDATE;
        END IF;
        n := jsonb_array_length(c->'events');
        IF head_seq = (c->>'seq')::bigint AND head_hash = c->>'hash' THEN
            INSERT INTO events (tenant_id, seq, type, occurred_at, data, prev_hash, hash)
            SELECT t, head_seq + e.n, e.x->>0, (e.x->>1)::timestamptz, e.x->>2,
                   coalesce(lag(e.x->>3) OVER (ORDER BY e.n), head_hash), e.x->>3
              FROM jsonb_array_elements(c->'events') WITH ORDINALITY AS e(x, n);
            UPDATE event_heads SET seq = head_seq + n, hash = c->'events'->(n - 1)->>3 WHERE tenant_id = t;
            PERFORM pg_notify('ledger_events', t::text || ':' || (head_seq + n));
        ELSE
            PERFORM ledger_append_events(
                (SELECT jsonb_agg(jsonb_build_object('tenant_id', t, 'type', e.x->>0, 'occurred_at', e.x->>1,
                                                     'data', e.x->>2) ORDER BY e.n)
                   FROM jsonb_array_elements(c->'events') WITH ORDINALITY AS e(x, n)));
        END IF;
    END LOOP;
END
$$;

-- ledger_write (0011) followed by the chained events, LAST (after every other row of the write), as
-- ledger_write_events (0013) did with unchained ones.
CREATE FUNCTION ledger_write_chained(doc jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM ledger_write(doc);
    IF jsonb_array_length(coalesce(doc->'chains', '[]')) > 0 THEN
        PERFORM ledger_append_chained(doc->'chains');
    END IF;
END
$$;

-- The hashes' CHECKs of 0013 were regular expressions, evaluated for every inserted event: about
-- 11 us of the ~20 us an event row costs. The same rule, 64 lowercase hex digits, without the regex
-- engine. (VALIDATE re-reads existing events without blocking writes.)
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
              WHERE conrelid IN ('events'::regclass, 'event_heads'::regclass) AND contype = 'c'
                AND pg_get_constraintdef(oid) LIKE '%hash ~%' LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tbl, c.conname);
    END LOOP;
END
$$;
ALTER TABLE events
    ADD CONSTRAINT events_prev_hash_hex CHECK (length(prev_hash) = 64 AND ltrim(prev_hash, '0123456789abcdef') = '') NOT VALID,
    ADD CONSTRAINT events_hash_hex CHECK (length(hash) = 64 AND ltrim(hash, '0123456789abcdef') = '') NOT VALID;
ALTER TABLE events VALIDATE CONSTRAINT events_prev_hash_hex, VALIDATE CONSTRAINT events_hash_hex;
ALTER TABLE event_heads
    ADD CONSTRAINT event_heads_hash_hex CHECK (length(hash) = 64 AND ltrim(hash, '0123456789abcdef') = '');

-- ledger_write (0011), with the UPDATEs of transfers and transactions planned on every call, so that
-- every other statement can keep a plan made once (below).
CREATE OR REPLACE FUNCTION ledger_write(doc jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n bigint;
    rt record;
    rx record;
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

    -- Posts, voids and reversals (few per group): row by row, planned on every call (EXECUTE). A plan
    -- made once for a lookup by (tenant_id, id) is not safe: made while the table was empty, it may
    -- use any index that starts with tenant_id (0009), and then scans the tenant's every transfer.
    FOR rt IN SELECT * FROM jsonb_to_recordset(doc->'updated') AS u(
                 tenant_id uuid, id uuid, status text, posted_amount bigint, updated_at timestamptz,
                 resolved_seq bigint, resolved_by_key_id text, reversed_amount bigint) LOOP
        EXECUTE 'UPDATE transfers SET status = $3, posted_amount = $4, updated_at = $5, resolved_seq = $6,
                        resolved_by_key_id = $7, reversed_amount = $8
                  WHERE tenant_id = $1 AND id = $2'
          USING rt.tenant_id, rt.id, rt.status, rt.posted_amount, rt.updated_at, rt.resolved_seq,
                rt.resolved_by_key_id, rt.reversed_amount;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> 1 THEN
            RAISE EXCEPTION 'write mismatch: updated transfer % not found', rt.id USING ERRCODE = 'LW002';
        END IF;
    END LOOP;

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

    FOR rx IN SELECT * FROM jsonb_to_recordset(doc->'transactions_updated') AS u(
                 tenant_id uuid, id uuid, status text, updated_at timestamptz, resolved_seq bigint,
                 resolved_by_key_id text, reversed_by uuid) LOOP
        EXECUTE 'UPDATE transactions SET status = $3, updated_at = $4, resolved_seq = $5, resolved_by_key_id = $6,
                        reversed_by = $7
                  WHERE tenant_id = $1 AND id = $2'
          USING rx.tenant_id, rx.id, rx.status, rx.updated_at, rx.resolved_seq, rx.resolved_by_key_id,
                rx.reversed_by;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> 1 THEN
            RAISE EXCEPTION 'write mismatch: updated transaction % not found', rx.id USING ERRCODE = 'LW002';
        END IF;
    END LOOP;

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

    -- One statement for the accounts (an UPDATE per row would set up the accounts' CHECKs once per
    -- row): a join the settings at the end of this file pin to a nested loop over the primary key.
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
-- Plans made once per connection for the write functions. Re-planning every statement on every call
-- (force_custom_plan, the connections' default since 0009) was about a quarter of PostgreSQL's time
-- on the write path (perf, docs/performance.md). 0009 withdrew generic plans because a join on
-- (tenant_id, id) planned while `transfers` was empty used an index on tenant_id alone, kept for the
-- connection's life: 68 ms per call on 200k transfers (reproduced for this migration). What keeps a
-- plan made once here has one sensible plan whatever the statistics: INSERTs of the input, look-ups
-- of event_heads by its one-column key, and the accounts UPDATE joined on the one-column pk, which
-- with hash and merge joins and sequential scans off can only be a nested loop probing
-- accounts_pkey. Look-ups by (tenant_id, id) are EXECUTEd (planned each time), and lock-and-read,
-- made of such look-ups, keeps re-planning.
ALTER FUNCTION ledger_write(jsonb)
    SET plan_cache_mode = force_generic_plan SET enable_hashjoin = off SET enable_mergejoin = off
    SET enable_seqscan = off;
ALTER FUNCTION ledger_write_chained(jsonb) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ledger_append_chained(jsonb) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ledger_append_events(jsonb) SET plan_cache_mode = force_generic_plan;
