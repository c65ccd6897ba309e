"""The fault suite's load driver: concurrent clients moving money through the gateway.

Each :class:`Client` loops over single transfers, atomic and non-atomic batches, two-phase
transfers (created pending, some with a short timeout, then posted in part or in full, voided, or
left to expire) and logins, against accounts with limit flags. It retries exactly as a real client
must: on a timeout, a connection error, 503, 429 or 409 ``idempotency_key_in_use`` it sends the
same request again, with the same transfer ids and the same ``Idempotency-Key``, until it gets a
definitive answer. Every definitive answer is written to the :class:`Journal`, which the checks
compare with what the database holds afterwards.

A post or void whose earlier attempt may have been applied (its answer was lost) can be answered
``transfer_not_pending`` on retry; a real client then reads the transfer to learn whether its
action happened, and so does this one. Nobody else touches a client's pending transfers, so the
read is unambiguous.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

MAX_ATTEMPTS = 300
ATTEMPT_TIMEOUT = aiohttp.ClientTimeout(total=10)
RULE_CODES = {"exceeds_credits", "exceeds_debits"}
TIMEOUTS = [0, 0, 0, 1, 2, 3600]
"""``timeout_seconds`` of pending transfers: most never expire, some expire during the run."""

Key = tuple[str, str]
"""(tenant id, transfer id)."""


@dataclass
class LoadTenant:
    tenant_id: str
    api_key: str
    token: str
    funding: dict[str, str] = field(default_factory=dict)
    """Per currency: a debit-normal account without flags, the source of money."""
    customers: dict[str, list[str]] = field(default_factory=dict)
    """Per currency: accounts with ``debits_must_not_exceed_credits`` (cannot be overdrawn)."""
    capped: dict[str, list[str]] = field(default_factory=dict)
    """Per currency: accounts with ``credits_must_not_exceed_debits``."""

    def accounts(self) -> list[str]:
        return [
            *self.funding.values(),
            *(a for group in self.customers.values() for a in group),
            *(a for group in self.capped.values() for a in group),
        ]


@dataclass
class Answer:
    status: int
    body: Any
    attempts: int

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@dataclass
class Journal:
    """Every definitive answer the clients were given."""

    acked: dict[Key, dict[str, Any]] = field(default_factory=dict)
    """Transfers acknowledged with 2xx, as the acknowledgement showed them at creation."""
    timeouts: dict[Key, int] = field(default_factory=dict)
    refused: dict[Key, str] = field(default_factory=dict)
    """Transfers answered with a rule failure (so they must not be stored)."""
    resolved: dict[Key, tuple[str, int]] = field(default_factory=dict)
    """Pending transfers whose post/void was answered: ("posted", n), ("voided", 0) or ("expired", 0)."""
    unexpected: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    operations: Counter[str] = field(default_factory=Counter)
    transient: Counter[str] = field(default_factory=Counter)
    """Attempts answered with something a client must retry (by status/code or exception name)."""
    attempts: int = 0
    resolved_by_read: int = 0

    @property
    def completed(self) -> int:
        return sum(self.operations.values())


class Client:
    def __init__(
        self,
        index: int,
        http: aiohttp.ClientSession,
        base_url: str,
        tenant: LoadTenant,
        journal: Journal,
        stop: asyncio.Event,
    ) -> None:
        self.index = index
        self.http = http
        self.base_url = base_url
        self.tenant = tenant
        self.token = tenant.token
        self.journal = journal
        self.stop = stop
        self.rng = random.Random(index)
        self.op_no = 0

    # -- transport -----------------------------------------------------------------------------

    async def send(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, auth: bool = True
    ) -> Answer | None:
        """One logical request, retried until it gets a definitive answer (None: it never did)."""
        headers: dict[str, str] = {}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        data = None
        if body is not None:
            data = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self.journal.attempts += 1
            delay = min(0.5, 0.02 * 2 ** min(attempt, 5)) * (0.5 + self.rng.random())
            try:
                async with self.http.request(
                    method, self.base_url + path, data=data, headers=headers, timeout=ATTEMPT_TIMEOUT
                ) as response:
                    raw = await response.read()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.journal.transient[type(exc).__name__] += 1
                await asyncio.sleep(delay)
                continue
            decoded = msgspec.json.decode(raw) if raw else None
            answer = Answer(status, decoded, attempt)
            if status in (429, 503) or (status == 409 and answer.code == "idempotency_key_in_use"):
                self.journal.transient[f"{status} {answer.code}"] += 1
                wait = min(float(retry_after), 1.0) if retry_after and retry_after.isdigit() else delay
                await asyncio.sleep(max(delay, wait))
                continue
            if status >= 500 or status == 401:
                # Never acceptable here; a real client would still retry, and so do we.
                self.journal.unexpected.append(f"{method} {path}: {status} {raw[:300]!r}")
                await asyncio.sleep(delay)
                continue
            return answer
        self.journal.unresolved.append(f"{method} {path} {body!r}")
        return None

    # -- operations ----------------------------------------------------------------------------

    async def run(self) -> None:
        while not self.stop.is_set():
            self.op_no += 1
            roll = self.rng.random()
            if roll < 0.40:
                await self.single()
            elif roll < 0.50:
                await self.batch(atomic=True)
            elif roll < 0.60:
                await self.batch(atomic=False)
            elif roll < 0.97:
                await self.two_phase()
            else:
                await self.login()

    def _key(self) -> str | None:
        # Half the requests carry an Idempotency-Key, so both the gateway's kept responses and the
        # ledger's id replays carry retries.
        return f"c{self.index}-{uuid.uuid4()}" if self.rng.random() < 0.5 else None

    def _pair(self, currency: str) -> tuple[str, str]:
        t = self.tenant
        roll = self.rng.random()
        customers, capped = t.customers[currency], t.capped[currency]
        if roll < 0.3:
            return t.funding[currency], self.rng.choice(customers)
        if roll < 0.7:
            debit, credit = self.rng.sample(customers, 2)
            return debit, credit
        if roll < 0.85:
            return self.rng.choice(customers), self.rng.choice(capped)
        return self.rng.choice(capped), self.rng.choice([t.funding[currency], *customers])

    def transfer_body(self, **extra: Any) -> dict[str, Any]:
        currency = self.rng.choice(sorted(self.tenant.funding))
        debit, credit = self._pair(currency)
        return {
            "id": str(uuid.uuid4()),
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": self.rng.randint(1, 60),
            "currency": currency,
            "metadata": {"client": str(self.index), "op": str(self.op_no)},
            **extra,
        }

    def _key_of(self, transfer_id: str) -> Key:
        return (self.tenant.tenant_id, transfer_id)

    def record_created(self, sent: dict[str, Any], status: int, item: Any, what: str) -> None:
        key = self._key_of(sent["id"])
        if status in (200, 201):
            fields = ("id", "debit_account_id", "credit_account_id", "amount", "currency", "metadata")
            same = all(item.get(name) == sent[name] for name in fields)
            if not same or item.get("status") not in ({"pending", "expired"} if sent.get("pending") else {"posted"}):
                self.journal.unexpected.append(f"{what}: acknowledgement {item!r} does not match {sent!r}")
            self.journal.acked[key] = item
            self.journal.timeouts[key] = int(sent.get("timeout_seconds", 0))
        elif status == 422 and isinstance(item, dict) and item.get("code") in RULE_CODES:
            self.journal.refused[key] = item["code"]
        else:
            self.journal.unexpected.append(f"{what}: {status} {item!r}")

    async def single(self, **extra: Any) -> dict[str, Any] | None:
        body = self.transfer_body(**extra)
        answer = await self.send("POST", "/v1/transfers", body, key=self._key())
        self.journal.operations["pending transfer" if extra.get("pending") else "transfer"] += 1
        if answer is None:
            return None
        self.record_created(body, answer.status, answer.body, "transfer")
        return answer.body if answer.status in (200, 201) else None

    async def batch(self, *, atomic: bool) -> None:
        items = [self.transfer_body() for _ in range(self.rng.randint(2, 6))]
        answer = await self.send("POST", "/v1/transfers/batch", {"transfers": items, "atomic": atomic}, key=self._key())
        self.journal.operations["atomic batch" if atomic else "batch"] += 1
        if answer is None:
            return
        body = answer.body
        if atomic and answer.status == 201:
            for sent, item in zip(items, body["data"], strict=True):
                self.record_created(sent, 201, item, "atomic batch")
        elif atomic and answer.status == 422 and answer.code == "batch_failed":
            codes = {error["code"] for error in body["errors"]}
            if not codes <= RULE_CODES:
                self.journal.unexpected.append(f"atomic batch: {body!r}")
            for sent in items:
                self.journal.refused[self._key_of(sent["id"])] = "batch_failed"
        elif not atomic and answer.status == 200:
            for sent, result in zip(items, body["results"], strict=True):
                self.record_created(sent, result["status"], result.get("transfer") or result.get("error"), "batch")
        else:
            self.journal.unexpected.append(f"batch (atomic={atomic}): {answer.status} {body!r}")

    async def two_phase(self) -> None:
        timeout = self.rng.choice(TIMEOUTS)
        created = await self.single(pending=True, timeout_seconds=timeout)
        if created is None or created["status"] != "pending":
            return
        roll = self.rng.random()
        if roll < 0.45:
            amount = self.rng.choice([None, self.rng.randint(1, created["amount"])])
            await self.resolve(created, "post", amount, timeout)
        elif roll < 0.8:
            await self.resolve(created, "void", None, timeout)

    async def resolve(self, created: dict[str, Any], action: str, amount: int | None, timeout_seconds: int) -> None:
        transfer_id = created["id"]
        key = self._key_of(transfer_id)
        body = {"amount": amount} if amount is not None else None
        answer = await self.send("POST", f"/v1/transfers/{transfer_id}/{action}", body, key=self._key())
        self.journal.operations[action] += 1
        if answer is None:
            return
        want = ("posted", amount or created["amount"]) if action == "post" else ("voided", 0)
        if answer.status == 200 and (answer.body["status"], answer.body["posted_amount"]) == want:
            self.journal.resolved[key] = want
        elif answer.status == 422 and answer.code == "pending_expired" and timeout_seconds > 0:
            self.journal.resolved[key] = ("expired", 0)
        elif answer.status == 422 and answer.code == "transfer_not_pending" and answer.attempts > 1:
            # An earlier attempt's answer was lost: did that attempt apply our action?
            now = await self.send("GET", f"/v1/transfers/{transfer_id}")
            if now is not None and now.status == 200 and (now.body["status"], now.body["posted_amount"]) == want:
                self.journal.resolved[key] = want
                self.journal.resolved_by_read += 1
            else:
                self.journal.unexpected.append(f"{action} {transfer_id}: not pending, and not by us: {now!r}")
        else:
            self.journal.unexpected.append(f"{action} {transfer_id}: {answer.status} {answer.body!r}")

    async def login(self) -> None:
        answer = await self.send("POST", "/v1/sessions", {"api_key": self.tenant.api_key}, auth=False)
        self.journal.operations["login"] += 1
        if answer is not None and answer.status == 201:
            self.token = answer.body["token"]
        elif answer is not None:
            self.journal.unexpected.append(f"login: {answer.status} {answer.body!r}")
