"""Issue 13, item 8: NAT gateways and interface endpoints sized per environment.

Every environment keeps infrastructure.md's network by default (a NAT gateway per AZ, each app route
table to its own, every interface endpoint), and the default templates carry no condition at all.
A dev environment may opt into one NAT gateway and fewer endpoints (``stacks.config``): the
templates then hold both shapes, chosen by ``EnvironmentName``. These tests evaluate the conditions
for each environment and check what each one gets, and that the variant is cfn-lint clean too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from stacks.config import DEV, INTERFACE_ENDPOINTS, PLATFORM, PROD, PlatformConfig
from stacks.network import endpoint_title
from stacks.synth import synthesize
from tests.stacks.conftest import Json, props, resources

DEV_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs")
ECONOMY_DEV = PlatformConfig(environments=(replace(DEV, nat_gateways=1, interface_endpoints=DEV_ENDPOINTS), PROD))
REGIONS = ["eu-west-1", "us-east-1"]


@pytest.fixture(scope="module")
def economy() -> dict[str, Json]:
    return {tier: json.loads(text) for tier, text in synthesize(ECONOMY_DEV).items()}


def _holds(template: Json, condition: Any, env: str) -> bool:
    """Evaluates a condition (name or expression) of ``template`` for ``EnvironmentName=env``."""
    if isinstance(condition, str):
        return _holds(template, template["Conditions"][condition], env)
    ((fn, args),) = condition.items()
    if fn == "Condition":
        return _holds(template, args, env)
    if fn == "Fn::Equals":
        values = [env if a == {"Ref": "EnvironmentName"} else a for a in args]
        assert all(isinstance(v, str) for v in values), condition
        return bool(values[0] == values[1])
    if fn == "Fn::Or":
        return any(_holds(template, a, env) for a in args)
    if fn == "Fn::Not":
        return not _holds(template, args[0], env)
    raise AssertionError(f"unexpected condition function {fn}")


def _resolve(template: Json, value: Any, env: str) -> Any:
    if isinstance(value, dict) and "Fn::If" in value:
        name, yes, no = value["Fn::If"]
        return _resolve(template, yes if _holds(template, name, env) else no, env)
    return value


def _deployed(template: Json, env: str, rtype: str) -> dict[str, Json]:
    return {
        name: r
        for name, r in resources(template, rtype).items()
        if "Condition" not in r or _holds(template, r["Condition"], env)
    }


def _shape(t: Json, env: str) -> tuple[dict[str, Any], set[str]]:
    """(the NAT gateway each app route table uses, the interface endpoints) of ``env``."""
    nats = _deployed(t, env, "AWS::EC2::NatGateway")
    routes = {
        name: _resolve(t, props(r)["NatGatewayId"], env)["Ref"]
        for name, r in _deployed(t, env, "AWS::EC2::Route").items()
        if name.startswith("AppDefaultRoute")
    }
    assert set(routes.values()) <= set(nats), (routes, nats)
    eips = {props(n)["AllocationId"]["Fn::GetAtt"][0] for n in nats.values()}
    assert eips == set(_deployed(t, env, "AWS::EC2::EIP")), env  # no EIP without its NAT gateway
    endpoints = {
        props(e)["ServiceName"]["Fn::Sub"].split("${AWS::Region}.", 1)[1]
        for e in _deployed(t, env, "AWS::EC2::VPCEndpoint").values()
        if props(e)["VpcEndpointType"] == "Interface"
    }
    return routes, endpoints


def test_by_default_every_environment_has_the_contracts_network_and_no_condition(templates: dict[str, Json]) -> None:
    for env in PLATFORM.environments:
        assert env.nat_gateways == 2 and env.interface_endpoints == INTERFACE_ENDPOINTS, env.name
    t = templates["network"]
    assert "Conditions" not in t
    assert "NatGatewayPerAz" not in templates["observability"].get("Conditions", {})
    for env in PLATFORM.environment_names():
        routes, endpoints = _shape(t, env)
        assert routes == {"AppDefaultRouteA": "NatGatewayA", "AppDefaultRouteB": "NatGatewayB"}
        assert endpoints == set(INTERFACE_ENDPOINTS)


def test_a_dev_opting_in_gets_one_nat_and_its_endpoints_while_prod_keeps_the_contract(
    economy: dict[str, Json],
) -> None:
    t = economy["network"]
    routes, endpoints = _shape(t, "dev")
    assert routes == {"AppDefaultRouteA": "NatGatewayA", "AppDefaultRouteB": "NatGatewayA"}
    assert endpoints == set(DEV_ENDPOINTS)
    routes, endpoints = _shape(t, "prod")
    assert routes == {"AppDefaultRouteA": "NatGatewayA", "AppDefaultRouteB": "NatGatewayB"}
    assert endpoints == set(INTERFACE_ENDPOINTS)
    # Every endpoint that exists keeps private DNS and the endpoint security group.
    for endpoint in resources(t, "AWS::EC2::VPCEndpoint").values():
        if props(endpoint)["VpcEndpointType"] == "Interface":
            assert props(endpoint)["PrivateDnsEnabled"] is True
            assert props(endpoint)["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}]
    # The B export names the NAT gateway the second AZ uses; its alarm exists only where B does.
    export = t["Outputs"]["NatGatewayBId"]["Value"]
    assert _resolve(t, export, "dev") == {"Ref": "NatGatewayA"}
    assert _resolve(t, export, "prod") == {"Ref": "NatGatewayB"}
    o = economy["observability"]
    assert set(_deployed(o, "dev", "AWS::CloudWatch::Alarm")) >= {"NatPortAllocationErrorsAAlarm"}
    assert "NatPortAllocationErrorsBAlarm" not in _deployed(o, "dev", "AWS::CloudWatch::Alarm")
    assert "NatPortAllocationErrorsBAlarm" in _deployed(o, "prod", "AWS::CloudWatch::Alarm")
    # Each endpoint keeps its logical id whichever environments have it.
    assert {endpoint_title(s) for s in INTERFACE_ENDPOINTS} == {
        n for n, r in resources(t, "AWS::EC2::VPCEndpoint").items() if props(r)["VpcEndpointType"] == "Interface"
    }


def test_every_environment_on_one_nat_has_no_second_one_at_all() -> None:
    t = json.loads(synthesize(PlatformConfig(environments=(replace(DEV, nat_gateways=1),)))["network"])
    assert set(resources(t, "AWS::EC2::NatGateway")) == {"NatGatewayA"}
    assert set(resources(t, "AWS::EC2::EIP")) == {"NatEipA"}
    assert props(resources(t)["AppDefaultRouteB"])["NatGatewayId"] == {"Ref": "NatGatewayA"}


@pytest.mark.parametrize("tier", ["network", "observability"])
def test_the_opt_in_variant_is_cfn_lint_clean(tier: str) -> None:
    text = synthesize(ECONOMY_DEV)[tier]
    matches = lint(text, regions=REGIONS, config=ManualArgs(include_checks=["I"], regions=REGIONS))
    assert [f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches] == []


def test_only_valid_shapes_are_accepted_and_prod_keeps_the_contract() -> None:
    with pytest.raises(ValueError, match="nat_gateways"):
        replace(DEV, nat_gateways=3)
    with pytest.raises(ValueError, match="interface_endpoints"):
        replace(DEV, interface_endpoints=("ecr.api", "sqs"))
    with pytest.raises(ValueError, match="prod keeps"):
        replace(PROD, nat_gateways=1)
    with pytest.raises(ValueError, match="prod keeps"):
        replace(PROD, interface_endpoints=DEV_ENDPOINTS)
