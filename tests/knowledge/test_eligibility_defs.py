"""Eligibility knowledge: every condition, setting and reason is sourced and usable."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from ketacare.clinical.eligibility import EligibilitySettings, HistoryCode
from ketacare.knowledge import load_yaml
from ketacare.knowledge.eligibility_defs import (
    Contraindications,
    EligibilityKnowledge,
    load_contraindications,
    load_eligibility,
)
from ketacare.knowledge.instrument_defs import reference_ids


def test_conditions_match_the_history_codes_and_are_sourced() -> None:
    conditions = load_contraindications().conditions
    assert {c.code for c in conditions} == {c.value for c in HistoryCode}
    known = reference_ids()
    for condition in conditions:
        assert condition.sources
        assert set(condition.sources) <= known


def test_the_label_contraindications_are_exclusions() -> None:
    by_code = load_contraindications().by_code()
    for code in (
        "ketamine_hypersensitivity",
        "aneurysmal_vascular_disease",
        "arteriovenous_malformation",
        "intracerebral_hemorrhage",
    ):
        assert by_code[code].classification == "exclusion"
        assert by_code[code].basis == "label_contraindication"
        assert "spravato-us-pi-contraindications" in by_code[code].sources
    # Pregnancy is excluded by the clinic's default, not as a label contraindication.
    assert by_code["pregnancy"].classification == "exclusion"
    assert by_code["pregnancy"].basis == "clinic_default"
    assert by_code["pregnancy"].relaxable


def test_every_label_contraindication_is_an_exclusion_and_never_relaxable() -> None:
    for condition in load_contraindications().conditions:
        if condition.basis == "label_contraindication":
            assert condition.classification == "exclusion", condition.code
            assert not condition.relaxable, condition.code
        assert set(condition.basis_sources) <= set(condition.sources), condition.code


@pytest.mark.parametrize(
    ("code", "change", "message"),
    [
        ("aneurysmal_vascular_disease", {"class": "caution"}, "a label contraindication is an"),
        ("glaucoma", {"class": "exclusion"}, "a label warning is a caution"),
        ("schizophrenia", {"basis_sources": ["ketamine-compendia-psychosis"]}, "clinic default"),
        ("glaucoma", {"basis_sources": ["kroenke-2001"]}, "not among its sources"),
    ],
)
def test_a_condition_whose_basis_does_not_fit_is_refused(
    code: str, change: dict[str, object], message: str
) -> None:
    data = copy.deepcopy(load_yaml("contraindications.yaml"))
    entry = next(c for c in data["conditions"] if c["code"] == code)
    entry.update(change)
    with pytest.raises(ValidationError, match=message):
        Contraindications.model_validate(data)


def test_a_treatment_that_is_not_an_adult_standard_says_why() -> None:
    data = copy.deepcopy(load_yaml("eligibility.yaml"))
    guanfacine = next(
        d for d in data["standard_adhd_treatments"]["drugs"] if d["ingredient"] == "guanfacine"
    )
    assert guanfacine["adult_standard"] is False
    del guanfacine["not_adult_note"]
    with pytest.raises(ValidationError, match="says why"):
        EligibilityKnowledge.model_validate(data)


def test_settings_cover_exactly_the_settings_model() -> None:
    settings = load_eligibility().settings
    assert set(settings) == set(EligibilitySettings.model_fields)
    assert all(entry.sources for entry in settings.values())


def test_every_reason_template_renders_with_the_values_it_names() -> None:
    values = EligibilitySettings.defaults().template_values()
    sample = {
        "age": 17,
        "drugs": "atomoxetine: good",
        "systolic": 150,
        "diastolic": 95,
        "heart_rate": 120,
        "shaded": 4,
        "total": 12,
        "band": "moderate",
        "answer": "1 (Several days)",
        "rule_id": "x",
        "severity": "moderate",
        "ingredient": "y",
        "effect": "z",
    }
    for code, template in load_eligibility().reasons.items():
        assert template.placeholders() <= set(values) | set(sample), code
        assert "{" not in template.text.format(**values, **sample), code


def test_a_reason_without_sources_is_refused() -> None:
    data = copy.deepcopy(load_yaml("eligibility.yaml"))
    data["reasons"]["bp_missing"]["sources"] = []
    with pytest.raises(ValidationError, match="has no sources"):
        EligibilityKnowledge.model_validate(data)


def test_a_repeated_condition_is_refused() -> None:
    data = copy.deepcopy(load_yaml("contraindications.yaml"))
    data["conditions"].append(data["conditions"][0])
    with pytest.raises(ValidationError, match="repeated"):
        Contraindications.model_validate(data)


def test_a_condition_needs_a_known_class() -> None:
    data = copy.deepcopy(load_yaml("contraindications.yaml"))
    data["conditions"][0]["class"] = "maybe"
    with pytest.raises(ValidationError):
        Contraindications.model_validate(data)
