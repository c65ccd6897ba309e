-- Webhooks of public-api-2.md section 12 (issue 12; docs/webhooks.md): a tenant's endpoints, each
-- with its own cursor into the tenant's event journal (migration 0013), and the log of every
-- delivery attempt.
--
-- One endpoint is worked by one ledger process at a time: a process claims it by setting
-- lease_owner/lease_until with an UPDATE ... WHERE lease_until < now() (services/ledger/webhooks/
-- store.py), renews the lease with every step, and a crashed process's lease simply expires.
-- delivered_seq is the endpoint's cursor: every event of the tenant with seq <= delivered_seq was
-- acknowledged with a 2xx or does not match the endpoint's event types. It only moves forward and
-- is committed right after each 2xx, so a restart never re-delivers an acknowledged event.

CREATE TABLE webhook_endpoints (
    tenant_id        uuid        NOT NULL,
    id               uuid        NOT NULL,
    -- List position of the cursor pages (unique, in creation order).
    pk               bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    url              text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    event_types      text[]      NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 64),
    -- The signing secret, 'whsec_' + base64 (Standard Webhooks). Kept in clear: HMAC needs it.
    secret           text        NOT NULL CHECK (secret LIKE 'whsec\_%'),
    created_at       timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'failing')),
    delivered_seq    bigint      NOT NULL CHECK (delivered_seq >= 0),
    -- The head event's failed attempts so far, and when the first of them was made (NULL: none):
    -- the endpoint is marked failing once a failure comes WEBHOOK_GIVE_UP_SECONDS after that.
    failed_attempts  integer     NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    failing_since    timestamptz,
    next_attempt_at  timestamptz NOT NULL DEFAULT '-infinity',
    lease_owner      text,
    lease_until      timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (tenant_id, id)
);

-- What the delivery workers look for: enabled endpoints due for an attempt.
CREATE INDEX webhook_endpoints_due ON webhook_endpoints (next_attempt_at) WHERE status = 'enabled';

CREATE TABLE webhook_deliveries (
    pk            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    endpoint_id   uuid        NOT NULL,
    event_seq     bigint      NOT NULL,
    event_type    text        NOT NULL,
    attempt       integer     NOT NULL CHECK (attempt >= 1),
    status        text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    response_code integer,
    error         text,
    duration_ms   integer     NOT NULL CHECK (duration_ms >= 0),
    attempted_at  timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (tenant_id, endpoint_id, pk);
