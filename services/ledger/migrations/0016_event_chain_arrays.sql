-- The large groups' events as binary arrays (write.py, the path of batches): ledger_append_chained
-- (0015) takes its events inside a JSON document, which for a batch of 1,000 transfers is ~600 kB
-- that PostgreSQL parses, walks and unpacks again; its entries and transfers already travel as
-- arrays. Same rule as 0015: under the tenant's head lock, insert as sent when the head is still
-- the one the events were chained from, else re-chain them with 0013's recipe.
--
-- One call per tenant, in tenant id order (the order every writer locks heads in), after every
-- other row of the write and right before COMMIT. occurred_at is the RFC 3339 text that was hashed.
CREATE FUNCTION ledger_append_chain(
    t          uuid,
    after_seq  bigint,
    after_hash text,
    types      text[],
    occurred   text,
    datas      text[],
    hashes     text[]
) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head_seq  bigint;
    head_hash text;
    n         integer := cardinality(types);
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM event_heads h WHERE h.tenant_id = t FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO event_heads (tenant_id, seq, hash) VALUES (t, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM event_heads h WHERE h.tenant_id = t FOR UPDATE;
    END IF;
    IF head_seq = after_seq AND head_hash = after_hash THEN
        INSERT INTO events (tenant_id, seq, type, occurred_at, data, prev_hash, hash)
        SELECT t, head_seq + u.i, u.ty, occurred::timestamptz, u.d,
               coalesce(hashes[u.i - 1], head_hash), u.h
          FROM unnest(types, datas, hashes) WITH ORDINALITY AS u(ty, d, h, i);
        UPDATE event_heads SET seq = head_seq + n, hash = hashes[n] WHERE tenant_id = t;
        PERFORM pg_notify('ledger_events', t::text || ':' || (head_seq + n));
    ELSE
        PERFORM ledger_append_events(
            (SELECT jsonb_agg(jsonb_build_object('tenant_id', t, 'type', u.ty, 'occurred_at', occurred,
                                                 'data', u.d) ORDER BY u.i)
               FROM unnest(types, datas) WITH ORDINALITY AS u(ty, d, i)));
    END IF;
END
$$;

-- Every statement has one plan whatever the statistics (0015): keep it.
ALTER FUNCTION ledger_append_chain(uuid, bigint, text, text[], text, text[], text[])
    SET plan_cache_mode = force_generic_plan;
