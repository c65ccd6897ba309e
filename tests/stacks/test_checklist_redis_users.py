"""Issue 13, item 9, in the templates: Redis authenticates ElastiCache RBAC users, one per service,
each with the access string of ``stacks.redis_acl`` (which tests/e2e/test_redis_acl.py applies to a
real Redis), its own password secret, and a rotation that keeps the previous password valid."""

from __future__ import annotations

from stacks.compliance_rules import MANAGED_RULES
from stacks.redis_acl import DISABLED_DEFAULT_ACCESS, KEY_PREFIX, USERS
from stacks.rotation import ROTATION_CODE
from tests.stacks.conftest import Json, props, resources


def _users(t: Json) -> dict[str, Json]:
    return {props(u)["UserName"]: u for u in resources(t, "AWS::ElastiCache::User").values()}


def test_the_replication_group_authenticates_a_user_group_not_a_shared_token(templates: dict[str, Json]) -> None:
    t = templates["data"]
    (group,) = resources(t, "AWS::ElastiCache::ReplicationGroup").values()
    assert "AuthToken" not in props(group)
    assert props(group)["UserGroupIds"] == [{"Ref": "RedisUserGroup"}]
    user_group = props(resources(t, "AWS::ElastiCache::UserGroup")["RedisUserGroup"])
    assert user_group["Engine"] == "redis"
    titles = {name: props(u)["UserName"] for name, u in resources(t, "AWS::ElastiCache::User").items()}
    assert sorted(titles[r["Ref"]] for r in user_group["UserIds"]) == sorted(["default", *(u.name for u in USERS)])


def test_the_default_user_is_switched_off(templates: dict[str, Json]) -> None:
    default = props(_users(templates["data"])["default"])
    assert default["AccessString"] == DISABLED_DEFAULT_ACCESS
    assert default["AccessString"].split()[0] == "off" and "+" not in default["AccessString"]


def test_each_service_user_has_exactly_the_shared_acl_and_its_own_secret(templates: dict[str, Json]) -> None:
    t = templates["data"]
    users = _users(t)
    secrets = resources(t, "AWS::SecretsManager::Secret")
    for spec in USERS:
        user = props(users[spec.name])
        assert user["Engine"] == "redis"
        assert user["UserId"] == {"Fn::Sub": f"${{EnvironmentName}}-fintech-{spec.name}"}
        # The very string the local ACL test gives Redis (under its own prefix there).
        assert user["AccessString"] == spec.access_string(KEY_PREFIX)
        mode = user["AuthenticationMode"]
        assert mode["Type"] == "password"
        (password,) = mode["Passwords"]
        title = f"Redis{spec.name.capitalize()}Secret"
        assert password == {
            "Fn::Sub": ["{{resolve:secretsmanager:${Secret}:SecretString:token}}", {"Secret": {"Ref": title}}]
        }
        assert props(secrets[title])["Name"] == {"Fn::Sub": f"fintech/${{EnvironmentName}}/redis-{spec.name}"}
        assert "KmsKeyId" in props(secrets[title])


def test_access_strings_are_allow_lists_under_the_prefix(templates: dict[str, Json]) -> None:
    for spec in USERS:
        rules = spec.access_string(KEY_PREFIX).split()
        assert rules[0] == "on"
        assert "-@all" in rules and not {"~*", "allkeys", "+@all", "allcommands", "+eval", "+flushall"} & set(rules)
        # After -@all only grants, and selectors (parenthesised) that hold key patterns and grants.
        inside = False
        for rule in rules[rules.index("-@all") + 1 :]:
            inside = inside or rule.startswith("(")
            bare = rule.strip("()")
            assert bare.startswith("+") or (inside and "~" in bare), rule
            inside = inside and not rule.endswith(")")
        for rule in rules:
            pattern = rule.strip("()")
            if "~" in pattern:
                assert pattern.split("~", 1)[1].startswith(KEY_PREFIX), rule
    # What the gateway only reads it cannot write, and the other way round for the session service.
    gateway = {u.name: u for u in USERS}["gateway"]
    assert {"sess:", "keyrev:"} <= set(gateway.read_only) and not {"sess:", "keyrev:"} & set(gateway.read_write)
    session = {u.name: u for u in USERS}["session"]
    assert {"sess:", "keyrev:"} <= set(session.write_only) and "get" not in session.commands


def test_each_password_rotates_keeping_the_previous_one_valid(templates: dict[str, Json]) -> None:
    t = templates["data"]
    functions = resources(t, "AWS::Lambda::Function")
    roles = resources(t, "AWS::IAM::Role")
    schedules = resources(t, "AWS::SecretsManager::RotationSchedule")
    for spec in USERS:
        stem = f"Redis{spec.name.capitalize()}Secret"
        schedule = props(schedules[f"{stem}RotationSchedule"])
        assert schedule["SecretId"] == {"Ref": stem}
        assert schedule["RotationLambdaARN"] == {"Fn::GetAtt": [f"{stem}RotationFunction", "Arn"]}
        after = schedules[f"{stem}RotationSchedule"]["DependsOn"]
        assert {f"Redis{spec.name.capitalize()}User", "RedisReplicationGroup"} <= set(after)
        variables = props(functions[f"{stem}RotationFunction"])["Environment"]["Variables"]
        assert variables == {"REDIS_USER_ID": {"Fn::Sub": f"${{EnvironmentName}}-fintech-{spec.name}"}}
        statements = props(roles[f"{stem}RotationRole"])["Policies"][0]["PolicyDocument"]["Statement"]
        (elasticache,) = [s for s in statements if any(a.startswith("elasticache:") for a in s["Action"])]
        assert sorted(elasticache["Action"]) == ["elasticache:DescribeUsers", "elasticache:ModifyUser"]
        (arn,) = elasticache["Resource"]
        assert arn["Fn::Sub"][0].endswith(":user:${User}") and arn["Fn::Sub"][1]["User"] == variables["REDIS_USER_ID"]
    # setSecret gives the user the current and the pending password before finishSecret makes the
    # pending one current: tasks that have not re-read their secret yet keep connecting.
    assert '"Passwords": [current["token"], pending["token"]]' in ROTATION_CODE
    assert ROTATION_CODE.index("setSecret") < ROTATION_CODE.index("finishSecret")


def test_aws_config_keeps_watching_that_redis_uses_rbac(templates: dict[str, Json]) -> None:
    assert ("ELASTICACHE_RBAC_AUTH_ENABLED", ()) in MANAGED_RULES
    rules = resources(templates["compliance"], "AWS::Config::ConfigRule").values()
    assert "ELASTICACHE_RBAC_AUTH_ENABLED" in {props(r)["Source"]["SourceIdentifier"] for r in rules}
