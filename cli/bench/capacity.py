"""``./scripts/bench --from-json FILE --capacity``: docs/capacity.md, generated from one bench run.

The page is the command's output, whole (``> docs/capacity.md``), so it is redone with every new run
and never edited by hand. Its figures come from three places, and the page says which is which:

- **measured**: CPU per transfer per service and PostgreSQL, group sizes, the bench's throughput
  (``cli.bench.capacity_model.measured``);
- **assumed**: ``cli.bench.capacity_model.ASSUMPTIONS``, each with its reason;
- **priced**: ``cli.bench.prices`` (on-demand list prices, region and date stated, one table).

Sizes of the environments come from ``stacks/config.py``; resource counts from the synthesized
templates (``cli.bench.cost.inventory``).
"""

from __future__ import annotations

from typing import Any

from cli.bench import capacity_model as cm
from cli.bench.cost import fixed_lines, inventory, monthly, per_million, per_million_lines
from cli.bench.prices import PRICE_DATE, PRICES, REGION, SECONDS_PER_MONTH
from stacks.config import PLATFORM, EnvironmentConfig


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value < 1000 else f"${value:,.0f}"


def _table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has an ``l`` or ``r`` per column (default: the first left, the rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]


def _measured(m: cm.Measured) -> list[str]:
    rows = [[k, _n(m.cpu_us[k], 1), _n(m.hot_cpu_us[k], 1)] for k in (*cm.SERVICES, "postgres", "redis")]
    rows += [["ledger group size (mean)", _n(m.group_size, 1), _n(m.hot_group_size, 1)],
             ["transfers/s on the bench machine", _n(m.uniform_transfers_per_s), _n(m.hot_transfers_per_s)]]  # fmt: skip
    return ["## Measured inputs", "", f"From {m.source}. CPU-us per transfer (CPU time of each process "
            "over the transfers committed in the scenario). The bench machine was shared with other load; CPU "
            "time per transfer is steadier than throughput, but cache and SMT contention inflate it, so the "
            "sizing below errs towards more capacity:", "", *_table(["figure", "`uniform`", "`hot`"], rows)]  # fmt: skip


def _per_vcpu(m: cm.Measured, prod: EnvironmentConfig) -> list[str]:
    rows = []
    for s in cm.SERVICES:
        size = prod.service(s)
        rows.append([s, _n(m.cpu_us[s], 1), _n(cm.per_vcpu(m.cpu_us[s])),
                     _n(cm.per_vcpu(m.cpu_us[s]) * cm.assumed("scaling_target")),
                     f"{size.cpu / 1024:g} vCPU, {cm.usable_vcpu(size.cpu):g} usable", _n(cm.per_task(m, s, prod))])  # fmt: skip
    pg = cm.per_vcpu(m.cpu_us["postgres"])
    rows.append(["Aurora writer (PostgreSQL)", _n(m.cpu_us["postgres"], 1), _n(pg),
                 _n(pg * cm.assumed("aurora_cpu_target")), "-", "-"])  # fmt: skip
    return ["## Transfers/s per vCPU (`uniform`)", "",
            *_table(["service", "CPU-us/transfer", "per vCPU at 100%", "per vCPU at target",
                     "prod task", "per prod task at target"], rows, "lrrrlr"),
            "", "A task's Python uses at most `workers_per_task` vCPU: a prod ledger task has 2 vCPU but one "
            "process, so it saturates at 50% task CPU, below the 70% scaling target, and **CPU target tracking "
            "never scales it out**. Running `WORKERS` equal to the task's vCPU (or 1-vCPU ledger tasks) fixes "
            "both the waste and the scaling signal."]  # fmt: skip


def _sizing(m: cm.Measured, prod: EnvironmentConfig) -> list[str]:
    node = cm.cache_class(prod.redis_node_type)
    rows = []
    for rate in cm.RATES:
        writer = cm.aurora_class(m, rate)
        name = writer.name if writer else "none: past one writer"
        if writer and writer.vcpu > cm.assumed("aurora_linear_vcpu"):
            name += " (unmeasured range)"
        rows.append([_n(rate), *(_n(cm.tasks(m, s, prod, rate)) for s in cm.SERVICES),
                     _n(cm.aurora_vcpu(m, rate), 1), name, _n(cm.redis_memory_gib(rate), 1),
                     _n(cm.redis_shards(m, node, rate)), _n(cm.alb_lcu(rate), 1)])  # fmt: skip
    lines = ["## Fleet for a sustained uniform load (prod task sizes)", "",
             *_table(["transfers/s", "gateway tasks", "ledger tasks", "session tasks", "writer vCPU needed",
                      "Aurora class (writer and reader)", "Redis GiB (idempotency)",
                      f"Redis shards of {node.name}", "ALB LCU"], rows, "lrrrrlrrr"), ""]  # fmt: skip
    for env in PLATFORM.environments:
        limits = cm.env_limits(m, env)
        each = "; ".join(f"{name}: {_n(rate)}" for name, rate in sorted(limits.items(), key=lambda kv: kv[1]))
        lines.append(f"- **{env.name} as configured**, transfers/s per limit, lowest first: {each}.")
    lines += [
        "- The Redis limit applies when every transfer carries an Idempotency-Key for 24 h of sustained "
        "load; a burst is bounded by the CPU limits. Past it Redis refuses writes (`maxmemory-policy "
        "noeviction`, ADR 0108) and ADR 0020's fail-open/fail-closed rules apply: grow the node or enable "
        "cluster mode before `RedisMemoryAlarm` fires."
    ]
    lines += [f"- Session tasks stay at the floor: a transfer costs the session service {m.cpu_us['session']:.1f} us "
              "(sessions are served from gateway memory and Redis); its load is logins, not transfers.",
              f"- Past about {_n(_max_tasks_rate(m, prod))} transfers/s a service needs more tasks than prod's "
              "`max_tasks`: raise them in `stacks/config.py` before the load arrives."]  # fmt: skip
    return lines


