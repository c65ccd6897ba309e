"""The EMF lines of shared.metrics: shape, dimensions, and what is kept between flushes."""

from __future__ import annotations

from shared import metrics as m


def test_lines_follow_the_emf_shape_and_reset_after_each_flush() -> None:
    metrics = m.Metrics("ledger")
    metrics.request(201, 3.5, None)
    metrics.request(422, 1.0, "exceeds_credits")
    metrics.request(503, 9.0, "unavailable")
    metrics.count(m.TRANSFERS_COMMITTED, 7)
    metrics.sample(m.GROUP_SIZE, 4)
    metrics.gauge(m.VERIFIER_DISCREPANCIES, 0)
    lines = metrics.lines(now_ms=1_700_000_000_000)
    plain = next(line for line in lines if "Code" not in line)
    directive = plain["_aws"]["CloudWatchMetrics"][0]
    assert plain["_aws"]["Timestamp"] == 1_700_000_000_000
    assert directive["Namespace"] == m.NAMESPACE and directive["Dimensions"] == [["Service"]]
    assert plain["Service"] == "ledger"
    assert plain[m.REQUESTS] == 3 and plain[m.SERVER_ERRORS] == 1
    assert sorted(plain[m.LATENCY]) == [1.0, 3.5, 9.0]
    assert plain[m.TRANSFERS_COMMITTED] == 7 and plain[m.GROUP_SIZE] == [4]
    assert plain[m.VERIFIER_DISCREPANCIES] == 0
    units = {d["Name"]: d["Unit"] for d in directive["Metrics"]}
    assert units[m.LATENCY] == "Milliseconds" and units[m.REQUESTS] == "Count"
    by_code = {line["Code"]: line[m.ERRORS] for line in lines if "Code" in line}
    assert by_code == {"exceeds_credits": 1, "unavailable": 1}
    # Everything, gauges included, is reported once: a silent producer shows as missing data.
    assert metrics.lines() == []


def test_latency_samples_are_bounded_per_line() -> None:
    metrics = m.Metrics("gateway")
    for i in range(5_000):
        metrics.request(200, float(i), None)
    (line,) = metrics.lines()
    assert line[m.REQUESTS] == 5_000
    assert len(line[m.LATENCY]) == m.MAX_VALUES_PER_LINE
