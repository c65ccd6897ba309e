"""AWS on-demand list prices the capacity page (``./scripts/bench --capacity``) costs with, in one table.

Invariants:

- Every price is an **on-demand list price in one region** (``REGION``), in USD, without taxes,
  free tiers, Savings Plans, reserved instances or Enterprise discounts.
- They were **not fetched**: this workplace has no internet access. They are the published list
  prices as the author knew them on ``PRICE_DATE`` and must be checked against the ``source`` page
  before anyone budgets with them. Updating a price is an edit of one row here; every table of
  docs/capacity.md is then regenerated with ``./scripts/bench --from-json FILE --capacity``.
- Instance facts (vCPU, memory) sit next to the price of the same class so the sizing and the cost
  of a class cannot come from two different lists.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1 (N. Virginia)"
PRICE_DATE = "2025-01"
"""Month the list prices below were last known to the author (not re-checked since: no internet)."""
HOURS_PER_MONTH = 730
"""AWS's own convention for monthly prices (8,760 h / 12)."""
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class Price:
    """One list price: ``usd`` per ``unit``, as published on ``source``."""

    usd: float
    unit: str
    source: str


_FARGATE = "https://aws.amazon.com/fargate/pricing/ (Linux/x86, on-demand)"
_AURORA = "https://aws.amazon.com/rds/aurora/pricing/ (Aurora PostgreSQL, Standard storage)"
_CACHE = "https://aws.amazon.com/elasticache/pricing/ (Redis OSS, on-demand node)"
_VPC = "https://aws.amazon.com/vpc/pricing/"
_PRIVATELINK = "https://aws.amazon.com/privatelink/pricing/"
_ELB = "https://aws.amazon.com/elasticloadbalancing/pricing/"
_WAF = "https://aws.amazon.com/waf/pricing/"
_CW = "https://aws.amazon.com/cloudwatch/pricing/"
_DDB = "https://aws.amazon.com/dynamodb/pricing/on-demand/ (after the 2024-11-01 on-demand cut)"
_EC2 = "https://aws.amazon.com/ec2/pricing/on-demand/ (data transfer)"

PRICES: dict[str, Price] = {
    "fargate_vcpu_hour": Price(0.04048, "vCPU-hour", _FARGATE),
    "fargate_gb_hour": Price(0.004445, "GB-hour", _FARGATE),
    "aurora_storage_gb_month": Price(0.10, "GB-month", _AURORA),
    "aurora_io_million": Price(0.20, "million I/O requests", _AURORA),
    "nat_hour": Price(0.045, "NAT gateway-hour", _VPC),
    "nat_gb": Price(0.045, "GB processed", _VPC),
    "endpoint_az_hour": Price(0.01, "interface endpoint-hour per AZ", _PRIVATELINK),
    "endpoint_gb": Price(0.01, "GB processed", _PRIVATELINK),
    "alb_hour": Price(0.0225, "ALB-hour", _ELB),
    "alb_lcu_hour": Price(0.008, "LCU-hour", _ELB),
    "waf_acl_month": Price(5.00, "web ACL-month", _WAF),
    "waf_rule_month": Price(1.00, "rule-month", _WAF),
    "waf_million_requests": Price(0.60, "million requests", _WAF),
    "cw_metric_month": Price(0.30, "custom metric-month (first 10,000)", _CW),
    "cw_alarm_metric_month": Price(0.10, "standard-resolution alarm metric-month", _CW),
    "cw_composite_alarm_month": Price(0.50, "composite alarm-month", _CW),
    "cw_dashboard_month": Price(3.00, "dashboard-month (after the first 3)", _CW),
    "cw_logs_ingest_gb": Price(0.50, "GB ingested", _CW),
    "kms_key_month": Price(1.00, "customer managed key-month", "https://aws.amazon.com/kms/pricing/"),
    "secret_month": Price(0.40, "secret-month", "https://aws.amazon.com/secrets-manager/pricing/"),
    "ddb_million_writes": Price(0.625, "million write request units", _DDB),
    "ddb_million_reads": Price(0.125, "million read request units", _DDB),
    "xray_million_traces": Price(5.00, "million traces recorded", "https://aws.amazon.com/xray/pricing/"),
    "config_item": Price(0.003, "configuration item recorded", "https://aws.amazon.com/config/pricing/"),
    "internet_out_gb": Price(0.09, "GB out to the internet (first 10 TB)", _EC2),
    "inter_az_gb": Price(0.02, "GB between AZs (0.01 out + 0.01 in)", _EC2),
}


@dataclass(frozen=True)
class InstanceClass:
    """An Aurora or ElastiCache instance class: its size and its hourly list price."""

    name: str
    vcpu: int
    memory_gib: float
    usd_hour: float


AURORA_CLASSES: tuple[InstanceClass, ...] = (
    InstanceClass("db.t4g.medium", 2, 4, 0.073),
    InstanceClass("db.r7g.large", 2, 16, 0.276),
    InstanceClass("db.r7g.xlarge", 4, 32, 0.552),
    InstanceClass("db.r7g.2xlarge", 8, 64, 1.104),
    InstanceClass("db.r7g.4xlarge", 16, 128, 2.208),
    InstanceClass("db.r7g.8xlarge", 32, 256, 4.416),
    InstanceClass("db.r7g.12xlarge", 48, 384, 6.624),
    InstanceClass("db.r7g.16xlarge", 64, 512, 8.832),
)
"""Aurora PostgreSQL instance classes (source: ``_AURORA``); burstable ``t4g`` is for dev only."""

CACHE_CLASSES: tuple[InstanceClass, ...] = (
    InstanceClass("cache.t4g.small", 2, 1.37, 0.032),
    InstanceClass("cache.r7g.large", 2, 13.07, 0.219),
    InstanceClass("cache.r7g.xlarge", 4, 26.32, 0.437),
    InstanceClass("cache.r7g.2xlarge", 8, 52.82, 0.873),
    InstanceClass("cache.r7g.4xlarge", 16, 105.81, 1.745),
    InstanceClass("cache.r7g.8xlarge", 32, 209.55, 3.490),
    InstanceClass("cache.r7g.12xlarge", 48, 317.77, 5.235),
    InstanceClass("cache.r7g.16xlarge", 64, 419.09, 6.981),
)
"""ElastiCache node types (source: ``_CACHE``)."""

AURORA_SOURCE = _AURORA
CACHE_SOURCE = _CACHE


def price(key: str) -> float:
    """The USD list price ``key`` (KeyError for an unknown key, so a typo cannot cost nothing)."""
    return PRICES[key].usd


def instance(classes: tuple[InstanceClass, ...], name: str) -> InstanceClass:
    """The class called ``name``; KeyError when the price table has none (add its row above)."""
    for cls in classes:
        if cls.name == name:
            return cls
    raise KeyError(f"no list price for {name!r}: add it to cli/bench/prices.py")
