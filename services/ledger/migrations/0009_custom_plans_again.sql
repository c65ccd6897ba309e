-- Undo the generic plans of 0007/0008 for the write path's functions: they re-plan every call again
-- (the connections' plan_cache_mode = force_custom_plan, services/ledger/db.py).
--
-- Why: a generic plan is made once per connection, at the function's first call. Made while
-- `transfers` had no statistics (a new database, or before the first ANALYZE), it picked
-- transfers_by_credit_account with only tenant_id as the index condition to find transfers by
-- (tenant_id, id), filtering every transfer of the tenant: measured 4.6 ms per lock-and-read of a
-- 12-transfer group against 0.2-0.7 ms, growing with the ledger, and kept for the connection's life.
-- enable_seqscan = off could not prevent that (it was an index scan). Re-planning costs ~0.35 ms a
-- call (docs/performance.md) but always sees the real parameter values; making these statements
-- safe under generic plans (single-row lookups the planner cannot mis-index) is the next step.
ALTER FUNCTION ledger_lock_and_read(uuid[], uuid[], uuid[], uuid[]) RESET ALL;
ALTER FUNCTION ledger_write(jsonb) RESET ALL;
