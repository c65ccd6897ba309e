"""Issue 13, items 1 and 2, in the templates: the ledger connects as the DML-only role with IAM
database authentication (no password to rotate), verifies the server's certificate, and only the
one-off migration task can read the master password."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from services.ledger.migrate import APP_ROLE
from stacks.compute_migrate import MIGRATION_CONTAINER
from stacks.config import PLATFORM
from tests.stacks.conftest import Json, all_resources, props, resources, service_task_definitions


def _env(container: Json) -> dict[str, object]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def _dsn(value: object) -> tuple[str, dict[str, list[str]]]:
    text = value["Fn::Sub"][0]  # type: ignore[index]
    parts = urlsplit(text)
    return str(parts.username), parse_qs(parts.query)


def test_ledger_connects_as_the_app_role_with_iam_auth_and_verify_full(templates: dict[str, Json]) -> None:
    tasks = service_task_definitions(templates["compute"])
    (ledger,) = [c for c in props(tasks["LedgerTaskDefinition"])["ContainerDefinitions"] if c["Name"] == "ledger"]
    env = _env(ledger)
    user, query = _dsn(env["DATABASE_URL"])
    assert user == APP_ROLE == PLATFORM.database_app_username
    assert query == {"sslmode": ["verify-full"], "sslrootcert": [PLATFORM.rds_ca_bundle_path]}
    assert env["DATABASE_IAM_AUTH"] == "true"
    for name, task in tasks.items():  # no service task holds a database password
        for container in props(task)["ContainerDefinitions"]:
            assert "PGPASSWORD" not in {s["Name"] for s in container.get("Secrets", [])}, name
    assert "sslmode=require" not in json.dumps(templates)


def test_only_the_ledger_task_role_may_connect_and_only_as_the_app_role(templates: dict[str, Json]) -> None:
    grants = {}
    for name, role in all_resources(templates, "AWS::IAM::Role").items():
        for policy in props(role).get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if any(a.startswith("rds-db:") for a in statement["Action"]):
                    grants[name] = statement
    assert list(grants) == ["security.LedgerTaskRole"]
    statement = grants["security.LedgerTaskRole"]
    assert statement["Action"] == ["rds-db:connect"]
    (resource,) = statement["Resource"]
    assert resource["Fn::Sub"].endswith(f":dbuser:cluster-*/{APP_ROLE}")


def test_the_migration_task_alone_reads_the_master_password_and_serves_nothing(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    task = resources(t, "AWS::ECS::TaskDefinition")["LedgerMigrateTaskDefinition"]
    assert "LedgerMigrateTaskDefinition" not in service_task_definitions(t)  # no ECS service runs it
    p = props(task)
    assert "TaskRoleArn" not in p  # it calls no AWS API
    (container,) = p["ContainerDefinitions"]
    assert container["Name"] == MIGRATION_CONTAINER
    assert container["Command"] == ["python", "-m", "services.ledger.migrate"]
    assert container["Image"] == {"Ref": "ContainerImage"}
    assert container["ReadonlyRootFilesystem"] is True and container["User"] == PLATFORM.container_user
    assert "PortMappings" not in container
    (secret,) = container["Secrets"]
    assert secret["Name"] == "PGPASSWORD"
    assert secret["ValueFrom"]["Fn::Sub"][0] == "${Arn}:password::"
    assert (
        secret["ValueFrom"]["Fn::Sub"][1]["Arn"]["Fn::ImportValue"]["Fn::Sub"] == "${DataStack}-AuroraMasterSecretArn"
    )
    user, query = _dsn(_env(container)["DATABASE_URL"])
    assert user == PLATFORM.database_master_username
    assert query["sslmode"] == ["verify-full"] and query["sslrootcert"] == [PLATFORM.rds_ca_bundle_path]
    log = container["LogConfiguration"]["Options"]
    group = t["Resources"][log["awslogs-group"]["Ref"]]
    assert "KmsKeyId" in props(group) and "RetentionInDays" in props(group)
    # Everything else that reads the master secret: nothing.
    readers = [
        f"{name}/{c['Name']}"
        for name, td in resources(t, "AWS::ECS::TaskDefinition").items()
        for c in props(td)["ContainerDefinitions"]
        if "AuroraMasterSecretArn" in json.dumps(c.get("Secrets", []))
    ]
    assert readers == [f"LedgerMigrateTaskDefinition/{MIGRATION_CONTAINER}"]


def test_session_task_role_has_exactly_the_dynamodb_calls_the_service_makes(templates: dict[str, Json]) -> None:
    # Issue 13, item 9: derived from the service's code, so a new call there fails here until granted.
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "services" / "session" / "store.py").read_text()
    calls = set(re.findall(r'_call\(\s*"(\w+)"', source)) | set(re.findall(r"_client\.(\w+)\(", source))
    calls -= {"create_table", "update_time_to_live", "describe_time_to_live"}  # local bootstrap only
    expected = {"dynamodb:" + "".join(part.capitalize() for part in call.split("_")) for call in calls}
    role = resources(templates["security"], "AWS::IAM::Role")["SessionTaskRole"]
    statements = [s for p in props(role)["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (dynamo,) = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert (
        set(dynamo["Action"])
        == expected
        == {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DescribeTable",
        }
    )
    assert all("/index/" not in json.dumps(r) for r in dynamo["Resource"])


def test_execution_role_names_its_exact_secrets(templates: dict[str, Json]) -> None:
    # Issue 13, item 9: no secret name pattern. The internal token by reference (security tier);
    # the Aurora master secret by the data tier, which creates it, attached to the same role.
    role = resources(templates["security"], "AWS::IAM::Role")["ExecutionRole"]
    statements = [s for p in props(role)["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (secrets,) = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert secrets["Resource"] == [{"Ref": "InternalTokenSecret"}]
    (policy,) = resources(templates["data"], "AWS::IAM::Policy").values()
    assert props(policy)["Roles"] == [{"Fn::ImportValue": {"Fn::Sub": "${SecurityStack}-ExecutionRoleName"}}]
    (grant,) = props(policy)["PolicyDocument"]["Statement"]
    assert grant["Action"] == ["secretsmanager:GetSecretValue"]
    assert grant["Resource"] == [{"Fn::GetAtt": ["DatabaseCluster", "MasterUserSecret.SecretArn"]}]
    assert "rds!cluster" not in json.dumps(templates)