def _max_tasks_rate(m: cm.Measured, env: EnvironmentConfig) -> float:
    """Transfers/s at which the first service reaches ``env``'s ``max_tasks``."""
    return min(env.service(s).max_tasks * cm.per_task(m, s, env) for s in cm.SERVICES)


def _hot(m: cm.Measured, prod: EnvironmentConfig) -> list[str]:
    ceiling = cm.hot_ceiling(m)
    return ["## One hot account", "",
            f"- **Serial ceiling: about {_n(ceiling)} transfers/s**, whatever the fleet: every group touching the "
            f"account holds its row lock for the commit ({cm.assumed('hot_commit_ms'):g} ms) plus "
            f"{m.hot_cpu_us['postgres']:.0f} us of PostgreSQL CPU per transfer in it, with at most "
            f"{cm.assumed('max_group_items'):g} transfers per group. More tasks or a larger class add nothing.",
            f"- Measured on the bench machine: {_n(m.hot_transfers_per_s)} transfers/s in `hot` (2 shared cores, "
            "the gateway and the ledger on the same cores as PostgreSQL).",
            f"- Lower still in prod by configuration: one tenant is rate-limited to {_n(prod.rate_limit_per_second)} "
            f"requests/s (`rate_limit_per_second`), so a hot account of one tenant gets at most that, or "
            "1,000 transfers per request through the batch endpoint."]  # fmt: skip


def _other_capacity(m: cm.Measured, prod: EnvironmentConfig) -> list[str]:
    node = cm.cache_class(prod.redis_node_type)
    usable = node.memory_gib * cm.assumed("redis_usable_memory")
    keyed_rate = usable * 2**30 / cm.assumed("idempotency_record_bytes") / cm.assumed("idempotency_ttl_s")
    rows = [
        ["Redis (idempotency records)", f"{cm.assumed('idempotency_record_bytes'):g} B x 24 h per keyed transfer",
         f"{node.name}: {usable:.1f} GiB usable = {_n(keyed_rate)} keyed transfers/s",
         "memory binds first; cluster mode is off (one node group), so past it: cluster mode (keys are "
         "already hash-tagged per tenant) or a shorter TTL"],
        ["Redis (commands)", f"{m.cpu_us['redis']:.1f} us/transfer unkeyed, {cm.assumed('redis_us_keyed'):g} keyed",
         f"one shard: {_n(cm.redis_shard_rate(m, False))} unkeyed or {_n(cm.redis_shard_rate(m, True))} keyed "
         "transfers/s", "one command thread per shard, whatever the node size"],
        ["DynamoDB (sessions, API keys)", "a login: 1 write, a few reads; a transfer: none (session cached 300 s in "
         "Redis, 0.5 s in gateway memory)", "on-demand: 40,000 RCU/WCU per table (default quota)",
         "bound by logins/s, not transfers/s; no sizing needed"],
        ["NAT gateways", "no transfer traffic: AWS APIs go through endpoints, S3 and DynamoDB through gateway "
         "endpoints", "5-100 Gbps, 55,000 connections per destination", "only egress outside AWS APIs"],
        ["Interface endpoints", f"{cm.assumed('endpoint_bytes_per_transfer'):g} B/transfer (X-Ray spans); logs and "
         "EMF per process", "10 Gbps per AZ sustained, bursts to 100 Gbps", "about 0.4 Gbps at 50,000/s"],
    ]  # fmt: skip
    return ["## Redis, DynamoDB, NAT and endpoints", "",
            *_table(["resource", "what a transfer costs it", "capacity", "note"], rows, "llll")]  # fmt: skip


def _cost(env: EnvironmentConfig) -> list[str]:
    lines = fixed_lines(env)
    rows = [[line.item, _n(line.quantity, 0), line.unit, f"${line.unit_usd:g}", _usd(line.monthly)] for line in lines]
    rows.append(["**total, no traffic**", "", "", "", f"**{_usd(sum(line.monthly for line in lines))}**"])
    return [f"### {env.name}", "", *_table(["item", "quantity", "unit", "unit price", "per month"], rows, "lrlrr")]


