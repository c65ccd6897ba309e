"""Issue 13, item 1, in the templates: no rotating credential reaches a service task only at start.
The database uses IAM tokens (test_checklist_database_access.py). Each Redis user's password is read by
its service's tasks from its own secret while they run, so the URL carries no password and the task
roles, not the execution role, may read exactly that secret."""

from __future__ import annotations

import json

from stacks.redis_acl import KEY_PREFIX
from tests.stacks.conftest import Json, props, resources, service_task_definitions


def _env(container: Json) -> dict[str, object]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def _statements(role: Json) -> list[Json]:
    return [s for p in props(role).get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def test_redis_clients_get_a_tokenless_url_their_user_and_its_secret(templates: dict[str, Json]) -> None:
    tasks = service_task_definitions(templates["compute"])
    for service in ("Gateway", "Session"):
        app = props(tasks[f"{service}TaskDefinition"])["ContainerDefinitions"][0]
        env = _env(app)
        url = env["REDIS_URL"]["Fn::Sub"]  # type: ignore[index]
        assert url[0] == "rediss://${Host}:6379/0"  # TLS, and no ":<token>@"
        assert url[1]["Host"]["Fn::ImportValue"]["Fn::Sub"] == "${DataStack}-RedisPrimaryEndpoint"
        assert env["REDIS_USERNAME"] == service.lower()
        assert env["REDIS_AUTH_SECRET_ARN"] == {
            "Fn::ImportValue": {"Fn::Sub": f"${{DataStack}}-Redis{service}SecretArn"}
        }
        assert env["REDIS_KEY_PREFIX"] == KEY_PREFIX  # the prefix the user's ACL is scoped to
        assert "REDIS_URL" not in {s["Name"] for s in app.get("Secrets", [])}
    ledger = props(tasks["LedgerTaskDefinition"])["ContainerDefinitions"][0]
    assert "REDIS_URL" not in _env(ledger)  # the ledger does not use Redis


def test_each_redis_client_may_read_its_own_users_secret_only(templates: dict[str, Json]) -> None:
    roles = resources(templates["security"], "AWS::IAM::Role")
    readers = {}
    for name, role in roles.items():
        for statement in _statements(role):
            if "/redis-" in json.dumps(statement.get("Resource")):
                readers[name] = statement
    assert set(readers) == {"GatewayTaskRole", "SessionTaskRole"}
    for name, statement in readers.items():
        assert statement["Action"] == ["secretsmanager:GetSecretValue"]
        (redis,) = [r for r in statement["Resource"] if "Fn::Sub" in r]
        user = name.removesuffix("TaskRole").lower()
        assert redis["Fn::Sub"].endswith(f":secret:fintech/${{EnvironmentName}}/redis-{user}-*")


def test_every_service_reads_the_rotating_internal_token_itself(templates: dict[str, Json]) -> None:
    tasks = service_task_definitions(templates["compute"])
    roles = resources(templates["security"], "AWS::IAM::Role")
    for service in ("Gateway", "Ledger", "Session"):
        app = props(tasks[f"{service}TaskDefinition"])["ContainerDefinitions"][0]
        env = _env(app)
        assert env["INTERNAL_TOKEN_SECRET_ARN"] == {
            "Fn::ImportValue": {"Fn::Sub": "${SecurityStack}-InternalTokenSecretArn"}
        }
        # Still injected too: what a task accepts before its first read of the secret.
        assert "INTERNAL_TOKEN" in {s["Name"] for s in app["Secrets"]}
        reads = [s for s in _statements(roles[f"{service}TaskRole"]) if "secretsmanager:GetSecretValue" in s["Action"]]
        (statement,) = reads
        assert {"Ref": "InternalTokenSecret"} in statement["Resource"], service
        decrypt = [s for s in _statements(roles[f"{service}TaskRole"]) if s["Action"] == ["kms:Decrypt"]]
        assert decrypt and decrypt[0]["Condition"]["StringEquals"]["kms:ViaService"], service
