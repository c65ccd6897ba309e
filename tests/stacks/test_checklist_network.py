"""infrastructure.md checklist, Network: each item is one test on the synthesized JSON."""

from __future__ import annotations

from tests.stacks.conftest import Json, all_resources, props, references, resources


def test_subnets_use_getazs_select_and_only_public_subnets_map_public_ips(templates: dict[str, Json]) -> None:
    subnets = resources(templates["network"], "AWS::EC2::Subnet")
    assert len(subnets) == 6
    for name, subnet in subnets.items():
        az = props(subnet)["AvailabilityZone"]
        assert "Fn::Select" in az and "Fn::GetAZs" in az["Fn::Select"][1], name
        maps_public = props(subnet).get("MapPublicIpOnLaunch", False)
        assert maps_public is name.startswith("Public"), name
    azs = sorted(props(s)["AvailabilityZone"]["Fn::Select"][0] for s in subnets.values())
    assert azs == [0, 0, 0, 1, 1, 1]


def test_each_app_route_table_defaults_to_the_nat_gateway_of_its_own_az(templates: dict[str, Json]) -> None:
    t = templates["network"]
    subnets = resources(t, "AWS::EC2::Subnet")
    nats = resources(t, "AWS::EC2::NatGateway")
    assocs = resources(t, "AWS::EC2::SubnetRouteTableAssociation").values()
    routes = resources(t, "AWS::EC2::Route").values()
    app_tables = {
        props(a)["RouteTableId"]["Ref"]: props(a)["SubnetId"]["Ref"]
        for a in assocs
        if props(a)["SubnetId"]["Ref"].startswith("App")
    }
    assert len(app_tables) == 2 and len(nats) == 2
    for table, subnet in app_tables.items():
        defaults = [
            r
            for r in routes
            if props(r)["RouteTableId"]["Ref"] == table and props(r)["DestinationCidrBlock"] == "0.0.0.0/0"
        ]
        assert len(defaults) == 1
        nat = nats[props(defaults[0])["NatGatewayId"]["Ref"]]
        nat_subnet = subnets[props(nat)["SubnetId"]["Ref"]]
        assert nat_subnet["Properties"]["AvailabilityZone"] == subnets[subnet]["Properties"]["AvailabilityZone"]
        assert props(nat_subnet).get("MapPublicIpOnLaunch") is True


def test_data_subnets_have_no_default_route(templates: dict[str, Json]) -> None:
    t = templates["network"]
    assocs = resources(t, "AWS::EC2::SubnetRouteTableAssociation").values()
    data_tables = {props(a)["RouteTableId"]["Ref"] for a in assocs if props(a)["SubnetId"]["Ref"].startswith("Data")}
    assert len(data_tables) == 2
    for route in resources(t, "AWS::EC2::Route").values():
        assert props(route)["RouteTableId"]["Ref"] not in data_tables


def test_vpc_flow_logs_all_traffic_to_a_kms_encrypted_log_group_with_retention(templates: dict[str, Json]) -> None:
    t = templates["network"]
    (flow,) = resources(t, "AWS::EC2::FlowLog").values()
    assert props(flow)["TrafficType"] == "ALL"
    assert props(flow)["ResourceType"] == "VPC"
    group = t["Resources"][props(flow)["LogGroupName"]["Ref"]]
    assert "KmsKeyId" in props(group) and "RetentionInDays" in props(group)


def test_interface_endpoints_have_private_dns_and_https_only_from_the_app_tier(templates: dict[str, Json]) -> None:
    t = templates["network"]
    endpoints = [
        e for e in resources(t, "AWS::EC2::VPCEndpoint").values() if props(e)["VpcEndpointType"] == "Interface"
    ]
    services = sorted(props(e)["ServiceName"]["Fn::Sub"].rsplit("}.", 1)[1] for e in endpoints)
    assert services == sorted(["ecr.api", "ecr.dkr", "logs", "secretsmanager", "kms", "sts", "xray"])
    app_cidrs = {props(s)["CidrBlock"] for n, s in resources(t, "AWS::EC2::Subnet").items() if n.startswith("App")}
    for endpoint in endpoints:
        assert props(endpoint)["PrivateDnsEnabled"] is True
        (sg_ref,) = props(endpoint)["SecurityGroupIds"]
        rules = props(t["Resources"][sg_ref["Ref"]])["SecurityGroupIngress"]
        assert {(r["FromPort"], r["ToPort"]) for r in rules} == {(443, 443)}
        assert {r["CidrIp"] for r in rules} == app_cidrs


def test_gateway_endpoints_for_s3_and_dynamodb(templates: dict[str, Json]) -> None:
    endpoints = [
        e
        for e in resources(templates["network"], "AWS::EC2::VPCEndpoint").values()
        if props(e)["VpcEndpointType"] == "Gateway"
    ]
    assert sorted(props(e)["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1] for e in endpoints) == ["dynamodb", "s3"]


def _ingress_rules(templates: dict[str, Json]) -> list[tuple[str, Json]]:
    rules: list[tuple[str, Json]] = []
    for name, sg in all_resources(templates, "AWS::EC2::SecurityGroup").items():
        rules += [(name, r) for r in props(sg).get("SecurityGroupIngress", [])]
    rules += [(n, props(r)) for n, r in all_resources(templates, "AWS::EC2::SecurityGroupIngress").items()]
    return rules


def test_no_ingress_from_anywhere_except_alb_443_and_80(templates: dict[str, Json]) -> None:
    open_rules = [
        (n, r) for n, r in _ingress_rules(templates) if r.get("CidrIp") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0"
    ]
    assert sorted(r["FromPort"] for _, r in open_rules) == [80, 443]
    for _, rule in open_rules:
        assert rule["GroupId"] == {"Ref": "AlbSecurityGroup"} and rule["FromPort"] == rule["ToPort"]


def test_http_listener_on_80_only_redirects(templates: dict[str, Json]) -> None:
    listeners = resources(templates["compute"], "AWS::ElasticLoadBalancingV2::Listener").values()
    (http,) = [listener for listener in listeners if props(listener)["Port"] == 80]
    assert [a["Type"] for a in props(http)["DefaultActions"]] == ["redirect"]
    assert props(http)["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"


def test_every_security_group_rule_has_a_description(templates: dict[str, Json]) -> None:
    for name, rule in _ingress_rules(templates):
        assert rule.get("Description"), name
    for name, sg in all_resources(templates, "AWS::EC2::SecurityGroup").items():
        for rule in props(sg).get("SecurityGroupEgress", []):
            assert rule.get("Description"), name
    for name, rule in all_resources(templates, "AWS::EC2::SecurityGroupEgress").items():
        assert props(rule).get("Description"), name


def test_app_to_data_rules_reference_security_groups_not_cidrs(templates: dict[str, Json]) -> None:
    rules = resources(templates["security"], "AWS::EC2::SecurityGroupIngress")
    data_rules = [
        props(r)
        for r in rules.values()
        if props(r)["GroupId"]["Ref"] in ("DatabaseSecurityGroup", "RedisSecurityGroup")
    ]
    assert len(data_rules) == 3
    for rule in data_rules:
        assert "CidrIp" not in rule and references(rule["SourceSecurityGroupId"])
    egress = resources(templates["security"], "AWS::EC2::SecurityGroupEgress").values()
    to_data = [
        props(r)
        for r in egress
        if "DestinationSecurityGroupId" in props(r)
        and props(r)["DestinationSecurityGroupId"]["Ref"] in ("DatabaseSecurityGroup", "RedisSecurityGroup")
    ]
    assert len(to_data) == 3
