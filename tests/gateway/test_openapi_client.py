"""A stock generator makes a clean, typed client from the served OpenAPI document, and it works.

openapi-python-client (a locked dev dependency, so this runs offline) generates a client from
``/schema/openapi.json`` of a running platform into a temporary folder, exactly as the README's
"Use it from code" section tells users to, with ``--fail-on-warning``: no warning, at most
``MAX_MODELS`` models (one ``Problem``, one ``ErrorCode``, no per-operation error copies), functions
named by the ``operationId``s and grouped by tag. The README walkthrough is then driven through the
generated client: login, three accounts, two transfers, a refused one decoded as ``Problem`` with
its ``code``, balances and history, a fee split (a transaction), a refund (a reversal), a freeze
that refuses a payment, logout, and the token refused after it. The README's own code runs too, so
the section cannot drift from the generated client; the whole document, with the operations routed
ahead of the ledger, generates just as cleanly.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from services.gateway.openapi import build_document
from tests.support.platform import Platform
from tests.support.processes import ROOT

MAX_MODELS = 60
PACKAGE = "ledger_client"


def _generate(source: list[str], folder: Path) -> str:
    """Run the generator on ``source`` (``--url URL`` or ``--path FILE``) into ``folder``; its output."""
    bin_dir = Path(sys.executable).parent
    # The generator formats its output with ruff (its post hooks), found on PATH like a user's shell would;
    # it fetches the document from this machine, never through a proxy the environment may name.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "NO_PROXY": "127.0.0.1"}
    result = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            *source,
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
            "--fail-on-warning",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def _models(root: Path) -> list[str]:
    return sorted(path.stem for path in (root / "models").glob("*.py") if path.stem != "__init__")


@pytest.fixture(scope="module")
def generated(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, str]]:
    """The generated package, imported, and what the generator printed."""
    folder = tmp_path_factory.mktemp("generated")
    output = _generate(["--url", f"{platform.url}/schema/openapi.json"], folder)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE), output
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_generator_is_clean_and_small(generated: tuple[ModuleType, str]) -> None:
    package, output = generated
    assert "warning" not in output.lower(), output
    root = Path(str(package.__file__)).parent
    models = _models(root)
    assert len(models) <= MAX_MODELS, models
    assert "problem" in models and "error_code" in models
    assert not [model for model in models if "response_" in model], models  # no per-operation error copies
    functions = {f"{path.parent.name}.{path.stem}" for path in (root / "api").glob("*/*.py") if path.stem != "__init__"}
    assert functions >= {  # new operations may join; these names never change
        "sessions.create_session",
        "sessions.delete_current_session",
        "accounts.create_account",
        "accounts.list_accounts",
        "accounts.get_account",
        "accounts.list_account_transfers",
        "accounts.get_account_balances",
        "transfers.create_transfer",
        "transfers.create_transfer_batch",
        "transfers.get_transfer",
        "transfers.post_pending_transfer",
        "transfers.void_pending_transfer",
    }


def test_whole_document_generates_cleanly_too(tmp_path: Path) -> None:
    """The document with the operations routed ahead of the ledger (``AWAITING_LEDGER``): just as clean
    and small, so serving one of them later cannot break a generated client."""
    document = tmp_path / "openapi.json"
    document.write_bytes(msgspec.json.encode(build_document(awaiting=True)))
    output = _generate(["--path", str(document)], tmp_path)
    assert "warning" not in output.lower(), output
    root = tmp_path / PACKAGE
    models = _models(root)
    assert len(models) <= MAX_MODELS, models
    assert not [model for model in models if "response_" in model], models
    functions = {f"{path.parent.name}.{path.stem}" for path in (root / "api").glob("*/*.py") if path.stem != "__init__"}
    assert functions >= {
        "transactions.create_transaction",
        "transactions.get_transaction",
        "transactions.reverse_transaction",
        "transfers.reverse_transfer",
        "transfers.list_transfers",
        "accounts.update_account",
        "accounts.freeze_account",
        "accounts.close_account",
        "accounts.list_account_entries",
        "accounts.get_account_statement",
        "events.list_events",
        "webhooks.create_webhook_endpoint",
        "webhooks.list_webhook_deliveries",
    }


def test_readme_walkthrough_through_the_generated_client(generated: tuple[ModuleType, str], platform: Platform) -> None:
    package, _ = generated

    def module(name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.{name}")

    create_session, delete_current_session = (
        module("api.sessions.create_session"),
        module("api.sessions.delete_current_session"),
    )
    create_account, get_account = module("api.accounts.create_account"), module("api.accounts.get_account")
    get_account_balances = module("api.accounts.get_account_balances")
    list_account_transfers = module("api.accounts.list_account_transfers")
    create_transfer = module("api.transfers.create_transfer")
    reverse_transfer = module("api.transfers.reverse_transfer")
    create_transaction = module("api.transactions.create_transaction")
    freeze_account, unfreeze_account = module("api.accounts.freeze_account"), module("api.accounts.unfreeze_account")
    models = module("models")

    # 1. A tenant and its API key; 2. log in.
    api_key = platform.create_tenant("Acme Ltd")["api_key"]
    with package.Client(base_url=platform.url) as anonymous:
        login = create_session.sync_detailed(client=anonymous, body=models.LoginRequest(api_key=api_key))
    assert login.status_code == 201, login.content
    assert isinstance(login.parsed, models.SessionCreated)

    with package.AuthenticatedClient(base_url=platform.url, token=login.parsed.token) as client:
        # 3. Open accounts: a debit-normal funding account and two wallets, Alice's not allowed to go negative.
        bank = create_account.sync(
            client=client, body=models.AccountCreate(currency="USD", normal_balance=models.NormalBalance.DEBIT)
        )
        alice = create_account.sync(
            client=client,
            body=models.AccountCreate(currency="USD", flags=models.AccountFlags(debits_must_not_exceed_credits=True)),
        )
        bob = create_account.sync(client=client, body=models.AccountCreate(currency="USD"))
        for account in (bank, alice, bob):
            assert isinstance(account, models.Account), account

        # 4. Move money; the first with an Idempotency-Key.
        def transfer(debit: Any, credit: Any, amount: int, key: str | None = None) -> Any:
            body = models.TransferCreate(
                id=uuid.uuid4(), debit_account_id=debit.id, credit_account_id=credit.id, amount=amount, currency="USD"
            )
            kwargs = {} if key is None else {"idempotency_key": key}
            return create_transfer.sync_detailed(client=client, body=body, **kwargs)

        funded = transfer(bank, alice, 10000, key=f"fund-alice-{uuid.uuid4()}")
        assert funded.status_code == 201 and isinstance(funded.parsed, models.Transfer), funded.content
        assert funded.parsed.status is models.TransferStatus.POSTED
        paid = transfer(alice, bob, 2500)
        assert paid.status_code == 201, paid.content

        # Alice cannot spend more than she has: a Problem with its code, typed.
        refused = transfer(alice, bob, 999999)
        assert refused.status_code == 422
        assert isinstance(refused.parsed, models.Problem), refused.content
        assert refused.parsed.code is models.ErrorCode.EXCEEDS_CREDITS
        assert refused.parsed.status == 422 and refused.parsed.request_id

        # 5. Balances and history.
        alice_now = get_account.sync(alice.id, client=client)
        assert (alice_now.balances.posted, alice_now.balances.available) == (7500, 7500)
        assert get_account.sync(bob.id, client=client).balances.posted == 2500
        then = paid.parsed.created_at  # a datetime: the client decodes the document's date-time
        assert get_account_balances.sync(alice.id, client=client, at=then).balances.posted == 7500
        before = get_account_balances.sync(alice.id, client=client, at=funded.parsed.created_at)
        assert (before.credits_posted, before.debits_posted) == (10000, 0)
        history = list_account_transfers.sync(alice.id, client=client)
        assert [t.id for t in history.data] == [funded.parsed.id, paid.parsed.id]
        assert history.next_cursor is None

        # 6. A fee split: Alice pays Bob 5000 in one transaction, 150 of it to a fees account.
        fees = create_account.sync(client=client, body=models.AccountCreate(currency="USD"))
        entries = [
            models.Entry(account_id=alice.id, direction=models.Direction.DEBIT, amount=5000, currency="USD"),
            models.Entry(account_id=bob.id, direction=models.Direction.CREDIT, amount=4850, currency="USD"),
            models.Entry(account_id=fees.id, direction=models.Direction.CREDIT, amount=150, currency="USD"),
        ]
        split = create_transaction.sync_detailed(
            client=client, body=models.TransactionCreate(id=uuid.uuid4(), entries=entries)
        )
        assert split.status_code == 201 and isinstance(split.parsed, models.Transaction), split.content
        assert split.parsed.status is models.TransferStatus.POSTED

        # 7. A refund: Bob gives back 1000 of Alice's payment (a partial reversal).
        refund = reverse_transfer.sync_detailed(
            paid.parsed.id, client=client, body=models.TransferReverse(id=uuid.uuid4(), amount=1000)
        )
        assert refund.status_code == 201 and isinstance(refund.parsed, models.Transfer), refund.content
        assert (refund.parsed.reverses, refund.parsed.debit_account_id) == (paid.parsed.id, bob.id)

        # 8. A freeze: Bob's wallet takes no payment until unfrozen.
        frozen = freeze_account.sync(bob.id, client=client)
        assert isinstance(frozen, models.Account) and frozen.status is models.AccountStatus.FROZEN
        blocked = transfer(alice, bob, 100)
        assert isinstance(blocked.parsed, models.Problem) and blocked.parsed.code is models.ErrorCode.ACCOUNT_FROZEN
        assert unfreeze_account.sync(bob.id, client=client).status is models.AccountStatus.OPEN
        assert get_account.sync(alice.id, client=client).balances.posted == 3500
        assert get_account.sync(bob.id, client=client).balances.posted == 6350

        # 9. Log out: the token is refused from now on.
        logout = delete_current_session.sync_detailed(client=client)
        assert logout.status_code == 204
        after = get_account.sync_detailed(alice.id, client=client)
        assert after.status_code == 401 and after.parsed.code is models.ErrorCode.UNAUTHORIZED


def test_readme_section_runs_as_written(
    generated: tuple[ModuleType, str], platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use it from code", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.setenv("API_KEY", platform.create_tenant("readme")["api_key"])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code.group(1).replace("http://127.0.0.1:8000", platform.url), {"__name__": "readme"})
    assert printed.getvalue().split() == ["10000"]
