"""The data tier's ElastiCache Redis: the replication group, and one RBAC user per service that uses
it, each with its own rotated password secret (issue 13, item 9; ADR 0110).

Invariants:

- The replication group authenticates with a user group (no shared AUTH token). Its ``default``
  user is switched off (``stacks.redis_acl.DISABLED_DEFAULT_ACCESS``); each service connects as its
  own user, whose access string comes from ``stacks.redis_acl``, the same definition the local ACL
  test applies with ``ACL SETUSER``.
- Each user's password is the ``token`` of its own secret ``fintech/<env>/redis-<user>``. Its
  rotation sets the user's two passwords to the current and the new token before the new one
  becomes current, so every task keeps connecting while it re-reads the secret (ADR 0107, 0110).
- ``maxmemory-policy`` is ``noeviction`` (ADR 0108).
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Sub, Template, elasticache

from stacks.common import ENV_PARAM, sizing, tags
from stacks.config import PlatformConfig
from stacks.naming import DataExports, NetworkExports, SecurityExports, add_export, import_value
from stacks.redis_acl import DISABLED_DEFAULT_ACCESS, KEY_PREFIX, USERS
from stacks.rotation import rotated_secret

REDIS_MAXMEMORY_POLICY = "noeviction"
"""Redis never evicts: see ``redis`` and ADR 0108."""
REDIS_ROTATION_DAYS = 30
"""Days between two rotations of a Redis user's password."""


def user_title(name: str) -> str:
    """Logical id stem of Redis user ``name`` (``RedisGateway``: its User, Secret, rotation)."""
    return f"Redis{name.capitalize()}"


def rotation_schedules() -> tuple[str, ...]:
    """Logical ids of the Redis password rotation schedules (they must succeed before the tables)."""
    return tuple(f"{user_title(u.name)}SecretRotationSchedule" for u in USERS)


def _users(t: Template, platform: PlatformConfig) -> list[object]:
    data_key = import_value(t, SecurityExports.DATA_KEY_ARN)
    logs_key = import_value(t, SecurityExports.LOGS_KEY_ARN)
    # ElastiCache requires a user called "default" in every user group; it is the identity of a
    # connection that has not authenticated, so it may do nothing (and needs no password).
    default = t.add_resource(
        elasticache.User(
            "RedisDefaultUser",
            UserId=Sub(f"${{{ENV_PARAM}}}-fintech-default"),
            UserName="default",
            Engine="redis",
            AccessString=DISABLED_DEFAULT_ACCESS,
            AuthenticationMode=elasticache.AuthenticationMode(Type="no-password-required"),
            Tags=tags(platform),
        )
    )
    user_ids: list[object] = [Ref(default)]
    for spec in USERS:
        stem = user_title(spec.name)
        user_id = Sub(f"${{{ENV_PARAM}}}-fintech-{spec.name}")
        secret = rotated_secret(
            t,
            platform,
            f"{stem}Secret",
            name=Sub(f"fintech/${{{ENV_PARAM}}}/redis-{spec.name}"),
            description=f"Password (key token) of the {spec.name} service's Redis user",
            kms_key_arn=data_key,
            logs_key_arn=logs_key,
            rotation_days=REDIS_ROTATION_DAYS,
            redis_user_id=user_id,
            # The first rotation runs at creation: only once the user is in the running group, so
            # ModifyUser meets an active user rather than one being associated.
            depends_on=[f"{stem}User", "RedisReplicationGroup"],
        )
        user = t.add_resource(
            elasticache.User(
                f"{stem}User",
                UserId=user_id,
                UserName=spec.name,
                Engine="redis",
                AccessString=spec.access_string(KEY_PREFIX),
                AuthenticationMode=elasticache.AuthenticationMode(
                    Type="password",
                    Passwords=[Sub("{{resolve:secretsmanager:${Secret}:SecretString:token}}", Secret=Ref(secret))],
                ),
                Tags=tags(platform, Service=spec.name),
            )
        )
        user_ids.append(Ref(user))
        add_export(t, DataExports.redis_secret_arn(spec.name), Ref(secret))
    return user_ids


def redis(t: Template, platform: PlatformConfig) -> None:
    """The replication group, its users and user group, parameter and subnet groups."""
    data_key = import_value(t, SecurityExports.DATA_KEY_ARN)
    group_id = Sub(f"${{{ENV_PARAM}}}-fintech")
    subnets = t.add_resource(
        elasticache.SubnetGroup(
            "RedisSubnetGroup",
            Description="Private data subnets of both AZs",
            SubnetIds=[import_value(t, ref) for ref in NetworkExports.DATA_SUBNETS],
            Tags=tags(platform),
        )
    )
    # noeviction: a full Redis refuses writes (the services handle that as any Redis error, ADR
    # 0020) instead of evicting keys. All keys carry TTLs, so no volatile-* policy can tell them
    # apart, and any eviction could drop an API key's revocation marker (keyrev:) to make room for
    # idempotency records: the revoked key's cached sessions would then pass for up to 5 minutes,
    # against ADR 0021's one second (ADR 0108).
    params = t.add_resource(
        elasticache.ParameterGroup(
            "RedisParameters",
            CacheParameterGroupFamily=f"redis{platform.redis_engine_version.split('.')[0]}",
            Description="Ledger platform Redis: never evict (security state must not make room for caches)",
            Properties={"maxmemory-policy": REDIS_MAXMEMORY_POLICY},
        )
    )
    users = t.add_resource(
        elasticache.UserGroup(
            "RedisUserGroup",
            UserGroupId=Sub(f"${{{ENV_PARAM}}}-fintech"),
            Engine="redis",
            UserIds=_users(t, platform),
            Tags=tags(platform),
        )
    )
    group = t.add_resource(
        elasticache.ReplicationGroup(
            "RedisReplicationGroup",
            ReplicationGroupId=group_id,
            ReplicationGroupDescription="Session cache, idempotency records and rate limits",
            Engine="redis",
            EngineVersion=platform.redis_engine_version,
            CacheNodeType=sizing("RedisNodeType"),
            NumNodeGroups=1,
            ReplicasPerNodeGroup=sizing("RedisReplicas"),
            AutomaticFailoverEnabled=True,
            MultiAZEnabled=True,
            TransitEncryptionEnabled=True,
            AtRestEncryptionEnabled=True,
            KmsKeyId=data_key,
            # RBAC instead of one AUTH token: each service is its own user (ADR 0110).
            UserGroupIds=[Ref(users)],
            Port=platform.redis_port,
            CacheSubnetGroupName=Ref(subnets),
            CacheParameterGroupName=Ref(params),
            SecurityGroupIds=[import_value(t, SecurityExports.REDIS_SG)],
            SnapshotRetentionLimit=sizing("RedisSnapshotRetentionDays"),
            SnapshotWindow="03:00-04:00",
            PreferredMaintenanceWindow="sun:05:00-sun:06:00",
            AutoMinorVersionUpgrade=True,
            Tags=tags(platform),
            DeletionPolicy="Snapshot",
            UpdateReplacePolicy="Snapshot",
        )
    )
    add_export(t, DataExports.REDIS_GROUP_ID, Ref(group))
    add_export(t, DataExports.REDIS_ENDPOINT, GetAtt(group, "PrimaryEndPoint.Address"))
