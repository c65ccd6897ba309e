-- The write path's two functions keep their statements' plans instead of re-planning every call.
--
-- The ledger's connections run with plan_cache_mode = force_custom_plan (services/ledger/db.py),
-- so that no statement keeps a generic plan made while `transfers` was small. Inside PL/pgSQL that
-- also re-plans every statement of these functions on every call: ~350 us of a ~550 us
-- lock-and-read, inside the window in which a hot account is locked (docs/performance.md).
--
-- Here the functions get generic plans, cached per connection, and the planner may not choose a
-- sequential scan for them: every statement in them is a key lookup with an index behind it
-- (accounts (tenant_id, id) and pk; transfers' primary key and the partial index of pending
-- reservations), so a plan made while the tables are empty stays the right plan at any size.
ALTER FUNCTION ledger_lock_and_read(uuid[], uuid[], uuid[], uuid[])
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off;

ALTER FUNCTION ledger_write(jsonb)
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off;
