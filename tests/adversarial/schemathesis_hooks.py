"""Hooks for the schemathesis CLI run of :mod:`tests.adversarial.test_schemathesis` (``SCHEMATHESIS_HOOKS``).

Authentication: one session for the whole run, except that each ``DELETE /v1/sessions/current`` case
gets a session of its own, since logging out revokes the token it carries. Valid cases send integral
floats as ints, and long-poll waits of 0. The gateway and the API
key come from ``FUZZ_BASE_URL`` and ``FUZZ_API_KEY``.
"""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis


def _login() -> str:
    reply = requests.post(
        f"{os.environ['FUZZ_BASE_URL']}/v1/sessions", json={"api_key": os.environ["FUZZ_API_KEY"]}, timeout=30
    )
    reply.raise_for_status()
    token: str = reply.json()["token"]
    return token


@schemathesis.auth(refresh_interval=None, retry_on=[])
class Sessions:
    def __init__(self) -> None:
        self.shared: str | None = None

    def get(self, case: Any, context: Any) -> str:
        if self.shared is None:
            self.shared = _login()
        return self.shared

    def set(self, case: Any, data: str, context: Any) -> None:
        token = _login() if case.method.upper() == "DELETE" else data
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


def _integral_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    """A valid case sends ``1.0`` as ``1``. JSON Schema calls ``1.0`` an integer, but the contract
    refuses every float for an amount or a count, even an integral one (docs/api.md section 2: "A
    float ... is rejected with 400"), and a schema cannot say "without a decimal point". Negative
    cases are left exactly as generated."""
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and isinstance(case.body, dict | list):
        case.body = _integral_floats_as_ints(case.body)
    _short_wait(case)


LONGEST_WAIT_SECONDS = 0


def _short_wait(case: Any) -> None:
    """A valid long-poll ``wait`` (0-30 s on ``GET /v1/events``) is cut to ``LONGEST_WAIT_SECONDS``: on
    an empty feed every such case would last its whole wait, up to the run's request timeout, and the
    run would take many minutes. What a wait does is tested in tests/gateway/test_new_routes.py; an invalid
    ``wait`` is left as generated."""
    query = case.query
    if not isinstance(query, dict):
        return
    wait = query.get("wait")
    # Some phases send query values as strings: a valid one is an integer of ASCII digits.
    if isinstance(wait, str) and wait.isascii() and wait.isdigit() and int(wait) <= 30:
        query["wait"] = str(min(int(wait), LONGEST_WAIT_SECONDS))
    elif isinstance(wait, int) and not isinstance(wait, bool) and 0 <= wait <= 30:
        query["wait"] = min(wait, LONGEST_WAIT_SECONDS)
