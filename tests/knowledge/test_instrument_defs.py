"""The rating-scale definitions load, say what the official instruments say, and refuse errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import (
    INSTRUMENT_IDS,
    INSTRUMENTS_DIR,
    InstrumentDef,
    _load,
    get_instrument,
    load_instruments,
    reference_ids,
)


def raw(instrument_id: str) -> dict[str, Any]:
    return copy.deepcopy(load_yaml(f"instruments/{instrument_id}.yaml"))


@pytest.mark.parametrize(
    ("instrument_id", "items", "max_total", "answer_range"),
    [
        ("asrs", 18, 72, (0, 4)),
        ("phq9", 9, 27, (0, 3)),
        ("gad7", 7, 21, (0, 3)),
        ("cadss", 23, 92, (0, 4)),
        ("moaas", 1, 5, (0, 5)),
        ("cssrs", 7, 7, (0, 1)),
    ],
)
def test_each_instrument_has_its_official_structure(
    instrument_id: str, items: int, max_total: int, answer_range: tuple[int, int]
) -> None:
    definition = get_instrument(instrument_id)
    assert definition.item_count == items
    assert len(definition.items) == items
    assert definition.scoring.max == max_total
    assert (definition.min_value, definition.max_value) == answer_range


def test_the_loader_is_cached_and_covers_every_file() -> None:
    assert load_instruments() is load_instruments()
    assert tuple(load_instruments()) == INSTRUMENT_IDS
    assert {p.stem for p in INSTRUMENTS_DIR.glob("*.yaml")} == set(INSTRUMENT_IDS)


def test_phq9_bands_are_the_published_cut_points() -> None:
    bands = [(b.min, b.max, b.label) for b in get_instrument("phq9").bands]
    assert bands == [
        (0, 4, "minimal"),
        (5, 9, "mild"),
        (10, 14, "moderate"),
        (15, 19, "moderately severe"),
        (20, 27, "severe"),
    ]


def test_gad7_bands_are_the_published_cut_points() -> None:
    bands = [(b.min, b.max, b.label) for b in get_instrument("gad7").bands]
    assert bands == [(0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"), (15, 21, "severe")]


def test_phq9_wording_answers_and_loinc_codes() -> None:
    phq9 = get_instrument("phq9")
    assert phq9.recall_period == "last 2 weeks"
    assert phq9.items[0].text == "Little interest or pleasure in doing things"
    assert phq9.items[8].text == (
        "Thoughts that you would be better off dead or of hurting yourself in some way"
    )
    assert [o.label for o in phq9.options] == [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
    ]
    assert [o.loinc_answer for o in phq9.options] == [
        "LA6568-5",
        "LA6569-3",
        "LA6570-1",
        "LA6571-9",
    ]
    assert (phq9.loinc.panel, phq9.loinc.total) == ("44249-1", "44261-6")
    assert [i.loinc for i in phq9.items] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ]
    # The difficulty question is shown but never scored.
    assert [u.key for u in phq9.unscored_items] == ["difficulty"]


def test_gad7_wording_and_loinc_codes() -> None:
    gad7 = get_instrument("gad7")
    assert gad7.items[0].text == "Feeling nervous, anxious or on edge"
    assert gad7.items[6].text == "Feeling afraid as if something awful might happen"
    assert (gad7.loinc.panel, gad7.loinc.total) == ("69737-5", "70274-6")
    assert [i.loinc for i in gad7.items] == [
        "69725-0",
        "68509-9",
        "69733-4",
        "69734-2",
        "69735-9",
        "69689-8",
        "69736-7",
    ]


def test_asrs_wording_screen_rule_and_part_b_shading() -> None:
    asrs = get_instrument("asrs")
    assert asrs.recall_period == "past 6 months"
    assert asrs.items[0].text.startswith("How often do you have trouble wrapping up the final")
    assert asrs.items[17].text == "How often do you interrupt others when they are busy?"
    assert [o.label for o in asrs.options] == [
        "Never",
        "Rarely",
        "Sometimes",
        "Often",
        "Very Often",
    ]
    assert [i.part for i in asrs.items] == ["A"] * 6 + ["B"] * 12
    assert asrs.bands == []
    assert asrs.screen is not None
    assert asrs.screen.thresholds == {1: 2, 2: 2, 3: 2, 4: 3, 5: 3, 6: 3}
    assert asrs.screen.positive_at == 4
    subscales = {s.id: s for s in asrs.subscales}
    assert subscales["part_a_shaded_count"].thresholds == asrs.screen.thresholds
    part_b = subscales["part_b_shaded_count"].thresholds or {}
    assert sorted(i for i, t in part_b.items() if t == 2) == [9, 12, 16, 18]
    assert sorted(i for i, t in part_b.items() if t == 3) == [7, 8, 10, 11, 13, 14, 15, 17]
    assert subscales["inattentive"].items == [1, 2, 3, 4, 7, 8, 9, 10, 11]
    assert subscales["hyperactive_impulsive"].items == [5, 6, 12, 13, 14, 15, 16, 17, 18]


def test_asrs_notes_the_conflicting_total_conventions() -> None:
    notes = " ".join(n.text for n in get_instrument("asrs").notes)
    assert "0-72" in notes
    assert "0-18" in notes


@pytest.mark.parametrize("instrument_id", ["asrs", "cadss", "moaas"])
def test_scales_without_loinc_say_so(instrument_id: str) -> None:
    definition = get_instrument(instrument_id)
    assert definition.loinc.status == "none_found"
    assert definition.loinc.panel is None
    assert all(item.loinc is None for item in definition.items)
    assert "No LOINC" in definition.loinc.note


def test_moaas_pins_the_chernik_wording_and_notes_variants() -> None:
    moaas = get_instrument("moaas")
    labels = {o.value: o.label for o in moaas.options}
    assert labels[5] == "Responds readily to name spoken in normal tone"
    assert labels[4] == "Lethargic response to name spoken in normal tone"
    assert labels[1] == "Responds only after painful trapezius squeeze"
    assert labels[0] == "No response to painful trapezius squeeze"
    assert "chernik-1990" in moaas.sources
    notes = " ".join(n.text for n in moaas.notes)
    assert "Thorax" in notes
    assert "6-point" in notes


def test_cadss_is_the_23_item_version_with_its_threshold() -> None:
    cadss = get_instrument("cadss")
    assert cadss.item_count == 23
    (flag,) = cadss.flags
    assert (flag.code, flag.applies_to, flag.at_least) == ("cadss_dissociation", "total", 5)
    cadss6 = next(s for s in cadss.subscales if s.id == "cadss6")
    assert cadss6.items == [1, 2, 6, 7, 15, 22]


def test_every_source_exists_and_reference_ids_are_unique() -> None:
    entries = load_yaml("references.yaml")["references"]
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)), "duplicate reference ids"
    known = reference_ids()
    for definition in load_instruments().values():
        assert definition.all_source_ids() <= known
    for entry in entries:
        assert entry.get("title"), entry["id"]
        assert entry.get("evidence", "M") in {"V", "S", "M"}, entry["id"]


def test_a_source_missing_from_references_stops_the_load() -> None:
    with pytest.raises(ValueError, match=r"sources not in references\.yaml"):
        _load("phq9", set())


def _invalid(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        InstrumentDef.model_validate(data)


def test_the_unchanged_definitions_validate() -> None:
    for instrument_id in INSTRUMENT_IDS:
        InstrumentDef.model_validate(raw(instrument_id))


def test_it_refuses_a_missing_item() -> None:
    data = raw("phq9")
    data["items"].pop()
    _invalid(data, "numbered 1..9")


def test_it_refuses_a_gap_in_answer_values() -> None:
    data = raw("gad7")
    data["options"][2]["value"] = 5
    _invalid(data, "consecutive")


def test_it_refuses_bands_with_a_gap() -> None:
    data = raw("phq9")
    data["bands"][1]["min"] = 6
    _invalid(data, "contiguous")


def test_it_refuses_overlapping_bands() -> None:
    data = raw("gad7")
    data["bands"][2]["min"] = 9
    _invalid(data, "contiguous")


def test_it_refuses_bands_that_stop_short_of_the_maximum() -> None:
    data = raw("gad7")
    data["bands"][-1]["max"] = 20
    _invalid(data, "must end at max 21")


def test_it_refuses_a_wrong_maximum() -> None:
    data = raw("phq9")
    data["scoring"]["max"] = 30
    _invalid(data, "scoring.max")


def test_it_refuses_a_subscale_item_out_of_range() -> None:
    data = raw("asrs")
    data["subscales"][0]["items"].append(19)
    _invalid(data, r"items \[19\] outside 1..18")


def test_it_refuses_a_flag_on_an_item_that_does_not_exist() -> None:
    data = raw("phq9")
    data["flags"][0]["items"] = [10]
    _invalid(data, r"flag phq9_item9_positive: items \[10\]")


def test_it_refuses_a_flag_threshold_out_of_range() -> None:
    data = raw("phq9")
    data["flags"][0]["at_least"] = 4
    _invalid(data, "threshold 4 outside 0..3")


def test_it_refuses_count_thresholds_that_do_not_match_the_items() -> None:
    data = raw("asrs")
    data["subscales"][2]["thresholds"].pop(6)
    _invalid(data, "thresholds must cover exactly its items")


def test_it_refuses_an_unknown_field() -> None:
    data = raw("gad7")
    data["cutoff"] = 10
    _invalid(data, "Extra inputs are not permitted")
