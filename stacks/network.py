"""Network tier: VPC over two AZs, public / private-app / private-data subnets, one NAT gateway per
AZ, flow logs, gateway and interface endpoints.

Invariant: an environment keeps infrastructure.md's network (a NAT gateway per AZ, each app route
table to its own, every interface endpoint) unless its config opts out (``nat_gateways=1``, fewer
``interface_endpoints``; dev only). Only then does the template carry CloudFormation conditions on
``EnvironmentName``; with no environment opting out it is exactly the contract's shape.
"""

from __future__ import annotations

from awacs import aws as iam
from awacs.aws import Allow, PolicyDocument, Statement
from troposphere import Equals, GetAtt, GetAZs, If, Or, Ref, Select, Sub, Template, ec2
from troposphere import iam as iam_res

from stacks.common import (
    ENV_PARAM,
    kms_key,
    log_group,
    logs_service_statement,
    new_template,
    role_trust,
    tags,
)
from stacks.config import INTERFACE_ENDPOINTS, PlatformConfig
from stacks.naming import NetworkExports, add_export

AZ_SUFFIXES = ("A", "B")
GATEWAY_ENDPOINTS = ("s3", "dynamodb")
NAT_PER_AZ = "NatGatewayPerAz"
"""Condition (only where some environment runs one NAT gateway): this environment has one per AZ."""


def _environment_in(names: list[str]) -> object:
    equals = [Equals(Ref(ENV_PARAM), name) for name in names]
    return equals[0] if len(equals) == 1 else Or(*equals)


def second_nat_gateway(template: Template, platform: PlatformConfig) -> tuple[bool, str | None]:
    """Whether the template has the second AZ's NAT gateway, and the condition it is created
    under (added to ``template``): None when every environment has a NAT gateway per AZ."""
    per_az = [env.name for env in platform.environments if env.nat_gateways == 2]
    if len(per_az) == len(platform.environments):
        return True, None
    if not per_az:
        return False, None
    template.add_condition(NAT_PER_AZ, _environment_in(per_az))
    return True, NAT_PER_AZ


def endpoint_title(service: str) -> str:
    return "".join(part.capitalize() for part in service.split(".")) + "Endpoint"


def _endpoint_conditions(template: Template, platform: PlatformConfig) -> dict[str, str | None]:
    """Per interface endpoint: None (every environment has it), a condition name (some have it),
    or absent from the result (no environment has it, so it is not in the template)."""
    wanted: dict[str, str | None] = {}
    for service in INTERFACE_ENDPOINTS:
        having = [env.name for env in platform.environments if service in env.interface_endpoints]
        if len(having) == len(platform.environments):
            wanted[service] = None
        elif having:
            name = f"{endpoint_title(service)}Wanted"
            template.add_condition(name, _environment_in(having))
            wanted[service] = name
    return wanted


def _subnet(
    template: Template, platform: PlatformConfig, title: str, vpc: ec2.VPC, cidr: str, az: int, kind: str
) -> ec2.Subnet:
    props: dict[str, object] = dict(
        VpcId=Ref(vpc),
        CidrBlock=cidr,
        AvailabilityZone=Select(az, GetAZs("")),
        Tags=tags(platform, Name=Sub(f"${{{ENV_PARAM}}}-{kind}-{AZ_SUFFIXES[az].lower()}"), Tier=kind),
    )
    if kind == "public":
        props["MapPublicIpOnLaunch"] = True
    subnet = ec2.Subnet(title, **props)
    return template.add_resource(subnet)


