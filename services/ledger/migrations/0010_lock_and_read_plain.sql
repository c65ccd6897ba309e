-- Lock-and-read without the UNION (same result type, same rows, a transfer possibly twice):
-- cheaper to re-plan on every call, which the write path does (migration 0009, ADR 0007).
CREATE OR REPLACE FUNCTION ledger_lock_and_read(
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

    -- The transfers the requests name, then the due reservations on the locked accounts, as two
    -- plain statements: a transfer in both comes back twice (the caller keys them by id). Each is
    -- cheap to plan, unlike the UNION of both (which also sorted 18 columns to remove duplicates).
    RETURN QUERY
    SELECT 'transfer', NULL::bigint, t.tenant_id, t.id, t.currency, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, t.debit_account_id,
           t.credit_account_id, t.amount, t.pending, t.timeout_seconds, t.status, t.posted_amount,
           t.expires_at, t.metadata, t.created_at, t.updated_at, t.seq, t.resolved_seq,
           t.created_by_key_id, t.resolved_by_key_id, v_block, v_now
      FROM transfers t
      JOIN unnest(transfer_tenants, transfer_ids) AS w(wt, wi) ON t.tenant_id = w.wt AND t.id = w.wi;

    RETURN QUERY
    SELECT 'transfer', NULL::bigint, t.tenant_id, t.id, t.currency, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, t.debit_account_id,
           t.credit_account_id, t.amount, t.pending, t.timeout_seconds, t.status, t.posted_amount,
           t.expires_at, t.metadata, t.created_at, t.updated_at, t.seq, t.resolved_seq,
           t.created_by_key_id, t.resolved_by_key_id, v_block, v_now
      FROM transfers t
     WHERE t.status = 'pending' AND t.expires_at <= v_now
       AND ((t.tenant_id, t.debit_account_id) IN (SELECT * FROM unnest(account_tenants, account_ids))
         OR (t.tenant_id, t.credit_account_id) IN (SELECT * FROM unnest(account_tenants, account_ids)));

    RETURN QUERY
    SELECT 'clock', NULL::bigint, NULL::uuid, NULL::uuid, NULL::text, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, NULL::uuid, NULL::bigint,
           NULL::boolean, NULL::integer, NULL::text, NULL::bigint, NULL::timestamptz, NULL::jsonb,
           NULL::timestamptz, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::text, NULL::text,
           v_block, v_now;
END
$$;

