"""outcomes.yaml loads, cites known references, holds the agreed conventions, and a broken
definition is refused at load."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids
from ketacare.knowledge.outcome_defs import (
    DEFINITION_IDS,
    load_outcomes,
    parse_outcomes,
    weakest,
)
from ketacare.knowledge.protocol_defs import get_protocol


def raw() -> dict[str, Any]:
    return copy.deepcopy(load_yaml("outcomes.yaml"))


def test_every_source_is_a_known_reference() -> None:
    assert load_outcomes().all_source_ids() <= reference_ids()


def test_the_outcome_scales_are_phq9_gad7_and_asrs_and_in_session_scales_are_excluded() -> None:
    defs = load_outcomes()
    assert defs.instrument_ids == ("phq9", "gad7", "asrs")
    assert set(defs.excluded_ids) == {"cadss", "moaas", "cssrs"}
    with pytest.raises(KeyError):
        defs.instrument("cadss")


def test_the_defaults_are_the_clinic_reference_conventions() -> None:
    values = load_outcomes().values()
    assert values == {
        "phq9_response_fall_percent": 50,
        "phq9_remission_below": 5,
        "phq9_min_baseline": 5,
        "gad7_response_fall_percent": 50,
        "gad7_remission_below": 5,
        "gad7_min_baseline": 5,
        "asrs_response_fall_percent": 30,
        "asrs_min_baseline": 18,
        "non_response_after_sessions": 4,
        "worsening_rise_percent": 20,
        "worsening_consecutive_measurements": 2,
    }


def test_asrs_is_exploratory_by_analogy_and_has_no_remission_cut_off() -> None:
    defs = load_outcomes()
    asrs = defs.instrument("asrs")
    assert asrs.exploratory and asrs.exploratory_text
    assert "no trial of ketamine for ADHD" in asrs.exploratory_text
    assert "adhd-ketamine-no-trials" in asrs.exploratory_sources
    assert asrs.remission_setting is None and asrs.no_remission is not None
    assert defs.setting("asrs_response_fall_percent").evidence == "M"
    assert not defs.instrument("phq9").exploratory and not defs.instrument("gad7").exploratory


def test_non_response_matches_the_protocols_futility_checkpoint() -> None:
    course = get_protocol("iv-ketamine").course
    assert course is not None
    defs = load_outcomes()
    assert defs.values()["non_response_after_sessions"] == course.futility_after_sessions.value
    assert set(defs.setting("non_response_after_sessions").sources) == {
        "sanacora-2017",
        "ketacare-clinic-convention",
    }


def test_every_definition_has_clinician_text_evidence_and_sources() -> None:
    defs = load_outcomes()
    assert tuple(d.id for d in defs.definitions) == DEFINITION_IDS
    for definition in defs.definitions:
        assert definition.text and definition.sources and definition.evidence in "VSM"
    # Worsening and item 9 are the clinic's conventions.
    assert "ketacare-clinic-convention" in defs.definition("worsening").sources
    assert "ketacare-clinic-convention" in defs.definition("item9_new").sources


def test_the_stimulant_classes_are_ingredients_of_the_drug_catalogue() -> None:
    from ketacare.clinical.stimulants import stimulant_ingredients

    ingredients = stimulant_ingredients()
    for name in ("methylphenidate", "dexmethylphenidate", "lisdexamfetamine"):
        assert name in ingredients
    assert "mixed amphetamine salts" in ingredients and "dextroamphetamine" in ingredients
    for name in ("atomoxetine", "guanfacine", "modafinil", "ketamine"):
        assert name not in ingredients


def test_weakest_evidence_wins() -> None:
    assert weakest("V", "S") == "S"
    assert weakest("V", "M", "S") == "M"
    assert weakest("V") == "V"


def test_a_clinic_override_is_bounded_marked_and_stored_with_the_values() -> None:
    defs = load_outcomes().with_settings({"phq9_response_fall_percent": 40})
    setting = defs.setting("phq9_response_fall_percent")
    assert setting.value == 40 and setting.overridden and setting.evidence == "M"
    assert defs.values()["phq9_response_fall_percent"] == 40
    assert not defs.setting("gad7_response_fall_percent").overridden
    # The cached defaults are untouched.
    assert load_outcomes().values()["phq9_response_fall_percent"] == 50
    with pytest.raises(ValueError, match="unknown outcome settings"):
        load_outcomes().with_settings({"phq9_response": 40})
    with pytest.raises(ValidationError, match="phq9_remission_below"):
        load_outcomes().with_settings({"phq9_remission_below": 30})
    with pytest.raises(ValidationError, match="must not exceed"):
        load_outcomes().with_settings({"phq9_remission_below": 8})


def _set(path: list[Any], value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["settings"].pop("worsening_rise_percent"), "missing"),
        (
            lambda d: d["settings"].update(extra={"value": 1, "evidence": "M", "sources": ["x"]}),
            "unknown",
        ),
        (_set(["settings", "phq9_remission_below", "value"], 9), "must not exceed"),
        (_set(["settings", "asrs_min_baseline", "value"], 0), "greater than or equal"),
        (_set(["settings", "phq9_response_fall_percent", "evidence"], "X"), "evidence"),
        (_set(["settings", "phq9_response_fall_percent", "sources"], []), "sources"),
        (_set(["instruments", 2, "exploratory_text"], None), "exploratory_text"),
        (_set(["instruments", 2, "no_remission"], None), "no_remission"),
        (_set(["instruments", 0, "response_setting"], "gad7_response_fall_percent"), "should be"),
        (lambda d: d["definitions"].pop(), "definitions must be exactly"),
        (_set(["definitions", 2, "text"], "Fell {fall}%"), "unknown placeholders"),
        (lambda d: d["excluded_instruments"].append({"id": "phq9", "reason": "x"}), "both"),
    ],
)
def test_a_broken_definition_is_refused(change: Any, message: str) -> None:
    data = raw()
    change(data)
    with pytest.raises(ValueError, match=message):
        parse_outcomes(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(["definitions", 0, "sources"], ["no-such-reference"]), "not in references"),
        (_set(["instruments", 0, "id"], "madrs"), "setting"),
        (_set(["excluded_instruments", 0, "id"], "madrs"), "unknown instrument"),
        (_set(["stimulants", "classes"], ["no_such_class"]), "unknown drug class"),
        (_set(["instruments", 0, "item9_item"], 12), "no item 12"),
    ],
)
def test_a_definition_that_points_nowhere_is_refused(change: Any, message: str) -> None:
    data = raw()
    change(data)
    with pytest.raises(ValueError, match=message):
        parse_outcomes(data)


def test_the_shipped_file_parses_the_same_way_as_the_loader() -> None:
    assert parse_outcomes(raw()) == load_outcomes()
