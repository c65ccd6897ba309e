"""Issue 13, item 3: the WAF lets every request the contract accepts through. The common rule set's
8 KB body rule only counts; an explicit rule refuses declared bodies over the contract's 4 MiB with
the contract's own 413 answer."""

from __future__ import annotations

import json
import re

from shared.web import MAX_BODY_BYTES
from stacks.compute_waf import greater_than_pattern
from tests.stacks.conftest import Json, props, resources


def _acl(templates: dict[str, Json]) -> Json:
    (acl,) = resources(templates["compute"], "AWS::WAFv2::WebACL").values()
    return props(acl)


def _rule(acl: Json, name: str) -> Json:
    (rule,) = [r for r in acl["Rules"] if r["Name"] == name]
    return rule


def test_common_rule_set_only_counts_its_8_kb_body_rule(templates: dict[str, Json]) -> None:
    common = _rule(_acl(templates), "AWSManagedRulesCommonRuleSet")["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]


def test_no_other_managed_rule_is_overridden(templates: dict[str, Json]) -> None:
    for rule in _acl(templates)["Rules"]:
        statement = rule["Statement"].get("ManagedRuleGroupStatement")
        if statement and rule["Name"] != "AWSManagedRulesCommonRuleSet":
            assert "RuleActionOverrides" not in statement, rule["Name"]
            assert "ExcludedRules" not in statement, rule["Name"]


def test_explicit_size_rule_blocks_content_length_over_the_contract_limit_with_413(templates: dict[str, Json]) -> None:
    acl = _acl(templates)
    rule = _rule(acl, "BodyOverContractLimit")
    assert rule["Priority"] == min(r["Priority"] for r in acl["Rules"])  # evaluated first
    match = rule["Statement"]["RegexMatchStatement"]
    assert match["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    assert match["TextTransformations"] == [{"Priority": 0, "Type": "NONE"}]
    pattern = re.compile(match["RegexString"])
    assert len(match["RegexString"]) <= 512  # WAF's limit on a regex string
    for length in (0, 8193, 100_000, MAX_BODY_BYTES - 1, MAX_BODY_BYTES):
        assert not pattern.search(str(length)), length
    for length in (MAX_BODY_BYTES + 1, MAX_BODY_BYTES + 1000, 5_000_000, 10**7, 10**12):
        assert pattern.search(str(length)), length
    response = rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 413
    body = acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    problem = json.loads(body["Content"])
    assert problem["status"] == 413 and problem["code"] == "payload_too_large"
    assert str(MAX_BODY_BYTES) in problem["detail"]


def test_greater_than_pattern_is_exact_around_every_digit_boundary() -> None:
    for limit in (0, 7, 9, 10, 99, 100, 899, 4096, MAX_BODY_BYTES):
        pattern = re.compile(greater_than_pattern(limit))
        probes = {*range(max(0, limit - 120), limit + 120), limit * 10, limit * 10 + 9, 10 ** len(str(limit))}
        for n in probes:
            assert bool(pattern.search(str(n))) == (n > limit), (limit, n)
        assert bool(pattern.search(f"00{limit + 1}")) and not pattern.search(f"00{limit}")
        assert not pattern.search("") and not pattern.search("1e9") and not pattern.search(f"{limit + 1} ")
