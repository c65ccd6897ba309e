"""What the benchmark reads from ``/proc``: process trees, peak RSS, CPU time, machine facts.

No psutil: every figure is one small file read. Peak RSS is ``VmHWM`` (the high-water mark of the
resident set); it is reset between scenarios by writing ``5`` to ``/proc/<pid>/clear_refs`` so each
scenario reports its own peak (where the kernel refuses, the peak since process start is reported).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (server workers), alive now."""
    children = _children_map()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if Path(f"/proc/{current}").exists():
            found.append(current)
        todo.extend(children.get(current, []))
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS; False when the kernel does not allow it."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class TreeSample:
    """Peak RSS and CPU time of one service's process tree."""

    processes: int
    rss_peak_mb: float
    """Largest VmHWM of any one process of the tree (the per-process figure the target is about)."""
    rss_peak_total_mb: float
    """Sum of the VmHWM of every process of the tree (an upper bound of the service's footprint)."""
    cpu_s: float


def sample_tree(pid: int) -> TreeSample:
    pids = process_tree(pid)
    peaks = [_status_kb(p, "VmHWM") / 1024 for p in pids]
    return TreeSample(
        processes=len(pids),
        rss_peak_mb=round(max(peaks, default=0.0), 1),
        rss_peak_total_mb=round(sum(peaks), 1),
        cpu_s=sum(cpu_seconds(p) for p in pids),
    )


POSTGRES_AUX = ("walwriter", "checkpointer", "background writer", "autovacuum")


def postgres_aux_pids() -> list[int]:
    """The server's WAL writer, checkpointer, background writer and autovacuum processes."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("postgres: ") and any(name in cmdline for name in POSTGRES_AUX):
            found.append(int(entry))
    return found


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


def machine() -> dict[str, object]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": model,
        "kernel": platform.release(),
    }
