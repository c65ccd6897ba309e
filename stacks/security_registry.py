"""Security tier, registry part (issue 13, item 8): the ECR repository of the service image and the
pull-through cache the collector sidecar is pulled through.

Invariants:
- The service image lives in a repository of this account with immutable tags, scan on push and
  KMS encryption. Tasks reference it by digest (the compute tier's ``ContainerImage`` accepts
  nothing else), so what was scanned and reviewed is what runs.
- Nothing is pulled from a public registry at task start. The collector comes through an ECR
  pull-through cache of ECR Public (``ecr-public/...`` in this account), so it passes the same ECR
  endpoints, IAM and scanning as the service image.
- Where the repository already exists (created by hand before it was in the template),
  ``CreateImageRepository=false`` leaves it alone. The execution role's permissions name it the same way.
"""

from __future__ import annotations

import json

from awacs import aws as iam
from awacs.aws import Allow, Statement
from troposphere import Equals, Parameter, Ref, Sub, Template, ecr

from stacks.common import RETAIN_EXCEPT_ON_CREATE, tags
from stacks.config import PlatformConfig

CREATE_REPOSITORY_PARAM = "CreateImageRepository"
CREATE_REPOSITORY = "CreateImageRepositoryCondition"
PULL_THROUGH_PREFIX = "ecr-public"
"""Repository prefix of the ECR Public pull-through cache (``<account>.dkr.ecr.<region>.<suffix>/ecr-public/...``)."""
UNTAGGED_KEEP_DAYS = 14

LIFECYCLE_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {UNTAGGED_KEEP_DAYS} days (tagged releases stay)",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": UNTAGGED_KEEP_DAYS,
                },
                "action": {"type": "expire"},
            }
        ]
    },
    sort_keys=True,
)


def build_registry(t: Template, platform: PlatformConfig, data_key: object) -> list[Statement]:
    """Add the repository and the pull-through cache rule; return the execution role's ECR statements."""
    t.add_parameter(
        Parameter(
            CREATE_REPOSITORY_PARAM,
            Type="String",
            AllowedValues=["true", "false"],
            Default="true",
            Description="false where the ImageRepositoryName repository was created outside this stack "
            "(before it was in the template); the stack then leaves it as it is.",
        )
    )
    t.add_condition(CREATE_REPOSITORY, Equals(Ref(CREATE_REPOSITORY_PARAM), "true"))
    t.add_resource(
        ecr.Repository(
            "ImageRepository",
            Condition=CREATE_REPOSITORY,
            RepositoryName=Ref("ImageRepositoryName"),
            ImageTagMutability="IMMUTABLE",
            ImageScanningConfiguration=ecr.ImageScanningConfiguration(ScanOnPush=True),
            EncryptionConfiguration=ecr.EncryptionConfiguration(EncryptionType="KMS", KmsKey=data_key),
            LifecyclePolicy=ecr.LifecyclePolicy(LifecyclePolicyText=LIFECYCLE_POLICY),
            Tags=tags(platform),
            DeletionPolicy=RETAIN_EXCEPT_ON_CREATE,
            UpdateReplacePolicy="Retain",
        )
    )
    t.add_resource(
        ecr.PullThroughCacheRule(
            "EcrPublicPullThroughCache",
            EcrRepositoryPrefix=PULL_THROUGH_PREFIX,
            UpstreamRegistryUrl="public.ecr.aws",
        )
    )

    def repository(name: str) -> Sub:
        return Sub(f"arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:${{AWS::AccountId}}:repository/{name}")

    collector = repository(f"{PULL_THROUGH_PREFIX}/aws-observability/*")
    return [
        # ecr:GetAuthorizationToken has no resource-level permission.
        Statement(Effect=Allow, Action=[iam.Action("ecr", "GetAuthorizationToken")], Resource=["*"]),
        Statement(
            Effect=Allow,
            Action=[
                iam.Action("ecr", "BatchGetImage"),
                iam.Action("ecr", "GetDownloadUrlForLayer"),
                iam.Action("ecr", "BatchCheckLayerAvailability"),
            ],
            Resource=[repository("${ImageRepositoryName}"), collector],
        ),
        # The first pull of a collector version creates its cache repository and imports it.
        Statement(
            Effect=Allow,
            Action=[iam.Action("ecr", "CreateRepository"), iam.Action("ecr", "BatchImportUpstreamImage")],
            Resource=[collector],
        ),
    ]
