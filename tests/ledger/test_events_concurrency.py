"""The outbox visibility problem, attacked: readers never skip a seq while two ledger processes write.

A sequence number taken before COMMIT can become visible out of order: writer A takes 7, writer B
takes 8, B commits first, a reader sees 8, continues after 8, and never sees 7. The journal avoids it
by numbering under the tenant's head lock held until COMMIT (migration 0013). Here one tenant's
transfers go to BOTH ledger processes (the grouped and the direct write path, one database) from many
concurrent writers, while readers on both processes follow ``GET /v1/events?after=<last seen>``:
every page a reader gets must start exactly at the seq after its last one and be gapless. At the end
the journal holds exactly one event per acknowledged change, numbered 1..n, and the hash chain holds:
each process chains its groups' events from the head it read (migration 0015), and when the other
process appended in between, the database re-chains them, which this load makes happen often.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import aiohttp

from tests.ledger.conftest import client_for
from tests.ledger.test_events import canonical
from tests.support.processes import ServiceProcess

WRITERS = 24
TRANSFERS_PER_WRITER = 40
READERS = 4


async def test_readers_never_skip_a_seq_under_concurrent_commits_from_two_processes(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession
) -> None:
    tenant = str(uuid.uuid4())
    clients = [client_for(http, process, tenant) for process in ledger_processes.values()]
    accounts = [(await clients[0].create_account())["id"] for _ in range(6)]
    done = asyncio.Event()
    acknowledged = 0

    async def writer(n: int) -> None:
        nonlocal acknowledged
        client = clients[n % 2]
        for i in range(TRANSFERS_PER_WRITER):
            debit, credit = accounts[(n + i) % 6], accounts[(n + i + 1 + n % 5) % 6]
            if debit == credit:
                continue
            reply = await client.transfer(debit, credit, 1)
            assert reply.status == 201, reply
            acknowledged += 1

    async def reader(n: int) -> list[int]:
        client = clients[n % 2]
        seen: list[int] = []
        last = 0
        while True:
            finished = done.is_set()
            reply = await client.call("GET", f"/v1/events?after={last}&limit=50")
            assert reply.status == 200, reply
            seqs = [event["seq"] for event in reply.body["data"]]
            # The page continues exactly after the last seq seen, without a hole.
            assert seqs == list(range(last + 1, last + 1 + len(seqs))), (last, seqs)
            seen += seqs
            if seqs:
                last = seqs[-1]
            elif finished:
                return seen
            else:
                await asyncio.sleep(0.01)

    readers = [asyncio.create_task(reader(n)) for n in range(READERS)]
    await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    done.set()
    results = await asyncio.wait_for(asyncio.gather(*readers), timeout=120)

    total = len(accounts) + acknowledged  # one account.created per account, one event per transfer
    for seen in results:
        assert seen == list(range(1, total + 1))
    final = await clients[1].call("GET", f"/v1/events?after={total}")
    assert final.body["data"] == []

    prev, last = "0" * 64, 0
    while last < total:
        page = (await clients[0].call("GET", f"/v1/events?after={last}&limit=200")).body["data"]
        for event in page:
            assert event["prev_hash"] == prev, event
            assert event["hash"] == hashlib.sha256(prev.encode() + canonical(event)).hexdigest(), event
            prev, last = event["hash"], event["seq"]
