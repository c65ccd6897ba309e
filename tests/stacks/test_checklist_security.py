"""infrastructure.md checklist, Keys, secrets, IAM: each item is one test on the synthesized JSON."""

from __future__ import annotations

import json
import re

from tests.stacks.conftest import Json, all_resources, props, resources, service_task_definitions, walk


def test_every_kms_key_rotates_is_retained_and_has_no_unconditioned_star_principal(
    templates: dict[str, Json],
) -> None:
    keys = all_resources(templates, "AWS::KMS::Key")
    assert {
        "network.FlowLogsKey",
        "security.DataKey",
        "security.LogsKey",
        "security.AlertsKey",
        "security.AuditKey",
    } <= set(keys)
    for name, key in keys.items():
        assert props(key)["EnableKeyRotation"] is True, name
        # Retained once created; deleted only when the first create rolls back (issue 13, ADR 0104).
        assert key["DeletionPolicy"] == "RetainExceptOnCreate" and key["UpdateReplacePolicy"] == "Retain", name
        for statement in props(key)["KeyPolicy"]["Statement"]:
            principal = statement["Principal"]
            values = [principal] if isinstance(principal, str) else [v for v in principal.values()]
            if "*" in values or principal == {"AWS": "*"}:
                assert statement.get("Condition"), name


def test_every_secret_uses_a_customer_key_and_rotates(templates: dict[str, Json]) -> None:
    for tier, t in templates.items():
        schedules = resources(t, "AWS::SecretsManager::RotationSchedule").values()
        rotated = {props(s)["SecretId"]["Ref"]: props(s) for s in schedules}
        for name, secret in resources(t, "AWS::SecretsManager::Secret").items():
            assert "KmsKeyId" in props(secret), name
            schedule = rotated.get(name)
            assert schedule is not None, f"{tier}.{name} has no rotation schedule"
            assert "HostedRotationLambda" in schedule or "RotationLambdaARN" in schedule
    (cluster,) = resources(templates["data"], "AWS::RDS::DBCluster").values()
    assert props(cluster)["ManageMasterUserPassword"] is True  # rotated by RDS
    assert "KmsKeyId" in props(cluster)["MasterUserSecret"]


SECRET_WORDS = re.compile(r"(password|passwd|secret|token|credential|apikey|api_key)", re.I)


def test_no_plaintext_credential_anywhere(templates: dict[str, Json]) -> None:
    for tier, t in templates.items():
        for name, res in t["Resources"].items():
            p = props(res)
            for key in ("MasterUserPassword", "Password", "AuthToken", "SecretString"):
                if key in p:
                    assert "{{resolve:secretsmanager:" in json.dumps(p[key]), f"{tier}.{name}.{key}"
            for node in walk(p):
                if isinstance(node, dict) and "Environment" in node and isinstance(node["Environment"], list):
                    for var in node["Environment"]:
                        if var["Name"].endswith("_SECRET_ARN"):
                            # Where a task reads a secret itself (ADR 0107): a reference, never a value.
                            assert set(var["Value"]) <= {"Fn::ImportValue", "Ref"}, f"{tier}.{name}: {var['Name']}"
                            continue
                        assert not SECRET_WORDS.search(var["Name"]), f"{tier}.{name}: {var['Name']}"
        for param in t.get("Parameters", {}).values():
            assert not SECRET_WORDS.search(param.get("Description", "").split(".")[0]) or param.get("NoEcho")
    (cluster,) = resources(templates["data"], "AWS::RDS::DBCluster").values()
    assert "MasterUserPassword" not in props(cluster)


def _statements(role: Json) -> list[Json]:
    return [s for policy in props(role).get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def test_execution_role_and_one_task_role_per_service_are_separate(templates: dict[str, Json]) -> None:
    roles = resources(templates["security"], "AWS::IAM::Role")
    assert {"ExecutionRole", "GatewayTaskRole", "LedgerTaskRole", "SessionTaskRole"} <= set(roles)
    compute = templates["compute"]
    task_roles = set()
    for name, task in service_task_definitions(compute).items():
        execution, task_role = props(task)["ExecutionRoleArn"], props(task)["TaskRoleArn"]
        assert execution != task_role, name
        service = name.removesuffix("TaskDefinition")
        assert task_role["Fn::ImportValue"]["Fn::Sub"] == f"${{SecurityStack}}-{service}TaskRoleArn"
        task_roles.add(json.dumps(task_role))
    assert len(task_roles) == 3


def test_no_iam_action_star_and_resources_scoped(templates: dict[str, Json]) -> None:
    unscopable = {
        "ecr:GetAuthorizationToken",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "secretsmanager:GetRandomPassword",
    }
    for name, role in all_resources(templates, "AWS::IAM::Role").items():
        for statement in _statements(role):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(a != "*" and not a.endswith(":*") for a in actions), name
            if "*" in statement["Resource"]:
                assert set(actions) <= unscopable, f"{name}: {actions} on *"


def test_session_task_role_reaches_only_its_dynamodb_tables_and_ledger_none(templates: dict[str, Json]) -> None:
    roles = resources(templates["security"], "AWS::IAM::Role")
    session = [s for s in _statements(roles["SessionTaskRole"]) if any(a.startswith("dynamodb:") for a in s["Action"])]
    (statement,) = session
    tables = sorted(r["Fn::Sub"].rsplit("-", 1)[-1] for r in statement["Resource"])
    assert all(
        r["Fn::Sub"].split(":table/")[1].startswith("fintech-${EnvironmentName}-") for r in statement["Resource"]
    )
    assert len(tables) == 3  # the three tables, no index: the service reads by key only (issue 13, item 9)
    for other in ("LedgerTaskRole", "GatewayTaskRole"):
        assert not any(a.startswith("dynamodb:") for s in _statements(roles[other]) for a in s["Action"])


def test_task_roles_may_put_xray_trace_segments(templates: dict[str, Json]) -> None:
    roles = resources(templates["security"], "AWS::IAM::Role")
    for name in ("GatewayTaskRole", "LedgerTaskRole", "SessionTaskRole"):
        assert any("xray:PutTraceSegments" in s["Action"] for s in _statements(roles[name])), name


def test_iam_policies_are_built_with_a_version_and_statements(templates: dict[str, Json]) -> None:
    # awacs renders every document with Version 2012-10-17; a hand-written dict would be the odd one out.
    for name, role in all_resources(templates, "AWS::IAM::Role").items():
        assert props(role)["AssumeRolePolicyDocument"]["Version"] == "2012-10-17", name
        documents = [
            props(role)["AssumeRolePolicyDocument"],
            *(p["PolicyDocument"] for p in props(role).get("Policies", [])),
        ]
        assert all(
            d["Statement"] and all(s["Effect"] in {"Allow", "Deny"} and s["Action"] for s in d["Statement"])
            for d in documents
        ), name
        for policy in props(role).get("Policies", []):
            assert policy["PolicyDocument"]["Version"] == "2012-10-17", name
