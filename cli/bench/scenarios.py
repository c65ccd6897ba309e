"""The scenarios of performance.md, and the pgbench reference and target each is judged against.

| scenario | load | reference (pgbench -M prepared, same pattern and clients) | target |
| --- | --- | --- | --- |
| uniform | gateway, random pairs of 10,000 accounts, closed loop | uniform.sql | ratio >= 0.5 |
| hot | gateway, 10 sources -> 1 sink, closed loop | hot.sql | ratio >= 1.0 |
| hot-ledger | ledger internal API, same load as hot | hot.sql | ratio >= 2.0 |
| contended | gateway, random distinct pairs of 10 accounts, 20 clients, closed loop | contended.sql | ratio >= 1.0 |
| batch | gateway, POST /v1/transfers/batch of 1,000, atomic false | batch.sql (1,000 in one transaction) | ratio >= 0.5 |
| latency | gateway, uniform pairs, open loop at a fixed rate | uniform.sql at the same rate (-R) | p99 <= 10 x p50 |

``hot`` and ``uniform`` are also judged on the machine's busy share while they run (``busy_target``):
a stack below its throughput target with idle cores is latency-bound, not CPU-bound.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    via: str
    """``gateway`` (public API, bearer token) or ``ledger`` (internal API, internal credential)."""
    pattern: str
    """``uniform``, ``hot`` or ``contended``: which accounts each transfer moves between."""
    clients: int
    """Concurrent connections, for our load and for pgbench."""
    reference: str
    """The pgbench script (in ``cli/bench/pgbench/``) it is compared with."""
    target: float
    """Ratio ``ours / pgbench`` to reach (for ``latency``: the largest p99 / p50)."""
    batch_size: int = 0
    open_loop: bool = False
    busy_target: float | None = None
    """Least % of all cores busy during the scenario, or None where it is not judged."""

    @property
    def path(self) -> str:
        return "/v1/transfers/batch" if self.batch_size else "/v1/transfers"

    @property
    def target_text(self) -> str:
        if self.open_loop:
            return f"p99 <= {self.target:g} x p50"
        return f"ratio >= {self.target:g}"


BUSY_TARGET_PERCENT = 90.0
"""Machine busy (% of all cores) during ``hot`` and ``uniform``: the stack uses the cores it has."""

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "uniform",
            "single transfers via the gateway, uniformly random pairs of 10,000 accounts",
            via="gateway",
            pattern="uniform",
            clients=32,
            reference="uniform",
            target=0.5,
            busy_target=BUSY_TARGET_PERCENT,
        ),
        Scenario(
            "hot",
            "single transfers via the gateway, 10 sources -> 1 hot account",
            via="gateway",
            pattern="hot",
            clients=24,
            reference="hot",
            target=1.0,
            busy_target=BUSY_TARGET_PERCENT,
        ),
        Scenario(
            "hot-ledger",
            "the hot load straight to the ledger's internal API",
            via="ledger",
            pattern="hot",
            clients=24,
            reference="hot",
            target=2.0,
        ),
        Scenario(
            "contended",
            "single transfers via the gateway, random distinct pairs of 10 accounts (both rows contended)",
            via="gateway",
            pattern="contended",
            clients=20,
            reference="contended",
            target=1.0,
        ),
        Scenario(
            "batch",
            "POST /v1/transfers/batch, 1,000 uniform transfers each, atomic false",
            via="gateway",
            pattern="uniform",
            clients=2,
            reference="batch",
            target=0.5,
            batch_size=1000,
        ),
        Scenario(
            "latency",
            "open loop via the gateway at a fixed rate (default half the uniform peak), uniform pairs",
            via="gateway",
            pattern="uniform",
            clients=32,
            reference="uniform",
            target=10.0,
            open_loop=True,
        ),
    ]
}

RSS_TARGET_MB = 150.0
"""Peak RSS of any one service process under load (performance.md)."""
