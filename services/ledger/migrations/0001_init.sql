-- The ledger's tables. Money is bigint minor units; every counter is non-negative and the limit
-- flags are re-checked by CHECK constraints, so even a bug in the service cannot commit a state
-- that breaks them (the service checks first and answers with the right error code).

CREATE TABLE accounts (
    -- pk orders accounts globally: the list order ("oldest first") and the lock order.
    pk              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL,
    currency        text        NOT NULL CHECK (currency ~ '^[A-Z][A-Z0-9]{2,11}$'),
    normal_balance  text        NOT NULL CHECK (normal_balance IN ('credit', 'debit')),
    debits_must_not_exceed_credits boolean NOT NULL,
    credits_must_not_exceed_debits boolean NOT NULL,
    metadata        jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    debits_posted   bigint      NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted  bigint      NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending  bigint      NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending bigint      NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    -- numeric: the sums themselves must not overflow while being checked.
    CHECK (debits_posted::numeric + debits_pending <= 9223372036854775807),
    CHECK (credits_posted::numeric + credits_pending <= 9223372036854775807),
    CHECK (NOT debits_must_not_exceed_credits OR debits_posted::numeric + debits_pending <= credits_posted),
    CHECK (NOT credits_must_not_exceed_debits OR credits_posted::numeric + credits_pending <= debits_posted),
    UNIQUE (tenant_id, id)
);

CREATE INDEX accounts_by_tenant ON accounts (tenant_id, pk);
CREATE INDEX accounts_by_tenant_currency ON accounts (tenant_id, currency, pk);

-- Applied order of every event (a transfer created, posted, voided or expired). Each write
-- transaction takes one block number after it holds its account locks, and numbers its events
-- block * 65536 + i in the order it evaluated them, so per account the numbers follow the order
-- in which the locks were granted.
CREATE SEQUENCE ledger_block_seq AS bigint;

CREATE TABLE transfers (
    tenant_id         uuid        NOT NULL,
    id                uuid        NOT NULL,
    debit_account_id  uuid        NOT NULL,
    credit_account_id uuid        NOT NULL,
    amount            bigint      NOT NULL CHECK (amount > 0),
    currency          text        NOT NULL,
    pending           boolean     NOT NULL,
    timeout_seconds   integer     NOT NULL CHECK (timeout_seconds BETWEEN 0 AND 31536000),
    status            text        NOT NULL CHECK (status IN ('posted', 'pending', 'voided', 'expired')),
    posted_amount     bigint      NOT NULL CHECK (posted_amount >= 0 AND posted_amount <= amount),
    expires_at        timestamptz,
    metadata          jsonb       NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    seq               bigint      NOT NULL,
    resolved_seq      bigint,
    PRIMARY KEY (tenant_id, id),
    CHECK (debit_account_id <> credit_account_id),
    CHECK (pending OR (status = 'posted' AND posted_amount = amount AND timeout_seconds = 0))
);

-- Account history in applied order.
CREATE INDEX transfers_by_debit_account ON transfers (tenant_id, debit_account_id, seq);
CREATE INDEX transfers_by_credit_account ON transfers (tenant_id, credit_account_id, seq);
-- Reservations that can expire: the sweeper and the write path find due ones here.
CREATE INDEX transfers_expiring ON transfers (expires_at) WHERE status = 'pending' AND expires_at IS NOT NULL;
