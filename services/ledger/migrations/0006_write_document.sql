-- Step 4 of the write path (services/ledger/store.py) as one function taking one JSON document, so
-- that the write and the COMMIT travel in ONE round trip: "SELECT ledger_write('<doc>'); COMMIT"
-- over the simple query protocol. The hot accounts stay locked from the lock until the commit; one
-- round trip fewer inside that window is what lets a hot account take more groups per second.
--
-- The document: {"new": [transfer rows], "resolved": [transfer rows], "accounts": [account rows]},
-- key names = column names (other keys are ignored), counters absolute (the rows are locked).
--
-- Errors (the transaction is then aborted and the COMMIT after it never runs):
--   LW001  a new transfer's (tenant_id, id) was taken by a concurrent writer: re-run the
--          transaction, which then sees that transfer and answers replay or id_conflict;
--   LW002  a resolved transfer or an account row was not updated: impossible while the locks
--          hold; the write is refused rather than committed partially.
CREATE FUNCTION ledger_write(doc jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_array_length(doc->'new') > 0 THEN
        INSERT INTO transfers (tenant_id, id, debit_account_id, credit_account_id, amount, currency, pending,
                               timeout_seconds, status, posted_amount, expires_at, metadata, created_at,
                               updated_at, seq, resolved_seq)
        SELECT x.tenant_id, x.id, x.debit_account_id, x.credit_account_id, x.amount, x.currency, x.pending,
               x.timeout_seconds, x.status, x.posted_amount, x.expires_at, x.metadata, x.created_at,
               x.updated_at, x.seq, x.resolved_seq
          FROM jsonb_to_recordset(doc->'new') AS x(
               tenant_id uuid, id uuid, debit_account_id uuid, credit_account_id uuid, amount bigint,
               currency text, pending boolean, timeout_seconds integer, status text, posted_amount bigint,
               expires_at timestamptz, metadata jsonb, created_at timestamptz, updated_at timestamptz,
               seq bigint, resolved_seq bigint)
        ON CONFLICT (tenant_id, id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> jsonb_array_length(doc->'new') THEN
            RAISE EXCEPTION 'a concurrent writer took one of the new transfer ids' USING ERRCODE = 'LW001';
        END IF;
    END IF;

    IF jsonb_array_length(doc->'resolved') > 0 THEN
        UPDATE transfers t
           SET status = u.status, posted_amount = u.posted_amount, updated_at = u.updated_at,
               resolved_seq = u.resolved_seq
          FROM jsonb_to_recordset(doc->'resolved') AS u(
               tenant_id uuid, id uuid, status text, posted_amount bigint, updated_at timestamptz,
               resolved_seq bigint)
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
