"""docs/api.md stays the complete API reference: it cannot drift from the OpenAPI document, the
gateway's routes or the error codes.

- its sections are numbered 1 to 12, the numbers code comments cite ("docs/api.md section 5");
- every operation of the OpenAPI document (including the ones routed but not yet served in it,
  ``build_document(awaiting=True)``) has one heading ``### `METHOD /path` (operationId)``, and every
  error code the document lists for that operation is named under that heading;
- every public path and method the gateway routes (``services.gateway.routes``) has a heading;
- the error table of section 6 lists exactly ``shared.errors.ErrorCode``, each with its status and
  title;
- the limits it states are the code's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.gateway.openapi import build_document
from services.gateway.routes import PROXIED
from shared.errors import ErrorCode
from shared.ledger_api import MAX_BATCH_ITEMS, MAX_ENTRIES, MAX_TIMEOUT_SECONDS, MIN_ENTRIES
from shared.web import MAX_BODY_BYTES

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
METHODS = ("get", "post", "put", "patch", "delete")
HEADING = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/\S+)` \((\w+)\)$", re.M)
ERROR_ROW = re.compile(r"^\| `([a-z_]+)` \| (\d{3}) \| ([^|]+?) \|", re.M)


def text() -> str:
    return DOC.read_text()


def sections() -> dict[int, str]:
    """Section number -> its text (up to the next numbered section)."""
    parts = re.split(r"^## (\d+)\. .*$", text(), flags=re.M)
    return {int(number): body for number, body in zip(parts[1::2], parts[2::2], strict=True)}


def endpoints() -> dict[tuple[str, str], tuple[str, str]]:
    """(METHOD, path) -> (operationId, the text under its heading up to the next heading)."""
    doc = text()
    found: dict[tuple[str, str], tuple[str, str]] = {}
    matches = list(HEADING.finditer(doc))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(doc)
        body = re.split(r"^##? ", doc[match.end() : end], maxsplit=1, flags=re.M)[0]
        key = (match.group(1), match.group(2))
        assert key not in found, f"docs/api.md documents {key} twice"
        found[key] = (match.group(3), body)
    return found


def operations() -> list[tuple[str, str, str, dict[str, list[str]]]]:
    """(METHOD, path, operationId, x-problem-codes) of every operation of the OpenAPI document."""
    paths = build_document(awaiting=True)["paths"]
    return [
        (method.upper(), path, op["operationId"], op["x-problem-codes"])
        for path, item in paths.items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_sections_are_numbered_as_the_code_cites_them() -> None:
    assert list(sections()) == list(range(1, 13))


@pytest.mark.parametrize("operation", operations(), ids=lambda op: op[2])
def test_every_operation_is_documented_with_its_error_codes(
    operation: tuple[str, str, str, dict[str, list[str]]],
) -> None:
    method, path, operation_id, problem_codes = operation
    documented = endpoints()
    assert (method, path) in documented, f"docs/api.md has no heading ### `{method} {path}` ({operation_id})"
    named_id, body = documented[(method, path)]
    assert named_id == operation_id, f"{method} {path} is {operation_id} in the OpenAPI document, not {named_id}"
    for status, codes in problem_codes.items():
        missing = [code for code in codes if f"`{code}`" not in body]
        assert not missing, f"{operation_id}: docs/api.md does not name {status} {missing} under its heading"


def test_every_routed_path_is_documented() -> None:
    """The gateway routes nothing the reference leaves out (nor the reverse), login and logout included."""
    routed = {(method, re.sub(r"\{(\w+):str\}", r"{\1}", path)) for path, methods in PROXIED for method in methods}
    routed |= {("POST", "/v1/sessions"), ("DELETE", "/v1/sessions/current")}
    assert routed == set(endpoints())


def test_error_table_is_exactly_the_error_codes() -> None:
    table = {code: (int(status), title.strip()) for code, status, title in ERROR_ROW.findall(sections()[6])}
    expected = {code.value: (code.status, code.summary) for code in ErrorCode}
    assert table == expected


def test_limits_stated_are_the_codes() -> None:
    doc = text()
    assert f"1 to {MAX_BATCH_ITEMS} items" in doc
    assert f"{MIN_ENTRIES} to {MAX_ENTRIES} entries" in doc
    assert f"0 to {MAX_TIMEOUT_SECONDS}" in doc
    assert f"4 MiB ({MAX_BODY_BYTES} bytes)" in doc
    assert f"more than {MAX_BATCH_ITEMS} transfers in one batch" in doc
