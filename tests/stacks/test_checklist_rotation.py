"""Issue 13, item 1, in the templates: no rotating credential reaches a service task only at start.
The database uses IAM tokens (test_checklist_database_access.py). The Redis AUTH token is read by the
tasks themselves from its secret while they run, so the URL carries no token and the task roles,
not the execution role, may read exactly that secret."""

from __future__ import annotations

import json

from tests.stacks.conftest import Json, props, resources, service_task_definitions


def _env(container: Json) -> dict[str, object]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def _statements(role: Json) -> list[Json]:
    return [s for p in props(role).get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def test_redis_clients_get_a_tokenless_url_and_the_secret_to_read(templates: dict[str, Json]) -> None:
    tasks = service_task_definitions(templates["compute"])
    for service in ("Gateway", "Session"):
        app = props(tasks[f"{service}TaskDefinition"])["ContainerDefinitions"][0]
        env = _env(app)
        url = env["REDIS_URL"]["Fn::Sub"]  # type: ignore[index]
        assert url[0] == "rediss://${Host}:6379/0"  # TLS, and no ":<token>@"
        assert url[1]["Host"]["Fn::ImportValue"]["Fn::Sub"] == "${DataStack}-RedisPrimaryEndpoint"
        assert env["REDIS_AUTH_SECRET_ARN"] == {"Fn::ImportValue": {"Fn::Sub": "${DataStack}-RedisAuthSecretArn"}}
        assert "REDIS_URL" not in {s["Name"] for s in app.get("Secrets", [])}
    ledger = props(tasks["LedgerTaskDefinition"])["ContainerDefinitions"][0]
    assert "REDIS_URL" not in _env(ledger)  # the ledger does not use Redis


def test_only_the_redis_clients_may_read_the_redis_secret(templates: dict[str, Json]) -> None:
    roles = resources(templates["security"], "AWS::IAM::Role")
    readers = {}
    for name, role in roles.items():
        for statement in _statements(role):
            if "redis-auth" in json.dumps(statement.get("Resource")):
                readers[name] = statement
    assert set(readers) == {"GatewayTaskRole", "SessionTaskRole"}
    for statement in readers.values():
        assert statement["Action"] == ["secretsmanager:GetSecretValue"]
        (redis,) = [r for r in statement["Resource"] if "Fn::Sub" in r]
        assert redis["Fn::Sub"].endswith(":secret:fintech/${EnvironmentName}/redis-auth-*")


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
