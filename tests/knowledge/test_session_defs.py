"""session_checks.yaml loads, cites known references, and bad definitions are refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from ketacare.knowledge import load_yaml
from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.instrument_defs import load_instruments, reference_ids
from ketacare.knowledge.session_defs import SessionChecksDef, load_session_checks
from ketacare.knowledge.therapy_defs import load_therapy


def raw() -> dict[str, Any]:
    return copy.deepcopy(load_yaml("session_checks.yaml"))


def test_every_source_is_a_known_reference() -> None:
    checks = load_session_checks()
    assert checks.all_source_ids() <= reference_ids()
    assert {p.id for p in checks.prechecks} == {
        "fasting",
        "escort",
        "pregnancy",
        "interactions",
        "dose_interval",
        "risk_flags",
        "earlier_refusal",
        "programme",
        "readings",
    }


def test_every_answered_check_can_proceed_and_unknown_names_are_not_safe() -> None:
    checks = load_session_checks()
    for check in checks.prechecks:
        if check.id == "interactions":
            assert check.unrecognized_band != "proceed"
            # As at intake, where the same finding makes the patient ineligible: no override.
            assert check.severity_bands["contraindicated"] == "refuse"
        elif check.computed_bands:
            assert "proceed" in check.computed_bands.values()
        else:
            assert any(a.band == "proceed" for a in check.answers)


def test_only_other_needs_a_note() -> None:
    assert [a.code for a in load_session_checks().adverse_events if a.requires_note] == ["other"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["adverse_events"].append(dict(d["adverse_events"][0])), "duplicate"),
        (lambda d: d["prechecks"][0]["answers"].pop(0), "proceeds"),
        (lambda d: d["prechecks"][3]["severity_bands"].pop("major"), "every severity"),
        (lambda d: d["prechecks"][2].pop("childbearing_age_max"), "childbearing_age_max"),
        (lambda d: d["prechecks"][1]["answers"][0].update(band="maybe"), "band"),
    ],
)
def test_a_broken_definition_is_refused(change: Any, message: str) -> None:
    data = raw()
    change(data)
    with pytest.raises(ValidationError, match=message):
        SessionChecksDef.model_validate(data)


def test_the_label_named_interactions_name_existing_rules_and_classes() -> None:
    catalog = load_catalog()
    rule_ids = {r.id for r in catalog.rules}
    check = load_session_checks().precheck("interactions")
    assert {g.group for g in check.label_named} == {"cns_depressant", "psychostimulant", "maoi"}
    for group in check.label_named:
        assert set(group.rule_ids) <= rule_ids, group.group
        assert set(group.classes) <= set(catalog.classes), group.group
        # Every rule listed fires on the group's classes: a rule and a class never disagree.
        for rule_id in group.rule_ids:
            targets = set(catalog.rule(rule_id).applies_to.classes)
            reached = set().union(*(catalog.class_ancestors.get(c, {c}) | {c} for c in targets))
            assert reached & set(group.classes), rule_id


def test_the_risk_flags_name_existing_flag_rules_and_risk_results() -> None:
    risk = load_session_checks().risk_flags
    flag_codes = {f.code for i in load_instruments().values() for f in i.flags}
    assert {f.code for f in risk.assessment_flags} <= flag_codes
    results = load_therapy().risk_check.by_code()
    assert {r.code for r in risk.therapy_results} <= set(results)
    # Every urgent risk-check result has a level of its own.
    assert {c for c, r in results.items() if r.urgent} <= {r.code for r in risk.therapy_results}


def test_a_computed_check_maps_every_outcome() -> None:
    data = raw()
    interval = next(p for p in data["prechecks"] if p["id"] == "dose_interval")
    interval["computed_bands"].pop("too_soon")
    with pytest.raises(ValidationError, match="computed_bands"):
        SessionChecksDef.model_validate(data)
