"""Issue 13, item 8: supply chain. The service image lives in an ECR repository of the templates
(immutable tags, scan on push, KMS) and runs by digest only; the collector sidecar comes through an
ECR pull-through cache, never straight from a public registry."""

from __future__ import annotations

import json
import re

from tests.stacks.conftest import Json, props, resources


def test_image_repository_is_immutable_scanned_kms_encrypted_and_retained(templates: dict[str, Json]) -> None:
    t = templates["security"]
    repo = resources(t, "AWS::ECR::Repository")["ImageRepository"]
    p = props(repo)
    assert p["RepositoryName"] == {"Ref": "ImageRepositoryName"}
    assert p["ImageTagMutability"] == "IMMUTABLE"
    assert p["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert p["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    assert p["EncryptionConfiguration"]["KmsKey"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    rules = json.loads(p["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged"]  # releases are never expired
    assert repo["DeletionPolicy"] == "RetainExceptOnCreate" and repo["UpdateReplacePolicy"] == "Retain"
    # An environment whose repository predates the template keeps it.
    assert repo["Condition"] == "CreateImageRepositoryCondition"
    assert t["Parameters"]["CreateImageRepository"]["Default"] == "true"


def test_service_image_is_accepted_by_digest_only(templates: dict[str, Json]) -> None:
    pattern = re.compile(templates["compute"]["Parameters"]["ContainerImage"]["AllowedPattern"])
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fintech-ledger"
    assert pattern.search(f"{registry}@sha256:{'a' * 64}")
    for rejected in (f"{registry}:0123456789ab", f"{registry}:latest", registry, f"{registry}@sha256:abc"):
        assert not pattern.search(rejected), rejected


def test_collector_is_pulled_through_ecr_not_from_a_public_registry(templates: dict[str, Json]) -> None:
    (rule,) = resources(templates["security"], "AWS::ECR::PullThroughCacheRule").values()
    assert props(rule) == {"EcrRepositoryPrefix": "ecr-public", "UpstreamRegistryUrl": "public.ecr.aws"}
    param = templates["compute"]["Parameters"]["AdotImage"]
    assert param["Default"].startswith("ecr-public/aws-observability/aws-otel-collector:")
    assert re.search(param["AllowedPattern"], param["Default"])
    assert not re.search(param["AllowedPattern"], "public.ecr.aws/aws-observability/aws-otel-collector:v1")
    assert "public.ecr.aws/" not in json.dumps(templates["compute"])


def test_execution_role_pulls_from_exactly_the_repository_and_the_collector_cache(templates: dict[str, Json]) -> None:
    role = resources(templates["security"], "AWS::IAM::Role")["ExecutionRole"]
    statements = [s for p in props(role)["Policies"] for s in p["PolicyDocument"]["Statement"]]
    ecr = [s for s in statements if any(a.startswith("ecr:") for a in s["Action"])]
    scoped = {a: s["Resource"] for s in ecr for a in s["Action"] if a != "ecr:GetAuthorizationToken"}
    repo = "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${ImageRepositoryName}"
    cache = "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/ecr-public/aws-observability/*"
    assert [r["Fn::Sub"] for r in scoped["ecr:BatchGetImage"]] == [repo, cache]
    assert [r["Fn::Sub"] for r in scoped["ecr:BatchImportUpstreamImage"]] == [cache]
    assert [r["Fn::Sub"] for r in scoped["ecr:CreateRepository"]] == [cache]
