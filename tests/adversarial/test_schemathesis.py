"""Property-based fuzzing of the gateway from its own OpenAPI document (schemathesis).

Every operation of ``/schema/openapi.json`` gets generated requests, valid ones and invalid ones,
with a real session token, and a deterministic seed (``derandomize``) and a bounded number of
examples, so a run is reproducible. Operations that take ids are also fuzzed with the tenant's real
ids, so that the success bodies (accounts, transfers, pages, balances) are checked too. Every
answer must be no 5xx, have a status, content type, headers and body the document declares, and
invalid requests must be refused.

Then the schemathesis CLI runs ``--checks all`` (every phase: examples, coverage, fuzzing, stateful)
on every public operation, as a reviewer would run it. Two exceptions, both explained where they
are declared: ``unsupported_method`` is excluded (the contract answers 404, not 405), and the
baseline (``schemathesis_baseline.json``) accepts failures that are gaps of the OpenAPI document,
not of the services, each a request the document cannot call invalid but the services refuse 400:
cursors have no ``minLength``/format (every list); ``timeout_seconds`` > 0 needs ``pending: true``
(no ``if``/``then``; transfers, batches, transactions); ``expected_versions`` may only name the
item's (or the PATCHed) account; a statement's ``to`` before its ``from``; a webhook URL that
resolves to a private address. Once the document says so, delete those entries and the run proves it (``FUZZ_BASELINE_UPDATE=1`` merges the
failures of a run into the file, for the rare case where one must be accepted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.platform import Platform
from tests.support.processes import ROOT

EXAMPLES = 25
"""Generated requests per operation and variant (valid, invalid, with real ids)."""

EXCLUDED_CHECKS = ["--exclude-checks", "unsupported_method"]
"""Checks the CLI run leaves out, each because the binding contract says otherwise:
``unsupported_method`` wants 405 for a method a path does not have, and docs/api.md section 2 answers it
404 ``not_found`` (its table has no 405; see shared/web.py and tests/gateway)."""

BASELINE = Path(__file__).with_name("schemathesis_baseline.json")
"""Failures the CLI run accepts for now: each is a gap of the OpenAPI document, owned by its author
(see the file). The run fails on any other failure; ``--baseline-prune`` drops entries once fixed."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _login(platform: Platform, api_key: str) -> str:
    reply = requests.post(f"{platform.url}/v1/sessions", json={"api_key": api_key}, timeout=30)
    assert reply.status_code == 201, reply.text
    token: str = reply.json()["token"]
    return token


def _real_ids(platform: Platform, token: str) -> dict[str, str]:
    """An account with history, a pending transfer and a pending transaction, for the real-id variants
    (webhook endpoints get none: the platform's ledger refuses loopback URLs, so their ids are random)."""
    headers = {"Authorization": f"Bearer {token}"}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = requests.post(platform.url + path, json=body, headers=headers, timeout=30)
        assert reply.status_code == 201, reply.text
        created: dict[str, Any] = reply.json()
        return created

    a, b = post("/v1/accounts", {"currency": "USD"}), post("/v1/accounts", {"currency": "USD"})
    body = {"debit_account_id": a["id"], "credit_account_id": b["id"], "amount": 10, "currency": "USD"}
    post("/v1/transfers", {**body, "id": str(uuid.uuid4())})
    pending = post("/v1/transfers", {**body, "id": str(uuid.uuid4()), "pending": True, "amount": 10**6})
    entries = [
        {"account_id": a["id"], "direction": "debit", "amount": 10**6, "currency": "USD"},
        {"account_id": b["id"], "direction": "credit", "amount": 10**6, "currency": "USD"},
    ]
    held = post("/v1/transactions", {"id": str(uuid.uuid4()), "entries": entries, "pending": True})
    return {"account_id": a["id"], "transfer_id": pending["id"], "transaction_id": held["id"]}


def _rejected(ctx: Any, response: Any, case: Any) -> bool | None:
    """``negative_data_rejection``, which also counts 413 ``payload_too_large`` as a rejection: an
    invalid batch generated past ``maxItems`` can exceed the 4 MiB body limit, and refusing it for its
    size (before its items are read) is the contract's answer (docs/api.md section 2)."""
    if response.status_code == 413:
        try:
            if response.json().get("code") in ("payload_too_large", "batch_too_large"):
                return None
        except ValueError:
            pass
    return negative_data_rejection(ctx, response, case)  # type: ignore[no-any-return]


