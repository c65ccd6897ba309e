"""Issue 12, the infrastructure of webhooks: the ledger delivers them from its ECS tasks to tenant URLs
on the internet, so the stacks give it egress on TCP 443 only (through the NAT gateway of its AZ)
and tell it to accept only https URLs that resolve to public addresses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.settings import load_settings
from tests.stacks.conftest import Json, props, resources, service_task_definitions, walk

LEDGER_SG = "LedgerSecurityGroup"
PLACEHOLDER = {"CidrIp": "127.0.0.1/32", "IpProtocol": "-1"}
"""The rule that replaces a new group's default allow-all egress (loopback never leaves the ENI)."""
WEBHOOK_ENVIRONMENT = {"WEBHOOK_REQUIRE_HTTPS": "true", "WEBHOOK_ALLOW_PRIVATE_URLS": "false"}


def _vpc_has_ipv6(network: Json) -> bool:
    return any(isinstance(node, dict) and any("Ipv6" in key for key in node) for node in walk(network["Resources"]))


def _ledger_egress(security: Json) -> list[Json]:
    rules = list(props(security["Resources"][LEDGER_SG]).get("SecurityGroupEgress", []))
    for rule in resources(security, "AWS::EC2::SecurityGroupEgress").values():
        if props(rule)["GroupId"] == {"Ref": LEDGER_SG}:
            rules.append(props(rule))
    return rules


