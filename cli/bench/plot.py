"""``--plot``: one PNG from the JSON document, throughput (ours vs pgbench) and latency per scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(document: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = document["scenarios"]
    names = [r["name"] for r in records]
    xs = list(range(len(records)))
    width = 0.38
    figure, (left, right, timeline) = plt.subplots(1, 3, figsize=(18, 5))

    ours = [r["transfers_per_s"] for r in records]
    theirs = [(r.get("reference") or {}).get("transfers_per_s") or 0 for r in records]
    left.bar([x - width / 2 for x in xs], ours, width, label="ours", color="#2b6cb0")
    left.bar([x + width / 2 for x in xs], theirs, width, label="pgbench reference", color="#a0aec0")
    for x, r in zip(xs, records, strict=True):
        value = r["target"]["value"]
        if value is not None:
            colour = "#2f855a" if r["target"]["met"] else "#c53030"
            text = f"p99/p50 {value:.1f}" if r["mode"] == "open" else f"{value:.2f}x"
            left.annotate(f"{text}\n{r['target']['text']}", (x, max(ours[x], theirs[x])),
                          ha="center", va="bottom", fontsize=8, color=colour)  # fmt: skip
    values = [v for v in [*ours, *theirs] if v > 0] or [1.0]
    left.set_yscale("log")
    left.set_ylim(min(values) / 2, max(values) * 6)
    left.set_xticks(xs, names)
    left.set_ylabel("transfers / s (log)")
    left.set_title("Throughput: ours vs pgbench, same run")
    left.legend(loc="lower left", fontsize=8)

    for offset, key, colour in [(-0.27, "p50", "#63b3ed"), (0.0, "p99", "#3182ce"), (0.27, "p99.9", "#1a365d")]:
        values = [r["latency_ms"][key] or 0 for r in records]
        right.bar([x + offset for x in xs], values, 0.26, label=key, color=colour)
    right.set_yscale("log")
    right.set_xticks(xs, names)
    right.set_ylabel("latency ms (log)")
    right.set_title("Latency (latency: open loop, corrected for coordinated omission)")
    right.legend(fontsize=8)

    for r in records:
        points = r.get("timeline") or []
        if points:
            timeline.plot([p["second"] for p in points], [max(p["transfers_ok"], 1) for p in points],
                          marker=".", label=r["name"])  # fmt: skip
    timeline.set_yscale("log")
    timeline.set_xlabel("second of the scenario (first ones are warm-up; the last is partial)")
    timeline.set_ylabel("transfers completed in that second (log)")
    timeline.set_title("Throughput over time (stalls show here)")
    if any(r.get("timeline") for r in records):
        timeline.legend(fontsize=8)

    machine = document.get("machine", {})
    figure.suptitle(
        f"./scripts/bench {document.get('started_at', '')[:16]}  ·  {machine.get('nproc', '?')} cores "
        f"{machine.get('cpu_model', '')}  ·  {document.get('settings', {}).get('label', '')}",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
