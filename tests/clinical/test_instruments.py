"""Scoring matches the official instruments exactly: totals, every band edge, screens, flags."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketacare.clinical.instruments import (
    INSTRUMENT_IDS,
    AnswerError,
    Score,
    cadss_dissociation,
    instrument,
    score,
)
from ketacare.knowledge import knowledge_version


def answers_for(instrument_id: str, total: int, *, last_item_zero: bool = False) -> list[int]:
    """Answers adding up to ``total``, filling items in order (optionally sparing the last)."""
    definition = instrument(instrument_id)
    n, top = definition.item_count, definition.max_value
    answers = [0] * n
    fillable = n - 1 if last_item_zero else n
    remaining = total
    for i in range(fillable):
        answers[i] = min(top, remaining)
        remaining -= answers[i]
    assert remaining == 0, "total not reachable"
    return answers


# --- PHQ-9 -------------------------------------------------------------------------------------

PHQ9_EDGES = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "moderately severe"),
    (19, "moderately severe"),
    (20, "severe"),
    (24, "severe"),
    (27, "severe"),
]


@pytest.mark.parametrize(("total", "band"), PHQ9_EDGES)
def test_phq9_band_edges(total: int, band: str) -> None:
    result = score("phq9", answers_for("phq9", total, last_item_zero=total <= 24))
    assert (result.total, result.max, result.band) == (total, 27, band)
    assert result.positive_screen is None
    assert result.subscales == {}


def test_phq9_item9_flag_fires_on_a_total_of_one() -> None:
    result = score("phq9", [0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert (result.total, result.band) == (1, "minimal")
    (flag,) = result.flags
    assert (flag.code, flag.severity, flag.item) == ("phq9_item9_positive", "urgent", 9)
    assert "whatever the total" in flag.text
    assert result.urgent


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_phq9_item9_flag_fires_for_every_positive_answer(item9: int) -> None:
    result = score("phq9", [0] * 8 + [item9])
    assert [f.code for f in result.flags] == ["phq9_item9_positive"]


def test_phq9_without_item9_has_no_flag_even_when_severe() -> None:
    result = score("phq9", [3, 3, 3, 3, 3, 3, 3, 3, 0])
    assert (result.total, result.band, result.flags) == (24, "severe", ())


def test_phq9_worked_example() -> None:
    # 2+2+2+1+1+2+2+0+0 = 12: moderate.
    result = score("phq9", [2, 2, 2, 1, 1, 2, 2, 0, 0])
    assert (result.total, result.band) == (12, "moderate")


def test_phq9_refuses_the_unscored_tenth_question() -> None:
    with pytest.raises(AnswerError) as err:
        score("phq9", [1] * 10)
    assert err.value.field == "answers"
    assert "9 scored items" in err.value.message


# --- GAD-7 -------------------------------------------------------------------------------------

GAD7_EDGES = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "severe"),
    (21, "severe"),
]


@pytest.mark.parametrize(("total", "band"), GAD7_EDGES)
def test_gad7_band_edges(total: int, band: str) -> None:
    result = score("gad7", answers_for("gad7", total))
    assert (result.total, result.max, result.band, result.flags) == (total, 21, band, ())


# --- ASRS v1.1 ---------------------------------------------------------------------------------

ZERO_B = [0] * 12

ASRS_PART_A_CASES = [
    # (part A answers, counted, positive)
    ([0, 0, 0, 0, 0, 0], 0, False),
    ([2, 2, 2, 3, 0, 0], 4, True),  # exactly 4 counted
    ([2, 2, 2, 2, 0, 0], 3, False),  # item 4 at Sometimes does not count
    ([1, 2, 2, 3, 3, 3], 5, True),
    ([1, 1, 2, 3, 3, 3], 4, True),
    ([1, 1, 1, 3, 3, 3], 3, False),  # items 1-3 at Rarely do not count
    ([4, 4, 4, 2, 2, 2], 3, False),  # items 4-6 at Sometimes do not count
    ([2, 2, 2, 3, 3, 3], 6, True),
    ([4, 4, 4, 4, 4, 4], 6, True),
    ([0, 0, 2, 4, 4, 4], 4, True),
    ([2, 0, 2, 3, 2, 3], 4, True),
    ([2, 0, 2, 3, 2, 2], 3, False),
]


@pytest.mark.parametrize(("part_a", "counted", "positive"), ASRS_PART_A_CASES)
def test_asrs_part_a_screen(part_a: list[int], counted: int, positive: bool) -> None:
    result = score("asrs", part_a + ZERO_B)
    assert result.positive_screen is positive
    assert result.subscales["part_a_shaded_count"] == counted
    assert result.total == sum(part_a)
    assert result.band is None


def test_asrs_part_b_answers_never_change_the_screen() -> None:
    result = score("asrs", [2, 2, 2, 2, 0, 0] + [4] * 12)
    assert result.positive_screen is False
    assert result.subscales["part_b_shaded_count"] == 12
    assert result.total == 8 + 48


def test_asrs_part_b_shading_uses_item_specific_thresholds() -> None:
    # Items 9, 12, 16, 18 count at Sometimes (2); the others need Often (3).
    result = score("asrs", [0] * 6 + [2] * 12)
    assert result.subscales["part_b_shaded_count"] == 4
    result = score("asrs", [0] * 6 + [3] * 12)
    assert result.subscales["part_b_shaded_count"] == 12


def test_asrs_worked_example_with_every_subscale() -> None:
    answers = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2]
    result = score("asrs", answers)
    assert result.total == 33
    assert result.max == 72
    assert result.subscales == {
        "part_a": 10,
        "part_b": 23,
        "part_a_shaded_count": 3,  # items 3, 4, 5
        "part_b_shaded_count": 5,  # items 9, 10, 14, 15, 18 (item 12 at Rarely does not count)
        "inattentive": 16,
        "hyperactive_impulsive": 17,
        "motor_hyperactive_impulsive": 10,
        "verbal_hyperactive_impulsive": 7,
    }
    assert result.positive_screen is False


def test_asrs_maximum() -> None:
    result = score("asrs", [4] * 18)
    assert result.total == 72
    assert result.subscales["part_a"] == 24
    assert result.subscales["part_b"] == 48
    assert result.subscales["inattentive"] == 36
    assert result.subscales["hyperactive_impulsive"] == 36


# --- CADSS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "flagged"), [(0, False), (4, False), (5, True), (23, True), (92, True)]
)
def test_cadss_dissociation_flag_above_four(total: int, flagged: bool) -> None:
    result = score("cadss", answers_for("cadss", total))
    assert (result.total, result.max, result.band) == (total, 92, None)
    assert [f.code for f in result.flags] == (["cadss_dissociation"] if flagged else [])


def test_cadss6_short_form_subscale() -> None:
    answers = [0] * 23
    for item in (1, 2, 6, 7, 15, 22):
        answers[item - 1] = 4
    answers[2] = 3  # item 3 is not in the short form
    result = score("cadss", answers)
    assert result.subscales == {"cadss6": 24}
    assert result.total == 27


@pytest.mark.parametrize(
    ("total", "baseline", "dissociated"),
    [
        (5, 0, True),
        (5, 4, True),
        (5, 5, False),  # above 4 but no increase from baseline
        (4, 0, False),  # increase but not above 4
        (10, 6, True),
        (6, 10, False),
        (0, 0, False),
    ],
)
def test_cadss_spravato_definition_needs_an_increase_from_baseline(
    total: int, baseline: int, dissociated: bool
) -> None:
    assert cadss_dissociation(total, baseline) is dissociated


@pytest.mark.parametrize(("total", "baseline"), [(93, 0), (-1, 0), (5, 2.5)])
def test_cadss_dissociation_refuses_impossible_totals(total: int, baseline: float) -> None:
    with pytest.raises(AnswerError):
        cadss_dissociation(total, baseline)  # type: ignore[arg-type]


# --- MOAA/S --------------------------------------------------------------------------------------

MOAAS_CASES = [
    (5, "not sedated", []),
    (4, "mild sedation", ["moaas_sedated"]),
    (3, "sedated", ["moaas_sedated"]),
    (2, "sedated", ["moaas_sedated"]),
    (1, "sedated", ["moaas_sedated"]),
    (0, "loss of consciousness", ["moaas_loss_of_consciousness", "moaas_sedated"]),
]


@pytest.mark.parametrize(("value", "band", "flags"), MOAAS_CASES)
def test_moaas_single_rating(value: int, band: str, flags: list[str]) -> None:
    result = score("moaas", [value])
    assert (result.total, result.max, result.band) == (value, 5, band)
    assert [f.code for f in result.flags] == flags


def test_moaas_zero_is_urgent() -> None:
    assert score("moaas", [0]).flags[0].severity == "urgent"
    assert not score("moaas", [4]).urgent


# --- C-SSRS screener -----------------------------------------------------------------------------

CSSRS_CASES = [
    ([0, 0, 0, 0, 0, 0, 0], "no risk identified", []),
    ([1, 0, 0, 0, 0, 0, 0], "low risk", []),
    ([1, 1, 0, 0, 0, 0, 0], "low risk", []),
    ([1, 1, 1, 0, 0, 0, 0], "moderate risk", ["cssrs_moderate_risk"]),
    ([0, 0, 0, 0, 0, 1, 0], "moderate risk", ["cssrs_moderate_risk"]),
    ([1, 1, 0, 1, 0, 0, 0], "high risk", ["cssrs_high_risk"]),
    ([1, 1, 1, 1, 1, 0, 0], "high risk", ["cssrs_high_risk", "cssrs_moderate_risk"]),
    ([0, 0, 0, 0, 0, 1, 1], "high risk", ["cssrs_high_risk", "cssrs_moderate_risk"]),
]


@pytest.mark.parametrize(("answers", "band", "flags"), CSSRS_CASES)
def test_cssrs_triage(answers: list[int], band: str, flags: list[str]) -> None:
    result = score("cssrs", answers)
    assert result.band == band
    assert [f.code for f in result.flags] == flags
    assert result.total == sum(answers)


# --- invalid answers ---------------------------------------------------------------------------

BAD_ANSWERS = [
    ("phq9", [0] * 8, "answers", "got 8 answers"),
    ("phq9", [0] * 10, "answers", "got 10 answers"),
    ("gad7", [], "answers", "got 0 answers"),
    ("phq9", [0, 0, 4, 0, 0, 0, 0, 0, 0], "item 3", "4 is outside 0-3"),
    ("phq9", [0] * 8 + [-1], "item 9", "-1 is outside 0-3"),
    ("asrs", [0] * 17 + [5], "item 18", "5 is outside 0-4"),
    ("gad7", [0, 2.0, 0, 0, 0, 0, 0], "item 2", "not a whole number"),
    ("gad7", [0, 0, "2", 0, 0, 0, 0], "item 3", "not a whole number"),
    ("gad7", [True, 0, 0, 0, 0, 0, 0], "item 1", "not a whole number"),
    ("moaas", [None], "item 1", "not a whole number"),
    ("moaas", [6], "item 1", "6 is outside 0-5"),
    ("cssrs", [0, 0, 0, 0, 0, 0, 2], "item 7", "2 is outside 0-1"),
    ("phq9", "000000000", "answers", "expected a list"),
]


@pytest.mark.parametrize(("instrument_id", "answers", "field", "message"), BAD_ANSWERS)
def test_it_refuses_bad_answers_naming_the_item(
    instrument_id: str, answers: list[object], field: str, message: str
) -> None:
    with pytest.raises(AnswerError) as err:
        score(instrument_id, answers)  # type: ignore[arg-type]
    assert err.value.field == field
    assert message in err.value.message
    assert isinstance(err.value, ValueError)


def test_it_refuses_an_unknown_instrument() -> None:
    with pytest.raises(AnswerError) as err:
        score("hamd", [0])
    assert err.value.field == "instrument"
    assert "phq9" in err.value.message


# --- output contract -----------------------------------------------------------------------------


def test_json_dict_has_exactly_the_contract_keys() -> None:
    result = score("phq9", [0] * 8 + [2])
    data = result.to_json_dict()
    assert list(data) == [
        "instrument",
        "total",
        "max",
        "band",
        "flags",
        "subscales",
        "positive_screen",
    ]
    assert data["flags"] == [
        {
            "code": "phq9_item9_positive",
            "severity": "urgent",
            "text": result.flags[0].text,
            "item": 9,
        }
    ]
    assert json.loads(json.dumps(data)) == data


def test_score_carries_the_knowledge_version_and_the_answers() -> None:
    result = score("gad7", [1, 1, 1, 1, 1, 1, 1])
    assert result.knowledge_version == knowledge_version()
    assert result.answers == (1, 1, 1, 1, 1, 1, 1)
    assert (result.band, result.flags) == ("mild", ())


def test_flag_sources_exist() -> None:
    result = score("phq9", [0] * 8 + [3])
    assert result.flags[0].sources


# --- properties ----------------------------------------------------------------------------------


@st.composite
def valid_answers(draw: st.DrawFn) -> tuple[str, list[int]]:
    instrument_id = draw(st.sampled_from(INSTRUMENT_IDS))
    definition = instrument(instrument_id)
    answers = draw(
        st.lists(
            st.integers(definition.min_value, definition.max_value),
            min_size=definition.item_count,
            max_size=definition.item_count,
        )
    )
    return instrument_id, answers


def band_rank(result: Score) -> int:
    definition = instrument(result.instrument)
    if definition.scoring.method == "triage":
        labels = [t.label for t in reversed(definition.triage_levels)]
        return ([definition.scoring.default_band, *labels]).index(result.band)
    return [b.label for b in definition.bands].index(result.band) if definition.bands else 0


@given(valid_answers())
def test_totals_are_the_sum_and_within_range(case: tuple[str, list[int]]) -> None:
    instrument_id, answers = case
    result = score(instrument_id, answers)
    assert result.total == sum(answers)
    assert 0 <= result.total <= result.max


@given(valid_answers(), st.data())
def test_bands_and_screens_are_monotone_in_the_answers(
    case: tuple[str, list[int]], data: st.DataObject
) -> None:
    instrument_id, answers = case
    definition = instrument(instrument_id)
    raisable = [i for i, v in enumerate(answers) if v < definition.max_value]
    if not raisable:
        return
    i = data.draw(st.sampled_from(raisable))
    higher = [*answers]
    higher[i] += 1
    low, high = score(instrument_id, answers), score(instrument_id, higher)
    assert high.total == low.total + 1
    assert band_rank(high) >= band_rank(low)
    if low.positive_screen:
        assert high.positive_screen
    # A flag raised by an answer or a total is never cleared by a higher answer,
    # except MOAA/S where a higher score means less sedation.
    if instrument_id != "moaas":
        assert {f.code for f in low.flags} <= {f.code for f in high.flags}


@given(st.lists(st.integers(0, 4), min_size=18, max_size=18))
def test_asrs_subscales_sum_correctly(answers: list[int]) -> None:
    sub = score("asrs", answers).subscales
    total = sum(answers)
    assert sub["part_a"] + sub["part_b"] == total
    assert sub["inattentive"] + sub["hyperactive_impulsive"] == total
    assert (
        sub["motor_hyperactive_impulsive"] + sub["verbal_hyperactive_impulsive"]
        == sub["hyperactive_impulsive"]
    )
    assert 0 <= sub["part_a_shaded_count"] <= 6
    assert 0 <= sub["part_b_shaded_count"] <= 12
    assert score("asrs", answers).positive_screen is (sub["part_a_shaded_count"] >= 4)


@given(st.lists(st.integers(0, 3), min_size=9, max_size=9))
def test_phq9_band_matches_the_published_cut_points(answers: list[int]) -> None:
    result = score("phq9", answers)
    cut_points = [(20, "severe"), (15, "moderately severe"), (10, "moderate"), (5, "mild")]
    expected = next((label for low, label in cut_points if result.total >= low), "minimal")
    assert result.band == expected
    assert any(f.code == "phq9_item9_positive" for f in result.flags) is (answers[8] > 0)


@pytest.mark.parametrize("not_a_name", [["phq9"], {"id": "phq9"}, None, 9])
def test_an_instrument_that_is_not_a_name_is_refused_naming_the_field(not_a_name: object) -> None:
    # A list or a dict used to escape as TypeError (unhashable) from the definitions lookup.
    with pytest.raises(AnswerError) as err:
        score(not_a_name, [0] * 9)  # type: ignore[arg-type]
    assert err.value.field == "instrument"
