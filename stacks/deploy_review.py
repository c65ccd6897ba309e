"""What the deploy script shows an operator before it executes a change set, and how it asks.

As ``sam deploy --confirm-changeset`` and CDK's approval do: every change set is printed, changes
that alter who may do what (IAM, resource and key policies, security groups, Lambda permissions,
the WAF) are called out, and nothing executes without a "y" typed at a terminal or ``--yes``
(CI). Without a terminal and without ``--yes`` the answer is no, so a pipeline that forgot the
flag stops instead of deploying unreviewed changes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from stacks.deploy_guard import Change

SECURITY_TYPES: dict[str, str] = {
    "AWS::IAM::Role": "IAM role",
    "AWS::IAM::Policy": "IAM policy",
    "AWS::IAM::ManagedPolicy": "IAM policy",
    "AWS::IAM::InstanceProfile": "IAM instance profile",
    "AWS::KMS::Key": "key policy",
    "AWS::S3::BucketPolicy": "bucket policy",
    "AWS::SNS::TopicPolicy": "topic policy",
    "AWS::Lambda::Permission": "Lambda permission",
    "AWS::SecretsManager::ResourcePolicy": "secret policy",
    "AWS::EC2::SecurityGroup": "security group",
    "AWS::EC2::SecurityGroupIngress": "security group rule",
    "AWS::EC2::SecurityGroupEgress": "security group rule",
    "AWS::WAFv2::WebACL": "WAF web ACL",
    "AWS::Backup::BackupVault": "backup vault policy or lock",
}
"""Resource types whose change alters access, and how the call-out names them."""

Confirm = Callable[[str], bool]


def security_callouts(changes: list[Change]) -> list[str]:
    """One line per change that alters access, e.g. ``Modify IAM role LedgerTaskRole``."""
    return [
        f"{c.action} {SECURITY_TYPES[c.resource_type]} {c.logical_id}"
        for c in changes
        if c.resource_type in SECURITY_TYPES
    ]


def ask_at_terminal(question: str) -> bool:
    """``question [y/N]`` on a terminal; False without one (use ``--yes`` in CI)."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
