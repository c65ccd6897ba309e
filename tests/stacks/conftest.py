"""Fixtures of the infrastructure tests: the synthesized templates, parsed, small JSON helpers, and a
moto server on loopback (with dummy credentials) for the deploy script's tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.launcher import Helper, moto_command
from stacks.synth import synthesize
from tests.support.processes import LOG_DIR, free_port

Json = dict[str, Any]


@pytest.fixture(scope="session")
def rendered() -> dict[str, str]:
    """Every tier's template text, as ``./scripts/synth`` writes it."""
    return synthesize()


@pytest.fixture(scope="session")
def templates(rendered: dict[str, str]) -> dict[str, Json]:
    return {tier: json.loads(text) for tier, text in rendered.items()}


@pytest.fixture(scope="session")
def template_dir(rendered: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cfn")
    for tier, text in rendered.items():
        (out / f"{tier}.json").write_text(text)
    return out


def resources(template: Json, rtype: str | None = None) -> dict[str, Json]:
    """Resources of ``template`` (of type ``rtype`` when given), by logical id."""
    return {name: res for name, res in template["Resources"].items() if rtype is None or res["Type"] == rtype}


def props(resource: Json) -> Json:
    return resource.get("Properties", {})


def env_values(template: Json, value: Any) -> list[Any]:
    """The concrete values ``value`` takes: one per environment for a FindInMap, else itself."""
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        mapping, _, key = value["Fn::FindInMap"]
        return [row[key] for row in template["Mappings"][mapping].values()]
    return [value]


def walk(value: Any) -> Iterator[Any]:
    """Every node of a JSON value, depth first."""
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def references(value: Any) -> set[str]:
    """Logical ids referenced by Ref or GetAtt anywhere inside ``value``."""
    found: set[str] = set()
    for node in walk(value):
        if isinstance(node, dict):
            if "Ref" in node and isinstance(node["Ref"], str):
                found.add(node["Ref"])
            if "Fn::GetAtt" in node:
                found.add(node["Fn::GetAtt"][0])
    return found


def imports(value: Any) -> set[str]:
    """Export names (``${NetworkStack}-VpcId``) imported anywhere inside ``value``."""
    found: set[str] = set()
    for node in walk(value):
        if isinstance(node, dict) and "Fn::ImportValue" in node:
            found.add(node["Fn::ImportValue"]["Fn::Sub"])
    return found


def all_resources(templates: dict[str, Json], rtype: str) -> dict[str, Json]:
    """Resources of type ``rtype`` across every tier, keyed ``<tier>.<logical id>``."""
    return {f"{tier}.{name}": res for tier, t in templates.items() for name, res in resources(t, rtype).items()}


def service_task_definitions(template: Json) -> dict[str, Json]:
    """The task definitions an ECS service runs, by logical id: the checklist's "task definitions".
    The one-off migration task (``LedgerMigrateTaskDefinition``) has its own tests."""
    used = {props(s)["TaskDefinition"]["Ref"] for s in resources(template, "AWS::ECS::Service").values()}
    return {name: td for name, td in resources(template, "AWS::ECS::TaskDefinition").items() if name in used}


@pytest.fixture(scope="module")
def moto_url(fake_credentials: None) -> Iterator[str]:
    port = free_port()
    moto = Helper("moto", port, moto_command(port), LOG_DIR / f"moto-{port}.log")
    try:
        try:
            moto.start()
        except RuntimeError as exc:
            pytest.fail(f"moto server did not start: {exc}")
        yield f"http://127.0.0.1:{port}"
    finally:
        moto.stop()


@pytest.fixture(scope="module", autouse=True)
def fake_credentials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dummy credentials and no profile files: nothing can reach a real AWS account."""
    none = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_CONFIG_FILE": str(none),
            "AWS_SHARED_CREDENTIALS_FILE": str(none),
        }.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        yield
