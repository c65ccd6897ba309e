"""The capacity model: from one bench run's CPU per transfer to tasks, instance classes and ceilings.

Invariants:

- Every figure is **measured** (read from the bench JSON, see ``Measured``) or an **assumption**
  named in ``ASSUMPTIONS`` with its reason; docs/capacity.md prints both, so nothing here is a
  number that appears from nowhere.
- Sizing is linear in CPU per transfer: a service needs ``rate x CPU-us per transfer`` of CPU, run at
  the scaling target. That holds while the path is CPU-bound per transfer (the bench's group sizes
  stay in the same range); the hot-account ceiling is the one figure that is not, and it is derived
  from the serial part (PostgreSQL CPU under the hot row's lock) instead.
- The uniform scenario sizes the fleet; ``hot`` gives the ceiling of one account.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cli.bench.prices import AURORA_CLASSES, CACHE_CLASSES, InstanceClass, instance
from stacks.config import PLATFORM, EnvironmentConfig

SERVICES = ("gateway", "ledger", "session")
RATES = (1_000, 10_000, 50_000)
"""Sustained transfers/s the sizing tables are made for (the issue's three uniform loads)."""


@dataclass(frozen=True)
class Assumption:
    name: str
    value: float
    why: str


_ASSUMED = (
    Assumption("vcpu_equivalence", 1.0, "one Fargate or Aurora vCPU does the work of one core of the bench machine "
               "(AMD EPYC, shared); unmeasured on AWS: the first load test there replaces it"),
    Assumption("workers_per_task", 1, "processes per task: WORKERS defaults to 1 (shared/settings/) and the compute "
               "stack does not set it, so a task uses at most one vCPU for Python however large it is"),
    Assumption("scaling_target", PLATFORM.cpu_target_percent / 100, "ECS target-tracking CPU target "
               "(PlatformConfig.cpu_target_percent): tasks run at this share of their CPU"),
    Assumption("aurora_cpu_target", 0.70, "writer CPU planned at 70%, under the 80% AuroraCpuAlarm, so a failover "
               "or a vacuum has headroom"),
    Assumption("burstable_baseline", 0.20, "db.t4g.medium sustains 20% of each vCPU (its baseline); dev only"),
    Assumption("aurora_linear_vcpu", 32, "PostgreSQL CPU per transfer assumed flat up to 32 vCPU; above it WAL "
               "insertion and lock-manager contention make it unmeasured, so larger classes are marked as such"),
    Assumption("hot_commit_ms", 2.0, "Aurora commit latency (quorum write of 4 of 6 copies) a hot account's group "
               "waits for while holding the row lock"),
    Assumption("max_group_items", 512, "GROUP_COMMIT_MAX_ITEMS default: the largest group one transaction carries"),
    Assumption("redis_us_keyed", 80.0, "Redis CPU per transfer with an Idempotency-Key (claim + completion: two "
               "round trips); the run before issue 10 made a Redis call per request and measured 79 us"),
    Assumption("keyed_share", 1.0, "share of transfers sent with an Idempotency-Key: all (payments clients retry)"),
    Assumption("idempotency_ttl_s", 86_400, "IDEMPOTENCY_TTL_SECONDS default: a completed record is kept 24 h"),
    Assumption("idempotency_record_bytes", 600, "Redis memory per completed record: key (~70 B), fingerprint, "
               "status and the ~400 B response body, plus ~80 B of Redis overhead"),
    Assumption("redis_usable_memory", 0.75, "ElastiCache reserves 25% of a node's memory by default"),
    Assumption("redis_cpu_target", 0.70, "Redis executes commands on one thread: plan it at 70% of one core"),
    Assumption("alb_bytes_per_transfer", 2_000, "request and response with headers through the ALB (LCU: 1 GB/h)"),
    Assumption("internet_bytes_per_transfer", 700, "response bytes out to the internet"),
    Assumption("inter_az_bytes_per_transfer", 3_000, "half of every hop (ALB->gateway, gateway->ledger, "
               "ledger->Aurora, gateway->Redis) crosses an AZ, ~6 KB both ways in all"),
    Assumption("endpoint_bytes_per_transfer", 150, "X-Ray spans through the interface endpoint: 5% traced "
               "(TRACE_SAMPLE_RATIO) x ~3 KB; EMF is one line per process per minute and there are no "
               "per-request logs"),
    Assumption("aurora_io_per_transfer", 1.0, "billed Aurora I/Os per transfer: WAL is written in 4 KiB units and a "
               "group of ~10 transfers writes a few KiB; reads are served from the buffer cache"),
    Assumption("aurora_bytes_per_transfer", 1_000, "storage per transfer (row, entries, indexes), billed per month "
                "it is kept"),
    Assumption("emf_metrics", 40, "custom metrics the services emit (Requests, Latency, ServerErrors per service, "
               "the ledger's three, Errors per Service and Code)"),
    Assumption("config_items_month", 2_000, "AWS Config configuration items recorded per month"),
)  # fmt: skip
ASSUMPTIONS: dict[str, Assumption] = {a.name: a for a in _ASSUMED}


def assumed(name: str) -> float:
    return ASSUMPTIONS[name].value


@dataclass(frozen=True)
class Measured:
    """What the capacity model takes from one bench JSON."""

    source: str
    cpu_us: dict[str, float]
    """CPU-us per transfer in ``uniform``: the services, ``postgres`` and ``redis``."""
    hot_cpu_us: dict[str, float]
    """The same in ``hot`` (one account on one side of every transfer)."""
    group_size: float
    hot_group_size: float
    hot_transfers_per_s: float
    uniform_transfers_per_s: float


def _scenario(document: dict[str, Any], name: str) -> dict[str, Any]:
    for record in document.get("scenarios", []):
        if record.get("name") == name:
            return record
    raise ValueError(f"the bench JSON has no {name!r} scenario: run it (./scripts/bench --scenario {name} --json FILE)")


def measured(document: dict[str, Any], label: str) -> Measured:
    """The model's inputs from a bench JSON (``cli/bench/report.py`` documents its shape)."""
    uniform, hot = _scenario(document, "uniform"), _scenario(document, "hot")
    keys = (*SERVICES, "postgres", "redis")

    def cpu(record: dict[str, Any]) -> dict[str, float]:
        ours = (record.get("cpu_us_per_transfer") or {}).get("ours") or {}
        missing = [k for k in keys if k not in ours]
        if missing:
            raise ValueError(f"{record['name']}: no CPU per transfer for {', '.join(missing)}")
        return {k: float(ours[k]) for k in keys}

    def group(record: dict[str, Any]) -> float:
        return float((record.get("ledger_group_size") or {}).get("mean") or 1.0)

    commit = document.get("versions", {}).get("commit", "?")
    source = f"{label} (started {document.get('started_at', '?')}, commit {commit})"
    return Measured(source, cpu(uniform), cpu(hot), group(uniform), group(hot),
                    float(hot["transfers_per_s"]), float(uniform["transfers_per_s"]))  # fmt: skip


def per_vcpu(us_per_transfer: float) -> float:
    """Transfers/s one vCPU carries at 100% when a transfer costs ``us_per_transfer`` of its CPU."""
    return 1e6 * assumed("vcpu_equivalence") / max(us_per_transfer, 1e-9)


def usable_vcpu(task_cpu_units: int) -> float:
    """vCPU of a task that the service's processes can use: the task's, capped by its process count."""
    return min(task_cpu_units / 1024, assumed("workers_per_task"))


def per_task(m: Measured, service: str, env: EnvironmentConfig) -> float:
    """Transfers/s one task of ``service`` (``env``'s size) carries at the scaling target."""
    return per_vcpu(m.cpu_us[service]) * usable_vcpu(env.service(service).cpu) * assumed("scaling_target")


def tasks(m: Measured, service: str, env: EnvironmentConfig, rate: float) -> int:
    """Tasks of ``service`` for ``rate`` transfers/s; never below the environment's floor."""
    return max(env.service(service).min_tasks, math.ceil(rate / per_task(m, service, env)))


def aurora_vcpu(m: Measured, rate: float) -> float:
    """Writer vCPU ``rate`` needs at the planned CPU share."""
    return rate * m.cpu_us["postgres"] / 1e6 / assumed("vcpu_equivalence") / assumed("aurora_cpu_target")


def aurora_class(m: Measured, rate: float) -> InstanceClass | None:
    """Smallest memory-optimised writer class for ``rate``; None past the largest (one writer's end)."""
    need = aurora_vcpu(m, rate)
    for cls in AURORA_CLASSES:
        if not cls.name.startswith("db.t") and cls.vcpu >= need:
            return cls
    return None


def aurora_rate(m: Measured, cls: InstanceClass) -> float:
    """Transfers/s a writer of class ``cls`` carries at the planned CPU share (a burstable class at
    its baseline: it cannot sustain more)."""
    vcpu = cls.vcpu * (assumed("burstable_baseline") if cls.name.startswith("db.t") else 1.0)
    return vcpu * assumed("aurora_cpu_target") * per_vcpu(m.cpu_us["postgres"])


def hot_ceiling(m: Measured) -> float:
    """Transfers/s one account can take, whatever the fleet: its row lock serialises the groups.

    While one group holds the hot row's lock, PostgreSQL spends ``postgres`` CPU-us per transfer on
    it and then waits for the commit; the next group waits for the lock. With groups of at most
    ``max_group_items``: rate = G / (commit + G x postgres-us). More tasks or a larger instance
    class add nothing; only a faster core or less work per transfer under the lock do.
    """
    g = assumed("max_group_items")
    seconds = assumed("hot_commit_ms") / 1000 + g * m.hot_cpu_us["postgres"] / 1e6 / assumed("vcpu_equivalence")
    return g / seconds


def redis_memory_gib(rate: float) -> float:
    """Redis memory the completed idempotency records of ``rate`` transfers/s hold at steady state."""
    records = rate * assumed("keyed_share") * assumed("idempotency_ttl_s")
    return records * assumed("idempotency_record_bytes") / 2**30


def redis_shard_rate(m: Measured, keyed: bool) -> float:
    """Transfers/s one Redis shard (one primary's command thread) carries at the planned CPU share."""
    us = assumed("redis_us_keyed") if keyed else m.cpu_us["redis"]
    return per_vcpu(us) * assumed("redis_cpu_target")


def redis_shards(m: Measured, node: InstanceClass, rate: float) -> int:
    """Shards (cluster-mode node groups) of ``node`` for ``rate``: the larger of memory and CPU."""
    by_memory = redis_memory_gib(rate) / (node.memory_gib * assumed("redis_usable_memory"))
    by_cpu = rate / redis_shard_rate(m, keyed=assumed("keyed_share") > 0)
    return max(1, math.ceil(max(by_memory, by_cpu)))


def cache_class(name: str) -> InstanceClass:
    for cls in CACHE_CLASSES:
        if cls.name == name:
            return cls
    raise KeyError(f"no list price for {name!r}: add it to cli/bench/prices.py")


def alb_lcu(rate: float) -> float:
    """ALB LCUs at ``rate`` (processed bytes dominate: clients keep connections alive)."""
    return rate * assumed("alb_bytes_per_transfer") * 3600 / 1e9


def env_limits(m: Measured, env: EnvironmentConfig) -> dict[str, float]:
    """Transfers/s ``env`` carries, per limit: its autoscaling ceilings, its configured writer, and
    the idempotency records its one Redis shard holds (sustained 24 h, every transfer keyed)."""
    limits = {f"{s} at {env.service(s).max_tasks} tasks": env.service(s).max_tasks * per_task(m, s, env)
              for s in ("gateway", "ledger")}  # fmt: skip
    writer = instance(AURORA_CLASSES, env.aurora_instance_class)
    limits[f"Aurora writer {writer.name}"] = aurora_rate(m, writer)
    node = cache_class(env.redis_node_type)
    keyed = node.memory_gib * assumed("redis_usable_memory") * 2**30 / assumed("idempotency_record_bytes")
    limits[f"24 h of idempotency records in one {node.name} shard"] = keyed / assumed("idempotency_ttl_s")
    return limits
