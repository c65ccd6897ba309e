-- One round trip for steps 1 and 2 of the write path (see services/ledger/store.py): lock the
-- accounts in pk order, then read, with a fresh snapshot, the named transfers, the due
-- reservations on those accounts, one block number and the clock.
--
-- Why a function: the read must see everything committed before the locks were granted. A single
-- SQL statement keeps the snapshot it started with (only the locked rows themselves are
-- re-fetched), but each statement of a VOLATILE PL/pgSQL function takes a new snapshot under
-- READ COMMITTED. Doing this in one call takes a round trip out of the time the hot accounts stay
-- locked.
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
           NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::bigint, NULL::timestamptz
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
           f.expires_at, f.metadata, f.created_at, f.updated_at, f.seq, f.resolved_seq, v_block, v_now
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
           NULL::timestamptz, NULL::timestamptz, NULL::bigint, NULL::bigint, v_block, v_now;
END
$$;
