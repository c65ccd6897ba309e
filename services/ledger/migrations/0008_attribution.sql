-- Attribution (issue 14, item 8): every write records the API key (its key id, never the secret)
-- that made it. A transfer keeps the key that created it and the key that posted or voided it (none
-- for an expiry: nobody made that write); an account keeps the key that opened it. The gateway
-- passes the key id of the authenticated session to the ledger with the tenant; rows written
-- before this migration, and writes made by the admin tools, have none (NULL).
ALTER TABLE transfers
    ADD COLUMN created_by_key_id  text CHECK (length(created_by_key_id) <= 64),
    ADD COLUMN resolved_by_key_id text CHECK (length(resolved_by_key_id) <= 64);
ALTER TABLE accounts
    ADD COLUMN created_by_key_id  text CHECK (length(created_by_key_id) <= 64);

-- The write path's functions read and write the two columns (their bodies as in 0002 and 0006
-- otherwise); the lock-and-read function's result type changes, so it is dropped and created.
DROP FUNCTION ledger_lock_and_read(uuid[], uuid[], uuid[], uuid[]);

CREATE FUNCTION ledger_lock_and_read(
    account_tenants  uuid[],
    account_ids      uuid[],
    transfer_tenants uuid[],
    transfer_ids     uuid[]
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
    now                            timestamptz
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
           NULL::text, NULL::bigint, NULL::timestamptz, NULL::jsonb, NULL::timestamptz,
           NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::bigint,
           NULL::timestamptz
      FROM accounts a
      JOIN unnest(account_tenants, account_ids) AS k(t, i) ON a.tenant_id = k.t AND a.id = k.i
     ORDER BY a.pk
       FOR UPDATE OF a;

    -- Taken after the locks: orders this transaction after every earlier writer of these accounts.
    v_block := nextval('ledger_block_seq');
    v_now := clock_timestamp();

    RETURN QUERY
    SELECT 'transfer', NULL::bigint, f.tenant_id, f.id, f.currency, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, f.debit_account_id,
           f.credit_account_id, f.amount, f.pending, f.timeout_seconds, f.status, f.posted_amount,
           f.expires_at, f.metadata, f.created_at, f.updated_at, f.seq, f.resolved_seq,
           f.created_by_key_id, f.resolved_by_key_id, v_block, v_now
      FROM (
            SELECT t.* FROM transfers t
              JOIN unnest(transfer_tenants, transfer_ids) AS w(wt, wi) ON t.tenant_id = w.wt AND t.id = w.wi
            UNION
            SELECT t.* FROM transfers t
             WHERE t.status = 'pending' AND t.expires_at <= v_now
               AND ((t.tenant_id, t.debit_account_id) IN (SELECT * FROM unnest(account_tenants, account_ids))
                 OR (t.tenant_id, t.credit_account_id) IN (SELECT * FROM unnest(account_tenants, account_ids)))
           ) f;

    RETURN QUERY
    SELECT 'clock', NULL::bigint, NULL::uuid, NULL::uuid, NULL::text, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, NULL::uuid, NULL::bigint,
           NULL::boolean, NULL::integer, NULL::text, NULL::bigint, NULL::timestamptz, NULL::jsonb,
           NULL::timestamptz, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::text, NULL::text,
           v_block, v_now;
END
$$;

CREATE OR REPLACE FUNCTION ledger_write(doc jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_array_length(doc->'new') > 0 THEN
        INSERT INTO transfers (tenant_id, id, debit_account_id, credit_account_id, amount, currency, pending,
                               timeout_seconds, status, posted_amount, expires_at, metadata, created_at,
                               updated_at, seq, resolved_seq, created_by_key_id, resolved_by_key_id)
        SELECT x.tenant_id, x.id, x.debit_account_id, x.credit_account_id, x.amount, x.currency, x.pending,
               x.timeout_seconds, x.status, x.posted_amount, x.expires_at, x.metadata, x.created_at,
               x.updated_at, x.seq, x.resolved_seq, x.created_by_key_id, x.resolved_by_key_id
          FROM jsonb_to_recordset(doc->'new') AS x(
               tenant_id uuid, id uuid, debit_account_id uuid, credit_account_id uuid, amount bigint,
               currency text, pending boolean, timeout_seconds integer, status text, posted_amount bigint,
               expires_at timestamptz, metadata jsonb, created_at timestamptz, updated_at timestamptz,
               seq bigint, resolved_seq bigint, created_by_key_id text, resolved_by_key_id text)
        ON CONFLICT (tenant_id, id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'new') THEN
            RAISE EXCEPTION 'a concurrent writer took one of the new transfer ids' USING ERRCODE = 'LW001';
        END IF;
    END IF;

    IF jsonb_array_length(doc->'resolved') > 0 THEN
        UPDATE transfers t
           SET status = u.status, posted_amount = u.posted_amount, updated_at = u.updated_at,
               resolved_seq = u.resolved_seq, resolved_by_key_id = u.resolved_by_key_id
          FROM jsonb_to_recordset(doc->'resolved') AS u(
               tenant_id uuid, id uuid, status text, posted_amount bigint, updated_at timestamptz,
               resolved_seq bigint, resolved_by_key_id text)
         WHERE t.tenant_id = u.tenant_id AND t.id = u.id AND t.status = 'pending';
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'resolved') THEN
            RAISE EXCEPTION 'write mismatch: % of % resolved transfers updated', n,
                jsonb_array_length(doc->'resolved') USING ERRCODE = 'LW002';
        END IF;
    END IF;

    IF jsonb_array_length(doc->'accounts') > 0 THEN
        UPDATE accounts a
           SET debits_posted = u.debits_posted, credits_posted = u.credits_posted,
               debits_pending = u.debits_pending, credits_pending = u.credits_pending
          FROM jsonb_to_recordset(doc->'accounts') AS u(
               pk bigint, debits_posted bigint, credits_posted bigint, debits_pending bigint,
               credits_pending bigint)
         WHERE a.pk = u.pk;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'accounts') THEN
            RAISE EXCEPTION 'write mismatch: % of % accounts updated', n,
                jsonb_array_length(doc->'accounts') USING ERRCODE = 'LW002';
        END IF;
    END IF;
END
$$;

-- As in 0007 (re-creating a function drops its SET clauses).
ALTER FUNCTION ledger_lock_and_read(uuid[], uuid[], uuid[], uuid[])
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off;
ALTER FUNCTION ledger_write(jsonb)
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off;
