-- The event journal of public-api-2.md section 12 (issue 12; docs/events.md): every committed change
-- is one event, written in the same transaction as the change, numbered per tenant 1, 2, 3... with
-- no gap, and chained: hash = sha256(prev_hash || canonical(event without hash)), hex.
--
-- Why commit order equals seq order: ledger_append_events takes the tenant's head row lock
-- (event_heads) as the LAST thing a write transaction does before its COMMIT, and the lock is held
-- until that COMMIT. A second writer of the same tenant waits for the lock, so it numbers its events
-- after the first one's and can commit only after the first one committed: no reader can see seq n+1
-- before seq n. The lock is held only for the event inserts and the COMMIT (the write and the
-- COMMIT travel in one message), never while the rules run.

CREATE TABLE event_heads (
    tenant_id uuid   PRIMARY KEY,
    seq       bigint NOT NULL CHECK (seq >= 0),
    hash      text   NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

CREATE TABLE events (
    tenant_id   uuid        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq > 0),
    type        text        NOT NULL CHECK (type IN (
                    'account.created', 'account.updated',
                    'transfer.created', 'transfer.posted', 'transfer.voided', 'transfer.expired',
                    'transaction.created', 'transaction.posted', 'transaction.voided', 'transaction.expired')),
    occurred_at timestamptz NOT NULL,
    -- data: the canonical JSON text of the object after the change, exactly as hashed (jsonb would
    -- re-order keys and add spaces); clients get it verbatim.
    data        text        NOT NULL,
    prev_hash   text        NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash        text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (tenant_id, seq)
);

-- Where `./scripts/admin verify` stopped last time, per tenant: it re-checks only what came after.
CREATE TABLE event_checkpoints (
    tenant_id   uuid        PRIMARY KEY,
    seq         bigint      NOT NULL,
    hash        text        NOT NULL,
    verified_at timestamptz NOT NULL
);

-- evs: [{"tenant_id", "type", "occurred_at" (RFC 3339 text, as served), "data" (canonical JSON
-- text)}] in applied order. Appends them to each tenant's chain (tenants in id order, so two writers
-- never wait for each other's heads in opposite orders) and notifies listeners at commit.
CREATE FUNCTION ledger_append_events(evs jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t         uuid;
    head_seq  bigint;
    head_hash text;
    e         record;
    canon     text;
    h         text;
    seqs      bigint[];
    types     text[];
    ats       timestamptz[];
    datas     text[];
    prevs     text[];
    hashes    text[];
BEGIN
    FOR t IN SELECT DISTINCT (x->>'tenant_id')::uuid FROM jsonb_array_elements(evs) AS x ORDER BY 1 LOOP
        SELECT h0.seq, h0.hash INTO head_seq, head_hash FROM event_heads h0 WHERE h0.tenant_id = t FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO event_heads (tenant_id, seq, hash) VALUES (t, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
            SELECT h0.seq, h0.hash INTO head_seq, head_hash FROM event_heads h0 WHERE h0.tenant_id = t FOR UPDATE;
        END IF;
        seqs := '{}'; types := '{}'; ats := '{}'; datas := '{}'; prevs := '{}'; hashes := '{}';
        FOR e IN SELECT a.x->>'type' AS type, a.x->>'occurred_at' AS occurred_at, a.x->>'data' AS data
                   FROM jsonb_array_elements(evs) WITH ORDINALITY AS a(x, n)
                  WHERE (a.x->>'tenant_id')::uuid = t ORDER BY a.n LOOP
            head_seq := head_seq + 1;
            -- canonical(event without hash): keys in code point order, no whitespace.
            canon := '{"data":' || e.data || ',"occurred_at":"' || e.occurred_at || '","prev_hash":"' || head_hash
                     || '","seq":' || head_seq || ',"type":"' || e.type || '"}';
            h := encode(sha256(convert_to(head_hash || canon, 'UTF8')), 'hex');
            seqs := seqs || head_seq; types := types || e.type; ats := ats || e.occurred_at::timestamptz;
            datas := datas || e.data; prevs := prevs || head_hash; hashes := hashes || h;
            head_hash := h;
        END LOOP;
        INSERT INTO events (tenant_id, seq, type, occurred_at, data, prev_hash, hash)
        SELECT t, s, ty, oc, d, p, hh FROM unnest(seqs, types, ats, datas, prevs, hashes) AS u(s, ty, oc, d, p, hh);
        UPDATE event_heads SET seq = head_seq, hash = head_hash WHERE tenant_id = t;
        PERFORM pg_notify('ledger_events', t::text || ':' || head_seq);
    END LOOP;
END
$$;

-- ledger_write (0011) gains the "events" key, appended LAST, after every other row of the write.
CREATE OR REPLACE FUNCTION ledger_write_events(doc jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM ledger_write(doc);
    IF jsonb_array_length(coalesce(doc->'events', '[]')) > 0 THEN
        PERFORM ledger_append_events(doc->'events');
    END IF;
END
$$;
