"""./scripts/deploy (cli/deploy.py) against a moto server started here, on loopback only.

moto cannot create most of the real tiers' resources (nor evaluate Fn::ImportValue after a change
set), so these tests deploy small stand-in templates for the network and data tiers that exercise
the same paths: change sets, S3 upload of a template over 51,200 bytes, no-change runs, refusal of a
table replacement, failure reporting and --dry-run.
"""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.deploy import main
from stacks.deploy_guard import Change, dangerous_changes
from stacks.deployer import first_failed_event

NETWORK: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"EnvironmentName": {"Type": "String", "Description": "environment"}},
    "Resources": {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": "${EnvironmentName}-t"}}}
    },
}
DATA: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Metadata": {"Padding": "x" * 60_000},  # over 51,200 bytes: must go through S3
    "Parameters": {
        "EnvironmentName": {"Type": "String", "Description": "environment"},
        "NetworkStack": {"Type": "String", "Description": "network stack name"},
    },
    "Resources": {
        "SessionsTable": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "TableName": {"Fn::Sub": "fintech-${EnvironmentName}-sessions"},
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "token_hash", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "token_hash", "KeyType": "HASH"}],
            },
        }
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url(fake_credentials: None) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("moto server did not start")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


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


def _write(directory: Path, templates: dict[str, dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for tier, body in templates.items():
        (directory / f"{tier}.json").write_text(json.dumps(body, sort_keys=True))
    return directory


def _deploy(url: str, region: str, templates: Path, *extra: str) -> int:
    return main(
        [
            "--env",
            "dev",
            "--region",
            region,
            "--endpoint-url",
            url,
            "--templates",
            str(templates),
            "--poll-seconds",
            "1",
            "--yes",
            *extra,
        ]
    )


def _cfn(url: str, region: str) -> Any:
    return boto3.client("cloudformation", region_name=region, endpoint_url=url)


def _live_stacks(url: str, region: str) -> dict[str, str]:
    stacks = _cfn(url, region).list_stacks()["StackSummaries"]
    return {s["StackName"]: s["StackStatus"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"}


@pytest.fixture(scope="module")
def deployed(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    region = "us-east-1"
    templates = _write(tmp_path_factory.mktemp("tpl"), {"network": NETWORK, "data": DATA})
    rc = _deploy(moto_url, region, templates)
    return region, templates, f"rc={rc}"


def test_first_deploy_creates_the_stacks_in_order_through_change_sets(
    moto_url: str, deployed: tuple[str, Path, str]
) -> None:
    region, _, rc = deployed
    assert rc == "rc=0"
    assert _live_stacks(moto_url, region) == {"dev-network": "CREATE_COMPLETE", "dev-data": "CREATE_COMPLETE"}
    tables = boto3.client("dynamodb", region_name=region, endpoint_url=moto_url).list_tables()["TableNames"]
    assert "fintech-dev-sessions" in tables


def test_template_over_51200_bytes_is_uploaded_to_the_artifacts_bucket(
    moto_url: str, deployed: tuple[str, Path, str]
) -> None:
    region = deployed[0]
    s3 = boto3.client("s3", region_name=region, endpoint_url=moto_url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=f"dev-fintech-cfn-123456789012-{region}")["Contents"]]
    assert any(k.startswith("dev/data-") for k in keys) and not any(k.startswith("dev/network-") for k in keys)


def test_data_stack_gets_a_policy_denying_replace_and_delete(moto_url: str, deployed: tuple[str, Path, str]) -> None:
    policy = json.loads(_cfn(moto_url, deployed[0]).get_stack_policy(StackName="dev-data")["StackPolicyBody"])
    denied = [a for s in policy["Statement"] if s["Effect"] == "Deny" for a in s["Action"]]
    assert sorted(denied) == ["Update:Delete", "Update:Replace"]


def test_second_deploy_reports_no_changes_and_succeeds(
    moto_url: str, deployed: tuple[str, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    region, templates, _ = deployed
    capsys.readouterr()
    assert _deploy(moto_url, region, templates) == 0
    out = capsys.readouterr().out
    assert out.count("no changes") == 2 and "deploy complete" in out
    cfn = _cfn(moto_url, region)
    leftovers = [
        c
        for c in cfn.list_change_sets(StackName="dev-data")["Summaries"]
        if c["StackName"] == "dev-data" and c["ExecutionStatus"] != "EXECUTE_COMPLETE"
    ]
    assert leftovers == []  # the empty change set was deleted


def test_replacing_a_table_is_refused_without_allow_replacement(
    moto_url: str, deployed: tuple[str, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region = deployed[0]
    changed = copy.deepcopy(DATA)
    props = changed["Resources"]["SessionsTable"]["Properties"]
    props["AttributeDefinitions"][0]["AttributeName"] = props["KeySchema"][0]["AttributeName"] = "token_id"
    templates = _write(tmp_path, {"network": NETWORK, "data": changed})
    capsys.readouterr()
    assert _deploy(moto_url, region, templates) == 2
    out = capsys.readouterr().out
    assert "REFUSED dev-data" in out and "SessionsTable" in out and "--allow-replacement" in out
    table = boto3.client("dynamodb", region_name=region, endpoint_url=moto_url).describe_table(
        TableName="fintech-dev-sessions"
    )["Table"]
    assert table["KeySchema"][0]["AttributeName"] == "token_hash"


def test_failing_stack_exits_non_zero_with_the_reason_printed(
    moto_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = copy.deepcopy(DATA)
    broken["Resources"]["Queue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"Tags": [{"Key": "t", "Value": {"Fn::ImportValue": {"Fn::Sub": "${NetworkStack}-Missing"}}}]},
    }
    templates = _write(tmp_path, {"network": NETWORK, "data": broken})
    assert _deploy(moto_url, "us-west-2", templates) == 1
    out = capsys.readouterr().out
    assert "FAILED dev-data" in out and "No export named dev-network-Missing" in out
    assert "deploy complete" not in out


def test_dry_run_creates_and_prints_change_sets_but_executes_nothing(
    moto_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = _write(tmp_path, {"network": NETWORK})
    assert _deploy(moto_url, "eu-central-1", templates, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "Add      Topic" in out and "not executed" in out and "dry run complete" in out
    assert _live_stacks(moto_url, "eu-central-1") == {}
    sns = boto3.client("sns", region_name="eu-central-1", endpoint_url=moto_url)
    assert sns.list_topics()["Topics"] == []


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


def test_allow_replacement_lets_the_refused_change_through(
    moto_url: str, deployed: tuple[str, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region = deployed[0]
    changed = copy.deepcopy(DATA)
    changed["Resources"]["SessionsTable"]["Properties"]["TableName"] = {"Fn::Sub": "fintech-${EnvironmentName}-s2"}
    templates = _write(tmp_path, {"network": NETWORK, "data": changed})
    assert _deploy(moto_url, region, templates, "--allow-replacement") == 0
    out = capsys.readouterr().out
    assert "would be REPLACED" in out and "lifting the data stack policy" in out
    policy = json.loads(_cfn(moto_url, region).get_stack_policy(StackName="dev-data")["StackPolicyBody"])
    assert any(s["Effect"] == "Deny" for s in policy["Statement"])  # restored afterwards


def test_a_failed_first_create_is_rerun_by_deleting_the_rolled_back_stack(
    moto_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 13 item 5: ROLLBACK_COMPLETE holds nothing (fixed names are RetainExceptOnCreate or
    # Snapshot), so the next run deletes the empty stack and creates it again instead of stopping.
    from stacks.deployer import Clients, Deployer, Options

    region = "ap-southeast-2"
    broken = copy.deepcopy(DATA)
    broken["Resources"]["Queue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"Tags": [{"Key": "t", "Value": {"Fn::ImportValue": {"Fn::Sub": "${NetworkStack}-Missing"}}}]},
    }
    assert _deploy(moto_url, region, _write(tmp_path / "broken", {"network": NETWORK, "data": broken})) == 1
    # moto refuses the execution outright and leaves the stack REVIEW_IN_PROGRESS; AWS would have
    # created, failed and rolled back to ROLLBACK_COMPLETE. Report that state, and let every other
    # call (the delete, the waiters, the new change set) reach moto.
    real = _cfn(moto_url, region)

    class RolledBack:
        def __getattr__(self, attr: str) -> Any:
            return getattr(real, attr)

        def describe_stacks(self, **kwargs: Any) -> Any:
            answer = real.describe_stacks(**kwargs)
            for stack in answer["Stacks"]:
                if stack["StackStatus"] == "REVIEW_IN_PROGRESS":
                    stack["StackStatus"] = "ROLLBACK_COMPLETE"
            return answer

    def deployer(dry_run: bool) -> Deployer:
        aws = {name: boto3.client(name, region_name=region, endpoint_url=moto_url) for name in ("s3", "sts")}
        clients = Clients(cloudformation=RolledBack(), s3=aws["s3"], sts=aws["sts"], region=region)
        options = Options(environment="dev", dry_run=dry_run, poll_seconds=1, emulator=True, assume_yes=True)
        return Deployer(clients, options)

    capsys.readouterr()
    body = json.dumps(DATA, sort_keys=True)
    assert deployer(dry_run=True).deploy_all({"data": body}) == 1
    assert "a run without --dry-run deletes it" in capsys.readouterr().out
    assert deployer(dry_run=False).deploy_all({"data": body}) == 0
    out = capsys.readouterr().out
    assert "is ROLLBACK_COMPLETE: its first create failed" in out and "deleting the empty dev-data" in out
    assert _live_stacks(moto_url, region)["dev-data"] == "CREATE_COMPLETE"


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


def _deployer(url: str, region: str, answers: list[bool], asked: list[str], **options: Any) -> Any:
    from stacks.deployer import Clients, Deployer, Options

    aws = {name: boto3.client(name, region_name=region, endpoint_url=url) for name in ("cloudformation", "s3", "sts")}
    clients = Clients(cloudformation=aws["cloudformation"], s3=aws["s3"], sts=aws["sts"], region=region)

    def confirm(question: str) -> bool:
        asked.append(question)
        return answers.pop(0)

    return Deployer(clients, Options(environment="dev", poll_seconds=1, emulator=True, **options), confirm=confirm)


ROLE_TEMPLATE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"EnvironmentName": {"Type": "String", "Description": "environment"}},
    "Resources": {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "TaskRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
    },
}


def test_nothing_executes_without_confirmation_and_access_changes_are_called_out(
    moto_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 13, item 6: as `sam deploy --confirm-changeset`: shown, IAM called out, then asked.
    region = "ca-central-1"
    asked: list[str] = []
    body = json.dumps(ROLE_TEMPLATE, sort_keys=True)
    assert _deployer(moto_url, region, [False], asked).deploy_all({"network": body}) == 2
    out = capsys.readouterr().out
    assert "access changes (1)" in out and "! Add IAM role TaskRole" in out
    assert "not confirmed" in out and "pass --yes" in out
    assert asked and "dev-network" in asked[0]
    assert _live_stacks(moto_url, region) == {}  # not even the REVIEW_IN_PROGRESS placeholder
    assert _deployer(moto_url, region, [True], asked).deploy_all({"network": body}) == 0
    assert _live_stacks(moto_url, region) == {"dev-network": "CREATE_COMPLETE"}


def test_yes_executes_without_asking_and_no_terminal_means_no(moto_url: str) -> None:
    from stacks.deploy_review import ask_at_terminal

    asked: list[str] = []
    body = json.dumps(NETWORK, sort_keys=True)
    assert _deployer(moto_url, "sa-east-1", [], asked, assume_yes=True).deploy_all({"network": body}) == 0
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
