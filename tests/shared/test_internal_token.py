"""shared/internal_token.py: the internal token rotates while traffic flows and no call is refused.

Real Secrets Manager API (a moto server). Time is simulated: each process re-reads the secret on its
own schedule, as tasks started at different moments do. The rotation happens in the middle of the
traffic, and a process started after it joins, with the new token injected, as ECS would start it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from shared.credentials import SecretTokens
from shared.internal_token import ADOPT_AFTER_SECONDS, REFRESH_SECONDS, InternalTokens

REGION = "eu-west-1"
OLD, NEW = "o" * 48, "n" * 48


class SimClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.wall0 = datetime.now(UTC)

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return self.wall0 + timedelta(seconds=self.t)


@dataclass
class Process:
    """One task: the token ECS injected at its start and its view of the secret."""

    injected: str
    source: SecretTokens
    tokens: InternalTokens
    phase: float

    def accepts(self, presented: str) -> bool:
        # What shared.http.internal_token_valid does: the injected token, or a version read.
        return presented == self.injected or self.tokens.accepts(presented)


def _process(aws: str, name: str, injected: str, clock: SimClock, phase: float) -> Process:
    source = SecretTokens.from_aws(
        name, "token", REGION, aws, max_age_seconds=REFRESH_SECONDS, retry_seconds=10.0, clock=clock.monotonic
    )
    return Process(injected, source, InternalTokens(source, now=clock.wall), phase)


async def test_rotation_under_traffic_refuses_no_call(aws: str) -> None:
    client: Any = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws)
    name = "internal-token-rotation"
    client.create_secret(Name=name, SecretString=json.dumps({"token": OLD}))
    clock = SimClock()
    processes = [_process(aws, name, OLD, clock, phase) for phase in (0.0, 13.0, 29.0, 47.0)]
    rotate_at, join_at, end = 100.0, 130.0, 100.0 + ADOPT_AFTER_SECONDS + 2 * REFRESH_SECONDS
    refused: list[tuple[float, int, int]] = []
    calls = 0
    while clock.t <= end:
        if clock.t == rotate_at:
            client.put_secret_value(SecretId=name, SecretString=json.dumps({"token": NEW}))
            # The secret's CreatedDate is real time; the simulation's wall clock starts at it.
            clock.wall0 = datetime.now(UTC) - timedelta(seconds=clock.t)
        if clock.t == join_at:  # a task started after the rotation: NEW injected, and it reads the
            # secret before it serves (shared.serve primes it), as every task does at start
            processes.append(_process(aws, name, NEW, clock, clock.t))
        for p in processes:  # each re-reads on its own schedule (its background refresh)
            if clock.t >= p.phase and p.source.stale():
                await p.tokens.refresh()
        for i, sender in enumerate(processes):
            token = sender.tokens.to_send(sender.injected)
            for j, receiver in enumerate(processes):
                calls += 1
                if not receiver.accepts(token):
                    refused.append((clock.t, i, j))
        clock.t += 5.0
    assert calls > 1000
    assert refused == []
    # ... and the rotation completed: everyone sends the new token, and accepts both.
    assert {p.tokens.to_send(p.injected) for p in processes} == {NEW}
    assert all(p.accepts(OLD) and p.accepts(NEW) for p in processes)


def test_without_the_secret_the_injected_token_is_sent_and_nothing_else_accepted() -> None:
    tokens = InternalTokens(None)
    assert tokens.to_send(OLD) == OLD
    assert not tokens.accepts(OLD) and not tokens.accepts(NEW)  # the injected one is checked by the caller


@pytest.mark.parametrize("age, expected", [(0, OLD), (ADOPT_AFTER_SECONDS - 1, OLD), (ADOPT_AFTER_SECONDS, NEW)])
async def test_senders_adopt_a_new_version_only_once_every_receiver_has_read_it(
    aws: str, age: float, expected: str
) -> None:
    client: Any = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws)
    name = f"internal-token-adopt-{int(age)}"
    client.create_secret(Name=name, SecretString=json.dumps({"token": OLD}))
    client.put_secret_value(SecretId=name, SecretString=json.dumps({"token": NEW}))
    created = client.describe_secret(SecretId=name)
    clock = SimClock()
    process = _process(aws, name, OLD, clock, 0.0)
    await process.tokens.refresh()
    since = process.source.cached().current_since  # type: ignore[union-attr]
    assert since is not None and created
    # The same secret read as of `age` seconds after the new version was made: a clock of its own.
    later = InternalTokens(process.source, now=lambda: since + timedelta(seconds=age))
    assert later.to_send(OLD) == expected
