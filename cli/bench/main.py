"""``./scripts/bench``: the benchmark of performance.md. See ``cli/bench/__init__.py``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from cli.bench import procstat
from cli.bench.fixtures import Fixture, prepare
from cli.bench.platform import BenchPlatform
from cli.bench.plot import plot
from cli.bench.profile import Profiler
from cli.bench.progress import Progress
from cli.bench.reference import Reference
from cli.bench.report import SCHEMA, judge, markdown, render, targets
from cli.bench.runner import run_load
from cli.bench.scenarios import SCENARIOS, Scenario
from cli.local_services import ROOT, find_binary

LIBRARIES = ["litestar", "uvicorn", "granian", "uvloop", "httptools", "asyncpg", "msgspec", "redis", "aiohttp"]
DEFAULT_PLOT = Path("bench.png")


def parse_args(argv: list[str]) -> argparse.Namespace:
    # The scenario list in --help comes from SCENARIOS, so it cannot drift from what runs.
    epilog = "scenarios (default: all, in this order):\n" + "\n".join(
        f"  {s.name:<11} {s.description}; {s.target_text}"
        + (f", machine busy >= {s.busy_target:g}%" if s.busy_target is not None else "")
        for s in SCENARIOS.values()
    )
    parser = argparse.ArgumentParser(prog="./scripts/bench", description="The benchmark of performance.md.",
                                     epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), metavar="NAME",
                        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}; default all")  # fmt: skip
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per scenario (default 10)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot", type=Path, nargs="?", const=DEFAULT_PLOT, metavar="FILE",
                        help=f"write a PNG of throughput and latency per scenario (default {DEFAULT_PLOT})")  # fmt: skip
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="run nothing: print (and with --plot, plot) the results in FILE")  # fmt: skip
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--capacity", action="store_true",
                        help="print the capacity and cost page (docs/capacity.md) made from the results")  # fmt: skip
    parser.add_argument("--rate", type=float, help="open-loop rate of `latency` (default: half the uniform peak)")
    parser.add_argument("--clients", type=int, help="override every scenario's client count")
    parser.add_argument("--no-pgbench", action="store_true", help="skip the pgbench reference (no ratios)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for the services, e.g. SERVER=granian; SERVICE:KEY=VALUE for one service only, "
                             "e.g. gateway:WORKERS=2")  # fmt: skip
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the gateway and ledger with py-spy during each scenario, stacks to DIR")  # fmt: skip
    parser.add_argument("--label", default="", help="a label stored in the JSON and shown on the plot")
    parser.add_argument("--keep-database", action="store_true", help="keep the ledger's bench database")
    # Consumed by cli/bench/__main__.py before these arguments are parsed; listed for --help.
    parser.add_argument(
        "--tracing",
        metavar="off|RATIO",
        help="run the services with tracing at this sampling ratio, exporting to a stand-in collector",
    )
    return parser.parse_args(argv)


def versions(database_dsn: str) -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for library in LIBRARIES:
        try:
            found[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            found[library] = "not installed"

    async def server_version() -> str:
        conn = await asyncpg.connect(database_dsn)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        found["postgresql"] = asyncio.run(server_version())
    except (OSError, asyncpg.PostgresError):
        found["postgresql"] = "unknown"
    pgbench = find_binary("pgbench")
    if pgbench:
        found["pgbench"] = subprocess.run([pgbench, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        found["commit"] = commit.stdout.strip()
    except OSError:
        pass
    return found


def _summary(record: dict[str, Any]) -> str:
    lat = record["latency_ms"]
    errors = sum(record["errors"].values())
    return (f"{record['transfers_per_s']:,.1f} transfers/s, p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
            f"{errors:,} errors, load generator {record['loadgen']['cpu_percent']:.0f}% CPU")  # fmt: skip


def run_scenario(
    scenario: Scenario,
    platform: BenchPlatform,
    fixture: Fixture,
    reference: Reference | None,
    args: argparse.Namespace,
    progress: Progress,
    uniform_peak: float | None,
) -> dict[str, Any]:
    rate = None
    if scenario.open_loop:
        rate = args.rate or (uniform_peak / 2 if uniform_peak else None)
        if rate is None:
            progress.phase("latency: finding the uniform peak", 3)
            probe = run_load(SCENARIOS["uniform"], platform, fixture, 3.0, progress)
            progress.finish(f"{probe['transfers_per_s']:,.0f} transfers/s")
            rate = max(1.0, probe["transfers_per_s"] / 2)
    platform.settle()
    progress.phase(scenario.name, args.duration)
    profiler = Profiler(args.profile) if args.profile else None
    result = run_load(scenario, platform, fixture, args.duration, progress, rate, profiler)
    record: dict[str, Any] = {
        "name": scenario.name,
        "description": scenario.description,
        "via": scenario.via,
        "pattern": scenario.pattern,
        "clients": scenario.clients,
        "duration_s": args.duration,
        **result,
    }
    progress.finish(_summary(record))
    record["reference"] = None
    if reference is not None:
        platform.settle()
        progress.phase(f"{scenario.name}: pgbench {scenario.reference}", max(1, round(args.duration)))
        record["reference"] = reference.run(scenario.reference, scenario.clients, args.duration, rate)
        ref = record["reference"]
        progress.finish(f"pgbench {ref['transfers_per_s']:,.1f} transfers/s, p99 {ref['latency_ms']['p99']} ms")
    judge(record)
    return record


def run(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    selected = [SCENARIOS[name] for name in (args.scenario or list(SCENARIOS))]
    if args.clients:
        selected = [Scenario(**{**s.__dict__, "clients": args.clients}) for s in selected]
    overrides = dict(item.split("=", 1) for item in args.env)
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["./scripts/bench", *sys.argv[1:]]),
        "machine": procstat.machine(),
    }
    platform = BenchPlatform(overrides)
    reference: Reference | None = None
    try:
        progress.say("starting the platform (PostgreSQL, Redis, moto, session, ledger, gateway)")
        platform.start(progress.say)
        document["versions"] = versions(platform.env["DATABASE_URL"])
        keys = ["SERVER", "WORKERS", "GROUP_COMMIT_ENABLED", "GROUP_COMMIT_MAX_INFLIGHT", "GROUP_COMMIT_MAX_ITEMS",
                "DATABASE_POOL_SIZE", "LOG_LEVEL"]  # fmt: skip
        settings_env = {
            service: {k: v for k in keys if (v := platform.process_env(service).get(k, ""))}
            for service in platform.services
        }
        document["settings"] = {"label": args.label, "overrides": overrides, "env": settings_env,
                                "duration_s": args.duration, "server_autovacuum": platform.autovacuum(),
                                "between_phases": "VACUUM ANALYZE + CHECKPOINT"}  # fmt: skip
        progress.say("creating the tenant (./scripts/admin), a session (POST /v1/sessions) and 10,021 accounts")
        fixture = prepare(platform)
        if not args.no_pgbench:
            progress.say("creating the pgbench scratch database")
            reference = Reference(platform.server_dsn, platform.run_id).setup()
        records: list[dict[str, Any]] = []
        uniform_peak = None
        for scenario in selected:
            record = run_scenario(scenario, platform, fixture, reference, args, progress, uniform_peak)
            if scenario.name == "uniform":
                uniform_peak = record["transfers_per_s"]
            records.append(record)
        document["scenarios"] = records
        document["targets"] = targets(records)
        document["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return document
    finally:
        progress.finish()
        progress.say("stopping the platform")
        if reference is not None:
            reference.drop()
        platform.stop(keep_database=args.keep_database)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.from_json:
        document = json.loads(args.from_json.read_text())
    else:
        selected = args.scenario or list(SCENARIOS)
        progress = Progress(total_phases=len(selected) * (1 if args.no_pgbench else 2))
        document = run(args, progress)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(document, indent=2) + "\n")
            progress.say(f"wrote {args.json}")
    if args.capacity:
        from cli.bench.capacity import markdown as capacity_page  # stacks/ is needed only here

        print(capacity_page(document, str(args.from_json or args.json or "this run")), end="")
        return 0
    print(markdown(document) if args.markdown else render(document))
    if args.plot:
        print(f"\nplot: {plot(document, args.plot)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
