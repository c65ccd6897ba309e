"""``python -m stacks.synth [--out DIR]``: write one CloudFormation template per tier as JSON.

Output is deterministic: keys sorted, two-space indent, a trailing newline, resources in the
order the tier adds them (the JSON keys are sorted anyway), no timestamps.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from troposphere import Template

from stacks import backup, compliance, compute, data, network, observability, security
from stacks.config import PLATFORM, PlatformConfig
from stacks.naming import TIERS

BUILDERS: dict[str, Callable[[PlatformConfig], Template]] = {
    "network": network.build,
    "security": security.build,
    "data": data.build,
    "compute": compute.build,
    "observability": observability.build,
    "compliance": compliance.build,
    "backup": backup.build,
}
assert tuple(BUILDERS) == TIERS


def render(template: Template) -> str:
    """The canonical JSON text of ``template``."""
    return json.dumps(template.to_dict(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def synthesize(platform: PlatformConfig = PLATFORM) -> dict[str, str]:
    """Every tier's template text, in deploy order."""
    return {tier: render(BUILDERS[tier](platform)) for tier in TIERS}


def write(out: Path, platform: PlatformConfig = PLATFORM) -> list[Path]:
    """Write ``<tier>.json`` for every tier into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for tier, text in synthesize(platform).items():
        path = out / f"{tier}.json"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synth", description="Write the CloudFormation templates.")
    parser.add_argument("--out", default="build/cfn", help="output directory (default build/cfn)")
    args = parser.parse_args(argv)
    for path in write(Path(args.out)):
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