def _ledger_egress_problems(templates: dict[str, Json]) -> list[str]:
    """What is wrong with the ledger tasks' egress: anything to an address range but TCP 443 (the
    placeholder aside), no 443 rule to the internet (and to ::/0 when the VPC has IPv6), a rule
    without a description, or a rule to another security group than the database's."""
    problems: list[str] = []
    security = templates["security"]
    database_port = props(security["Resources"]["LedgerToDatabaseEgress"])["FromPort"]
    to_internet: set[str] = set()
    for rule in _ledger_egress(security):
        if not rule.get("Description"):
            problems.append(f"no description: {rule}")
        if {k: rule.get(k) for k in PLACEHOLDER} == PLACEHOLDER and set(rule) <= {*PLACEHOLDER, "Description"}:
            continue
        if "DestinationSecurityGroupId" in rule:
            allowed = ({"Ref": "DatabaseSecurityGroup"}, "tcp", database_port, database_port)
            if (rule["DestinationSecurityGroupId"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) != allowed:
                problems.append(f"egress to a security group other than the database's on its port: {rule}")
            continue
        if (rule.get("IpProtocol"), rule.get("FromPort"), rule.get("ToPort")) != ("tcp", 443, 443):
            problems.append(f"egress wider than TCP 443: {rule}")
            continue
        for key in ("CidrIp", "CidrIpv6"):
            if rule.get(key) in ("0.0.0.0/0", "::/0"):
                to_internet.add(rule[key])
                if "webhook" not in rule.get("Description", "").lower():
                    problems.append(f"the internet rule does not say it carries webhook deliveries: {rule}")
    wanted = {"0.0.0.0/0", "::/0"} if _vpc_has_ipv6(templates["network"]) else {"0.0.0.0/0"}
    if to_internet != wanted:
        problems.append(f"HTTPS egress to the internet is {sorted(to_internet)}, not {sorted(wanted)}")
    return problems


def test_the_ledger_reaches_the_internet_on_tcp_443_only_for_webhooks(templates: dict[str, Json]) -> None:
    assert _ledger_egress_problems(templates) == []
    rules = _ledger_egress(templates["security"])
    assert len(rules) == 3  # the placeholder, Aurora, HTTPS (AWS APIs and webhook deliveries)


def test_the_egress_check_fails_on_wider_missing_or_unexplained_rules(templates: dict[str, Json]) -> None:
    def mutated(change: Any) -> dict[str, Json]:
        copied = copy.deepcopy(templates)
        change(copied["security"]["Resources"])
        return copied

    def https(r: Json) -> Json:
        return props(r["LedgerHttpsEgress"])

    def all_traffic(r: Json) -> None:
        props(r[LEDGER_SG])["SecurityGroupEgress"].append(
            {"CidrIp": "0.0.0.0/0", "IpProtocol": "-1", "Description": "x"}
        )

    def ipv6_anything(r: Json) -> None:
        props(r[LEDGER_SG])["SecurityGroupEgress"].append(
            {"CidrIpv6": "::/0", "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "Description": "x"}
        )

    changes = {
        "port range": lambda r: https(r).update(ToPort=8443),
        "all protocols": lambda r: https(r).update(IpProtocol="-1"),
        "port 80": lambda r: https(r).update(FromPort=80, ToPort=80),
        "missing": lambda r: r.pop("LedgerHttpsEgress"),
        "no description": lambda r: https(r).pop("Description"),
        "not about webhooks": lambda r: https(r).update(Description="HTTPS to AWS APIs"),
        "extra all-traffic rule": all_traffic,
        "extra IPv6 rule": ipv6_anything,
        "to Redis": lambda r: props(r["LedgerToDatabaseEgress"]).update(DestinationSecurityGroupId={"Ref": "Redis"}),
    }
    for name, change in changes.items():
        assert _ledger_egress_problems(mutated(change)), name


def test_without_ipv6_in_the_vpc_there_is_no_ipv6_egress(templates: dict[str, Json]) -> None:
    # If the VPC gains an IPv6 CIDR, _ledger_egress_problems asks for the ::/0 rule on 443 as well.
    assert not _vpc_has_ipv6(templates["network"])
    assert not any("CidrIpv6" in rule for rule in _ledger_egress(templates["security"]))


def test_the_ledger_runs_in_the_app_subnets_whose_default_route_is_a_nat_gateway(templates: dict[str, Json]) -> None:
    (ledger,) = [
        s for s in resources(templates["compute"], "AWS::ECS::Service").values() if props(s)["ServiceName"] == "ledger"
    ]
    vpc = props(ledger)["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert vpc["SecurityGroups"] == [{"Fn::ImportValue": {"Fn::Sub": "${SecurityStack}-LedgerSecurityGroupId"}}]
    assert vpc["AssignPublicIp"] == "DISABLED"
    network = templates["network"]
    subnets = {
        s["Fn::ImportValue"]["Fn::Sub"].removeprefix("${NetworkStack}-").removesuffix("Id") for s in vpc["Subnets"]
    }
    tables = {
        props(a)["RouteTableId"]["Ref"]
        for a in resources(network, "AWS::EC2::SubnetRouteTableAssociation").values()
        if props(a)["SubnetId"]["Ref"] in subnets
    }
    assert len(tables) == 2
    for table in tables:
        defaults = [
            props(r)
            for r in resources(network, "AWS::EC2::Route").values()
            if props(r)["RouteTableId"]["Ref"] == table and props(r).get("DestinationCidrBlock") == "0.0.0.0/0"
        ]
        assert len(defaults) == 1 and "NatGatewayId" in defaults[0] and "GatewayId" not in defaults[0], table


def _app_environment(templates: dict[str, Json]) -> dict[str, dict[str, object]]:
    return {
        name.removesuffix("TaskDefinition").lower(): {
            e["Name"]: e["Value"]
            for c in props(td)["ContainerDefinitions"]
            if c["Name"] == name.removesuffix("TaskDefinition").lower()
            for e in c.get("Environment", [])
        }
        for name, td in service_task_definitions(templates["compute"]).items()
    }


def test_the_ledger_accepts_only_https_webhook_urls_to_public_addresses(templates: dict[str, Json]) -> None:
    environments = _app_environment(templates)
    assert {k: v for k, v in environments["ledger"].items() if k.startswith("WEBHOOK_")} == WEBHOOK_ENVIRONMENT
    for service in ("gateway", "session"):  # only the ledger delivers webhooks
        assert not [k for k in environments[service] if k.startswith("WEBHOOK_")], service


def test_the_webhook_settings_are_the_ones_the_ledger_reads(
    templates: dict[str, Json], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Start from the permissive values (a local run outside ECS, private URLs allowed): each one the
    # task's values do not switch (a misspelt or missing name) is left as it was and fails below.
    for name in WEBHOOK_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    local = load_settings().webhooks
    assert local.allow_private_urls is True and local.require_https is False
    for name, value in _app_environment(templates)["ledger"].items():
        if name.startswith("WEBHOOK_"):
            monkeypatch.setenv(name, str(value))
    settings = load_settings()
    assert settings.webhooks.require_https is True
    assert settings.webhooks.allow_private_urls is False
