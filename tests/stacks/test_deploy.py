"""./scripts/deploy (cli/deploy.py) end to end against a moto server on loopback: change sets in
tier order, S3 upload of large templates, the data stack policy, no-change runs, the replacement
guard, failure reporting, --dry-run and re-running a failed first create."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.stacks.deploy_support import (
    DATA,
    NETWORK,
    cloudformation,
    deploy,
    live_stacks,
    write_templates,
)


@pytest.fixture(scope="module")
def deployed(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    region = "us-east-1"
    templates = write_templates(tmp_path_factory.mktemp("tpl"), {"network": NETWORK, "data": DATA})
    rc = deploy(moto_url, region, templates)
    return region, templates, f"rc={rc}"


def test_first_deploy_creates_the_stacks_in_order_through_change_sets(
    moto_url: str, deployed: tuple[str, Path, str]
) -> None:
    region, _, rc = deployed
    assert rc == "rc=0"
    assert live_stacks(moto_url, region) == {"dev-network": "CREATE_COMPLETE", "dev-data": "CREATE_COMPLETE"}
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
    policy = json.loads(cloudformation(moto_url, deployed[0]).get_stack_policy(StackName="dev-data")["StackPolicyBody"])
    denied = [a for s in policy["Statement"] if s["Effect"] == "Deny" for a in s["Action"]]
    assert sorted(denied) == ["Update:Delete", "Update:Replace"]


def test_second_deploy_reports_no_changes_and_succeeds(
    moto_url: str, deployed: tuple[str, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    region, templates, _ = deployed
    capsys.readouterr()
    assert deploy(moto_url, region, templates) == 0
    out = capsys.readouterr().out
    assert out.count("no changes") == 2 and "deploy complete" in out
    cfn = cloudformation(moto_url, region)
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
    templates = write_templates(tmp_path, {"network": NETWORK, "data": changed})
    capsys.readouterr()
    assert deploy(moto_url, region, templates) == 2
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
    templates = write_templates(tmp_path, {"network": NETWORK, "data": broken})
    assert deploy(moto_url, "us-west-2", templates) == 1
    out = capsys.readouterr().out
    assert "FAILED dev-data" in out and "No export named dev-network-Missing" in out
    assert "deploy complete" not in out


def test_dry_run_creates_and_prints_change_sets_but_executes_nothing(
    moto_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = write_templates(tmp_path, {"network": NETWORK})
    assert deploy(moto_url, "eu-central-1", templates, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "Add      Topic" in out and "not executed" in out and "dry run complete" in out
    assert live_stacks(moto_url, "eu-central-1") == {}
    sns = boto3.client("sns", region_name="eu-central-1", endpoint_url=moto_url)
    assert sns.list_topics()["Topics"] == []


def test_allow_replacement_lets_the_refused_change_through(
    moto_url: str, deployed: tuple[str, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region = deployed[0]
    changed = copy.deepcopy(DATA)
    changed["Resources"]["SessionsTable"]["Properties"]["TableName"] = {"Fn::Sub": "fintech-${EnvironmentName}-s2"}
    templates = write_templates(tmp_path, {"network": NETWORK, "data": changed})
    assert deploy(moto_url, region, templates, "--allow-replacement") == 0
    out = capsys.readouterr().out
    assert "would be REPLACED" in out and "lifting the data stack policy" in out
    policy = json.loads(cloudformation(moto_url, region).get_stack_policy(StackName="dev-data")["StackPolicyBody"])
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
    assert deploy(moto_url, region, write_templates(tmp_path / "broken", {"network": NETWORK, "data": broken})) == 1
    # moto refuses the execution outright and leaves the stack REVIEW_IN_PROGRESS; AWS would have
    # created, failed and rolled back to ROLLBACK_COMPLETE. Report that state, and let every other
    # call (the delete, the waiters, the new change set) reach moto.
    real = cloudformation(moto_url, region)

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
    assert live_stacks(moto_url, region)["dev-data"] == "CREATE_COMPLETE"
