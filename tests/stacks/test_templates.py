"""Template-wide properties: parameters documented, exports named by convention, every import
resolves to an export of an earlier tier, cfn-lint clean (informational rules included)."""

from __future__ import annotations

import re

import pytest
from cfnlint.api import ManualArgs, lint

from stacks.naming import TIERS
from tests.stacks.conftest import Json, imports

REGIONS = ["eu-west-1", "us-east-1"]


def test_synth_writes_one_template_per_tier_in_dependency_order(templates: dict[str, Json]) -> None:
    assert list(templates) == ["network", "security", "data", "compute", "observability", "compliance", "backup"]


def test_every_parameter_has_a_description(templates: dict[str, Json]) -> None:
    for tier, t in templates.items():
        for name, param in t["Parameters"].items():
            assert len(param.get("Description", "")) >= 20, f"{tier}.{name}"


def test_exports_are_named_stack_name_dash_name(templates: dict[str, Json]) -> None:
    for tier, t in templates.items():
        for name, output in t.get("Outputs", {}).items():
            assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}, f"{tier}.{name}"


def test_every_import_names_an_export_of_an_earlier_tier_through_its_stack_parameter(
    templates: dict[str, Json],
) -> None:
    exported = {tier: set(t.get("Outputs", {})) for tier, t in templates.items()}
    for index, (tier, t) in enumerate(templates.items()):
        for name in imports(t["Resources"]) | imports(t.get("Outputs", {})):
            match = re.fullmatch(r"\$\{(\w+)Stack\}-(\w+)", name)
            assert match, name
            producer = match.group(1).lower()
            assert TIERS.index(producer) < index, f"{tier} imports from later tier {producer}"
            assert match.group(2) in exported[producer], f"{tier} imports unknown {name}"
            assert f"{match.group(1)}Stack" in t["Parameters"]


def test_no_template_hard_codes_an_account_region_or_partition(rendered: dict[str, str]) -> None:
    for tier, text in rendered.items():
        assert "arn:aws:" not in text, tier
        assert not re.search(r"\b(eu|us|ap)-(west|east|central|south|north)-\d\.amazonaws", text), tier


@pytest.mark.parametrize("tier", TIERS)
def test_cfn_lint_reports_nothing_not_even_informational(tier: str, rendered: dict[str, str]) -> None:
    matches = lint(rendered[tier], regions=REGIONS, config=ManualArgs(include_checks=["I"], regions=REGIONS))
    assert [f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches] == []


def test_cfn_lint_runs_the_informational_stateful_policy_rules() -> None:
    # Guard against a silent configuration change: I3011/I3013 must be in the rule set we run.
    bad = (
        '{"Resources": {"T": {"Type": "AWS::DynamoDB::Table", "Properties": {'
        '"KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",'
        '"AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}]}},'
        '"Q": {"Type": "AWS::SQS::Queue", "Properties": {}}}}'
    )
    ids = {m.rule.id for m in lint(bad, regions=REGIONS, config=ManualArgs(include_checks=["I"], regions=REGIONS))}
    assert {"I3011", "I3013"} <= ids
