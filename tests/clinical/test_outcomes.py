"""Outcome definitions at their boundaries: baseline, percent change, response, remission,
non-response at the checkpoint of the protocol dosed (the 4th IV infusion, the end of esketamine
induction), worsening, new PHQ-9 item 9; unknown is never good news."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ketacare.clinical.outcomes import (
    FLAG_CODES,
    OutcomeDataError,
    fall_at_least,
    instrument_outcome,
    patient_outcomes,
    percent_change,
    rise_at_least,
)
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.outcome_defs import load_outcomes

DOSE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
ITEMS = {"phq9": 9, "gad7": 7, "asrs": 18}


def at(days: float) -> datetime:
    return DOSE + timedelta(days=days)


def doses(n: int) -> list[datetime]:
    """n dosing sessions, two days apart, the first at DOSE."""
    return [at(2 * k) for k in range(n)]


def answers(instrument: str, total: int, item9: int = 0) -> list[int]:
    """Answers that add up to ``total`` (PHQ-9 item 9 set apart)."""
    count, top = ITEMS[instrument], 4 if instrument == "asrs" else 3
    values = [0] * count
    rest = total - (item9 if instrument == "phq9" else 0)
    for i in range(count - (1 if instrument == "phq9" else 0)):
        values[i] = min(top, rest)
        rest -= values[i]
    assert rest == 0, "total too high for these answers"
    if instrument == "phq9":
        values[8] = item9
    return values


def pt(days: float, total: int, instrument: str = "phq9", item9: int = 0) -> tuple:
    return (at(days), total, answers(instrument, total, item9))


def status(outcome: object, code: str) -> str:
    return outcome.flag(code).status  # type: ignore[attr-defined]


# --- arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "value", "percent", "expected"),
    [
        (10, 5, 50, True),  # exactly 50%: a response
        (1000, 500, 50, True),
        (1000, 501, 50, False),  # 49.9%
        (20, 11, 50, False),
        (70, 49, 30, True),  # exactly 30%
        (1000, 701, 30, False),  # 29.9%
        (10, 5, 50.0, True),  # a float threshold from a clinic override is compared exactly
        (3, 2, 33.3, True),
        (3, 2, 33.4, False),
    ],
)
def test_a_fall_is_compared_exactly(
    baseline: int, value: int, percent: float, expected: bool
) -> None:
    assert fall_at_least(baseline, value, percent) is expected


@pytest.mark.parametrize(
    ("reference", "value", "expected"),
    [(10, 12, True), (10, 11, False), (1000, 1199, False), (1000, 1200, True), (5, 6, True)],
)
def test_a_rise_of_20_percent_is_compared_exactly(
    reference: int, value: int, expected: bool
) -> None:
    assert rise_at_least(reference, value, 20) is expected


def test_percent_change_refuses_a_zero_baseline() -> None:
    assert percent_change(18, 9) == -50.0
    assert percent_change(3, 4) == 33.3
    for function in (percent_change, lambda b, v: fall_at_least(b, v, 50)):
        with pytest.raises(ValueError, match="baseline above 0"):
            function(0, 3)


# --- baseline --------------------------------------------------------------------------------


def test_the_baseline_is_the_last_rating_on_or_before_the_first_dose() -> None:
    points = [pt(-10, 15), pt(-1, 18), pt(3, 10)]
    out = instrument_outcome("phq9", points, dosed_sessions=doses(2))
    assert out.baseline is not None and out.baseline.total == 18
    assert [p.role for p in out.trajectory] == ["pre_baseline", "baseline", "follow_up"]
    assert out.latest is not None and out.latest.total == 10
    assert (out.change, out.percent_change) == (-8, -44.4)


def test_a_rating_at_the_very_start_of_the_first_dose_is_the_baseline() -> None:
    out = instrument_outcome("phq9", [pt(-5, 12), pt(0, 14), pt(1, 9)], dosed_sessions=doses(1))
    assert out.baseline is not None and out.baseline.total == 14


def test_without_any_dose_the_baseline_is_the_first_rating() -> None:
    out = instrument_outcome("phq9", [pt(5, 10), pt(-5, 16), pt(9, 12)], dosed_sessions=[])
    assert out.baseline is not None and out.baseline.total == 16
    assert out.first_dose_at is None and out.dosed_sessions == 0
    assert out.latest is not None and out.latest.total == 12


def test_doses_without_a_rating_before_the_first_leave_everything_unknown() -> None:
    out = instrument_outcome("phq9", [pt(1, 20), pt(8, 5)], dosed_sessions=doses(5))
    assert out.baseline is None and "before the first dose" in (out.baseline_reason or "")
    assert out.change is None and out.percent_change is None
    for code in ("response", "remission", "non_response", "worsening"):
        assert status(out, code) == "unknown", code
    assert all(p.role == "follow_up" and p.change is None for p in out.trajectory)


def test_no_rating_at_all_is_unknown_never_good_news() -> None:
    out = instrument_outcome("gad7", [], dosed_sessions=doses(6))
    assert out.baseline is None and out.latest is None and out.trajectory == ()
    assert {f.code: f.status for f in out.flags} == {
        "response": "unknown",
        "remission": "unknown",
        "non_response": "unknown",
        "worsening": "unknown",
        "item9_new": "not_applicable",  # the GAD-7 has no item 9 to follow
    }
    assert not out.raised


def test_the_input_order_does_not_matter() -> None:
    points = [pt(-1, 18), pt(3, 15), pt(7, 13), pt(14, 8), pt(21, 9)]
    expected = instrument_outcome("phq9", points, dosed_sessions=doses(4))
    shuffled = list(points)
    random.Random(7).shuffle(shuffled)
    assert instrument_outcome("phq9", shuffled, dosed_sessions=doses(4)) == expected


# --- percent change and response -------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "latest", "expected"),
    [(20, 10, "met"), (20, 11, "not_met"), (10, 5, "met"), (18, 9, "met"), (24, 13, "not_met")],
)
def test_phq9_response_is_a_fall_of_at_least_50_percent(
    baseline: int, latest: int, expected: str
) -> None:
    out = instrument_outcome("phq9", [pt(-1, baseline), pt(7, latest)], dosed_sessions=doses(2))
    flag = out.flag("response")
    assert flag.status == expected
    assert flag.evidence == "S" and "depression-response-convention" in flag.sources
    assert "50%" in flag.definition


@pytest.mark.parametrize(
    ("baseline", "latest", "expected"),
    [(70, 49, "met"), (67, 47, "not_met"), (40, 28, "met"), (40, 29, "not_met")],
)
def test_asrs_response_is_a_30_percent_fall_marked_exploratory(
    baseline: int, latest: int, expected: str
) -> None:
    points = [pt(-1, baseline, "asrs"), pt(7, latest, "asrs")]
    out = instrument_outcome("asrs", points, dosed_sessions=doses(2))
    assert out.flag("response").status == expected
    assert out.exploratory and "no trial of ketamine for ADHD" in (out.exploratory_text or "")
    assert out.flag("response").evidence == "M"
    assert "adhd-trial-response-convention" in out.flag("response").sources
    assert out.flag("remission").status == "not_applicable"
    assert "no validated remission" in out.flag("remission").text


def test_phq9_and_gad7_are_not_exploratory() -> None:
    for name in ("phq9", "gad7"):
        out = instrument_outcome(name, [], dosed_sessions=[])
        assert not out.exploratory and out.exploratory_text is None


@pytest.mark.parametrize(("baseline", "applicable"), [(4, False), (0, False), (5, True), (6, True)])
def test_a_phq9_baseline_below_5_cannot_respond_or_remit(baseline: int, applicable: bool) -> None:
    out = instrument_outcome("phq9", [pt(-1, baseline), pt(7, 0)], dosed_sessions=doses(4))
    if applicable:
        assert out.percent_change == -100.0 and out.percent_change_reason is None
        assert status(out, "response") == "met" and status(out, "remission") == "met"
    else:
        assert out.percent_change is None
        assert "not applicable" in (out.percent_change_reason or "").lower()
        for code in ("response", "remission", "non_response"):
            assert status(out, code) == "not_applicable", code
        assert out.flag("response").evidence == "M"  # decided by the minimum baseline
        assert out.change == -baseline  # the points are still shown


def test_an_asrs_baseline_below_18_has_no_percent() -> None:
    points = [pt(-1, 17, "asrs"), pt(7, 5, "asrs")]
    out = instrument_outcome("asrs", points, dosed_sessions=doses(1))
    assert out.percent_change is None and status(out, "response") == "not_applicable"
    ok = instrument_outcome(
        "asrs", [pt(-1, 18, "asrs"), pt(7, 12, "asrs")], dosed_sessions=doses(1)
    )
    assert ok.percent_change == -33.3 and status(ok, "response") == "met"


def test_without_a_rating_after_the_baseline_response_is_unknown() -> None:
    out = instrument_outcome("phq9", [pt(-3, 20)], dosed_sessions=doses(2))
    assert status(out, "response") == "unknown" and status(out, "remission") == "unknown"
    assert out.latest is None and out.percent_change is None
    assert "after the baseline" in (out.percent_change_reason or "")


# --- remission -------------------------------------------------------------------------------


@pytest.mark.parametrize(("latest", "expected"), [(4, "met"), (5, "not_met"), (0, "met")])
def test_remission_is_a_total_below_5(latest: int, expected: str) -> None:
    for name in ("phq9", "gad7"):
        points = [pt(-1, 15, name), pt(10, latest, name)]
        out = instrument_outcome(name, points, dosed_sessions=doses(3))
        assert status(out, "remission") == expected, name


# --- non-response after N dosing sessions ----------------------------------------------------


def test_non_response_waits_for_the_4th_dosing_session() -> None:
    points = [pt(-1, 20), pt(5, 18)]
    three = instrument_outcome("phq9", points, dosed_sessions=doses(3))
    assert status(three, "non_response") == "not_met"
    assert "3 of 4" in three.flag("non_response").text
    # The 4th dose is at day 6: a rating from day 5 cannot judge it.
    four = instrument_outcome("phq9", points, dosed_sessions=doses(4))
    assert status(four, "non_response") == "unknown"
    assert "since dosing session 4" in four.flag("non_response").text


def test_no_response_after_the_4th_dosing_session_is_time_to_reconsider() -> None:
    points = [pt(-1, 20), pt(6, 15)]  # rated when the 4th dose starts
    out = instrument_outcome("phq9", points, dosed_sessions=doses(4))
    flag = out.flag("non_response")
    assert flag.status == "met" and flag.at == at(6)
    assert "Reconsider" in flag.text and "sanacora-2017" in flag.sources
    assert flag.evidence == "S"  # the 4-session rule (V) with the PHQ-9 response value (S)


def test_a_patient_responding_after_4_sessions_is_not_a_non_responder() -> None:
    out = instrument_outcome("phq9", [pt(-1, 20), pt(7, 10)], dosed_sessions=doses(4))
    assert status(out, "non_response") == "not_met" and status(out, "response") == "met"


def test_a_dose_count_without_times_judges_on_the_latest_rating() -> None:
    out = instrument_outcome("phq9", [pt(-1, 20), pt(2, 18)], dosed_sessions=4, first_dose_at=DOSE)
    assert status(out, "non_response") == "met"
    with pytest.raises(OutcomeDataError) as err:
        instrument_outcome("phq9", [pt(-1, 20)], dosed_sessions=4)
    assert err.value.field == "first_dose_at"


def test_a_clinic_override_of_the_checkpoint_is_used_and_stored() -> None:
    defs = load_outcomes().with_settings({"non_response_after_sessions": 2})
    out = instrument_outcome(
        "phq9", [pt(-1, 20), pt(3, 18)], dosed_sessions=doses(2), definitions=defs
    )
    assert status(out, "non_response") == "met"
    assert out.thresholds["non_response_after_sessions"] == 2
    assert "After 2 dosing sessions" in out.flag("non_response").definition
    assert out.flag("non_response").evidence == "M"  # an override is the clinic's own


# An esketamine course: twice weekly (3-4 days apart) for 4 weeks = 8 sessions of induction.
def esketamine_doses(n: int) -> list[datetime]:
    return [at(3.5 * k) for k in range(n)]


@pytest.mark.parametrize(
    ("protocols", "sessions", "rated_day", "expected", "checkpoint"),
    [
        # Esketamine: benefit is evaluated at the end of induction (8 sessions), not after 4.
        (["intranasal-esketamine"], 4, 11, "not_met", 8),
        (["intranasal-esketamine"], 7, 22, "not_met", 8),
        (["intranasal-esketamine"], 8, 25, "met", 8),
        # IV ketamine: after 4 infusions.
        (["iv-ketamine"], 4, 11, "met", 4),
        # Switched between protocols: the earliest checkpoint prompts a look.
        (["iv-ketamine", "intranasal-esketamine"], 4, 11, "met", 4),
        # An unknown protocol (or none): the default of outcomes.yaml.
        (["no-such-protocol"], 4, 11, "met", 4),
        ([], 4, 11, "met", 4),
    ],
)
def test_non_response_is_judged_at_the_checkpoint_of_the_protocol_dosed(
    protocols: list[str], sessions: int, rated_day: float, expected: str, checkpoint: int
) -> None:
    points = [pt(-1, 20), pt(rated_day, 17)]  # a 15% fall: no response
    out = instrument_outcome(
        "phq9", points, dosed_sessions=esketamine_doses(sessions), protocol_ids=protocols
    )
    flag = out.flag("non_response")
    assert flag.status == expected, flag.text
    assert out.thresholds["non_response_after_sessions"] == checkpoint
    assert f"After {checkpoint} dosing sessions" in flag.definition
    if expected == "not_met":
        assert f"{sessions} of {checkpoint} dosing sessions so far" in flag.text


def test_the_esketamine_checkpoint_cites_its_label_and_names_the_protocol() -> None:
    points = [pt(-1, 20), pt(25, 17)]
    out = patient_outcomes(
        [("phq9", *p) for p in points],
        dosed_sessions=esketamine_doses(8),
        protocol_ids=["intranasal-esketamine"] * 8,
    )
    flag = out.instrument("phq9").flag("non_response")
    assert flag.status == "met"
    assert "spravato-us-pi-dosage" in flag.sources
    assert "the checkpoint of Esketamine nasal spray (Spravato)" in flag.text
    assert out.thresholds["non_response_after_sessions"] == 8
    assert out.overridden == ()  # the protocol's own value, not a clinic override


def test_a_clinic_override_of_the_checkpoint_wins_over_the_protocol() -> None:
    defs = load_outcomes().with_settings({"non_response_after_sessions": 2})
    out = instrument_outcome(
        "phq9",
        [pt(-1, 20), pt(4, 18)],
        dosed_sessions=esketamine_doses(2),
        definitions=defs,
        protocol_ids=["intranasal-esketamine"],
    )
    assert status(out, "non_response") == "met"
    assert out.thresholds["non_response_after_sessions"] == 2


def test_the_im_checkpoint_carried_over_from_iv_is_not_verified() -> None:
    out = instrument_outcome(
        "phq9", [pt(-1, 20), pt(7, 18)], dosed_sessions=doses(4), protocol_ids=["im-ketamine"]
    )
    assert status(out, "non_response") == "met"
    assert out.flag("non_response").evidence == "M"


# --- worsening -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("totals", "expected"),
    [
        ([12, 12], "met"),  # exactly 20% above, twice in a row
        ([12, 11], "not_met"),  # once only
        ([12, 11, 12], "not_met"),  # not consecutive
        ([11, 13, 14], "met"),
        ([14, 15, 8], "met"),  # it happened, even if better now
        ([13], "unknown"),  # one rating cannot show two in a row
        ([], "unknown"),
        ([8, 9], "not_met"),
    ],
)
def test_worsening_is_20_percent_above_baseline_twice_in_a_row(
    totals: list[int], expected: str
) -> None:
    points = [pt(-1, 10)] + [pt(7 * (k + 1), t) for k, t in enumerate(totals)]
    out = instrument_outcome("phq9", points, dosed_sessions=doses(2))
    assert status(out, "worsening") == expected
    assert out.flag("worsening").evidence == "M"


def test_a_single_rise_says_another_rating_would_confirm() -> None:
    out = instrument_outcome("phq9", [pt(-1, 10), pt(7, 13)], dosed_sessions=doses(1))
    assert "another such rating confirms worsening" in out.flag("worsening").text


def test_worsening_from_a_small_baseline_is_measured_from_the_minimum() -> None:
    # Baseline 2 is below 5: the rise is measured from 5, so 6 and above counts.
    met = instrument_outcome("phq9", [pt(-1, 2), pt(7, 6), pt(14, 9)], dosed_sessions=doses(1))
    assert status(met, "worsening") == "met"
    assert "baseline 2 is below 5" in met.flag("worsening").text
    not_yet = instrument_outcome("phq9", [pt(-1, 2), pt(7, 5), pt(14, 5)], dosed_sessions=doses(1))
    assert status(not_yet, "worsening") == "not_met"


# --- a new PHQ-9 item 9 answer ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("item9s", "expected"),
    [
        ([0, 1], "met"),
        ([0, 0, 2], "met"),
        ([1, 1], "not_met"),  # not new (the urgent flag of each answer covers it)
        ([1, 0, 1], "met"),  # new again after a 0
        ([0, 0], "not_met"),
        ([2], "unknown"),
    ],
)
def test_a_new_item9_answer_above_0_is_flagged(item9s: list[int], expected: str) -> None:
    points = [pt(7 * k - 1, 10, item9=v) for k, v in enumerate(item9s)]
    out = instrument_outcome("phq9", points, dosed_sessions=doses(1))
    flag = out.flag("item9_new")
    assert flag.status == expected
    assert "phq9-item9-followup" in flag.sources


def test_item9_without_the_answers_is_unknown() -> None:
    points = [(at(-1), 10, None), (at(7), 12, None), (at(14), 11, None)]
    out = instrument_outcome("phq9", points, dosed_sessions=doses(1))
    assert status(out, "item9_new") == "unknown"
    assert status(out, "worsening") == "not_met"  # totals are enough for the rest


# --- trajectory and weeks --------------------------------------------------------------------


def test_the_weekly_trajectory_keeps_the_last_rating_of_each_iso_week_in_the_clinic_zone() -> None:
    points = [
        (datetime(2026, 3, 1, 12, tzinfo=UTC), 20, None),  # Sunday, ISO week 9
        # Monday 03:00 UTC is still Sunday evening in Toronto: week 9 there.
        (datetime(2026, 3, 2, 3, tzinfo=UTC), 18, None),
        (datetime(2026, 3, 3, 12, tzinfo=UTC), 15, None),  # week 10
        (datetime(2026, 3, 6, 12, tzinfo=UTC), 12, None),  # week 10, later: kept
    ]
    toronto = instrument_outcome("phq9", points, dosed_sessions=[], tz="America/Toronto")
    assert [(w.iso_week, w.total, w.measurements) for w in toronto.weekly] == [
        (9, 18, 2),
        (10, 12, 2),
    ]
    assert toronto.weekly[0].week_start.isoformat() == "2026-02-23"
    utc = instrument_outcome("phq9", points, dosed_sessions=[], tz="UTC")
    assert [(w.iso_week, w.total) for w in utc.weekly] == [(9, 20), (10, 12)]
    assert toronto.weekly[1].change == -8 and toronto.weekly[1].percent_change == -40.0


def test_every_result_carries_the_knowledge_version_and_the_thresholds_used() -> None:
    out = instrument_outcome("gad7", [pt(-1, 12, "gad7")], dosed_sessions=doses(1))
    assert out.knowledge_version == knowledge_version()
    assert out.thresholds == {
        "response_fall_percent": 50,
        "min_baseline": 5,
        "non_response_after_sessions": 4,
        "worsening_rise_percent": 20,
        "worsening_consecutive_measurements": 2,
        "remission_below": 5,
    }
    data = out.to_json_dict()
    assert data["knowledge_version"] == knowledge_version()
    assert [f["code"] for f in data["flags"]] == list(FLAG_CODES)
    assert all(f["definition"] and f["sources"] for f in data["flags"])


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "points", "field"),
    [
        ("cadss", [], "instrument"),
        ("moaas", [], "instrument"),
        ("madrs", [], "instrument"),
        ("phq9", [(datetime(2026, 3, 1), 10, None)], "points[0].administered_at"),
        ("phq9", [(at(0), 28, None)], "points[0].total"),
        ("phq9", [(at(0), -1, None)], "points[0].total"),
        ("phq9", [(at(0), True, None)], "points[0].total"),
        ("gad7", [(at(0), 3, None), (at(1), "7", None)], "points[1].total"),
    ],
)
def test_data_that_cannot_be_followed_names_the_field(
    instrument: str, points: list, field: str
) -> None:
    with pytest.raises(OutcomeDataError) as err:
        instrument_outcome(instrument, points, dosed_sessions=[])
    assert err.value.field == field


def test_in_session_scales_are_refused_with_the_reason() -> None:
    with pytest.raises(OutcomeDataError, match=r"not an outcome scale.*dissociation"):
        instrument_outcome("cadss", [], dosed_sessions=[])


# --- the patient's outcomes ------------------------------------------------------------------


def test_patient_outcomes_follows_every_outcome_scale_and_leaves_in_session_ratings_out() -> None:
    rows = [
        ("phq9", at(-1), 18, answers("phq9", 18)),
        ("phq9", at(8), 8, answers("phq9", 8)),
        ("gad7", at(-1), 12, answers("gad7", 12)),
        ("cadss", at(0.1), 20, None),
        ("moaas", at(0.1), 4, None),
    ]
    out = patient_outcomes(rows, dosed_sessions=doses(4), tz="America/Toronto")
    assert [i.instrument for i in out.instruments] == ["phq9", "gad7", "asrs"]
    assert out.excluded == {"cadss": 1, "moaas": 1}
    assert out.instrument("phq9").flag("response").status == "met"
    assert out.instrument("asrs").trajectory == ()
    assert out.dosed_sessions == 4 and out.first_dose_at == DOSE
    assert "no trial of ketamine for ADHD" in out.notice
    assert out.thresholds == load_outcomes().values() and out.overridden == ()
    assert out.knowledge_version == knowledge_version()
    with pytest.raises(OutcomeDataError) as err:
        patient_outcomes([("madrs", at(0), 10, None)], dosed_sessions=[])
    assert err.value.field == "assessments[0].instrument"


def test_the_per_session_trajectory_takes_the_last_rating_before_the_next_dose() -> None:
    # Doses at days 0, 2, 4, 6; ratings: baseline day -1, two after dose 1, none after dose 2,
    # one exactly at dose 3's start (belongs to dose 2's interval), one after dose 4.
    outcome = instrument_outcome(
        "phq9",
        [pt(-1, 20), pt(0.5, 18), pt(1.5, 16), pt(4, 14), pt(9, 10)],
        dosed_sessions=doses(4),
    )
    assert [(p.session, p.total, p.measurements) for p in outcome.per_session] == [
        (1, 16, 2),
        (2, 14, 1),
        (4, 10, 1),
    ]
    assert outcome.per_session[0].dose_started_at == DOSE
    assert (outcome.per_session[-1].change, outcome.per_session[-1].percent_change) == (-10, -50.0)
    assert outcome.to_json_dict()["per_session"][1]["session"] == 2


def test_without_dose_times_there_is_no_per_session_trajectory() -> None:
    outcome = instrument_outcome(
        "phq9", [pt(-1, 20), pt(3, 10)], dosed_sessions=2, first_dose_at=DOSE
    )
    assert outcome.per_session == ()
    assert instrument_outcome("phq9", [pt(-1, 20)], dosed_sessions=[]).per_session == ()
