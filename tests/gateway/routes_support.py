"""Helpers of the gateway tests of the issue 11 and 12 routes: ids, the OpenAPI check of a body,
and a funded pair of accounts."""

from __future__ import annotations

import uuid
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from services.gateway.openapi import build_document
from tests.support.api import Api, Reply, Tenant


def new_id() -> str:
    """A fresh id for a request body: ids of transfers and transactions are the client's."""
    return str(uuid.uuid4())


_DOCUMENT = build_document(awaiting=True)


def conforms(reply: Reply, schema: str) -> None:
    """The body is what the OpenAPI document promises for ``schema`` (formats checked too)."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": _DOCUMENT["components"]}
    errors = [e.message for e in Draft202012Validator(root, format_checker=FormatChecker()).iter_errors(reply.json)]
    assert not errors, (schema, errors, reply)


def not_served(reply: Reply) -> bool:
    """The ledger does not route this path (yet): its answer for an unknown path."""
    return (reply.status, reply.code) == (404, "not_found")


def skip_unless_served(reply: Reply, what: str) -> None:
    """Every route is served now: a 404 ``not_found`` here is a routing regression, not a skip."""
    assert not not_served(reply), f"the ledger does not serve {what} (404 not_found)"


async def funded(api: Api, tenant: Tenant) -> tuple[str, str, dict[str, Any]]:
    """A funding account, a wallet, and a posted transfer of 1000 from the first to the second."""
    bank = (await api.account(tenant, normal_balance="debit"))["id"]
    wallet = (await api.account(tenant))["id"]
    reply = await api.transfer(tenant, bank, wallet, 1000)
    assert reply.status == 201, reply
    return bank, wallet, reply.json
