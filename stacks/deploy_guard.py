"""What the deploy script refuses: a change set that replaces or deletes a stateful resource.

CloudFormation reports replacement in a change set (``Replacement: True|Conditional``); on top of
that the previous and new templates are compared for the properties whose change forces a
replacement of a stateful resource, so a replacement is caught even where the service computing the
change set does not say so (moto, for one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from awacs import aws as iam
from awacs.aws import Allow, Condition, Deny, PolicyDocument, Principal, Statement, StringEquals

STATEFUL_TYPES: dict[str, tuple[str, ...]] = {
    "AWS::RDS::DBCluster": (
        "DBClusterIdentifier",
        "Engine",
        "DatabaseName",
        "KmsKeyId",
        "StorageEncrypted",
        "MasterUsername",
        "SnapshotIdentifier",
    ),
    "AWS::DynamoDB::Table": ("TableName", "KeySchema", "LocalSecondaryIndexes"),
    "AWS::ElastiCache::ReplicationGroup": (
        "ReplicationGroupId",
        "AtRestEncryptionEnabled",
        "KmsKeyId",
        "CacheSubnetGroupName",
        "SnapshotName",
    ),
    "AWS::KMS::Key": ("KeySpec", "KeyUsage", "MultiRegion"),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::SecretsManager::Secret": ("Name",),
    # A replaced vault would orphan its locked recovery points (they cannot move) (ADR 0106).
    "AWS::Backup::BackupVault": ("BackupVaultName", "EncryptionKeyArn"),
}
"""Stateful resource types (database, table, cache, key, bucket, secret, backup vault) and the
properties whose change replaces them."""


@dataclass(frozen=True)
class Change:
    """One resource change of a change set, as printed."""

    action: str
    logical_id: str
    resource_type: str
    replacement: str

    @classmethod
    def from_api(cls, change: dict[str, Any]) -> Change:
        rc = change.get("ResourceChange", {})
        return cls(
            action=rc.get("Action", "?"),
            logical_id=rc.get("LogicalResourceId", "?"),
            resource_type=rc.get("ResourceType", "?"),
            replacement=rc.get("Replacement", "") or "",
        )


def _resources(template: str | dict[str, Any] | None) -> dict[str, Any]:
    if template is None:
        return {}
    parsed = json.loads(template) if isinstance(template, str) else template
    return dict(parsed.get("Resources", {}))


def dangerous_changes(changes: list[Change], old_template: str | dict[str, Any] | None, new_template: str) -> list[str]:
    """Human-readable reasons for every replacement or deletion of a stateful resource."""
    reasons: list[str] = []
    old, new = _resources(old_template), _resources(new_template)
    seen: set[str] = set()
    for change in changes:
        if change.resource_type not in STATEFUL_TYPES:
            continue
        if change.action == "Remove":
            reasons.append(f"{change.logical_id} ({change.resource_type}) would be DELETED")
            seen.add(change.logical_id)
        elif change.action == "Modify" and change.replacement in ("True", "Conditional"):
            reasons.append(
                f"{change.logical_id} ({change.resource_type}) would be REPLACED (Replacement={change.replacement})"
            )
            seen.add(change.logical_id)
    for logical_id, before in old.items():
        rtype = before.get("Type")
        if rtype not in STATEFUL_TYPES or logical_id in seen:
            continue
        after = new.get(logical_id)
        if after is None or after.get("Type") != rtype:
            reasons.append(f"{logical_id} ({rtype}) would be DELETED (absent from the new template)")
            continue
        for prop in STATEFUL_TYPES[rtype]:
            if before.get("Properties", {}).get(prop) != after.get("Properties", {}).get(prop):
                reasons.append(f"{logical_id} ({rtype}) would be REPLACED (property {prop} changes)")
                break
    return reasons


def data_stack_policy() -> str:
    """Stack policy of the data stack: updates allowed; replacement and deletion denied for exactly
    the types the guard refuses (``STATEFUL_TYPES``).

    Denying every resource instead would let a change set through the guard (say, a parameter group,
    a subnet group or an instance being replaced) and then fail it at execution, half applied. One
    list feeds both, so what passes the guard can execute, and what the policy protects the guard
    has already flagged (``--allow-replacement`` lifts both for one update)."""
    everything = Principal("*")
    policy = PolicyDocument(
        Statement=[
            Statement(Effect=Allow, Principal=everything, Action=[iam.Action("Update", "*")], Resource=["*"]),
            Statement(
                Effect=Deny,
                Principal=everything,
                Action=[iam.Action("Update", "Replace"), iam.Action("Update", "Delete")],
                Resource=["*"],
                Condition=Condition(StringEquals({"ResourceType": sorted(STATEFUL_TYPES)})),
            ),
        ]
    )
    return json.dumps(json.loads(policy.to_json()), sort_keys=True)


def permissive_stack_policy() -> str:
    """Temporary stack policy used only while an ``--allow-replacement`` update of data runs."""
    policy = PolicyDocument(
        Statement=[
            Statement(Effect=Allow, Principal=Principal("*"), Action=[iam.Action("Update", "*")], Resource=["*"])
        ]
    )
    return json.dumps(json.loads(policy.to_json()), sort_keys=True)
