"""Judging results against performance.md's targets, and printing them as tables.

The JSON document (``--json FILE``) has this shape (``schema: "bench/1"``)::

    {"schema", "started_at", "finished_at", "command", "machine": {...}, "versions": {...},
     "settings": {...},
     "scenarios": [{"name", "description", "via", "pattern", "clients", "mode", "rate",
                    "duration_s", "transfers_per_s", "requests_per_s", "transfers_ok", "requests",
                    "latency_ms": {"p50", "p99", "p99.9", "max", "mean"}, "errors": {code: n},
                    "timeline": [{"second", "transfers_ok", "errors", "max_latency_ms"}],
                    "loadgen": {"cpu_s", "wall_s", "cpu_percent"},
                    "services": {name: {"processes", "rss_peak_mb", "rss_peak_total_mb", "cpu_percent"}},
                    "rss_peak_scope", "postgres_backends_cpu_percent", "postgres_aux_cpu_percent",
                    "redis_cpu_percent", "other_cpu_percent",
                    "machine_cpu_busy_percent",
                    "ledger_group_size": {"mean", "max_sampled", "transfers_committed"} | null,
                    "reference": {"script", "clients", "rate", "duration_s", "transactions_per_s",
                                  "transfers_per_s", "failed", "latency_ms", "client_cpu_percent",
                                  "command"} | null,
                    "ratio": float | null, "target": {"text", "value", "met", "kept_up"?},
                    "busy_target": {"text", "value", "met"} | null,
                    "cpu_us_per_transfer": {"ours": {service: us, "postgres", "postgres_aux", "redis", "total",
                                                     "loadgen"},
                                            "pgbench": {"postgres", "client"} | null},
                    "profile"?: {service: {"samples", "file", "by_area", "self", "inclusive"}}}],
     "targets": [{"figure", "target", "value", "met"}]}

CPU figures are % of one core, except ``machine_cpu_busy_percent`` (% of all cores), which
``busy_target`` judges for the scenarios that have one (``hot``, ``uniform``); each such scenario
also adds a ``targets`` row. ``met`` is true, false, or null when the figure could not be measured
(e.g. ``--no-pgbench``).
"""

from __future__ import annotations

from typing import Any

from cli.bench.scenarios import RSS_TARGET_MB, SCENARIOS

SCHEMA = "bench/1"
KEPT_UP = 0.95
"""The open-loop run must complete this share of the offered requests, error-free, to count as met."""


def _per_transfer(cpu_percent: float | None, transfers_per_s: float) -> float | None:
    """CPU microseconds per transfer from % of one core and throughput."""
    if cpu_percent is None or not transfers_per_s:
        return None
    return round(cpu_percent / 100 / transfers_per_s * 1e6, 1)


def cpu_per_transfer(record: dict[str, Any]) -> dict[str, Any]:
    """Where the CPU goes, in microseconds per transfer: ours by process, and pgbench's."""
    tps = record["transfers_per_s"]
    ours: dict[str, float | None] = {
        name: _per_transfer(s["cpu_percent"], tps) for name, s in record.get("services", {}).items()
    }
    ours["postgres"] = _per_transfer(record.get("postgres_backends_cpu_percent"), tps)
    ours["postgres_aux"] = _per_transfer(record.get("postgres_aux_cpu_percent"), tps)
    ours["redis"] = _per_transfer(record.get("redis_cpu_percent"), tps)
    ours["total"] = round(sum(v for v in ours.values() if v), 1)
    ours["loadgen"] = _per_transfer(record["loadgen"]["cpu_percent"], tps)
    result: dict[str, Any] = {"ours": ours, "pgbench": None}
    reference = record.get("reference")
    if reference and reference.get("transfers_per_s"):
        rtps = reference["transfers_per_s"]
        backends = _per_transfer(reference.get("backends_cpu_percent"), rtps)
        result["pgbench"] = {"postgres": backends, "client": _per_transfer(reference.get("client_cpu_percent"), rtps)}
    return result


