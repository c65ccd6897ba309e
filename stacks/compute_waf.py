"""Compute tier, WAF part: the regional WAFv2 web ACL in front of the public ALB, and its log group.

Invariants:
- No rule may refuse a request the public contract accepts. The contract takes bodies up to
  ``shared.web.MAX_BODY_BYTES`` (4 MiB); the common rule set's ``SizeRestrictions_BODY`` blocks
  anything over 8 KB (a batch of ~40 transfers), so that one rule only counts (it still labels and
  logs the request) and an explicit size rule blocks at the contract's limit instead.
- An ALB forwards at most the first 8 KB of a body to WAF, so WAF cannot measure a 4 MiB body: the
  size rule reads the declared ``Content-Length``. A chunked body without that header reaches the
  gateway, which enforces the same limit while reading (``shared/asgi.py``). The refusal is the
  contract's own answer, 413 ``payload_too_large`` as problem JSON, so a client cannot tell which
  layer refused.
"""

from __future__ import annotations

import json

from troposphere import GetAtt, Ref, Sub, Template, wafv2
from troposphere import elasticloadbalancingv2 as elb
from troposphere import logs as logs_res

from shared.web import MAX_BODY_BYTES
from stacks.common import ENV_PARAM, RETAIN_EXCEPT_ON_CREATE, sizing, tags
from stacks.config import PlatformConfig

MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
COUNT_ONLY_RULES = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}
"""Rules of a managed group that only count: each would refuse requests the contract accepts."""
TOO_LARGE_BODY_KEY = "payload_too_large"
TOO_LARGE_PROBLEM = json.dumps(
    {
        "type": "about:blank",
        "title": "Payload Too Large",
        "status": 413,
        "code": "payload_too_large",
        "detail": f"request body exceeds {MAX_BODY_BYTES} bytes",
    },
    separators=(",", ":"),
)


def greater_than_pattern(limit: int) -> str:
    """A regex matching exactly the decimal integers (leading zeros allowed) greater than ``limit``.

    WAF has no numeric comparison of a header's value, so ``Content-Length > limit`` is spelled as
    text: any number with more digits, or with as many digits and, at the first digit that differs,
    a larger one."""
    digits = str(limit)
    width = len(digits)
    branches = [f"[1-9][0-9]{{{width},}}"]
    for index, digit in enumerate(digits):
        if digit == "9":
            continue
        rest = width - index - 1
        larger = f"[{int(digit) + 1}-9]" if digit != "8" else "9"
        tail = f"[0-9]{{{rest}}}" if rest else ""
        branches.append(f"{digits[:index]}{larger}{tail}")
    return "^0*(" + "|".join(branches) + ")$"


def _visibility(name: str) -> wafv2.VisibilityConfig:
    return wafv2.VisibilityConfig(CloudWatchMetricsEnabled=True, MetricName=name, SampledRequestsEnabled=True)


def _rules() -> list[wafv2.WebACLRule]:
    rules = [
        # First, and cheapest: refuse a declared body the contract refuses anyway.
        wafv2.WebACLRule(
            Name="BodyOverContractLimit",
            Priority=0,
            Action=wafv2.RuleAction(
                Block=wafv2.BlockAction(
                    CustomResponse=wafv2.CustomResponse(ResponseCode=413, CustomResponseBodyKey=TOO_LARGE_BODY_KEY)
                )
            ),
            Statement=wafv2.Statement(
                RegexMatchStatement=wafv2.RegexMatchStatement(
                    FieldToMatch=wafv2.FieldToMatch(SingleHeader=wafv2.SingleHeader(Name="content-length")),
                    RegexString=greater_than_pattern(MAX_BODY_BYTES),
                    TextTransformations=[wafv2.TextTransformation(Priority=0, Type="NONE")],
                )
            ),
            VisibilityConfig=_visibility("BodyOverContractLimit"),
        )
    ]
    for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
        statement = wafv2.ManagedRuleGroupStatement(VendorName="AWS", Name=group)
        if group in COUNT_ONLY_RULES:
            statement.RuleActionOverrides = [
                wafv2.RuleActionOverride(Name=name, ActionToUse=wafv2.RuleAction(Count=wafv2.CountAction()))
                for name in COUNT_ONLY_RULES[group]
            ]
        rules.append(
            wafv2.WebACLRule(
                Name=group,
                Priority=priority,
                OverrideAction=wafv2.OverrideAction(**{"None": {}}),
                Statement=wafv2.Statement(ManagedRuleGroupStatement=statement),
                VisibilityConfig=_visibility(group),
            )
        )
    rules.append(
        wafv2.WebACLRule(
            Name="RateLimitPerIp",
            Priority=10,
            Action=wafv2.RuleAction(Block=wafv2.BlockAction()),
            Statement=wafv2.Statement(
                RateBasedStatement=wafv2.RateBasedStatement(
                    Limit=sizing("WafRateLimitPer5Minutes"), AggregateKeyType="IP"
                )
            ),
            VisibilityConfig=_visibility("RateLimitPerIp"),
        )
    )
    return rules


def build_waf(t: Template, platform: PlatformConfig, alb: elb.LoadBalancer, logs_key: object) -> None:
    """Add the web ACL, its association with ``alb`` and its (KMS-encrypted) log group to ``t``."""
    acl = t.add_resource(
        wafv2.WebACL(
            "WebAcl",
            Name=Sub(f"${{{ENV_PARAM}}}-fintech-alb"),
            Description="Public API: contract body limit, AWS managed rule groups and a per-IP rate limit",
            Scope="REGIONAL",
            DefaultAction=wafv2.DefaultAction(Allow=wafv2.AllowAction()),
            CustomResponseBodies={
                TOO_LARGE_BODY_KEY: wafv2.CustomResponseBody(ContentType="APPLICATION_JSON", Content=TOO_LARGE_PROBLEM)
            },
            Rules=_rules(),
            VisibilityConfig=_visibility("FinTechAlb"),
            Tags=tags(platform),
        )
    )
    t.add_resource(wafv2.WebACLAssociation("WebAclAssociation", ResourceArn=Ref(alb), WebACLArn=GetAtt(acl, "Arn")))
    waf_logs = t.add_resource(
        logs_res.LogGroup(
            "WafLogGroup",
            LogGroupName=Sub(f"aws-waf-logs-fintech-${{{ENV_PARAM}}}"),
            KmsKeyId=logs_key,
            RetentionInDays=sizing("LogRetentionDays"),
            Tags=tags(platform),
            DeletionPolicy=RETAIN_EXCEPT_ON_CREATE,
            UpdateReplacePolicy="Retain",
        )
    )
    t.add_resource(
        wafv2.LoggingConfiguration(
            "WebAclLogging",
            ResourceArn=GetAtt(acl, "Arn"),
            LogDestinationConfigs=[
                Sub(
                    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${Group}",
                    Group=Ref(waf_logs),
                )
            ],
        )
    )
