"""Compute tier, edge half: the access-log bucket, the public ALB, its listeners, the gateway target
group; the WAFv2 web ACL in front of it is built by ``stacks.compute_waf``."""

from __future__ import annotations

from dataclasses import dataclass

from awacs import aws as iam
from awacs.aws import Allow, Principal, Statement
from troposphere import FindInMap, Ref, Sub, Template
from troposphere import elasticloadbalancingv2 as elb

from stacks.common import bucket_policy, checkov_skip, secure_bucket, sizing, tags
from stacks.compute_waf import build_waf
from stacks.config import PlatformConfig
from stacks.naming import NetworkExports, SecurityExports, import_value

ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-south-1": "718504428378",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-southeast-3": "589379963580",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-south-1": "635631232127",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
}
"""Elastic Load Balancing account that writes access logs, per region (AWS documentation)."""

GATEWAY_PATHS = ["/v1/*", "/health/*", "/schema/*"]
"""Paths the ALB forwards to the gateway; anything else gets a 404 from the ALB itself."""


@dataclass(frozen=True)
class Edge:
    """What the services half of the compute tier needs from the edge half."""

    load_balancer: elb.LoadBalancer
    target_group: elb.TargetGroup
    listener_rule: elb.ListenerRule


def build_edge(t: Template, platform: PlatformConfig, logs_key: object) -> Edge:
    """Add the ALB, its listeners, target group, access-log bucket and WAF to ``t``."""
    t.add_mapping("ElbAccounts", {region: {"AccountId": acct} for region, acct in ELB_ACCOUNTS.items()})
    gateway = platform.service("gateway")
    bucket = secure_bucket(
        t,
        platform,
        "AlbAccessLogsBucket",
        expire_days=sizing("AlbLogRetentionDays"),
        kms_key_arn=None,
        access_log_bucket=None,
    )
    checkov_skip(
        bucket,
        ("CKV_AWS_18", "This bucket is itself a log destination; logging it would log the logs."),
    )
    policy = bucket_policy(
        t,
        "AlbAccessLogsBucketPolicy",
        bucket,
        [
            Statement(
                Sid="ElbLogDelivery",
                Effect=Allow,
                Principal=Principal(
                    "AWS",
                    Sub(
                        "arn:${AWS::Partition}:iam::${Acct}:root",
                        Acct=FindInMap("ElbAccounts", Ref("AWS::Region"), "AccountId"),
                    ),
                ),
                Action=[iam.Action("s3", "PutObject")],
                Resource=[Sub("${AlbAccessLogsBucket.Arn}/alb/AWSLogs/${AWS::AccountId}/*")],
            )
        ],
    )
    alb = t.add_resource(
        elb.LoadBalancer(
            "LoadBalancer",
            DependsOn=[policy.title],
            Type="application",
            Scheme="internet-facing",
            IpAddressType="ipv4",
            Subnets=[import_value(t, ref) for ref in NetworkExports.PUBLIC_SUBNETS],
            SecurityGroups=[import_value(t, SecurityExports.ALB_SG)],
            LoadBalancerAttributes=[
                elb.LoadBalancerAttributes(Key="deletion_protection.enabled", Value="true"),
                elb.LoadBalancerAttributes(Key="routing.http.drop_invalid_header_fields.enabled", Value="true"),
                elb.LoadBalancerAttributes(Key="access_logs.s3.enabled", Value="true"),
                elb.LoadBalancerAttributes(Key="access_logs.s3.bucket", Value=Ref(bucket)),
                elb.LoadBalancerAttributes(Key="access_logs.s3.prefix", Value="alb"),
                elb.LoadBalancerAttributes(Key="idle_timeout.timeout_seconds", Value="60"),
            ],
            Tags=tags(platform),
        )
    )
    target_group = t.add_resource(
        elb.TargetGroup(
            "GatewayTargetGroup",
            TargetType="ip",
            Protocol="HTTP",
            Port=gateway.port,
            VpcId=import_value(t, NetworkExports.VPC_ID),
            HealthCheckEnabled=True,
            HealthCheckProtocol="HTTP",
            HealthCheckPath="/health/ready",
            HealthCheckIntervalSeconds=15,
            HealthCheckTimeoutSeconds=5,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=3,
            Matcher=elb.Matcher(HttpCode="200"),
            TargetGroupAttributes=[
                elb.TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value="30"),
            ],
            Tags=tags(platform),
        )
    )
    https = t.add_resource(
        elb.Listener(
            "HttpsListener",
            LoadBalancerArn=Ref(alb),
            Port=443,
            Protocol="HTTPS",
            SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
            Certificates=[elb.Certificate(CertificateArn=Ref("CertificateArn"))],
            DefaultActions=[
                elb.Action(
                    Type="fixed-response",
                    FixedResponseConfig=elb.FixedResponseConfig(
                        StatusCode="404",
                        ContentType="application/json",
                        MessageBody='{"type":"about:blank","title":"Not Found","status":404,'
                        '"code":"not_found","detail":"no such route"}',
                    ),
                )
            ],
        )
    )
    t.add_resource(
        elb.Listener(
            "HttpListener",
            LoadBalancerArn=Ref(alb),
            Port=80,
            Protocol="HTTP",
            DefaultActions=[
                elb.Action(
                    Type="redirect",
                    RedirectConfig=elb.RedirectConfig(Protocol="HTTPS", Port="443", StatusCode="HTTP_301"),
                )
            ],
        )
    )
    rule = t.add_resource(
        elb.ListenerRule(
            "GatewayListenerRule",
            ListenerArn=Ref(https),
            Priority=10,
            Conditions=[
                elb.Condition(Field="path-pattern", PathPatternConfig=elb.PathPatternConfig(Values=GATEWAY_PATHS))
            ],
            Actions=[elb.ListenerRuleAction(Type="forward", TargetGroupArn=Ref(target_group))],
        )
    )
    build_waf(t, platform, alb, logs_key)
    return Edge(load_balancer=alb, target_group=target_group, listener_rule=rule)