def completed_rate(record: dict[str, Any]) -> float:
    """Transfers completed per second during the measured window's whole seconds (from the timeline)."""
    start = record["duration_s"] - record["window_s"]
    seconds = [
        p for p in record.get("timeline", []) if p["second"] >= start and p["second"] + 1 <= record["duration_s"]
    ]
    return sum(p["transfers_ok"] for p in seconds) / len(seconds) if seconds else 0.0


def judge(record: dict[str, Any]) -> None:
    """Fill ``ratio``, ``target`` and ``cpu_us_per_transfer`` of one scenario record."""
    scenario = SCENARIOS[record["name"]]
    reference = record.get("reference")
    ours = record["transfers_per_s"]
    record["cpu_us_per_transfer"] = cpu_per_transfer(record)
    record["ratio"] = None
    if reference and reference.get("transfers_per_s"):
        record["ratio"] = round(ours / reference["transfers_per_s"], 3)
    if scenario.open_loop:
        p50, p99 = record["latency_ms"]["p50"], record["latency_ms"]["p99"]
        value = round(p99 / p50, 2) if p50 and p99 else None
        # A latency figure only means something if the server kept up with the offered rate.
        kept_up = not record["errors"] and completed_rate(record) >= KEPT_UP * (record["rate"] or 0)
        met = None if value is None else (value <= scenario.target and kept_up)
        record["target"] = {"text": scenario.target_text, "value": value, "met": met, "kept_up": kept_up}
    else:
        ratio = record["ratio"]
        met = None if ratio is None else ratio >= scenario.target
        record["target"] = {"text": scenario.target_text, "value": ratio, "met": met}
    record["busy_target"] = None
    if scenario.busy_target is not None:
        busy = record.get("machine_cpu_busy_percent")
        met = None if busy is None else busy >= scenario.busy_target
        record["busy_target"] = {"text": f">= {scenario.busy_target:g}%", "value": busy, "met": met}


