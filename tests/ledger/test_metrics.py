"""The ledger's CloudWatch EMF lines: requests, errors by code, commits, group sizes, verifier."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from shared import metrics as names
from tests.ledger.conftest import client_for, ledger_env
from tests.support.processes import ServiceProcess, free_port


def emf_lines(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        if line.startswith('{"_aws"'):
            found.append(json.loads(line))
    return found


async def test_ledger_emits_emf_metrics(database_url: str) -> None:
    port = free_port()
    env = {
        **ledger_env(database_url, port, grouped=True),
        "METRICS_INTERVAL_SECONDS": "0.3",
        "VERIFIER_INTERVAL_SECONDS": "0.3",
    }
    process = ServiceProcess("ledger", port, env).start()
    try:
        async with aiohttp.ClientSession() as http:
            client = client_for(http, process)
            a, b = await client.create_account(), await client.create_account()
            await asyncio.gather(*(client.transfer(a["id"], b["id"], 1) for _ in range(30)))
            await client.transfer(a["id"], a["id"], 1)  # same_account
        lines: list[dict] = []
        deadline = time.monotonic() + 30
        while not (
            any(names.VERIFIER_DISCREPANCIES in line for line in lines)
            and any(line.get("Code") == "same_account" for line in lines)
            and sum(line.get(names.TRANSFERS_COMMITTED, 0) for line in lines) == 30
        ):
            assert time.monotonic() < deadline, f"the expected EMF lines did not appear within 30 s: {lines}"
            await asyncio.sleep(0.1)
            lines = emf_lines(process.log_path.read_text())
    finally:
        process.stop()
    assert lines, "no EMF line was written"
    for line in lines:
        directive = line["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == names.NAMESPACE
        assert line["Service"] == "ledger"
        for metric in directive["Metrics"]:
            assert metric["Name"] in line
    committed = sum(line.get(names.TRANSFERS_COMMITTED, 0) for line in lines)
    assert committed == 30
    group_sizes = [v for line in lines for v in line.get(names.GROUP_SIZE, [])]
    assert sum(group_sizes) == 31  # every write request went through exactly one group
    assert sum(line.get(names.REQUESTS, 0) for line in lines) == 33
    errors = [line for line in lines if line.get("Code") == "same_account"]
    assert errors and errors[0][names.ERRORS] == 1
    assert any(line.get(names.VERIFIER_DISCREPANCIES) == 0 for line in lines)
