"""The garbage collector's settings for the services' processes (docs/performance.md, "Garbage
collection").

A service process holds a large long-lived heap from its imports and app (Litestar's routing and
types, asyncpg, msgspec structs, botocore's models in the session service) and allocates many
short-lived objects per request (decoded bodies, rows, outcomes, responses). With CPython's default
thresholds (700, 10, 10) the young generation is collected every 700 net allocations, a few times
per request, and the older generations, which hold that long-lived heap, are rescanned on a
schedule that follows request volume. Under the hot-ledger bench the ledger's profile showed those
pauses as time charged to whatever frame was running when they struck.

:func:`settle` is called once per process, at startup, after the app is built: it collects once,
freezes every object alive (``gc.freeze``: the imports and the app are never scanned again) and
makes young collections rarer. Reference cycles are still collected, only later; the memory they
hold meanwhile is bounded by :data:`YOUNG_THRESHOLD` allocations.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Net allocations between two collections of the young generation (CPython's default: 700)."""

OLDER_THRESHOLDS = (20, 20)
"""Collections of one generation between two of the next (CPython's default: 10, 10)."""


def settle() -> None:
    """Collect, freeze what is alive, and set the thresholds; call once, after the app is built."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