def targets(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        scenario = SCENARIOS[record["name"]]
        if scenario.open_loop:
            figure = "latency p99 / p50"
        else:
            figure = f"{record['name']} transfers/s / pgbench {scenario.reference}"
        rows.append({"figure": figure, "target": record["target"]["text"], **_value_met(record["target"])})
        if record.get("busy_target"):
            busy = record["busy_target"]
            rows.append({"figure": f"machine busy during {record['name']} (% of all cores)", "target": busy["text"],
                         **_value_met(busy)})  # fmt: skip
    peak = max(
        (s["rss_peak_mb"] for record in records for s in record.get("services", {}).values()),
        default=None,
    )
    rows.append(
        {
            "figure": "peak RSS of any service process under load (MB)",
            "target": f"<= {RSS_TARGET_MB:g}",
            "value": peak,
            "met": None if peak is None else peak <= RSS_TARGET_MB,
        }
    )
    return rows


def _value_met(target: dict[str, Any]) -> dict[str, Any]:
    return {"value": target["value"], "met": target["met"]}


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[met]


def _latency_note(r: dict[str, Any]) -> str:
    if r["mode"] == "closed":
        return ""
    note = f" (= {_num(r['target']['value'], 2)})"
    if not r["target"].get("kept_up", True):
        note += ", did not keep up with the rate"
    return note


def _errors(errors: dict[str, int]) -> str:
    if not errors:
        return "0"
    return ", ".join(f"{code} {count:,}" for code, count in sorted(errors.items(), key=lambda kv: -kv[1]))


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [
        " | ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    return "\n".join(lines)


def _cpu_cost(record: dict[str, Any]) -> str:
    cost = record.get("cpu_us_per_transfer") or cpu_per_transfer(record)
    ours = cost["ours"]
    text = f"{_num(ours['total'], 0)} ({_num(ours['postgres'], 0)})"
    if cost["pgbench"]:
        theirs = cost["pgbench"]
        total = (theirs["postgres"] or 0) + (theirs["client"] or 0)
        text += f" | {_num(total, 0)} ({_num(theirs['postgres'], 0)})"
    return text


Table = tuple[list[str], list[list[str]]]


def tables(document: dict[str, Any]) -> tuple[Table, Table, Table]:
    """(results, resources, targets) as header + rows."""
    records = document["scenarios"]
    main_rows = []
    for r in records:
        ref = r.get("reference") or {}
        lat = r["latency_ms"]
        label = r["name"] if r["mode"] == "closed" else f"{r['name']} @{r['rate']:,.0f}/s"
        main_rows.append(
            [
                label,
                str(r["clients"]),
                _num(r["transfers_per_s"]),
                _num(lat["p50"], 2),
                _num(lat["p99"], 2),
                _num(lat["p99.9"], 2),
                _num(ref.get("transfers_per_s")),
                _num((ref.get("latency_ms") or {}).get("p99"), 2),
                _num(r["ratio"], 3),
                r["target"]["text"] + _latency_note(r),
                _met(r["target"]["met"]),
                _errors(r["errors"]),
            ]
        )
    header = ["scenario", "clients", "transfers/s", "p50 ms", "p99 ms", "p99.9 ms", "pgbench/s", "pgbench p99",
              "ratio", "target", "", "errors"]  # fmt: skip
    resource_rows = []
    names = sorted({name for r in records for name in r.get("services", {})})
    for r in records:
        services = r.get("services", {})
        resource_rows.append(
            [
                r["name"],
                f"{r['loadgen']['cpu_percent']:.0f}%",
                *[f"{services[n]['cpu_percent']:.0f}%" if n in services else "-" for n in names],
                f"{r.get('postgres_backends_cpu_percent', 0):.0f}%",
                f"{r.get('postgres_aux_cpu_percent', 0):.0f}%",
                f"{r.get('redis_cpu_percent', 0):.0f}%",
                f"{r.get('other_cpu_percent', 0):.0f}%",
                f"{r['machine_cpu_busy_percent']:.0f}%",
                *[f"{services[n]['rss_peak_mb']:.0f}" if n in services else "-" for n in names],
                _num((r.get("ledger_group_size") or {}).get("mean")),
                _cpu_cost(r),
            ]
        )
    resource_header = ["scenario", "loadgen CPU", *[f"{n} CPU" for n in names], "postgres CPU", "pg aux CPU",
                       "redis CPU", "others' CPU", "machine busy", *[f"{n} RSS MB" for n in names], "group size",
                       "CPU us/transfer: ours (pg) | pgbench (pg)"]  # fmt: skip
    target_rows = [[t["figure"], t["target"], _num(t["value"], 2), _met(t["met"])] for t in document["targets"]]
    return (header, main_rows), (resource_header, resource_rows), (["figure", "target", "value", ""], target_rows)


RESOURCE_NOTE = (
    "CPU is % of one core (the machine has {nproc}; 'machine busy' is % of all of them); 'postgres' is the "
    "backends of this run's database, 'pg aux' the WAL writer, checkpointer, bgwriter and autovacuum, "
    "'others' what processes outside this run used (other users of a shared machine); RSS is the peak of the "
    "largest process of each service; 'group size' is the ledger's mean requests per group transaction."
)


def render(document: dict[str, Any]) -> str:
    results, resources, target_table = tables(document)
    note = RESOURCE_NOTE.format(nproc=document["machine"]["nproc"])
    return "\n\n".join([_table(*results), note + "\n" + _table(*resources), _table(*target_table)])


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(h.replace("|", "/") for h in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(document: dict[str, Any]) -> str:
    """The same tables as Markdown (for docs/performance.md)."""
    results, resources, target_table = tables(document)
    note = RESOURCE_NOTE.format(nproc=document["machine"]["nproc"])
    return "\n\n".join([_md_table(*results), _md_table(*resources), note, _md_table(*target_table)])
