"""Monthly AWS cost of an environment, at list prices, from its config and its synthesized templates.

Invariants:

- Sizes come from ``stacks.config`` (task sizes and counts, instance classes, replicas) and counts of
  everything else (NAT gateways, interface endpoints, KMS keys, secrets, alarms, dashboards, WAF
  rules) from the templates ``stacks.synth`` builds, so a new alarm or endpoint costs what it costs
  without an edit here.
- Every unit price comes from ``cli.bench.prices``; a line is ``quantity x unit price``, and the page
  prints both, so each line can be checked by hand.
- A line item is either **fixed** (paid per hour whether traffic flows or not) or **per transfer**
  (``per_million``); the cost per million transfers at a load is the month's total at that load,
  fleet sized for it by ``cli.bench.capacity_model``, over the transfers of that month.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from cli.bench.capacity_model import (
    SERVICES,
    Measured,
    assumed,
    aurora_class,
    cache_class,
    redis_shards,
    tasks,
)
from cli.bench.prices import AURORA_CLASSES, HOURS_PER_MONTH, SECONDS_PER_MONTH, instance, price
from stacks.config import PLATFORM, EnvironmentConfig, ServiceSizing

AZS = 2
"""Availability zones every tier spans (stacks/network.py): interface endpoints are billed per AZ."""


@dataclass(frozen=True)
class Line:
    """One cost line: ``quantity`` of ``unit`` at ``unit_usd`` each, per month."""

    item: str
    quantity: float
    unit: str
    unit_usd: float

    @property
    def monthly(self) -> float:
        return self.quantity * self.unit_usd


@cache
def inventory() -> dict[str, int]:
    """Counts of the billed resources in the synthesized templates (the same for every environment)."""
    from stacks.synth import synthesize  # imported late: building every template takes a second

    counts: dict[str, int] = {"alarm_metrics": 0, "waf_rules": 0, "interface_endpoints": 0, "secrets": 0}
    for text in synthesize(PLATFORM).values():
        for resource in json.loads(text)["Resources"].values():
            kind, props = resource["Type"], resource.get("Properties", {})
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "AWS::CloudWatch::Alarm":
                # A metric-math alarm is billed per metric it reads, a plain alarm as one.
                stats = [q for q in props.get("Metrics", []) if "MetricStat" in q]
                counts["alarm_metrics"] += max(1, len(stats))
            elif kind == "AWS::WAFv2::WebACL":
                counts["waf_rules"] += len(props.get("Rules", []))
            elif kind == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == "Interface":
                counts["interface_endpoints"] += 1
            elif kind == "AWS::SecretsManager::Secret" or (
                kind == "AWS::RDS::DBCluster" and "MasterUserSecret" in props
            ):
                counts["secrets"] += 1  # the RDS-managed master password is a billed secret too
    return counts


def _fargate(name: str, sizing: ServiceSizing, count: int) -> Line:
    per_task = sizing.cpu / 1024 * price("fargate_vcpu_hour") + sizing.memory / 1024 * price("fargate_gb_hour")
    return Line(f"Fargate {name} ({sizing.cpu / 1024:g} vCPU, {sizing.memory / 1024:g} GB)", count * HOURS_PER_MONTH,
                "task-hours", per_task)  # fmt: skip


def fixed_lines(env: EnvironmentConfig, fleet: dict[str, Any] | None = None) -> list[Line]:
    """The hourly-billed lines of ``env``: its configured size, or ``fleet`` (tasks per service,
    ``aurora`` class name, ``redis_shards``) when sized for a load."""
    fleet = fleet or {}
    inv = inventory()
    h = HOURS_PER_MONTH
    lines = [_fargate(s, env.service(s), fleet.get(s, env.service(s).desired_count)) for s in SERVICES]
    writer = instance(AURORA_CLASSES, fleet.get("aurora", env.aurora_instance_class))
    lines.append(Line(f"Aurora {writer.name} (writer + reader)", 2 * h, "instance-hours", writer.usd_hour))
    node = cache_class(env.redis_node_type)
    nodes = fleet.get("redis_shards", 1) * (1 + env.redis_replicas)
    lines.append(Line(f"ElastiCache {node.name} ({nodes} nodes)", nodes * h, "node-hours", node.usd_hour))
    lines += [
        Line("NAT gateways", inv.get("AWS::EC2::NatGateway", 0) * h, "NAT-hours", price("nat_hour")),
        Line(f"Interface endpoints ({inv['interface_endpoints']} x {AZS} AZs)", inv["interface_endpoints"] * AZS * h,
             "endpoint-AZ-hours", price("endpoint_az_hour")),
        Line("ALB", h, "ALB-hours", price("alb_hour")),
        Line("WAF web ACL", inv.get("AWS::WAFv2::WebACL", 0), "ACL-months", price("waf_acl_month")),
        Line("WAF rules", inv["waf_rules"], "rule-months", price("waf_rule_month")),
        Line("KMS customer managed keys", inv.get("AWS::KMS::Key", 0), "key-months", price("kms_key_month")),
        Line("Secrets Manager secrets", inv["secrets"], "secret-months", price("secret_month")),
        Line("CloudWatch alarms", inv["alarm_metrics"], "alarm metric-months", price("cw_alarm_metric_month")),
        Line("CloudWatch composite alarms (SLO burn rates)", inv.get("AWS::CloudWatch::CompositeAlarm", 0),
             "composite alarm-months", price("cw_composite_alarm_month")),
        Line("CloudWatch dashboards", inv.get("AWS::CloudWatch::Dashboard", 0), "dashboard-months",
             price("cw_dashboard_month")),
        Line("CloudWatch EMF custom metrics", assumed("emf_metrics"), "metric-months", price("cw_metric_month")),
        Line("AWS Config items", assumed("config_items_month"), "items", price("config_item")),
    ]  # fmt: skip
    return lines


def per_million_lines() -> list[Line]:
    """What one million transfers cost on top of the hourly lines (``quantity`` per million)."""
    gb = 1e6 / 1e9  # bytes per transfer x 1e6 transfers, in GB
    return [
        Line("WAF requests", 1, "million requests", price("waf_million_requests")),
        Line("ALB LCUs", assumed("alb_bytes_per_transfer") * gb, "LCU-hours", price("alb_lcu_hour")),
        Line("Aurora I/O", assumed("aurora_io_per_transfer"), "million I/Os", price("aurora_io_million")),
        Line("Aurora storage (first month kept)", assumed("aurora_bytes_per_transfer") * gb, "GB-months",
             price("aurora_storage_gb_month")),
        Line("X-Ray traces (5% sampled)", 0.05, "million traces", price("xray_million_traces")),
        Line("Interface endpoint data", assumed("endpoint_bytes_per_transfer") * gb, "GB", price("endpoint_gb")),
        Line("Data out to the internet", assumed("internet_bytes_per_transfer") * gb, "GB", price("internet_out_gb")),
        Line("Data between AZs", assumed("inter_az_bytes_per_transfer") * gb, "GB", price("inter_az_gb")),
    ]  # fmt: skip


def fleet_for(m: Measured, env: EnvironmentConfig, rate: float) -> dict[str, Any]:
    """Tasks per service, Aurora class and Redis shards for ``rate`` transfers/s on ``env``'s task sizes."""
    fleet: dict[str, Any] = {s: tasks(m, s, env, rate) for s in SERVICES}
    writer = aurora_class(m, rate)
    fleet["aurora"] = writer.name if writer else AURORA_CLASSES[-1].name
    fleet["aurora_fits"] = writer is not None
    fleet["redis_shards"] = redis_shards(m, cache_class(env.redis_node_type), rate)
    return fleet


def monthly(env: EnvironmentConfig, fleet: dict[str, Any] | None = None, rate: float = 0.0) -> float:
    """Month's total at a sustained ``rate`` transfers/s: hourly lines plus the per-transfer ones."""
    millions = rate * SECONDS_PER_MONTH / 1e6
    return sum(line.monthly for line in fixed_lines(env, fleet)) + millions * sum(
        line.monthly for line in per_million_lines()
    )


def per_million(m: Measured, rate: float, env: EnvironmentConfig | None = None) -> tuple[float, dict[str, Any]]:
    """USD per million transfers at a sustained ``rate`` on prod's task sizes, and the fleet it assumes."""
    env = env or PLATFORM.environment("prod")
    # Tasks never drop below the floor and are not capped at max_tasks: past it the page says to
    # raise the ceiling, rather than pricing a fleet that could not carry the load.
    fleet = fleet_for(m, env, rate)
    return monthly(env, fleet, rate) / (rate * SECONDS_PER_MONTH / 1e6), fleet