def _fuzz(
    platform: Platform,
    operation: Any,
    mode: GenerationMode,
    path_parameters: dict[str, str] | None,
    bearer: Any,
    failures: list[str],
) -> int:
    """Run one operation in one variant; failing checks go to ``failures``; returns the calls made."""
    checks = [*CHECKS, _rejected] if mode is GenerationMode.NEGATIVE else CHECKS
    session = requests.Session()
    calls = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        wait = case.query.get("wait") if isinstance(case.query, dict) else None
        if mode is GenerationMode.POSITIVE and wait is not None:
            case.query["wait"] = 0  # a valid long-poll would hold the call its whole wait (test_new_routes.py)
        # The generated Authorization header is replaced by a real token, unless the case's headers
        # are the invalid part (a missing or mangled Authorization must stay as generated).
        header = case.meta.components.get(ParameterLocation.HEADER) if case.meta is not None else None
        headers = {} if header is not None and header.mode.is_negative else {"Authorization": f"Bearer {bearer()}"}
        try:
            case.call_and_validate(base_url=platform.url, session=session, headers=headers, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # collected: one run reports every failing operation
            failures.append(f"{operation.label} ({mode.value}, ids={path_parameters}): {str(exc)[:1500]}")

    run()
    session.close()
    return calls


def test_gateway_conforms_to_its_openapi_document(platform: Platform) -> None:
    tenant = platform.create_tenant("schemathesis")
    token = _login(platform, tenant["api_key"])
    real = _real_ids(platform, token)
    schema = schemathesis.openapi.from_url(f"{platform.url}/schema/openapi.json")
    failures: list[str] = []
    calls = 0
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),  # type: ignore[union-attr]
        key=lambda op: op.label,
    )
    assert len(operations) >= 12, [op.label for op in operations]
    for operation in operations:
        if operation.label == "DELETE /v1/sessions/current":
            # Logging out revokes the token, so each logout case gets a session of its own.
            def bearer() -> str:
                return _login(platform, tenant["api_key"])
        else:

            def bearer() -> str:
                return token

        names = [p.name for p in operation.path_parameters]
        variants: list[tuple[GenerationMode, dict[str, str] | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if names and all(name in real for name in names):
            variants.append((GenerationMode.POSITIVE, {name: real[name] for name in names}))
        for mode, path_parameters in variants:
            calls += _fuzz(platform, operation, mode, path_parameters, bearer, failures)
    print(json.dumps({"schemathesis_calls": calls, "operations": len(operations)}))
    assert failures == [], "\n\n".join(failures[:10])


def test_every_public_operation_passes_every_check(platform: Platform) -> None:
    """``schemathesis run --checks all``: every phase (examples, coverage, fuzzing, stateful) on every
    operation of the document, through the CLI a reviewer would run, against a gateway whose login
    limits leave room for a session per logout case (:mod:`tests.adversarial.schemathesis_hooks`)."""
    gateway = platform.extra_gateway(
        LOGIN_BURST_PER_KEY="100000",
        LOGIN_RATE_PER_KEY_PER_SECOND="1000",
        LOGIN_BURST_PER_ADDRESS="100000",
        LOGIN_RATE_PER_ADDRESS_PER_SECOND="1000",
    )
    try:
        tenant = platform.create_tenant("schemathesis-cli")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SCHEMATHESIS_HOOKS": "tests.adversarial.schemathesis_hooks",
            "FUZZ_BASE_URL": gateway.url,
            "FUZZ_API_KEY": tenant["api_key"],
        }
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{gateway.url}/schema/openapi.json",
            "--checks",
            "all",
            *EXCLUDED_CHECKS,
            "--baseline",
            str(BASELINE),
            *(["--baseline-update"] if os.environ.get("FUZZ_BASELINE_UPDATE") else []),
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "14",
            "--generation-deterministic",
            "--continue-on-failure",
            "--request-timeout",
            "30",
            "--workers",
            "1",
            "--no-color",
        ]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        gateway.stop()
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
