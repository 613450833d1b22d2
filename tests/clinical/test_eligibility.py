"""Eligibility decisions: a vignette table covering every rule and boundary, then the contract."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ketacare.clinical.eligibility import (
    Decision,
    DecisionKind,
    EligibilitySettings,
    HistoryCode,
    Intake,
    IntakeError,
    RelaxationError,
    assess,
    bp_band,
    check_relaxation,
    describe_validation_error,
    intake_json_schema,
    standard_treatment,
)
from ketacare.clinical.interactions import StoppedMedication, screen
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.instrument_defs import reference_ids

ELIGIBLE, REVIEW, INELIGIBLE = "eligible", "needs_review", "ineligible"
DELETE = object()
AS_OF = date(2025, 6, 1)
REPO = Path(__file__).resolve().parents[2]

# ASRS Part A positive (5 shaded), PHQ-9 12 (moderate, item 9 = 0), GAD-7 8 (mild).
ASRS_POSITIVE = [3, 3, 2, 3, 2, 3, 3, 3, 2, 3, 3, 1, 2, 3, 2, 2, 2, 1]
ASRS_NEGATIVE = [1, 1, 1, 2, 2, 2, 3, 3, 2, 3, 3, 1, 2, 3, 2, 2, 2, 1]
PHQ9_12 = [2, 2, 2, 1, 1, 2, 2, 0, 0]
GAD7_8 = [2, 1, 1, 2, 1, 1, 0]

BASE: dict[str, Any] = {
    "age": 34,
    "adhd_diagnosis": True,
    "prior_adhd_treatments": [{"drug": "methylphenidate", "response": "inadequate"}],
    "history": [],
    "blood_pressure": {"systolic": 124, "diastolic": 78},
    "heart_rate": 72,
    "weight_kg": 70.0,
    "medications": [],
    "scores": {"asrs": ASRS_POSITIVE, "phq9": PHQ9_12, "gad7": GAD7_8},
}


def intake_dict(changes: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, key = path.split(".")
        target = data
        for part in parents:
            target = target[part]
        if value is DELETE:
            target.pop(key, None)
        else:
            target[key] = value
    return data


def bp(systolic: int, diastolic: int) -> dict[str, Any]:
    return {"blood_pressure": {"systolic": systolic, "diastolic": diastolic}}


def treated(*entries: tuple[str, str]) -> dict[str, Any]:
    return {"prior_adhd_treatments": [{"drug": d, "response": r} for d, r in entries]}


@dataclass(frozen=True)
class FakeFinding:
    """An interaction finding as another module might return it (attributes, not keys)."""

    rule_id: str
    severity: Any
    ingredient: str
    effect: str
    sources: tuple[str, ...] = ()


class Severity(Enum):
    MAJOR = "major"


@dataclass(frozen=True)
class Vignette:
    name: str
    changes: dict[str, Any]
    decision: str
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    as_of: date | None = None
    findings: tuple[Any, ...] = field(default=())


THEOPHYLLINE = {
    "rule_id": "theophylline-ketamine",
    "severity": "contraindicated",
    "ingredient": "theophylline",
    "effect": "May lower the seizure threshold; do not co-administer.",
    "sources": ["ketalar-us-pi-s7-seizure-threshold"],
}

VIGNETTES = [
    Vignette(
        "baseline_candidate_is_eligible",
        {},
        ELIGIBLE,
        (
            "adhd_diagnosis_confirmed",
            "prior_treatment_failed",
            "asrs_positive_screen",
            "phq9_comorbid_depression",
            "gad7_below_threshold",
            "bp_normal",
            "off_label",
        ),
    ),
    # age (section C: adults >= 18)
    Vignette("age_17_is_out_of_scope", {"age": 17}, INELIGIBLE, ("age_under_minimum",)),
    Vignette("age_18_is_an_adult", {"age": 18}, ELIGIBLE, absent=("age_under_minimum",)),
    Vignette(
        "birth_date_one_day_short_of_18",
        {"age": DELETE, "date_of_birth": "2007-06-02"},
        INELIGIBLE,
        ("age_under_minimum",),
        as_of=AS_OF,
    ),
    Vignette(
        "birth_date_on_the_18th_birthday",
        {"age": DELETE, "date_of_birth": "2007-06-01"},
        ELIGIBLE,
        absent=("age_under_minimum",),
        as_of=AS_OF,
    ),
    Vignette("age_unknown", {"age": DELETE}, REVIEW, ("age_missing",)),
    # ADHD diagnosis
    Vignette("diagnosis_missing", {"adhd_diagnosis": DELETE}, REVIEW, ("adhd_diagnosis_missing",)),
    Vignette("diagnosis_denied", {"adhd_diagnosis": False}, REVIEW, ("adhd_diagnosis_absent",)),
    # not first-line (section C)
    Vignette(
        "first_line_without_any_treatment",
        {"prior_adhd_treatments": []},
        REVIEW,
        ("no_prior_adhd_treatment",),
    ),
    Vignette(
        "standard_treatment_that_worked",
        treated(("atomoxetine", "good")),
        REVIEW,
        ("no_failed_standard_treatment",),
    ),
    Vignette(
        "partial_response_is_not_failure",
        treated(("Concerta 36 mg", "partial")),
        REVIEW,
        ("no_failed_standard_treatment",),
    ),
    Vignette(
        "not_tolerated_counts_as_failure",
        treated(("Vyvanse 30 mg", "not_tolerated")),
        ELIGIBLE,
        ("prior_treatment_failed",),
    ),
    Vignette(
        "brand_name_is_recognised",
        treated(("Adderall XR 20 mg", "inadequate"), ("guanfacine ER", "good")),
        ELIGIBLE,
        ("prior_treatment_failed",),
        ("unrecognised_adhd_treatment",),
    ),
    Vignette(
        "off_label_drug_does_not_count",
        treated(("bupropion XL 300 mg", "inadequate")),
        REVIEW,
        ("no_failed_standard_treatment", "unrecognised_adhd_treatment"),
    ),
    # blood pressure bands
    Vignette("bp_139_89_proceeds", bp(139, 89), ELIGIBLE, ("bp_normal",)),
    Vignette("bp_140_90_caution", bp(140, 90), REVIEW, ("bp_caution",)),
    Vignette("bp_140_80_systolic_caution", bp(140, 80), REVIEW, ("bp_caution",)),
    Vignette("bp_120_90_diastolic_caution", bp(120, 90), REVIEW, ("bp_caution",)),
    Vignette("bp_159_99_caution", bp(159, 99), REVIEW, ("bp_caution",), ("bp_hold",)),
    Vignette("bp_160_100_hold", bp(160, 100), REVIEW, ("bp_hold",), ("bp_caution",)),
    Vignette("bp_160_80_systolic_hold", bp(160, 80), REVIEW, ("bp_hold",)),
    Vignette("bp_130_100_diastolic_hold", bp(130, 100), REVIEW, ("bp_hold",)),
    Vignette("bp_179_109_hold", bp(179, 109), REVIEW, ("bp_hold",), ("bp_refuse",)),
    Vignette("bp_180_110_refused", bp(180, 110), INELIGIBLE, ("bp_refuse",), ("bp_hold",)),
    Vignette("bp_180_95_systolic_refused", bp(180, 95), INELIGIBLE, ("bp_refuse",)),
    Vignette("bp_150_110_diastolic_refused", bp(150, 110), INELIGIBLE, ("bp_refuse",)),
    Vignette("bp_missing", {"blood_pressure": DELETE}, REVIEW, ("bp_missing",)),
    # heart rate
    Vignette("heart_rate_110_accepted", {"heart_rate": 110}, ELIGIBLE),
    Vignette("heart_rate_111_reviewed", {"heart_rate": 111}, REVIEW, ("heart_rate_out_of_range",)),
    Vignette("heart_rate_50_accepted", {"heart_rate": 50}, ELIGIBLE),
    Vignette("heart_rate_49_reviewed", {"heart_rate": 49}, REVIEW, ("heart_rate_out_of_range",)),
    Vignette("heart_rate_missing_info", {"heart_rate": DELETE}, ELIGIBLE, ("heart_rate_missing",)),
    # missing data
    Vignette("weight_missing", {"weight_kg": DELETE}, REVIEW, ("weight_missing",)),
    Vignette(
        "all_scores_missing",
        {"scores": DELETE},
        REVIEW,
        ("asrs_missing", "phq9_missing", "gad7_missing"),
    ),
    Vignette("asrs_missing", {"scores.asrs": DELETE}, REVIEW, ("asrs_missing",), ("phq9_missing",)),
    Vignette("gad7_missing", {"scores.gad7": DELETE}, REVIEW, ("gad7_missing",)),
    # rating scales
    Vignette(
        "asrs_negative_screen", {"scores.asrs": ASRS_NEGATIVE}, REVIEW, ("asrs_negative_screen",)
    ),
    Vignette(
        "phq9_item9_with_total_1",
        {"scores.phq9": [0, 0, 0, 0, 0, 0, 0, 0, 1]},
        REVIEW,
        ("phq9_item9_positive", "phq9_below_threshold"),
    ),
    Vignette(
        "phq9_9_below_threshold",
        {"scores.phq9": [1, 1, 1, 1, 1, 1, 1, 2, 0]},
        ELIGIBLE,
        ("phq9_below_threshold",),
        ("phq9_comorbid_depression",),
    ),
    Vignette(
        "phq9_10_comorbid_depression",
        {"scores.phq9": [2, 1, 1, 1, 1, 1, 1, 2, 0]},
        ELIGIBLE,
        ("phq9_comorbid_depression",),
    ),
    Vignette(
        "gad7_10_comorbid_anxiety",
        {"scores.gad7": [2, 2, 2, 1, 1, 1, 1]},
        ELIGIBLE,
        ("gad7_comorbid_anxiety",),
    ),
    Vignette(
        "gad7_9_below_threshold",
        {"scores.gad7": [2, 2, 1, 1, 1, 1, 1]},
        ELIGIBLE,
        ("gad7_below_threshold",),
    ),
    # interaction findings passed in
    Vignette(
        "contraindicated_interaction_excludes",
        {"medications": ["theophylline 200 mg"]},
        INELIGIBLE,
        ("interaction:theophylline-ketamine",),
        findings=(THEOPHYLLINE,),
    ),
    Vignette(
        "major_interaction_needs_review",
        {},
        REVIEW,
        ("interaction:opioid-ketamine",),
        findings=(FakeFinding("opioid-ketamine", "major", "oxycodone", "Respiratory depression."),),
    ),
    Vignette(
        "enum_severity_is_understood",
        {},
        REVIEW,
        ("interaction:opioid-ketamine",),
        findings=(FakeFinding("opioid-ketamine", Severity.MAJOR, "morphine", "Sedation."),),
    ),
    Vignette(
        "moderate_interaction_is_information",
        {},
        ELIGIBLE,
        ("interaction:stimulant-ketamine",),
        findings=(
            FakeFinding("stimulant-ketamine", "moderate", "methylphenidate", "BP and HR rise."),
        ),
    ),
    # precedence
    Vignette(
        "exclusion_beats_caution",
        {"history": ["ketamine_hypersensitivity"], **bp(150, 85)},
        INELIGIBLE,
        ("ketamine_hypersensitivity", "bp_caution"),
    ),
    Vignette(
        "caution_beats_supporting",
        {"history": ["glaucoma"], "scores.gad7": [3, 3, 3, 3, 3, 3, 3]},
        REVIEW,
        ("glaucoma", "gad7_comorbid_anxiety"),
    ),
]

# The classification decided for each history code (sources in contraindications.yaml).
# Contraindications in a product label: exclusions no clinic can relax.
LABEL_CONTRAINDICATIONS = [
    "ketamine_hypersensitivity",
    "aneurysmal_vascular_disease",
    "arteriovenous_malformation",
    "intracerebral_hemorrhage",
    "recent_myocardial_infarction",  # EU Spravato SmPC 4.3: within 6 weeks
    "severe_coronary_disease",  # UK Ketalar SmPC 4.3
    "recent_stroke",  # UK Ketalar SmPC 4.3: cerebrovascular accident
    "raised_intracranial_pressure",  # Spravato 5.6
    "cerebral_trauma",  # UK Ketalar SmPC 4.3
    "hypertension_uncontrolled",
    "hyperthyroidism_untreated",
    "preeclampsia_eclampsia",
]
# Exclusions by KetaCare's default for an elective off-label treatment: relaxable with a reason.
DEFAULT_EXCLUSIONS = [
    "current_psychosis",
    "schizophrenia",
    "pregnancy",
    "severe_hepatic_impairment",
]
EXCLUSIONS = LABEL_CONTRAINDICATIONS + DEFAULT_EXCLUSIONS
CAUTIONS = [
    "hypertension_controlled",
    "psychosis",
    "bipolar_disorder",
    "substance_use_disorder",
    "ketamine_misuse",
    "suicide_attempt",
    "coronary_artery_disease",
    "heart_failure",
    "arrhythmia",
    "breastfeeding",
    "bladder_disease",
    "hepatic_impairment",
    "hyperthyroidism",
    "seizure_disorder",
    "glaucoma",
]
VIGNETTES += [Vignette(f"history_{c}", {"history": [c]}, INELIGIBLE, (c,)) for c in EXCLUSIONS]
VIGNETTES += [Vignette(f"history_{c}", {"history": [c]}, REVIEW, (c,)) for c in CAUTIONS]


def run(vignette: Vignette) -> Decision:
    intake = Intake.model_validate(intake_dict(vignette.changes))
    return assess(intake, as_of=vignette.as_of, interaction_findings=vignette.findings)


@pytest.mark.parametrize("vignette", VIGNETTES, ids=lambda v: v.name)
def test_vignette(vignette: Vignette) -> None:
    decision = run(vignette)
    assert decision.decision.value == vignette.decision, decision.codes
    for code in vignette.present:
        assert code in decision.codes
    for code in vignette.absent:
        assert code not in decision.codes
    assert decision.codes[-1] == "off_label"
    assert decision.knowledge_version == knowledge_version()


def test_there_are_enough_vignettes_and_every_history_code_is_covered() -> None:
    assert len(VIGNETTES) >= 30
    assert set(EXCLUSIONS) | set(CAUTIONS) == {c.value for c in HistoryCode}


def test_history_reason_severity_matches_the_classification() -> None:
    for code in EXCLUSIONS:
        decision = run(Vignette(code, {"history": [code]}, INELIGIBLE))
        assert decision.reason(code).severity == "exclusion"
    for code in CAUTIONS:
        decision = run(Vignette(code, {"history": [code]}, REVIEW))
        assert decision.reason(code).severity == "caution"


def test_brief_lists_match_the_data() -> None:
    from ketacare.knowledge.eligibility_defs import load_contraindications

    conditions = load_contraindications().conditions
    classes = {c.code: c.classification for c in conditions}
    assert {c for c, k in classes.items() if k == "exclusion"} == set(EXCLUSIONS)
    assert {c for c, k in classes.items() if k == "caution"} == set(CAUTIONS)
    basis = {c.code: c.basis for c in conditions}
    assert {c for c, b in basis.items() if b == "label_contraindication"} == set(
        LABEL_CONTRAINDICATIONS
    )
    assert {c for c, b in basis.items() if b == "clinic_default" and c in EXCLUSIONS} == set(
        DEFAULT_EXCLUSIONS
    )


# --- texts a clinician must see ------------------------------------------------------------------


def test_pregnancy_is_excluded_by_default_not_as_a_label_contraindication() -> None:
    reason = run(Vignette("p", {"history": ["pregnancy"]}, INELIGIBLE)).reason("pregnancy")
    assert reason.severity == "exclusion"
    assert "NOT a label contraindication" in reason.text
    assert "by default" in reason.text and "elective" in reason.text
    assert "spravato-us-pi-pregnancy" in reason.sources


def test_the_recent_cardiovascular_event_names_the_six_weeks() -> None:
    from ketacare.knowledge.eligibility_defs import load_contraindications

    condition = load_contraindications().by_code()["recent_myocardial_infarction"]
    assert "within 6 weeks" in condition.label
    reason = run(Vignette("mi", {"history": ["recent_myocardial_infarction"]}, INELIGIBLE))
    assert "within the last 6 weeks" in reason.reason("recent_myocardial_infarction").text
    assert "spravato-eu-smpc-contraindications" in condition.basis_sources


def test_breastfeeding_says_not_to_breastfeed_during_treatment() -> None:
    reason = run(Vignette("b", {"history": ["breastfeeding"]}, REVIEW)).reason("breastfeeding")
    assert reason.severity == "caution"
    assert "not to breastfeed during treatment" in reason.text
    assert "not been reviewed" not in reason.text
    assert "spravato-us-pi-lactation" in reason.sources


def test_phq9_item9_is_urgent_whatever_the_total() -> None:
    decision = run(Vignette("i9", {"scores.phq9": [0] * 8 + [1]}, REVIEW))
    reason = decision.reason("phq9_item9_positive")
    assert reason.severity == "caution"
    assert reason.text.startswith("URGENT")
    assert "1 (Several days)" in reason.text
    assert "C-SSRS" in reason.text
    assert decision.urgent
    assert not run(VIGNETTES[0]).urgent


def test_bp_texts_carry_the_reading_and_the_thresholds_in_force() -> None:
    reason = run(Vignette("bp", bp(165, 95), REVIEW)).reason("bp_hold")
    assert "165/95 mmHg" in reason.text
    assert "160/100" in reason.text
    assert "180/100" in reason.text  # the Swiss label figure is cited
    caution = run(Vignette("bp", bp(145, 85), REVIEW)).reason("bp_caution")
    assert "(140-159 / 90-99)" in caution.text


def test_asrs_texts_say_which_convention_they_use() -> None:
    text = run(VIGNETTES[0]).reason("asrs_positive_screen").text
    assert "5 of 6" in text
    assert "sum 43/72" in text


def test_treatment_texts_name_the_drugs() -> None:
    decision = run(Vignette("t", treated(("bupropion", "inadequate"), ("Focalin", "good")), REVIEW))
    assert (
        "bupropion: inadequate; Focalin: good"
        in decision.reason("no_failed_standard_treatment").text
    )
    assert "bupropion" in decision.reason("unrecognised_adhd_treatment").text
    assert "Focalin" not in decision.reason("unrecognised_adhd_treatment").text


def test_the_decision_never_claims_efficacy() -> None:
    decision = run(VIGNETTES[0])
    off_label = decision.reason("off_label")
    assert off_label.severity == "info"
    assert "no randomized trial of ketamine for ADHD" in off_label.text
    assert "adhd-ketamine-no-trials" in off_label.sources
    for reason in decision.reasons:
        assert "effective" not in reason.text.lower()
        assert "improves" not in reason.text.lower()


def test_interaction_reasons_keep_the_rule_sources() -> None:
    decision = run(Vignette("x", {}, INELIGIBLE, findings=(THEOPHYLLINE,)))
    reason = decision.reason("interaction:theophylline-ketamine")
    assert reason.severity == "exclusion"
    assert reason.sources == ("ketalar-us-pi-s7-seizure-threshold",)
    assert "theophylline" in reason.text
    assert "seizure threshold" in reason.text


def test_a_finding_without_rule_id_is_refused() -> None:
    with pytest.raises(ValueError, match="rule_id"):
        assess(Intake.model_validate(BASE), interaction_findings=[{"severity": "major"}])


# --- decision contract ---------------------------------------------------------------------------


def test_reasons_are_ordered_by_severity_and_all_sourced() -> None:
    decision = run(
        Vignette("mix", {"history": ["glaucoma", "ketamine_hypersensitivity"]}, INELIGIBLE)
    )
    order = ["exclusion", "caution", "supporting", "info"]
    ranks = [order.index(r.severity) for r in decision.reasons]
    assert ranks == sorted(ranks)
    known = reference_ids()
    for reason in decision.reasons:
        assert reason.sources, reason.code
        assert set(reason.sources) <= known, reason.code


def test_json_dict_contract() -> None:
    decision = run(VIGNETTES[0])
    data = decision.to_json_dict()
    assert list(data) == ["decision", "reasons", "knowledge_version", "settings"]
    assert data["decision"] == "eligible"
    assert data["knowledge_version"] == knowledge_version()
    for reason in data["reasons"]:
        assert list(reason) == ["code", "severity", "text", "sources"]
        assert isinstance(reason["sources"], list)
    assert data["settings"]["bp_refuse_systolic"] == 180
    assert json.loads(json.dumps(data)) == data


def test_settings_in_force_are_recorded_and_can_be_changed() -> None:
    stricter = EligibilitySettings.defaults().model_copy(update={"min_age": 21})
    intake = Intake.model_validate(intake_dict({"age": 20}))
    decision = assess(intake, settings=stricter)
    assert decision.decision is DecisionKind.INELIGIBLE
    assert decision.settings["min_age"] == 21
    assert "under 21" in decision.reason("age_under_minimum").text
    assert assess(intake).decision is DecisionKind.ELIGIBLE


def test_first_line_rule_can_be_switched_off_by_a_clinic() -> None:
    relaxed = EligibilitySettings.defaults().model_copy(
        update={"require_failed_standard_treatment": False}
    )
    intake = Intake.model_validate(intake_dict({"prior_adhd_treatments": []}))
    assert assess(intake, settings=relaxed).decision is DecisionKind.ELIGIBLE


def test_settings_must_rise_from_caution_to_refuse() -> None:
    values = EligibilitySettings.defaults().model_dump() | {"bp_hold_systolic": 190}
    with pytest.raises(ValidationError, match="caution < hold < refuse"):
        EligibilitySettings.model_validate(values)


def test_default_settings_come_from_the_knowledge_file() -> None:
    settings = EligibilitySettings.defaults()
    assert (settings.bp_caution_systolic, settings.bp_caution_diastolic) == (140, 90)
    assert (settings.bp_hold_systolic, settings.bp_hold_diastolic) == (160, 100)
    assert (settings.bp_refuse_systolic, settings.bp_refuse_diastolic) == (180, 110)
    assert settings.min_age == 18


@pytest.mark.parametrize(
    ("systolic", "diastolic", "band"),
    [
        (139, 89, "normal"),
        (140, 89, "caution"),
        (139, 90, "caution"),
        (159, 99, "caution"),
        (160, 99, "hold"),
        (159, 100, "hold"),
        (179, 109, "hold"),
        (180, 109, "refuse"),
        (179, 110, "refuse"),
    ],
)
def test_bp_band_takes_the_worse_of_systolic_and_diastolic(
    systolic: int, diastolic: int, band: str
) -> None:
    assert bp_band(systolic, diastolic, EligibilitySettings.defaults()) == band


@pytest.mark.parametrize(
    ("name", "ingredient"),
    [
        ("Ritalin LA", "methylphenidate"),
        ("dexamfetamine", "dextroamphetamine"),
        ("Elvanse 50mg", "lisdexamfetamine"),
        ("mixed amphetamine salts", "amphetamine"),
        ("Qelbree", "viloxazine"),
        ("Intuniv 3 mg", "guanfacine"),
        ("bupropion", None),
        ("modafinil", None),
        ("sertraline", None),
    ],
)
def test_standard_treatments_are_matched_on_whole_words(name: str, ingredient: str | None) -> None:
    match = standard_treatment(name)
    assert (match.ingredient if match else None) == ingredient


# --- intake validation ---------------------------------------------------------------------------


def errors_for(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as err:
        Intake.model_validate(data)
    return describe_validation_error(err.value)


def test_an_unknown_history_code_is_named() -> None:
    (line,) = errors_for(intake_dict({"history": ["psychosis", "hypertensive_crisis"]}))
    assert line.startswith("history: unknown history code 'hypertensive_crisis'")


def test_an_unknown_field_is_named() -> None:
    assert errors_for(intake_dict({"smoker": True})) == ["smoker: unknown field"]
    nested = intake_dict({"blood_pressure": {"systolic": 120, "diastolic": 80, "arm": "left"}})
    assert errors_for(nested) == ["blood_pressure.arm: unknown field"]


def test_answers_out_of_range_name_the_item() -> None:
    (line,) = errors_for(intake_dict({"scores.phq9": [0, 0, 0, 0, 0, 0, 0, 0, 4]}))
    assert line == "scores.phq9: item 9: 4 is outside 0-3"
    (line,) = errors_for(intake_dict({"scores.gad7": [0, 0, "1", 0, 0, 0, 0]}))
    assert line.startswith("scores.gad7: item 3:")
    (line,) = errors_for(intake_dict({"scores.asrs": [0] * 17}))
    assert "18 scored items" in line


def test_age_and_date_of_birth_are_exclusive() -> None:
    (line,) = errors_for(intake_dict({"date_of_birth": "1990-01-01"}))
    assert "either age or date_of_birth" in line


def test_date_of_birth_needs_the_assessment_date() -> None:
    intake = Intake.model_validate(intake_dict({"age": DELETE, "date_of_birth": "1990-01-01"}))
    with pytest.raises(IntakeError) as err:
        assess(intake)
    assert err.value.field == "as_of"
    with pytest.raises(IntakeError) as err:
        assess(intake, as_of=date(1989, 1, 1))
    assert err.value.field == "date_of_birth"


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        (bp(120, 130), "blood_pressure"),
        (bp(400, 80), "blood_pressure.systolic"),
        ({"heart_rate": 300}, "heart_rate"),
        ({"weight_kg": 12}, "weight_kg"),
        ({"age": -1}, "age"),
        (
            {"prior_adhd_treatments": [{"drug": "atomoxetine", "response": "ok"}]},
            "prior_adhd_treatments.0.response",
        ),
        ({"prior_adhd_treatments": [{"response": "good"}]}, "prior_adhd_treatments.0.drug"),
    ],
)
def test_implausible_values_are_refused(changes: dict[str, Any], where: str) -> None:
    lines = errors_for(intake_dict(changes))
    assert lines[0].startswith(f"{where}:")


def test_the_json_schema_describes_the_intake_file() -> None:
    schema = intake_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "age",
        "date_of_birth",
        "adhd_diagnosis",
        "prior_adhd_treatments",
        "history",
        "blood_pressure",
        "heart_rate",
        "weight_kg",
        "medications",
        "stopped_medications",
        "planned_protocol",
        "scores",
    }
    history_enum = schema["$defs"]["HistoryCode"]["enum"]
    assert set(history_enum) == {c.value for c in HistoryCode}
    assert schema["$defs"]["TreatmentResponse"]["enum"] == [
        "good",
        "partial",
        "inadequate",
        "not_tolerated",
    ]


# --- label contraindications, clinic defaults and their relaxation ------------------------------

RELAXED_REASON = "Medical director 2026-12-01: psychiatrist co-manages, stable on clozapine."


def settings_with(**reasons: str) -> EligibilitySettings:
    values = EligibilitySettings.defaults().model_dump() | {"relaxed_exclusions": reasons}
    return EligibilitySettings.model_validate(values)


@pytest.mark.parametrize(
    ("history", "relaxations", "decision", "severity"),
    [
        (["recent_myocardial_infarction"], {}, INELIGIBLE, "exclusion"),
        (["severe_coronary_disease"], {}, INELIGIBLE, "exclusion"),
        (["coronary_artery_disease"], {}, REVIEW, "caution"),
        (["heart_failure"], {}, REVIEW, "caution"),
        (["recent_stroke"], {}, INELIGIBLE, "exclusion"),
        (["raised_intracranial_pressure"], {}, INELIGIBLE, "exclusion"),
        (["cerebral_trauma"], {}, INELIGIBLE, "exclusion"),
        (["psychosis"], {}, REVIEW, "caution"),
        (["current_psychosis"], {}, INELIGIBLE, "exclusion"),
        (["schizophrenia"], {}, INELIGIBLE, "exclusion"),
        (["schizophrenia"], {"schizophrenia": RELAXED_REASON}, REVIEW, "caution"),
        (["current_psychosis"], {"current_psychosis": RELAXED_REASON}, REVIEW, "caution"),
        (["pregnancy"], {}, INELIGIBLE, "exclusion"),
        (["pregnancy"], {"pregnancy": RELAXED_REASON}, REVIEW, "caution"),
        (["severe_hepatic_impairment"], {}, INELIGIBLE, "exclusion"),
        (["hepatic_impairment"], {}, REVIEW, "caution"),
        # A relaxation touches only its own code.
        (["current_psychosis"], {"schizophrenia": RELAXED_REASON}, INELIGIBLE, "exclusion"),
    ],
)
def test_history_decisions_with_the_clinic_settings_in_force(
    history: list[str], relaxations: dict[str, str], decision: str, severity: str
) -> None:
    settings = settings_with(**relaxations)
    result = assess(Intake.model_validate(intake_dict({"history": history})), settings=settings)
    assert result.decision.value == decision, result.codes
    reason = result.reason(history[0])
    assert reason.severity == severity
    if history[0] in relaxations:
        assert f"relaxed by clinic setting: {RELAXED_REASON}" in reason.text
        assert result.settings["relaxed_exclusions"] == relaxations
    else:
        assert "relaxed by clinic setting" not in reason.text


@pytest.mark.parametrize("code", LABEL_CONTRAINDICATIONS)
def test_a_label_contraindication_can_never_be_relaxed(code: str) -> None:
    with pytest.raises(ValidationError) as info:
        settings_with(**{code: RELAXED_REASON})
    message = str(info.value)
    assert "relaxed_exclusions" in message and f"relaxed_exclusions.{code}" in message
    assert "can never be relaxed" in message
    with pytest.raises(RelaxationError) as direct:
        check_relaxation(code, RELAXED_REASON)
    assert direct.value.field == f"relaxed_exclusions.{code}"


@pytest.mark.parametrize(
    ("code", "reason", "text"),
    [
        ("schizophrenia", "ok", "at least 20 characters"),
        ("schizophrenia", "   short   reason   ", "at least 20 characters"),
        ("psychosis", RELAXED_REASON, "already a caution"),
        ("glaucoma", RELAXED_REASON, "already a caution"),
        ("schizophrenya", RELAXED_REASON, "not a history code"),
    ],
)
def test_a_relaxation_needs_a_default_exclusion_and_a_reason(
    code: str, reason: str, text: str
) -> None:
    with pytest.raises(RelaxationError, match=text) as info:
        check_relaxation(code, reason)
    assert info.value.field == f"relaxed_exclusions.{code}"


def test_every_default_exclusion_can_be_relaxed_and_says_so() -> None:
    for code in DEFAULT_EXCLUSIONS:
        check_relaxation(code, RELAXED_REASON)
        decision = assess(
            Intake.model_validate(intake_dict({"history": [code]})),
            settings=settings_with(**{code: RELAXED_REASON}),
        )
        assert decision.decision is DecisionKind.NEEDS_REVIEW
        assert "Default exclusion relaxed by clinic setting" in decision.reason(code).text


def test_no_relaxation_by_default_and_the_settings_record_none() -> None:
    assert EligibilitySettings.defaults().relaxed_exclusions == {}
    assert run(VIGNETTES[0]).settings["relaxed_exclusions"] == {}


@pytest.mark.parametrize(
    ("treatments", "decision", "present", "absent"),
    [
        # Licensed for ADHD only at 6-17: recognised, reported, not counted.
        (
            (("guanfacine ER 4 mg", "inadequate"),),
            REVIEW,
            ("no_failed_standard_treatment", "not_standard_adult_treatment"),
            ("prior_treatment_failed", "unrecognised_adhd_treatment"),
        ),
        (
            (("Kapvay 0.2 mg", "not_tolerated"),),
            REVIEW,
            ("no_failed_standard_treatment", "not_standard_adult_treatment"),
            ("prior_treatment_failed", "unrecognised_adhd_treatment"),
        ),
        (
            (("Intuniv", "inadequate"), ("Vyvanse 50 mg", "inadequate")),
            ELIGIBLE,
            ("prior_treatment_failed", "not_standard_adult_treatment"),
            ("no_failed_standard_treatment",),
        ),
        (
            (("atomoxetine 80 mg", "not_tolerated"),),
            ELIGIBLE,
            ("prior_treatment_failed",),
            ("not_standard_adult_treatment",),
        ),
    ],
)
def test_only_standard_adult_treatments_count_as_failed(
    treatments: tuple[tuple[str, str], ...],
    decision: str,
    present: tuple[str, ...],
    absent: tuple[str, ...],
) -> None:
    result = run(Vignette("t", treated(*treatments), decision))
    assert result.decision.value == decision, result.codes
    for code in present:
        assert code in result.codes
    for code in absent:
        assert code not in result.codes
    if "not_standard_adult_treatment" in present:
        reason = result.reason("not_standard_adult_treatment")
        assert reason.severity == "info"
        assert "6-17" in reason.text and "not a standard adult treatment" in reason.text
        assert "alpha2-adhd-pediatric-labels" in reason.sources
    if "no_failed_standard_treatment" in present:
        assert result.reason("no_failed_standard_treatment").severity == "caution"


# --- the documented example ----------------------------------------------------------------------


def test_the_documented_example_validates_and_gives_the_documented_decision() -> None:
    data = json.loads((REPO / "docs/examples/intake-example.json").read_text(encoding="utf-8"))
    intake = Intake.model_validate(data)
    findings = [f.to_json_dict() for f in screen(intake.medications).findings]
    decision = assess(intake, as_of=AS_OF, interaction_findings=findings)
    assert decision.decision is DecisionKind.ELIGIBLE
    assert decision.codes == (
        "adhd_diagnosis_confirmed",
        "prior_treatment_failed",
        "asrs_positive_screen",
        "phq9_comorbid_depression",
        "bp_normal",
        "gad7_below_threshold",
        "interaction:ketamine-ssri",
        "off_label",
    )
    doc = (REPO / "docs/intake-file.md").read_text(encoding="utf-8")
    assert '"decision": "eligible"' in doc
    for code in decision.codes:
        assert f'"code": "{code}"' in doc
    for reason in decision.reasons:
        if reason.code in {"asrs_positive_screen", "bp_normal", "gad7_below_threshold"}:
            assert reason.text in doc
    # Every history code is documented.
    for code in HistoryCode:
        assert f"`{code.value}`" in doc


# --- interactions: screened with the real engine, or explicitly not screened ----------------------


def _screened(changes: dict[str, Any]) -> Decision:
    intake = Intake.model_validate(intake_dict(changes))
    stopped = [StoppedMedication(m.name, m.stop_date) for m in intake.stopped_medications]
    result = screen(intake.medications, stopped=stopped, as_of=AS_OF)
    return assess(
        intake,
        as_of=AS_OF,
        interaction_findings=[f.to_json_dict() for f in result.findings],
        interaction_unscreened=result.unscreened(),
    )


def test_bupropion_with_an_maoi_makes_the_intake_ineligible() -> None:
    decision = _screened({"medications": ["Wellbutrin SR 150 mg", "Nardil 15 mg"]})
    assert decision.decision is DecisionKind.INELIGIBLE
    reason = decision.reason("interaction:bupropion-with-maoi")
    assert reason.severity == "exclusion"
    assert "bupropion-us-pi-maoi" in reason.sources


@pytest.mark.parametrize(
    ("days_ago", "decision"), [(5, DecisionKind.INELIGIBLE), (20, DecisionKind.ELIGIBLE)]
)
def test_a_recently_stopped_maoi_is_screened_at_intake(days_ago: int, decision: Any) -> None:
    stop = AS_OF.toordinal() - days_ago
    stopped = [{"name": "phenelzine", "stop_date": date.fromordinal(stop).isoformat()}]
    result = _screened({"medications": ["Wellbutrin XL 300 mg"], "stopped_medications": stopped})
    assert result.decision is decision, result.codes
    if decision is DecisionKind.INELIGIBLE:
        text = result.reason("interaction:bupropion-with-maoi").text
        assert f"stopped on {date.fromordinal(stop).isoformat()}" in text
        assert f"runs until {date.fromordinal(stop + 14).isoformat()}" in text


@pytest.mark.parametrize(
    "medications",
    [["Adderall 20 mg", "Nardil"], ["sertraline"]],
)
def test_medicines_that_were_not_screened_are_never_eligible(medications: list[str]) -> None:
    intake = Intake.model_validate(intake_dict({"medications": medications}))
    for decision in (
        assess(intake, as_of=AS_OF),  # no screen result at all
        assess(intake, as_of=AS_OF, interaction_screen_error="the engine failed (boom)"),
    ):
        assert decision.decision is DecisionKind.NEEDS_REVIEW
        reason = decision.reason("interactions_not_screened")
        assert reason.severity == "caution"
        assert reason.sources
        assert medications[0] in reason.text
        assert 'not "no interactions"' in reason.text
    failed = assess(intake, as_of=AS_OF, interaction_screen_error="the engine failed (boom)")
    assert "the engine failed (boom)" in failed.reason("interactions_not_screened").text


def test_a_stopped_medicine_alone_still_needs_a_screen() -> None:
    stopped = [{"name": "Nardil", "stop_date": None}]
    intake = Intake.model_validate(intake_dict({"stopped_medications": stopped}))
    decision = assess(intake, as_of=AS_OF)
    assert "interactions_not_screened" in decision.codes
    assert "Nardil (stopped date not recorded)" in decision.reason("interactions_not_screened").text


def test_no_medicines_need_no_screen() -> None:
    decision = assess(Intake.model_validate(BASE), as_of=AS_OF)
    assert decision.decision is DecisionKind.ELIGIBLE
    assert "interactions_not_screened" not in decision.codes


def test_unrecognised_entries_are_not_screened_never_safe() -> None:
    decision = _screened({"medications": ["qwzxv 10 mg"]})
    assert decision.decision is DecisionKind.NEEDS_REVIEW
    assert "qwzxv 10 mg (not recognised)" in decision.reason("interactions_not_screened").text


def test_the_planned_protocol_must_be_plannable() -> None:
    intake = Intake.model_validate(intake_dict({"planned_protocol": "intranasal-esketamine"}))
    assert intake.planned_protocol == "intranasal-esketamine"
    with pytest.raises(ValidationError, match="oral-ketamine"):
        Intake.model_validate(intake_dict({"planned_protocol": "oral-ketamine"}))
