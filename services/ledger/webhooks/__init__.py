"""Webhooks (docs/api.md section 12): endpoints a tenant registers, and their delivery.

- :mod:`.routes`: ``/v1/webhook-endpoints`` (create, list, get, delete, enable, deliveries);
- :mod:`.store`: the SQL of endpoints, leases and the deliveries log (migration 0014);
- :mod:`.worker`: the delivery worker every ledger process runs (started by the runtime);
- :mod:`.housekeeping`: the worker's pruning of the deliveries log and its failing-endpoints gauge;
- :mod:`.signing`: Standard Webhooks secrets, ids and signatures;
- :mod:`.url_safety`: which URLs may be registered and which addresses may be connected to.

Invariants: each endpoint receives its matching events at least once and in seq order, one request
in flight at a time, from whichever single process holds its lease; its cursor only moves forward
and is committed right after each 2xx. docs/webhooks.md is the user-facing description.
"""
