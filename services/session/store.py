"""DynamoDB: tenants, API keys (hashes only) and sessions, through one long-lived aioboto3 client.

Tables (names fixed by contract with the stacks, under ``settings.dynamodb.table_prefix``):

- ``<prefix>tenants``   pk ``tenant_id``: ``name``, ``created_at``
- ``<prefix>api-keys``  pk ``key_id``: ``tenant_id``, ``key_hash``, ``created_at``, ``revoked``
- ``<prefix>sessions``  pk ``token_hash``: ``tenant_id``, ``key_id``, ``created_at``,
  ``expires_at_epoch`` (the table's TTL attribute), ``revoked``

Locally (``DYNAMODB_ENDPOINT_URL`` set) :meth:`SessionStore.bootstrap` creates the tables; in AWS
they come from the stacks and bootstrap is never called. Every failure to reach DynamoDB, and
every throttling or server-side error, becomes :class:`StoreUnavailable` (a 503 upstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.settings import Settings

log = logging.getLogger(__name__)

TTL_ATTRIBUTE = "expires_at_epoch"

_UNAVAILABLE_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "RequestLimitExceeded", "ResourceNotFoundException"}
)


class StoreUnavailable(Exception):
    """DynamoDB did not answer, or answered with a retryable/server error."""


class NotFound(Exception):
    """The item a write was conditioned on does not exist."""


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    tenant_id: str
    key_hash: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class SessionRecord:
    token_hash: str
    tenant_id: str
    key_id: str
    expires_at_epoch: int
    revoked: bool


def table_names(prefix: str) -> dict[str, str]:
    return {"tenants": f"{prefix}tenants", "api_keys": f"{prefix}api-keys", "sessions": f"{prefix}sessions"}


_KEY_ATTRIBUTE = {"tenants": "tenant_id", "api_keys": "key_id", "sessions": "token_hash"}


class SessionStore:
    """All DynamoDB access of the session service and the admin CLI."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tables = table_names(settings.dynamodb.table_prefix)
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        timeout = self.settings.dynamodb.timeout_seconds
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=64,
        )
        kwargs: dict[str, Any] = {"region_name": self.settings.process.aws_region, "config": config}
        if self.settings.dynamodb.endpoint_url:
            # A local endpoint (dynalite, moto) accepts any credentials; AWS uses the task role.
            kwargs.update(
                endpoint_url=self.settings.dynamodb.endpoint_url,
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
        session = aioboto3.Session()
        self._client = await self._stack.enter_async_context(session.client("dynamodb", **kwargs))

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await getattr(self._client, operation)(**params)
            return result
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code == "ConditionalCheckFailedException":
                raise NotFound(operation) from exc
            if status >= 500 or "Throttl" in code or code in _UNAVAILABLE_CODES:
                log.warning("dynamodb unavailable", extra={"operation": operation, "error_code": code})
                raise StoreUnavailable(f"{operation}: {code}") from exc
            raise
        except (TimeoutError, BotoCoreError, OSError) as exc:
            log.warning("dynamodb unreachable", extra={"operation": operation, "error": repr(exc)})
            raise StoreUnavailable(f"{operation}: {exc!r}") from exc

    # -- bootstrap ---------------------------------------------------------------------------

    async def bootstrap(self) -> None:
        """Create the three tables when missing (local endpoints only); safe to run concurrently."""
        for logical, name in self.tables.items():
            attribute = _KEY_ATTRIBUTE[logical]
            try:
                await self._client.create_table(
                    TableName=name,
                    AttributeDefinitions=[{"AttributeName": attribute, "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": attribute, "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                )
                log.info("created table", extra={"table": name})
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                    raise
            await self._wait_active(name)
        await self._enable_ttl()

    async def _wait_active(self, name: str) -> None:
        for _ in range(300):
            described = await self._client.describe_table(TableName=name)
            if described["Table"].get("TableStatus") == "ACTIVE":
                return
            await asyncio.sleep(0.1)
        raise StoreUnavailable(f"table {name} did not become ACTIVE")

    async def _enable_ttl(self) -> None:
        name = self.tables["sessions"]
        try:
            described = await self._client.describe_time_to_live(TableName=name)
            if described.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
                return
            await self._client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
            )
        except (ClientError, BotoCoreError) as exc:
            # dynalite does not implement TTL; expiry is checked on every read anyway.
            log.info("endpoint does not support TTL; skipped", extra={"table": name, "error": repr(exc)})

    async def ping(self) -> None:
        await self._call("describe_table", TableName=self.tables["sessions"])

    # -- tenants and keys --------------------------------------------------------------------

    async def put_tenant(self, tenant_id: str, name: str, created_at: str) -> None:
        await self._call(
            "put_item",
            TableName=self.tables["tenants"],
            Item={"tenant_id": {"S": tenant_id}, "name": {"S": name}, "created_at": {"S": created_at}},
            ConditionExpression="attribute_not_exists(tenant_id)",
        )

    async def tenant_exists(self, tenant_id: str) -> bool:
        result = await self._call(
            "get_item",
            TableName=self.tables["tenants"],
            Key={"tenant_id": {"S": tenant_id}},
            ConsistentRead=True,
            ProjectionExpression="tenant_id",
        )
        return "Item" in result

    async def put_api_key(self, key_id: str, tenant_id: str, key_hash: str, created_at: str) -> None:
        await self._call(
            "put_item",
            TableName=self.tables["api_keys"],
            Item={
                "key_id": {"S": key_id},
                "tenant_id": {"S": tenant_id},
                "key_hash": {"S": key_hash},
                "created_at": {"S": created_at},
                "revoked": {"BOOL": False},
            },
            ConditionExpression="attribute_not_exists(key_id)",
        )

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        result = await self._call(
            "get_item", TableName=self.tables["api_keys"], Key={"key_id": {"S": key_id}}, ConsistentRead=True
        )
        item = result.get("Item")
        if item is None:
            return None
        return ApiKeyRecord(
            key_id=item["key_id"]["S"],
            tenant_id=item["tenant_id"]["S"],
            key_hash=item["key_hash"]["S"],
            revoked=bool(item.get("revoked", {}).get("BOOL", False)),
        )

    async def revoke_api_key(self, key_id: str, revoked_at: str) -> None:
        """Mark the key revoked; :class:`NotFound` when there is no such key."""
        await self._call(
            "update_item",
            TableName=self.tables["api_keys"],
            Key={"key_id": {"S": key_id}},
            UpdateExpression="SET revoked = :t, revoked_at = if_not_exists(revoked_at, :at)",
            ConditionExpression="attribute_exists(key_id)",
            ExpressionAttributeValues={":t": {"BOOL": True}, ":at": {"S": revoked_at}},
        )

    # -- sessions ----------------------------------------------------------------------------

    async def put_session(self, record: SessionRecord, created_at: str) -> None:
        await self._call(
            "put_item",
            TableName=self.tables["sessions"],
            Item={
                "token_hash": {"S": record.token_hash},
                "tenant_id": {"S": record.tenant_id},
                "key_id": {"S": record.key_id},
                "created_at": {"S": created_at},
                TTL_ATTRIBUTE: {"N": str(record.expires_at_epoch)},
                "revoked": {"BOOL": False},
            },
        )

    async def get_session(self, hashed_token: str) -> SessionRecord | None:
        result = await self._call(
            "get_item",
            TableName=self.tables["sessions"],
            Key={"token_hash": {"S": hashed_token}},
            ConsistentRead=True,
        )
        item = result.get("Item")
        if item is None:
            return None
        return SessionRecord(
            token_hash=item["token_hash"]["S"],
            tenant_id=item["tenant_id"]["S"],
            key_id=item["key_id"]["S"],
            expires_at_epoch=int(item[TTL_ATTRIBUTE]["N"]),
            revoked=bool(item.get("revoked", {}).get("BOOL", False)),
        )

    async def revoke_session(self, hashed_token: str) -> str | None:
        """Mark the session revoked and return its key id; None when it does not exist (any more)."""
        try:
            result = await self._call(
                "update_item",
                TableName=self.tables["sessions"],
                Key={"token_hash": {"S": hashed_token}},
                UpdateExpression="SET revoked = :t",
                ConditionExpression="attribute_exists(token_hash)",
                ExpressionAttributeValues={":t": {"BOOL": True}},
                ReturnValues="ALL_OLD",
            )
        except NotFound:
            return None
        key_id: str | None = result.get("Attributes", {}).get("key_id", {}).get("S")
        return key_id
