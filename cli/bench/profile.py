"""``--profile DIR``: py-spy samples the gateway and the ledger while a scenario's load runs.

py-spy attaches from outside (``--nonblocking``: it never pauses the server), writes collapsed
stacks to ``DIR/<scenario>-<service>.txt`` (load them in speedscope, or ``flamegraph.pl``), and the
benchmark summarises them: the functions with the most *self* time (where the CPU is spent) and the
most *inclusive* time (which code paths it is spent under), as % of the samples in which the
service was busy (idle waiting is not sampled). Install it with ``uv tool install py-spy``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLE_RATE = 200
_LINE = re.compile(r":\d+\)$")


def find_py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    candidate = Path.home() / ".local" / "bin" / "py-spy"
    return str(candidate) if candidate.exists() else None


class Profiler:
    def __init__(self, out_dir: Path) -> None:
        binary = find_py_spy()
        if binary is None:
            raise RuntimeError("--profile needs py-spy: uv tool install py-spy")
        self.binary = binary
        self.out_dir = out_dir
        self.running: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

    def start(self, scenario: str, pids: dict[str, int], duration: float) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for service, pid in pids.items():
            path = self.out_dir / f"{scenario}-{service}.txt"
            command = [self.binary, "record", "--pid", str(pid), "--duration", str(max(1, int(duration))),
                       "--rate", str(SAMPLE_RATE), "--format", "raw", "--output", str(path),
                       "--nonblocking", "--subprocesses"]  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.running.append((service, path, process))

    def collect(self, top: int = 15) -> dict[str, Any]:
        summaries: dict[str, Any] = {}
        for service, path, process in self.running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            summaries[service] = summarise(path, top) if path.exists() else {"error": "py-spy wrote nothing"}
        self.running = []
        return summaries


def _frame(raw: str) -> str:
    return _LINE.sub(")", raw.strip())


def area(frame: str) -> str:
    """Which package a frame belongs to: ``services.ledger``, ``asyncpg``, ``event loop``..."""
    if frame.startswith("Runner.run ("):
        return "event loop (uvloop, native)"
    path = frame[frame.rfind("(") + 1 : -1]
    parts = path.split("/")
    if parts[0] in ("services", "shared") and len(parts) > 2:
        return f"{parts[0]}.{parts[1]}"
    if parts[0].startswith("<frozen") or len(parts) == 1:
        return "python stdlib"
    return parts[0]


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Top self and inclusive functions of a collapsed-stack file, as % of busy samples.

    ``self`` is where the CPU is spent; ``by_area`` sums self time per package; ``inclusive``
    keeps the project's own frames (``services/``, ``shared/``): which of its code paths the time
    is spent under.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        areas[area(frames[-1])] += count
        for frame in set(frames):
            if frame.split("(")[-1].startswith(("services/", "shared/")) and "__main__" not in frame:
                inclusive[frame] += count

    def pct(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": f, "percent": round(100 * n / total, 1)} for f, n in counter.most_common(top)]

    return {"samples": total, "file": str(path), "by_area": pct(areas), "self": pct(own), "inclusive": pct(inclusive)}
