"""Compute tier: ECS on Fargate behind a public ALB (edge in compute_alb, services in
compute_services)."""

from __future__ import annotations

from troposphere import GetAtt, Parameter, Template

from stacks.common import new_template
from stacks.compute_alb import build_edge
from stacks.compute_services import build_services
from stacks.config import PlatformConfig
from stacks.naming import ComputeExports, SecurityExports, add_export, import_value


def build(platform: PlatformConfig) -> Template:
    """The compute tier template."""
    t = new_template(platform, "compute", "ECS cluster, ALB, WAF, services and autoscaling")
    t.add_parameter(
        Parameter(
            "ContainerImage",
            Type="String",
            AllowedPattern="^[^\\s@]+@sha256:[0-9a-f]{64}$",
            Description="Service image by digest only (<account>.dkr.ecr.<region>.amazonaws.com/fintech-ledger"
            "@sha256:<64 hex>), so what was scanned and reviewed is what runs; one image runs all three "
            "services, each task definition chooses the module.",
        )
    )
    t.add_parameter(
        Parameter(
            "CertificateArn",
            Type="String",
            AllowedPattern="^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$",
            Description="ARN of the ACM certificate (same region) the HTTPS listener presents.",
        )
    )
    t.add_parameter(
        Parameter(
            "AdotImage",
            Type="String",
            Default=platform.adot_image,
            AllowedPattern="^ecr-public/[a-z0-9._/-]+(:[\\w.-]+|@sha256:[0-9a-f]{64})$",
            Description="AWS Distro for OpenTelemetry collector sidecar (traces to X-Ray), as a path in "
            "this account's ECR Public pull-through cache (ecr-public/...): pulled through ECR, never "
            "from a public registry.",
        )
    )
    logs_key = import_value(t, SecurityExports.LOGS_KEY_ARN)
    edge = build_edge(t, platform, logs_key)
    build_services(t, platform, edge, logs_key)
    add_export(t, ComputeExports.ALB_FULL_NAME, GetAtt(edge.load_balancer, "LoadBalancerFullName"))
    add_export(t, ComputeExports.ALB_DNS, GetAtt(edge.load_balancer, "DNSName"))
    add_export(t, ComputeExports.TARGET_GROUP_FULL_NAME, GetAtt(edge.target_group, "TargetGroupFullName"))
    return t