def _flow_logs(template: Template, platform: PlatformConfig, vpc: ec2.VPC) -> None:
    key = kms_key(
        template,
        platform,
        "FlowLogsKey",
        "Encrypts the VPC flow log group",
        [logs_service_statement()],
    )
    group = log_group(
        template,
        "FlowLogsGroup",
        Sub(f"/fintech/${{{ENV_PARAM}}}/vpc-flow-logs"),
        GetAtt(key, "Arn"),
        platform,
    )
    role = template.add_resource(
        iam_res.Role(
            "FlowLogsRole",
            Description="Lets VPC Flow Logs write to the flow log group",
            AssumeRolePolicyDocument=role_trust("vpc-flow-logs.amazonaws.com"),
            Policies=[
                iam_res.Policy(
                    PolicyName="write-flow-logs",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            Statement(
                                Effect=Allow,
                                Action=[
                                    iam.Action("logs", "CreateLogStream"),
                                    iam.Action("logs", "PutLogEvents"),
                                    iam.Action("logs", "DescribeLogStreams"),
                                ],
                                Resource=[GetAtt(group, "Arn")],
                            )
                        ],
                    ),
                )
            ],
            Tags=tags(platform),
        )
    )
    template.add_resource(
        ec2.FlowLog(
            "VpcFlowLog",
            ResourceId=Ref(vpc),
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName=Ref(group),
            DeliverLogsPermissionArn=GetAtt(role, "Arn"),
            Tags=tags(platform),
        )
    )


