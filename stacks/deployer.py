"""Deploys the tier templates as ``<env>-<tier>`` stacks through change sets (infrastructure.md,
"Deploy script"). ``cli/deploy.py`` is the command line over :class:`Deployer`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from stacks.deploy_guard import Change, dangerous_changes, data_stack_policy, permissive_stack_policy
from stacks.deploy_review import Confirm, ask_at_terminal, security_callouts
from stacks.naming import TIERS, stack_name

MAX_TEMPLATE_BODY = 51_200
"""Largest TemplateBody CloudFormation accepts; larger templates go through S3 (TemplateURL)."""
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class DeployError(Exception):
    """A deploy step failed; the message is what the operator reads."""


class Refused(DeployError):
    """A change set would replace or delete a stateful resource and --allow-replacement is absent."""


class NotConfirmed(Refused):
    """The operator did not confirm the change set (or there was no terminal and no --yes)."""


@dataclass
class Options:
    environment: str
    dry_run: bool = False
    allow_replacement: bool = False
    parameters: dict[str, str] = field(default_factory=dict)
    """Values of template parameters other than EnvironmentName and the <Tier>Stack names."""
    artifacts_bucket: str | None = None
    poll_seconds: int = 15
    max_attempts: int = 240
    emulator: bool = False
    """True with --endpoint-url: APIs the emulator lacks (termination protection) only warn."""
    assume_yes: bool = False
    """--yes: execute every change set without asking (CI)."""


@dataclass
class Clients:
    cloudformation: Any
    s3: Any
    sts: Any
    region: str


Printer = Callable[[str], None]


class Deployer:
    def __init__(
        self, clients: Clients, options: Options, out: Printer = print, confirm: Confirm = ask_at_terminal
    ) -> None:
        self.cfn = clients.cloudformation
        self.s3 = clients.s3
        self.sts = clients.sts
        self.region = clients.region
        self.options = options
        self.say = out
        self.confirm = confirm
        self._bucket: str | None = None

    # -- whole run ---------------------------------------------------------------------------

    def deploy_all(self, templates: Mapping[str, str]) -> int:
        """Deploy every tier in ``templates`` in dependency order; the process exit code."""
        failures = 0
        for tier in [t for t in TIERS if t in templates]:
            try:
                self.deploy_stack(tier, templates[tier])
            except Refused as exc:
                self.say(f"REFUSED {stack_name(self.options.environment, tier)}: {exc}")
                return 2
            except (DeployError, ClientError, BotoCoreError) as exc:
                self.say(f"FAILED {stack_name(self.options.environment, tier)}: {exc}")
                if not self.options.dry_run:
                    return 1
                failures += 1  # a dry run previews every tier it can
        if failures:
            self.say(f"dry run: {failures} change set(s) could not be previewed")
            return 1
        self.say("dry run complete: nothing executed" if self.options.dry_run else "deploy complete")
        return 0

    # -- one stack ---------------------------------------------------------------------------

    def _stack(self, name: str) -> dict[str, Any] | None:
        try:
            stacks = self.cfn.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise DeployError(str(exc)) from exc
        return stacks[0] if stacks else None

    def _parameters(self, tier: str, body: str, existing: dict[str, Any] | None) -> list[dict[str, Any]]:
        declared = json.loads(body).get("Parameters", {})
        previous = {p["ParameterKey"] for p in (existing or {}).get("Parameters", [])}
        values: list[dict[str, Any]] = []
        for key in sorted(declared):
            if key == "EnvironmentName":
                values.append({"ParameterKey": key, "ParameterValue": self.options.environment})
            elif key.endswith("Stack") and key[:-5].lower() in TIERS:
                values.append(
                    {"ParameterKey": key, "ParameterValue": stack_name(self.options.environment, key[:-5].lower())}
                )
            elif key in self.options.parameters:
                values.append({"ParameterKey": key, "ParameterValue": self.options.parameters[key]})
            elif key in previous:
                values.append({"ParameterKey": key, "UsePreviousValue": True})
            elif "Default" not in declared[key]:
                raise DeployError(f"parameter {key} of the {tier} template has no value: pass --parameter {key}=...")
        return values

    def _template_source(self, tier: str, body: str) -> dict[str, str]:
        if len(body.encode()) <= MAX_TEMPLATE_BODY:
            return {"TemplateBody": body}
        bucket = self._artifacts_bucket()
        digest = hashlib.sha256(body.encode()).hexdigest()[:16]
        key = f"{self.options.environment}/{tier}-{digest}.json"
        self.s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body.encode(),
            ContentType="application/json",
            ExpectedBucketOwner=self._account(),  # never upload a template into someone else's bucket
        )
        url = f"https://{bucket}.s3.{self.region}.amazonaws.com/{key}"
        self.say(f"  template is {len(body.encode())} bytes: uploaded to s3://{bucket}/{key}")
        return {"TemplateURL": url}

    def _artifacts_bucket(self) -> str:
        if self._bucket:
            return self._bucket
        account = self._account()
        bucket = self.options.artifacts_bucket or f"{self.options.environment}-fintech-cfn-{account}-{self.region}"
        try:
            # A bucket name is global: one owned by another account must never receive templates.
            self.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("403", "AccessDenied", "Forbidden"):
                raise DeployError(f"artifacts bucket {bucket} exists but is not owned by account {account}") from exc
            self.say(f"  creating artifacts bucket {bucket}")
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.s3.create_bucket(**kwargs)
            self.s3.put_public_access_block(
                Bucket=bucket,
                ExpectedBucketOwner=account,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
            self.s3.put_bucket_encryption(
                Bucket=bucket,
                ExpectedBucketOwner=account,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
            self.s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}, ExpectedBucketOwner=account
            )
        self._bucket = bucket
        return bucket

    def _account(self) -> str:
        account: str = self.sts.get_caller_identity()["Account"]
        return account

    def _waiter_config(self) -> dict[str, int]:
        return {"Delay": self.options.poll_seconds, "MaxAttempts": self.options.max_attempts}

    def deploy_stack(self, tier: str, body: str) -> None:
        name = stack_name(self.options.environment, tier)
        existing = self._stack(name)
        status = (existing or {}).get("StackStatus", "")
        if status == "ROLLBACK_COMPLETE":
            self._discard_failed_create(name)
            existing, status = None, ""
        change_type = "UPDATE" if existing and status != "REVIEW_IN_PROGRESS" else "CREATE"
        self.say(f"== {name} ({change_type})")
        change_set = f"deploy-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}-{tier}"
        try:
            created = self.cfn.create_change_set(
                StackName=name,
                ChangeSetName=change_set,
                ChangeSetType=change_type,
                Parameters=self._parameters(tier, body, existing),
                Capabilities=CAPABILITIES,
                Tags=[{"Key": "Environment", "Value": self.options.environment}, {"Key": "Tier", "Value": tier}],
                Description=f"{tier} tier of {self.options.environment}",
                **self._template_source(tier, body),
            )
        except ClientError as exc:
            if any(marker in str(exc) for marker in NO_CHANGES):
                self.say("  no changes")
                return
            raise DeployError(f"cannot create change set: {exc}") from exc
        change_set_id = created["Id"]
        try:
            self.cfn.get_waiter("change_set_create_complete").wait(
                ChangeSetName=change_set_id, StackName=name, WaiterConfig=self._waiter_config()
            )
        except WaiterError:
            described = self.cfn.describe_change_set(ChangeSetName=change_set_id, StackName=name)
            reason = described.get("StatusReason", "")
            if any(marker in reason for marker in NO_CHANGES):
                self.say("  no changes; deleting the empty change set")
                self.cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
                return
            raise DeployError(f"change set {change_set} failed: {reason}") from None
        changes = self._changes(change_set_id, name)
        self._print_changes(changes)
        if not changes:
            self.say("  no changes; deleting the empty change set")
            self.cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
            return
        old_template = self.cfn.get_template(StackName=name)["TemplateBody"] if change_type == "UPDATE" else None
        dangers = dangerous_changes(changes, old_template, body)
        for reason in dangers:
            self.say(f"  stateful: {reason}")
        if dangers and not self.options.allow_replacement:
            self.cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
            raise Refused(
                "the change set replaces or deletes stateful resources (" + "; ".join(dangers) + "); "
                "rerun with --allow-replacement after taking a backup"
            )
        if self.options.dry_run:
            self.say(f"  dry run: change set {change_set} not executed; deleting it")
            self.cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
            if change_type == "CREATE" and existing is None:
                self.cfn.delete_stack(StackName=name)  # the empty REVIEW_IN_PROGRESS placeholder
            return
        if not self.options.assume_yes and not self.confirm(f"  execute change set {change_set} on {name}?"):
            self.cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
            if change_type == "CREATE" and existing is None:
                self.cfn.delete_stack(StackName=name)  # the empty REVIEW_IN_PROGRESS placeholder
            raise NotConfirmed(f"change set {change_set} not confirmed (pass --yes to deploy without asking)")
        self._execute(tier, name, change_set_id, change_type, relax_policy=bool(dangers))
        self._protect(tier, name)

    def _discard_failed_create(self, name: str) -> None:
        """Delete a stack whose first create rolled back, so that this run creates it again.

        ``ROLLBACK_COMPLETE`` means the create failed and CloudFormation deleted what it had made:
        the resources with fixed names are ``RetainExceptOnCreate`` or ``Snapshot`` (ADR 0104), so
        the empty stack is all that is left, and no termination protection was ever set on it (that
        happens after a successful deploy). A dry run only says what a real run would do."""
        failure = self.first_failure(name, datetime.min.replace(tzinfo=UTC))
        self.say(f"== {name} is ROLLBACK_COMPLETE: its first create failed ({failure or 'see its events'})")
        if self.options.dry_run:
            raise DeployError(f"{name} is ROLLBACK_COMPLETE; a run without --dry-run deletes it and creates it again")
        self.say(f"  deleting the empty {name} to create it again")
        self.cfn.delete_stack(StackName=name)
        self.cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig=self._waiter_config())

    def _changes(self, change_set_id: str, name: str) -> list[Change]:
        changes: list[Change] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ChangeSetName": change_set_id, "StackName": name}
            if token:
                kwargs["NextToken"] = token
            page = self.cfn.describe_change_set(**kwargs)
            changes += [Change.from_api(c) for c in page.get("Changes", [])]
            token = page.get("NextToken")
            if not token:
                return changes

    def _print_changes(self, changes: list[Change]) -> None:
        if not changes:
            return
        self.say(f"  {'ACTION':<8} {'LOGICAL ID':<44} {'TYPE':<44} REPLACEMENT")
        for c in changes:
            self.say(f"  {c.action:<8} {c.logical_id:<44} {c.resource_type:<44} {c.replacement or '-'}")
        callouts = security_callouts(changes)
        if callouts:
            self.say(f"  access changes ({len(callouts)}): review these before confirming")
            for line in callouts:
                self.say(f"    ! {line}")

    def _execute(self, tier: str, name: str, change_set_id: str, change_type: str, *, relax_policy: bool) -> None:
        started = datetime.now(UTC)
        if relax_policy and tier == "data":
            self.say("  --allow-replacement: lifting the data stack policy for this update")
            self.cfn.set_stack_policy(StackName=name, StackPolicyBody=permissive_stack_policy())
        try:
            self.cfn.execute_change_set(ChangeSetName=change_set_id, StackName=name)
            waiter = "stack_create_complete" if change_type == "CREATE" else "stack_update_complete"
            self.cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig=self._waiter_config())
        except (ClientError, WaiterError) as exc:
            failure = self.first_failure(name, started)
            raise DeployError(failure or str(exc)) from None
        finally:
            if relax_policy and tier == "data":
                self.cfn.set_stack_policy(StackName=name, StackPolicyBody=data_stack_policy())
        self.say(f"  {change_type.lower()} complete")

    def _protect(self, tier: str, name: str) -> None:
        try:
            self.cfn.update_termination_protection(StackName=name, EnableTerminationProtection=True)
            self.say("  termination protection enabled")
        except Exception as exc:  # an emulator may answer with a non-AWS error page
            if not self.options.emulator:
                raise DeployError(f"cannot enable termination protection: {exc}") from exc
            self.say(f"  warning: the endpoint does not support UpdateTerminationProtection ({type(exc).__name__})")
        if tier == "data":
            self.cfn.set_stack_policy(StackName=name, StackPolicyBody=data_stack_policy())
            self.say("  stack policy set: Update:Replace and Update:Delete denied")

    def first_failure(self, name: str, since: datetime) -> str | None:
        """The first resource that failed since ``since``, with its reason, from the stack events."""
        events: list[dict[str, Any]] = []
        try:
            for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=name):
                events += page["StackEvents"]
        except ClientError:
            return None
        return first_failed_event(events, since)


def first_failed_event(events: list[dict[str, Any]], since: datetime | None = None) -> str | None:
    """Pick the root cause from stack events (newest first, as the API returns them)."""
    failed = [
        e
        for e in reversed(events)
        if e.get("ResourceStatus", "").endswith("_FAILED")
        and (since is None or e["Timestamp"] >= since.replace(microsecond=0))
    ]
    cancelled = ("Resource creation cancelled", "Resource update cancelled")
    causes = [e for e in failed if not any(c in e.get("ResourceStatusReason", "") for c in cancelled)]
    chosen = (causes or failed or [None])[0]
    if chosen is None:
        return None
    return (
        f"{chosen['LogicalResourceId']} ({chosen.get('ResourceType', '?')}) {chosen['ResourceStatus']}: "
        f"{chosen.get('ResourceStatusReason', 'no reason given')}"
    )