def _cost_per_million(m: cm.Measured) -> list[str]:
    variable = per_million_lines()
    rows = [[line.item, f"{line.quantity:g} {line.unit}", f"${line.unit_usd:g}", f"${line.monthly:.4f}"]
            for line in variable]  # fmt: skip
    out = ["## Cost per million transfers", "", "What a million transfers add to the hourly lines:", "",
           *_table(["item", "per million transfers", "unit price", "USD"], rows, "lrrr"), "",
           "All in, on a fleet sized for each sustained load (prod task sizes, the fixed lines above scaled to "
           "the fleet of the sizing table):", ""]  # fmt: skip
    rows = []
    prod = PLATFORM.environment("prod")
    for rate in cm.RATES:
        usd, fleet = per_million(m, rate, prod)
        rows.append([_n(rate), _n(rate * SECONDS_PER_MONTH / 1e6), _usd(monthly(prod, fleet, rate)), f"${usd:.2f}",
                     f"{fleet['gateway']}/{fleet['ledger']}/{fleet['session']}", fleet["aurora"],
                     str(fleet["redis_shards"])])  # fmt: skip
    out += _table(["transfers/s", "million transfers/month", "per month", "per million", "tasks g/l/s", "Aurora",
                   "Redis shards"], rows, "lrrrrlr")  # fmt: skip
    return out


def _prices() -> list[str]:
    rows = [[key, f"${p.usd:g}", p.unit, p.source] for key, p in PRICES.items()]
    out = [f"## Prices ({REGION}, on-demand list prices as of {PRICE_DATE})", "",
           f"Not fetched: known list prices as of {PRICE_DATE}, from the pages named; verify before "
           "budgeting. One table in `cli/bench/prices.py`.", "",
           *_table(["key", "price", "unit", "source"], rows, "lrll")]  # fmt: skip
    from cli.bench.prices import AURORA_CLASSES, AURORA_SOURCE, CACHE_CLASSES, CACHE_SOURCE

    classes = [[c.name, str(c.vcpu), f"{c.memory_gib:g}", f"${c.usd_hour:g}", AURORA_SOURCE] for c in AURORA_CLASSES]
    classes += [[c.name, str(c.vcpu), f"{c.memory_gib:g}", f"${c.usd_hour:g}", CACHE_SOURCE] for c in CACHE_CLASSES]
    return [*out, "", *_table(["class", "vCPU", "GiB", "per hour", "source"], classes, "lrrrl")]


def _assumptions() -> list[str]:
    rows = [[a.name, f"{a.value:g}", a.why] for a in cm.ASSUMPTIONS.values()]
    return ["## Assumptions", "", "Every figure not measured or priced. Change one in "
            "`cli/bench/capacity_model.py` and regenerate.", "",
            *_table(["name", "value", "why"], rows, "lrl")]  # fmt: skip


def markdown(document: dict[str, Any], label: str) -> str:
    """docs/capacity.md for the bench JSON ``document`` (read from ``label``)."""
    m = cm.measured(document, label)
    prod = PLATFORM.environment("prod")
    inv = inventory()
    parts = [
        ["# Capacity and cost", "",
         f"Generated by `./scripts/bench --from-json {label} --capacity`; do not edit by hand, regenerate "
         "after a new bench run or a change of `stacks/config.py`, `cli/bench/prices.py` or the templates. "
         "Figures are **measured** (the bench JSON), **assumed** (last table, each with its reason) or "
         f"**priced** (on-demand list prices, {REGION}, as of {PRICE_DATE}). The cells plan for the load "
         "past one deployment is ADR 0109 (docs/adr/0109-cells.md).",
         "", f"Templates counted: {inv.get('AWS::CloudWatch::Alarm', 0)} alarms ({inv['alarm_metrics']} billed "
         f"alarm metrics), {inv['interface_endpoints']} interface endpoints, {inv.get('AWS::EC2::NatGateway', 0)} "
         f"NAT gateways, {inv.get('AWS::KMS::Key', 0)} KMS keys, {inv['secrets']} secrets, {inv['waf_rules']} WAF rules."],
        _measured(m), _per_vcpu(m, prod), _sizing(m, prod), _hot(m, prod), _other_capacity(m, prod),
        ["## Monthly cost of the configured sizes (no traffic)", "",
         "Desired task counts, both Aurora instances and every Redis node of `stacks/config.py`, 730 h; "
         "Aurora storage, backups, logs and data transfer grow with use and are in the per-million table."],
        *(_cost(env) for env in PLATFORM.environments), _cost_per_million(m), _prices(), _assumptions(),
    ]  # fmt: skip
    return "\n".join("\n".join(part) + "\n" for part in parts).rstrip() + "\n"
