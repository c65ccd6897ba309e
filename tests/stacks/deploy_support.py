"""What the deploy script's tests share: stand-in templates moto can create, and ways to run
``./scripts/deploy`` (or its Deployer) against the moto server of tests/stacks/conftest.py.

moto cannot create most of the real tiers' resources (nor evaluate Fn::ImportValue after a change
set), so the tests deploy small stand-ins for the network and data tiers that exercise the same
paths: change sets, S3 upload of a template over 51,200 bytes, no-change runs, refusal of a table
replacement, failure reporting, --dry-run and confirmation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from cli.deploy import main

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


def write_templates(directory: Path, templates: dict[str, dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for tier, body in templates.items():
        (directory / f"{tier}.json").write_text(json.dumps(body, sort_keys=True))
    return directory


def deploy(url: str, region: str, templates: Path, *extra: str) -> int:
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


def cloudformation(url: str, region: str) -> Any:
    return boto3.client("cloudformation", region_name=region, endpoint_url=url)


def live_stacks(url: str, region: str) -> dict[str, str]:
    stacks = cloudformation(url, region).list_stacks()["StackSummaries"]
    return {s["StackName"]: s["StackStatus"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"}


def deployer(url: str, region: str, answers: list[bool], asked: list[str], **options: Any) -> Any:
    from stacks.deployer import Clients, Deployer, Options

    aws = {name: boto3.client(name, region_name=region, endpoint_url=url) for name in ("cloudformation", "s3", "sts")}
    clients = Clients(cloudformation=aws["cloudformation"], s3=aws["s3"], sts=aws["sts"], region=region)

    def confirm(question: str) -> bool:
        asked.append(question)
        return answers.pop(0)

    return Deployer(clients, Options(environment="dev", poll_seconds=1, emulator=True, **options), confirm=confirm)
