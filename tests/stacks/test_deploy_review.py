"""The deploy script's safety rails, mostly without AWS: the replacement guard and the data stack
policy, the root cause of a failed deploy, confirmation before anything executes, the region
order, and the expected owner on every artifacts-bucket call (those three against moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from stacks.deploy_guard import Change, dangerous_changes
from stacks.deployer import first_failed_event
from tests.stacks.deploy_support import NETWORK, ROLE_TEMPLATE, deployer, live_stacks


def test_first_failed_event_reports_the_root_cause_not_the_cancellations() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    events = [  # newest first, as DescribeStackEvents returns them
        {
            "LogicalResourceId": "dev-data",
            "ResourceType": "AWS::CloudFormation::Stack",
            "ResourceStatus": "ROLLBACK_IN_PROGRESS",
            "Timestamp": t0 + timedelta(seconds=9),
            "ResourceStatusReason": "The following resource(s) failed to create: [Cluster].",
        },
        {
            "LogicalResourceId": "Table",
            "ResourceType": "AWS::DynamoDB::Table",
            "ResourceStatus": "CREATE_FAILED",
            "Timestamp": t0 + timedelta(seconds=8),
            "ResourceStatusReason": "Resource creation cancelled",
        },
        {
            "LogicalResourceId": "Cluster",
            "ResourceType": "AWS::RDS::DBCluster",
            "ResourceStatus": "CREATE_FAILED",
            "Timestamp": t0 + timedelta(seconds=7),
            "ResourceStatusReason": "Invalid DB engine version",
        },
        {
            "LogicalResourceId": "Old",
            "ResourceType": "AWS::SNS::Topic",
            "ResourceStatus": "CREATE_FAILED",
            "Timestamp": t0 - timedelta(days=1),
            "ResourceStatusReason": "an earlier deploy",
        },
    ]
    assert first_failed_event(events, since=t0) == (
        "Cluster (AWS::RDS::DBCluster) CREATE_FAILED: Invalid DB engine version"
    )


def test_change_set_replacement_or_removal_of_stateful_resources_is_dangerous() -> None:
    changes = [
        Change("Modify", "Cluster", "AWS::RDS::DBCluster", "True"),
        Change("Remove", "Key", "AWS::KMS::Key", ""),
        Change("Modify", "Service", "AWS::ECS::Service", "True"),
    ]
    reasons = dangerous_changes(changes, None, json.dumps({"Resources": {}}))
    assert len(reasons) == 2 and "Cluster" in reasons[0] and "Key" in reasons[1]


def test_data_stack_policy_protects_exactly_the_types_the_guard_refuses() -> None:
    # Issue 13 item 5: a replacement the guard lets through must not be denied at execution.
    from stacks.deploy_guard import STATEFUL_TYPES, data_stack_policy

    policy = json.loads(data_stack_policy())
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"StringEquals": {"ResourceType": sorted(STATEFUL_TYPES)}}
    assert sorted(deny["Action"]) == ["Update:Delete", "Update:Replace"]
    for rtype in STATEFUL_TYPES:  # and the guard refuses a replacement of each of them
        change = Change("Modify", "X", rtype, "True")
        assert dangerous_changes([change], None, json.dumps({"Resources": {}})), rtype
    # A replaced non-stateful resource passes the guard, and the policy does not deny it.
    assert not dangerous_changes([Change("Modify", "P", "AWS::RDS::DBClusterParameterGroup", "True")], None, "{}")


def test_nothing_executes_without_confirmation_and_access_changes_are_called_out(
    moto_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 13, item 6: as `sam deploy --confirm-changeset`: shown, IAM called out, then asked.
    region = "ca-central-1"
    asked: list[str] = []
    body = json.dumps(ROLE_TEMPLATE, sort_keys=True)
    assert deployer(moto_url, region, [False], asked).deploy_all({"network": body}) == 2
    out = capsys.readouterr().out
    assert "access changes (1)" in out and "! Add IAM role TaskRole" in out
    assert "not confirmed" in out and "pass --yes" in out
    assert asked and "dev-network" in asked[0]
    assert live_stacks(moto_url, region) == {}  # not even the REVIEW_IN_PROGRESS placeholder
    assert deployer(moto_url, region, [True], asked).deploy_all({"network": body}) == 0
    assert live_stacks(moto_url, region) == {"dev-network": "CREATE_COMPLETE"}


def test_yes_executes_without_asking_and_no_terminal_means_no(moto_url: str) -> None:
    from stacks.deploy_review import ask_at_terminal

    asked: list[str] = []
    body = json.dumps(NETWORK, sort_keys=True)
    assert deployer(moto_url, "sa-east-1", [], asked, assume_yes=True).deploy_all({"network": body}) == 0
    assert asked == []
    # Under pytest stdin is not a terminal: a forgotten --yes in CI refuses instead of deploying.
    assert ask_at_terminal("execute?") is False


def test_region_comes_from_the_flag_then_aws_region_then_the_profile_never_a_default() -> None:
    from cli.deploy import resolve_region

    assert resolve_region("eu-west-3", {"AWS_REGION": "us-east-2"}, "ap-south-1") == "eu-west-3"
    assert resolve_region(None, {"AWS_REGION": "us-east-2"}, "ap-south-1") == "us-east-2"
    assert resolve_region(None, {}, "ap-south-1") == "ap-south-1"
    with pytest.raises(SystemExit, match="no region"):
        resolve_region(None, {}, None)


def test_artifacts_bucket_calls_name_the_expected_owner(moto_url: str) -> None:
    # Every call on the artifacts bucket but its creation names the account that must own it, so a
    # same-named bucket of another account is refused by S3 (moto does not check the parameter;
    # recording what reaches it is the test).
    from stacks.deployer import Clients, Deployer, Options

    region = "eu-north-1"
    real = boto3.client("s3", region_name=region, endpoint_url=moto_url)
    calls: list[tuple[str, dict[str, Any]]] = []

    class Recording:
        def __getattr__(self, attr: str) -> Any:
            method = getattr(real, attr)

            def record(**kwargs: Any) -> Any:
                calls.append((attr, kwargs))
                return method(**kwargs)

            return record

    aws = {n: boto3.client(n, region_name=region, endpoint_url=moto_url) for n in ("cloudformation", "sts")}
    clients = Clients(cloudformation=aws["cloudformation"], s3=Recording(), sts=aws["sts"], region=region)
    options = Options(environment="dev", poll_seconds=1, emulator=True, assume_yes=True)
    body = json.dumps(NETWORK | {"Metadata": {"Padding": "x" * 60_000}}, sort_keys=True)
    assert Deployer(clients, options).deploy_all({"network": body}) == 0
    names = [name for name, _ in calls]
    assert "head_bucket" in names and "put_object" in names and "create_bucket" in names
    for name, kwargs in calls:
        if name != "create_bucket":  # CreateBucket has no such parameter: the caller owns what it creates
            assert kwargs.get("ExpectedBucketOwner") == "123456789012", name