def build(platform: PlatformConfig) -> Template:
    """The network tier template."""
    t = new_template(platform, "network", "VPC, subnets, NAT, flow logs and VPC endpoints")
    vpc = t.add_resource(
        ec2.VPC(
            "Vpc",
            CidrBlock=platform.vpc_cidr,
            EnableDnsSupport=True,
            EnableDnsHostnames=True,
            Tags=tags(platform, Name=Sub(f"${{{ENV_PARAM}}}-fintech")),
        )
    )
    # Deny everything on the default security group (nothing uses it).
    igw = t.add_resource(ec2.InternetGateway("InternetGateway", Tags=tags(platform)))
    attach = t.add_resource(
        ec2.VPCGatewayAttachment("InternetGatewayAttachment", VpcId=Ref(vpc), InternetGatewayId=Ref(igw))
    )
    public_rt = t.add_resource(ec2.RouteTable("PublicRouteTable", VpcId=Ref(vpc), Tags=tags(platform, Name="public")))
    t.add_resource(
        ec2.Route(
            "PublicDefaultRoute",
            DependsOn=attach.title,
            RouteTableId=Ref(public_rt),
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=Ref(igw),
        )
    )
    app_rts: list[ec2.RouteTable] = []
    data_rts: list[ec2.RouteTable] = []
    app_subnets: list[ec2.Subnet] = []
    nats: list[ec2.NatGateway] = []
    has_second, per_az = second_nat_gateway(t, platform)
    for az, sfx in enumerate(AZ_SUFFIXES):
        public = _subnet(t, platform, f"PublicSubnet{sfx}", vpc, platform.public_subnet_cidrs[az], az, "public")
        app = _subnet(t, platform, f"AppSubnet{sfx}", vpc, platform.app_subnet_cidrs[az], az, "app")
        data = _subnet(t, platform, f"DataSubnet{sfx}", vpc, platform.data_subnet_cidrs[az], az, "data")
        app_subnets.append(app)
        t.add_resource(
            ec2.SubnetRouteTableAssociation(
                f"PublicSubnet{sfx}RouteTableAssociation", SubnetId=Ref(public), RouteTableId=Ref(public_rt)
            )
        )
        eip = ec2.EIP(f"NatEip{sfx}", Domain="vpc", DependsOn=attach.title, Tags=tags(platform))
        nat = ec2.NatGateway(
            f"NatGateway{sfx}",
            AllocationId=GetAtt(eip, "AllocationId"),
            SubnetId=Ref(public),
            Tags=tags(platform, Name=Sub(f"${{{ENV_PARAM}}}-nat-{sfx.lower()}")),
        )
        # The first AZ's NAT gateway always exists; the second only where the environment has
        # one per AZ, else the second AZ's route table uses the first's (a dev opt-in).
        nat_id: object = Ref(nat)
        if az == 0 or has_second:
            if az > 0 and per_az is not None:
                eip.Condition = nat.Condition = per_az
                nat_id = If(per_az, Ref(nat), Ref(nats[0]))
            t.add_resource(eip)
            nats.append(t.add_resource(nat))
        else:
            nat_id = Ref(nats[0])
        app_rt = t.add_resource(
            ec2.RouteTable(f"AppRouteTable{sfx}", VpcId=Ref(vpc), Tags=tags(platform, Name=f"app-{sfx}"))
        )
        t.add_resource(
            ec2.Route(
                f"AppDefaultRoute{sfx}",
                RouteTableId=Ref(app_rt),
                DestinationCidrBlock="0.0.0.0/0",
                NatGatewayId=nat_id,
            )
        )
        t.add_resource(
            ec2.SubnetRouteTableAssociation(
                f"AppSubnet{sfx}RouteTableAssociation", SubnetId=Ref(app), RouteTableId=Ref(app_rt)
            )
        )
        data_rt = t.add_resource(
            ec2.RouteTable(f"DataRouteTable{sfx}", VpcId=Ref(vpc), Tags=tags(platform, Name=f"data-{sfx}"))
        )
        t.add_resource(
            ec2.SubnetRouteTableAssociation(
                f"DataSubnet{sfx}RouteTableAssociation", SubnetId=Ref(data), RouteTableId=Ref(data_rt)
            )
        )
        app_rts.append(app_rt)
        data_rts.append(data_rt)
        add_export(t, NetworkExports.PUBLIC_SUBNETS[az], Ref(public))
        add_export(t, NetworkExports.APP_SUBNETS[az], Ref(app))
        add_export(t, NetworkExports.DATA_SUBNETS[az], Ref(data))
        add_export(t, NetworkExports.NAT_GATEWAYS[az], nat_id)

    _flow_logs(t, platform, vpc)

    for service in GATEWAY_ENDPOINTS:
        t.add_resource(
            ec2.VPCEndpoint(
                f"{service.capitalize()}GatewayEndpoint",
                VpcId=Ref(vpc),
                VpcEndpointType="Gateway",
                ServiceName=Sub(f"com.amazonaws.${{AWS::Region}}.{service}"),
                RouteTableIds=[Ref(rt) for rt in (*app_rts, *data_rts)],
            )
        )

    endpoint_sg = t.add_resource(
        ec2.SecurityGroup(
            "EndpointSecurityGroup",
            GroupDescription="Interface VPC endpoints: HTTPS from the private app subnets only",
            VpcId=Ref(vpc),
            SecurityGroupIngress=[
                ec2.SecurityGroupRule(
                    IpProtocol="tcp",
                    FromPort=443,
                    ToPort=443,
                    CidrIp=cidr,
                    Description=f"HTTPS from private app subnet {AZ_SUFFIXES[i]}",
                )
                for i, cidr in enumerate(platform.app_subnet_cidrs)
            ],
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(
                    IpProtocol="-1",
                    CidrIp="127.0.0.1/32",
                    Description="No egress: endpoints only answer requests",
                )
            ],
            Tags=tags(platform),
        )
    )
    for service, condition in _endpoint_conditions(t, platform).items():
        endpoint = ec2.VPCEndpoint(
            endpoint_title(service),
            VpcId=Ref(vpc),
            VpcEndpointType="Interface",
            ServiceName=Sub(f"com.amazonaws.${{AWS::Region}}.{service}"),
            PrivateDnsEnabled=True,
            SubnetIds=[Ref(s) for s in app_subnets],
            SecurityGroupIds=[Ref(endpoint_sg)],
        )
        if condition is not None:
            endpoint.Condition = condition
        t.add_resource(endpoint)

    add_export(t, NetworkExports.VPC_ID, Ref(vpc))
    return t
