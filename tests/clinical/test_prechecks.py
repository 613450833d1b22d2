"""Pre-dose checks: every answer's band, unanswered checks, pregnancy applicability, the
interaction re-screen (contraindicated refuses; label-named interactions need a monitoring
plan), the interval since the previous dose, open risk flags, a start refused earlier today,
and the worst band deciding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ketacare.clinical.instruments import score
from ketacare.clinical.prechecks import (
    EarlierRefusal,
    InteractionSummary,
    RiskDecisionBrief,
    RiskFlag,
    assess_prechecks,
    assessment_risk_flags,
    dose_interval,
    ordered_flags,
    therapy_risk_flag,
    worst,
)
from ketacare.knowledge.protocol_defs import ProtocolDef, get_protocol

IV = get_protocol("iv-ketamine")
NASAL = get_protocol("intranasal-esketamine")
CLEAN = InteractionSummary(medicines=1, highest_severity=None)
BASE = {
    "fasting": "yes",
    "escort": "yes",
    "pregnancy": "not_pregnant",
    "sex": "female",
    "age_years": 34,
    "interactions": CLEAN,
}


def run(**changes: object):  # type: ignore[no-untyped-def]
    return assess_prechecks(IV, **{**BASE, **changes})  # type: ignore[arg-type]


def test_everything_answered_well_proceeds() -> None:
    result = run()
    assert result.band == "proceed"
    assert [c.id for c in result.checks] == ["fasting", "escort", "pregnancy", "interactions"]
    assert all(c.sources for c in result.checks)


@pytest.mark.parametrize(
    ("changes", "check", "band"),
    [
        ({"fasting": "no"}, "fasting", "caution"),
        ({"fasting": None}, "fasting", "caution"),
        ({"escort": "no"}, "escort", "hold"),
        ({"escort": None}, "escort", "hold"),
        ({"pregnancy": "pregnant"}, "pregnancy", "hold"),
        ({"pregnancy": "unknown"}, "pregnancy", "hold"),
        ({"pregnancy": None}, "pregnancy", "hold"),
        ({"interactions": None}, "interactions", "hold"),
        ({"interactions": InteractionSummary(0, None)}, "interactions", "caution"),
        ({"interactions": InteractionSummary(2, "contraindicated")}, "interactions", "refuse"),
        ({"interactions": InteractionSummary(2, "major")}, "interactions", "caution"),
        ({"interactions": InteractionSummary(2, "moderate")}, "interactions", "proceed"),
        ({"interactions": InteractionSummary(2, "minor")}, "interactions", "proceed"),
        (
            {"interactions": InteractionSummary(2, "minor", ("Zyxoprin 5 mg",))},
            "interactions",
            "caution",
        ),
    ],
)
def test_each_answer_lands_in_its_band_and_the_worst_decides(
    changes: dict[str, object], check: str, band: str
) -> None:
    result = run(**changes)
    assert result.check(check).band == band
    assert result.band == band


def test_an_unrecognised_medicine_is_named_in_the_text() -> None:
    result = run(interactions=InteractionSummary(1, None, ("Zyxoprin 5 mg",)))
    assert "Zyxoprin 5 mg" in result.check("interactions").text


@pytest.mark.parametrize(
    ("sex", "age", "asked"),
    [
        ("female", 18, True),
        ("female", 55, True),
        ("female", 56, False),
        ("male", 30, False),
        ("other", 30, True),
        ("unknown", 60, False),
        ("female", None, True),
    ],
)
def test_pregnancy_is_asked_of_female_patients_of_childbearing_age(
    sex: str, age: int | None, asked: bool
) -> None:
    result = run(sex=sex, age_years=age, pregnancy=None)
    assert ("pregnancy" in [c.id for c in result.checks]) is asked
    assert result.band == ("hold" if asked else "proceed")


def test_a_stated_pregnancy_is_never_ignored_even_outside_the_age_range() -> None:
    result = run(age_years=58, pregnancy="pregnant")
    assert result.check("pregnancy").band == "hold"


def test_fasting_instructions_follow_the_administration() -> None:
    iv = assess_prechecks(IV, **{**BASE, "fasting": None}).check("fasting").text  # type: ignore[arg-type]
    nasal = assess_prechecks(NASAL, **{**BASE, "fasting": None}).check("fasting").text  # type: ignore[arg-type]
    assert "6 hours" in iv and "2 hours" in iv
    assert "30 minutes" in nasal


def test_an_answer_outside_the_vocabulary_is_an_error() -> None:
    with pytest.raises(ValueError, match="escort"):
        run(escort="maybe")


@pytest.mark.parametrize(
    ("bands", "expected"),
    [
        (("proceed", "proceed"), "proceed"),
        (("proceed", "caution"), "caution"),
        (("hold", "caution"), "hold"),
        (("refuse", "hold", "proceed"), "refuse"),
    ],
)
def test_worst_band(bands: tuple[str, ...], expected: str) -> None:
    assert worst(*bands) == expected


# --- label-named interactions (Spravato section 7) ---------------------------------------------


def _screened(*medicines: str) -> InteractionSummary:
    from ketacare.clinical.interactions import screen

    result = screen(list(medicines), "ketamine", "iv")
    return InteractionSummary.of_findings(
        len(medicines), [f.to_json_dict() for f in result.findings]
    )


@pytest.mark.parametrize(
    ("medicines", "band", "group"),
    [
        (("lorazepam 1 mg",), "caution", "cns_depressant"),
        (("oxycodone 5 mg",), "caution", "cns_depressant"),
        (("zolpidem 10 mg",), "caution", "cns_depressant"),
        (("alcohol",), "caution", "cns_depressant"),
        (("Vyvanse 50 mg",), "caution", "psychostimulant"),
        (("methylphenidate 20 mg",), "caution", "psychostimulant"),
        (("modafinil 200 mg",), "caution", "psychostimulant"),
        (("phenelzine 15 mg",), "caution", "maoi"),
        (("sertraline 100 mg",), "proceed", None),
        (("ibuprofen 400 mg",), "proceed", None),
        # Contraindicated together: refused, whatever else applies.
        (("Nardil 15 mg", "Adderall XR 20 mg"), "refuse", "psychostimulant"),
    ],
)
def test_a_label_named_interaction_needs_a_monitoring_plan(
    medicines: tuple[str, ...], band: str, group: str | None
) -> None:
    check = run(interactions=_screened(*medicines)).check("interactions")
    assert check.band == band
    named = {g["group"] for g in check.detail["label_named"]}
    assert (group in named) if group else not named
    assert ("monitoring_plan" in check.needs) is (group is not None)
    if group:
        assert {f["rule_id"] for f in check.detail["findings"]}, "the rules are carried"
        assert "spravato-us-pi-s7-interactions" in check.sources


def test_a_finding_is_named_by_its_class_when_its_rule_is_unknown() -> None:
    # A rule renamed elsewhere (or a new one) still counts through the ingredient's class.
    summary = InteractionSummary.of_findings(
        1,
        [{"rule_id": "ketamine-cns-depressants-v2", "severity": "major", "ingredient": "diazepam"}],
    )
    check = run(interactions=summary).check("interactions")
    assert check.needs == ("monitoring_plan",)
    assert {"benzodiazepine", "cns_depressant"} <= set(check.detail["findings"][0]["classes"])


# --- the minimum interval ---------------------------------------------------------------------

T0 = datetime(2026, 3, 6, 14, 0, tzinfo=UTC)  # Friday 09:00 in Toronto


@pytest.mark.parametrize(
    ("protocol", "hours", "outcome", "band"),
    [
        (IV, 9, "too_soon_override", "hold"),
        (IV, 47.9, "too_soon_override", "hold"),
        (IV, 48, "ok", "proceed"),
        (IV, 72, "ok", "proceed"),
        (NASAL, 9, "too_soon", "refuse"),
        (NASAL, 48, "ok", "proceed"),
        (get_protocol("im-ketamine"), 24, "too_soon_override", "hold"),
    ],
)
def test_the_interval_since_the_previous_dose(
    protocol: ProtocolDef, hours: float, outcome: str, band: str
) -> None:
    interval = dose_interval(protocol, T0, T0 + timedelta(hours=hours), "America/Toronto")
    assert interval.outcome == outcome
    assert run(interval=interval).check("dose_interval").band == band


def test_a_dose_too_soon_names_the_previous_dose_and_the_earliest_time_in_the_clinics_zone() -> (
    None
):
    interval = dose_interval(IV, T0, T0 + timedelta(hours=9), "America/Toronto")
    assert "Fri 06 Mar 2026 09:00 EST" in interval.text
    # Daylight saving starts on Sunday 8 March: 48 elapsed hours end at 10:00 local time.
    assert "Sun 08 Mar 2026 10:00 EDT" in interval.text
    assert interval.earliest_at == T0 + timedelta(hours=48)


def test_the_first_dose_has_no_interval_to_keep() -> None:
    assert dose_interval(IV, None, T0, "UTC").outcome == "ok"


# --- risk flags --------------------------------------------------------------------------------


def _phq9_flag(ref: int, answer: int, at: datetime) -> list[RiskFlag]:
    result = score("phq9", [1] * 8 + [answer]).to_json_dict()
    return assessment_risk_flags(
        ref, "phq9", [1] * 8 + [answer], result["flags"], at, "self_report"
    )


def test_risk_flags_are_in_the_patients_words_critical_first() -> None:
    phq = _phq9_flag(7, 2, T0)
    cbt = therapy_risk_flag(3, "active_ideation", T0 - timedelta(days=3))
    passive = therapy_risk_flag(4, "passive_ideation", T0 - timedelta(days=1))
    assert cbt is not None and passive is not None
    assert therapy_risk_flag(5, "none", T0) is None
    ordered = ordered_flags([*phq, passive, cbt])
    assert [f.key for f in ordered] == ["therapy:3", "assessment:7", "therapy:4"]
    assert phq[0].words == (
        'PHQ-9 question 9, "Thoughts that you would be better off dead or of hurting yourself in '
        'some way": answered "More than half the days"'
    )
    assert "phq9" not in phq[0].words and "_" not in ordered[0].words


def test_a_risk_result_no_longer_known_is_critical() -> None:
    flag = therapy_risk_flag(9, "plan_with_intent_v0", T0)
    assert flag is not None and flag.level == "critical"


@pytest.mark.parametrize(
    ("flags", "decisions", "band"),
    [
        ((), (), "proceed"),
        (("open",), (), "refuse"),
        (("open",), ("defer",), "refuse"),
        ((), ("proceed",), "caution"),
    ],
)
def test_open_risk_flags_refuse_until_a_prescriber_decides(
    flags: tuple[str, ...], decisions: tuple[str, ...], band: str
) -> None:
    shown = _phq9_flag(1, 1, T0) if flags else []
    made = [
        RiskDecisionBrief(d, "C-SSRS screen done", T0, "Dr A", ("assessment:1",))  # type: ignore[arg-type]
        for d in decisions
    ]
    check = run(risk_flags=shown, risk_decisions=made).check("risk_flags")
    assert check.band == band


def test_a_start_refused_on_the_blood_pressure_today_needs_owning() -> None:
    bp = EarlierRefusal(T0, "bp_refuse", "blood pressure 185/112 (refuse)", bp_refused=True)
    hold = EarlierRefusal(T0, "bp_hold", "blood pressure 164/96 (hold)", bp_refused=False)
    assert run(refusals_today=[]).band == "proceed"
    refused = run(refusals_today=[bp]).check("earlier_refusal")
    assert (refused.band, refused.needs) == ("hold", ("acknowledge_refusal",))
    assert run(refusals_today=[hold]).check("earlier_refusal").band == "caution"


# --- the other pre-dose readings ----------------------------------------------------------------

STEADY = {"systolic": 124, "diastolic": 78, "heart_rate": 72, "spo2": 98, "respiratory_rate": 14}


@pytest.mark.parametrize(
    ("changes", "outcome", "band", "words"),
    [
        ({}, "ok", "proceed", "in no alert band"),
        ({"spo2": 90}, "warning", "caution", "SpO2 90% is below 92%"),
        ({"spo2": 86}, "critical", "hold", "SpO2 86% is below 88%"),
        ({"heart_rate": 118}, "warning", "caution", "Heart rate 118/min"),
        ({"heart_rate": 136}, "critical", "hold", "Heart rate 136/min"),
        ({"heart_rate": 38}, "critical", "hold", "Heart rate 38/min"),
        ({"respiratory_rate": 8}, "critical", "hold", "Respiratory rate 8/min"),
        # Low pressure proceeds at the gate (below 140/90): this check grades it.
        ({"systolic": 86, "diastolic": 54}, "warning", "caution", "Systolic 86"),
        ({"systolic": 76, "diastolic": 44}, "critical", "hold", "Systolic 76"),
        # High pressure and rises are the gate's: not graded twice.
        ({"systolic": 186, "diastolic": 112}, "ok", "proceed", "in no alert band"),
        ({"spo2": None}, "not_recorded", "caution", "Not recorded: SpO2"),
        (
            {"heart_rate": None, "respiratory_rate": None},
            "not_recorded",
            "caution",
            "Not recorded: heart rate, respiratory rate",
        ),
        ({"spo2": None, "heart_rate": 136}, "critical", "hold", "Not recorded: SpO2"),
    ],
)
def test_the_pre_dose_readings_beside_the_blood_pressure(
    changes: dict[str, float | None], outcome: str, band: str, words: str
) -> None:
    check = run(readings={**STEADY, **changes}).check("readings")
    assert (check.outcome, check.band) == (outcome, band)
    assert words in check.text
