"""``./scripts/deploy --env NAME [--region R] [--dry-run] [--endpoint-url URL] [--allow-replacement] [--tier T] [--yes]``

Synthesizes the tier templates and deploys them in dependency order, each as stack ``<env>-<tier>``,
through change sets (see ``stacks/deployer.py`` and docs/runbooks.md). Exit status: 0 success (no
changes included), 1 failure, 2 refused (a stateful resource would be replaced or deleted, or the
change set was not confirmed: each one is shown, access changes called out, and executed only after
a "y" at the terminal or with ``--yes``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import boto3

from stacks.config import PLATFORM
from stacks.deployer import Clients, Deployer, Options
from stacks.naming import TIERS
from stacks.synth import synthesize


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deploy", description="Deploy the tier stacks through change sets.")
    parser.add_argument("--env", required=True, choices=PLATFORM.environment_names(), help="environment name")
    parser.add_argument(
        "--region", default=None, help="AWS region; else AWS_REGION, else the profile's region (no default)"
    )
    parser.add_argument("--yes", action="store_true", help="execute change sets without asking (CI)")
    parser.add_argument("--dry-run", action="store_true", help="create and print change sets, execute none")
    parser.add_argument("--endpoint-url", default=None, help="send every AWS call to this endpoint (tests)")
    parser.add_argument(
        "--allow-replacement", action="store_true", help="allow replacing or deleting stateful resources"
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter value, e.g. ContainerImage=...:sha or CertificateArn=arn:... (repeatable)",
    )
    parser.add_argument("--templates", type=Path, default=None, help="deploy <tier>.json from DIR instead of synth")
    parser.add_argument(
        "--tier",
        action="append",
        default=[],
        choices=TIERS,
        help="deploy only this tier (repeatable), e.g. --tier backup in the backup copy region",
    )
    parser.add_argument("--artifacts-bucket", default=None, help="S3 bucket for templates over 51,200 bytes")
    parser.add_argument("--poll-seconds", type=int, default=15, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def resolve_region(flag: str | None, env: Mapping[str, str], profile_region: str | None) -> str:
    """``--region``, else ``AWS_REGION``, else the profile's (``AWS_DEFAULT_REGION`` or the config
    file's); never a silent default, since a guessed region deploys a second platform elsewhere."""
    region = flag or env.get("AWS_REGION") or profile_region
    if not region:
        raise SystemExit("no region: pass --region, set AWS_REGION or configure a region for the profile")
    return region


def load_templates(directory: Path | None) -> dict[str, str]:
    if directory is None:
        return synthesize()
    found = {tier: (directory / f"{tier}.json").read_text() for tier in TIERS if (directory / f"{tier}.json").exists()}
    if not found:
        raise SystemExit(f"no <tier>.json template in {directory}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    parameters = {}
    for item in args.parameter:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--parameter expects KEY=VALUE, got {item!r}")
        parameters[key] = value
    region = resolve_region(args.region, os.environ, boto3.session.Session().region_name)
    session = boto3.session.Session(region_name=region)

    def client(service: str) -> object:
        return session.client(service, endpoint_url=args.endpoint_url)

    clients = Clients(cloudformation=client("cloudformation"), s3=client("s3"), sts=client("sts"), region=region)
    options = Options(
        environment=args.env,
        dry_run=args.dry_run,
        allow_replacement=args.allow_replacement,
        parameters=parameters,
        artifacts_bucket=args.artifacts_bucket,
        poll_seconds=max(1, args.poll_seconds),
        emulator=args.endpoint_url is not None,
        assume_yes=args.yes,
    )
    templates = load_templates(args.templates)
    if args.tier:
        templates = {tier: body for tier, body in templates.items() if tier in args.tier}
    return Deployer(clients, options, out=lambda line: print(line, flush=True)).deploy_all(templates)


if __name__ == "__main__":
    sys.exit(main())
