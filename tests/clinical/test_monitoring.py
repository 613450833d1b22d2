"""Pre-session gate, in-session alerts, plausibility and discharge: every edge in a table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketacare.clinical.monitoring import (
    DischargeInputs,
    MonitoringSettings,
    VitalSignError,
    VitalSigns,
    alerts,
    alerts_for_samples,
    bp_gate,
    discharge_check,
    validate_vitals,
    vital_sign_codes,
)
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.instrument_defs import reference_ids
from ketacare.knowledge.protocol_defs import get_protocol

# --- pre-session blood-pressure gate ---------------------------------------------------------

GATE = [
    (110, 70, "proceed"),
    (139, 89, "proceed"),
    (140, 89, "caution"),
    (139, 90, "caution"),
    (140, 90, "caution"),
    (159, 99, "caution"),
    (160, 99, "hold"),
    (159, 100, "hold"),
    (160, 100, "hold"),
    (179, 109, "hold"),
    (180, 109, "refuse"),
    (179, 110, "refuse"),
    (180, 110, "refuse"),
    (210, 120, "refuse"),
    (185, 80, "refuse"),  # the worse axis decides
    (120, 105, "hold"),
]


@pytest.mark.parametrize(("systolic", "diastolic", "band"), GATE)
def test_bp_gate_bands(systolic: int, diastolic: int, band: str) -> None:
    gate = bp_gate(systolic, diastolic, MonitoringSettings.defaults())
    assert gate.band == band
    assert gate.override_allowed is (band == "hold")
    assert gate.acknowledgement_required is (band in ("caution", "hold"))
    assert gate.may_proceed is (band == "proceed")
    (reason,) = gate.reasons
    assert reason.code == f"bp_{band}"
    assert f"{systolic}/{diastolic} mmHg" in reason.text
    assert reason.sources and set(reason.sources) <= reference_ids()
    assert gate.settings["bp_hold_systolic"] == 160
    assert gate.knowledge_version == knowledge_version()


def test_the_refuse_band_says_no_override() -> None:
    assert "no override" in bp_gate(180, 110).reasons[0].text
    assert "prescriber override" in bp_gate(160, 100).reasons[0].text


def test_clinic_settings_move_the_bands_and_are_returned() -> None:
    strict = MonitoringSettings.defaults().model_copy(
        update={"bp_caution_systolic": 130, "bp_caution_diastolic": 85}
    )
    gate = bp_gate(135, 80, strict)
    assert gate.band == "caution" and gate.settings["bp_caution_systolic"] == 130
    assert "130/85" in gate.reasons[0].text


def test_settings_must_rise() -> None:
    with pytest.raises(ValueError, match="must rise"):
        MonitoringSettings.model_validate(
            {**MonitoringSettings.defaults().model_dump(), "bp_hold_systolic": 190}
        )


@pytest.mark.parametrize(
    ("systolic", "diastolic", "field"),
    [
        (120, 130, "diastolic"),
        (120, 120, "diastolic"),
        (301, 80, "systolic"),
        (None, 80, "systolic"),
    ],
)
def test_bp_gate_refuses_impossible_readings(systolic: Any, diastolic: Any, field: str) -> None:
    with pytest.raises(VitalSignError) as info:
        bp_gate(systolic, diastolic)
    assert info.value.field == field


# --- in-session alerts ---------------------------------------------------------------------------

BASELINE = {"systolic": 120, "diastolic": 70, "heart_rate": 70}
ALERTS = [
    # (sample, expected codes with severity)
    ({"systolic": 179, "diastolic": 80}, {"systolic_rise": "warning"}),  # +59, below 180
    ({"systolic": 180, "diastolic": 80}, {"systolic_high": "critical", "systolic_rise": "warning"}),
    ({"systolic": 150, "diastolic": 109}, {"diastolic_rise": "warning"}),
    (
        {"systolic": 150, "diastolic": 110},
        {"diastolic_high": "critical", "diastolic_rise": "warning"},
    ),
    ({"systolic": 159, "diastolic": 80}, {}),  # +39
    ({"systolic": 160, "diastolic": 80}, {"systolic_rise": "warning"}),  # +40
    ({"systolic": 130, "diastolic": 94}, {}),  # +24
    ({"systolic": 130, "diastolic": 95}, {"diastolic_rise": "warning"}),  # +25
    ({"heart_rate": 110}, {}),
    ({"heart_rate": 111}, {"heart_rate_high": "warning"}),
    ({"heart_rate": 50}, {}),
    ({"heart_rate": 49}, {"heart_rate_low": "warning"}),
    ({"spo2": 92}, {}),
    ({"spo2": 91}, {"spo2_low": "warning"}),
    ({"spo2": 88}, {"spo2_low": "warning"}),
    ({"spo2": 87}, {"spo2_critical": "critical"}),  # the warning is not repeated
    ({"respiratory_rate": 10}, {}),
    ({"respiratory_rate": 9}, {"respiratory_rate_low": "critical"}),
    ({}, {}),
]


@pytest.mark.parametrize(("sample", "expected"), ALERTS)
def test_alert_rules_at_their_edges(sample: dict[str, float], expected: dict[str, str]) -> None:
    raised = alerts(sample, BASELINE, MonitoringSettings.defaults())
    assert {a.code: a.severity for a in raised} == expected
    for alert in raised:
        assert alert.text and alert.sources and set(alert.sources) <= reference_ids()
        assert alert.value == sample[alert.field]
        assert alert.knowledge_version == knowledge_version()


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ({"systolic": 179, "diastolic": 80}, set()),
        ({"systolic": 180, "diastolic": 80}, {"systolic_high"}),
        ({"systolic": 150, "diastolic": 109}, set()),
        ({"systolic": 150, "diastolic": 110}, {"diastolic_high"}),
    ],
)
def test_absolute_blood_pressure_edges_without_baseline(
    sample: dict[str, float], expected: set[str]
) -> None:
    assert {a.code for a in alerts(sample)} == expected


def test_alert_carries_value_threshold_baseline_and_setting() -> None:
    (alert,) = alerts({"systolic": 165, "diastolic": 80}, BASELINE)
    assert (alert.code, alert.field, alert.value, alert.threshold) == (
        "systolic_rise",
        "systolic",
        165,
        40,
    )
    assert alert.baseline == 120 and alert.setting == "alert_systolic_rise_at_least"
    assert "rose 45 mmHg over baseline 120" in alert.text
    assert alert.to_json_dict()["threshold"] == 40


def test_critical_alerts_come_first() -> None:
    raised = alerts({"heart_rate": 120, "respiratory_rate": 8}, BASELINE)
    assert [a.severity for a in raised] == ["critical", "warning"]


def test_without_a_baseline_rises_are_not_evaluated() -> None:
    assert alerts({"systolic": 175, "diastolic": 105}) == []


def test_alert_thresholds_come_from_the_clinic_settings() -> None:
    custom = MonitoringSettings.defaults().model_copy(update={"alert_heart_rate_above": 100})
    (alert,) = alerts({"heart_rate": 105}, None, custom)
    assert alert.threshold == 100


def test_alerts_refuse_impossible_readings() -> None:
    with pytest.raises(VitalSignError) as info:
        alerts({"systolic": 80, "diastolic": 90})
    assert info.value.field == "diastolic"
    with pytest.raises(VitalSignError) as info:
        alerts({"systolic": 150}, {"systolic": 120, "diastolic": 130})
    assert info.value.field == "baseline.diastolic"
    with pytest.raises(VitalSignError) as info:
        alerts({"pulse": 80})
    assert info.value.field == "pulse"


# --- plausibility ------------------------------------------------------------------------------

PLAUSIBILITY = [
    ("systolic", 49, False),
    ("systolic", 50, True),
    ("systolic", 300, True),
    ("systolic", 301, False),
    ("diastolic", 19, False),
    ("diastolic", 20, True),
    ("heart_rate", 19, False),
    ("heart_rate", 20, True),
    ("heart_rate", 250, True),
    ("heart_rate", 251, False),
    ("spo2", 49, False),
    ("spo2", 50, True),
    ("spo2", 100, True),
    ("spo2", 100.1, False),
    ("respiratory_rate", 3, False),
    ("respiratory_rate", 4, True),
    ("respiratory_rate", 60, True),
    ("respiratory_rate", 61, False),
    ("weight_kg", 29.9, False),
    ("weight_kg", 30, True),
    ("weight_kg", 300, True),
    ("weight_kg", 300.1, False),
    ("height_cm", 119, False),
    ("height_cm", 120, True),
    ("height_cm", 230, True),
    ("height_cm", 231, False),
    ("spo2", float("nan"), False),
    ("heart_rate", "72", False),
    ("heart_rate", True, False),
]


@pytest.mark.parametrize(("field", "value", "ok"), PLAUSIBILITY)
def test_plausibility_edges(field: str, value: Any, ok: bool) -> None:
    problems = validate_vitals({field: value})
    assert (problems == []) is ok
    if not ok:
        assert problems[0].field == field and problems[0].text


@pytest.mark.parametrize(
    ("systolic", "diastolic", "ok"),
    [(90, 89, True), (90, 90, False), (90, 91, False), (300, 200, True), (120, 200, False)],
)
def test_diastolic_must_be_below_systolic(systolic: int, diastolic: int, ok: bool) -> None:
    problems = validate_vitals(VitalSigns(systolic=systolic, diastolic=diastolic))
    assert (problems == []) is ok
    if not ok:
        assert problems[0].field == "diastolic"
        assert problems[0].code == "diastolic_not_below_systolic"


def test_several_problems_are_all_reported() -> None:
    problems = validate_vitals({"systolic": 20, "spo2": 120, "respiratory_rate": 0})
    assert {p.field for p in problems} == {"systolic", "spo2", "respiratory_rate"}


def test_vital_sign_codes() -> None:
    codes = vital_sign_codes()
    assert codes["spo2"]["loinc"] == "59408-5" and codes["spo2"]["also"] == ["2708-6"]
    assert codes["systolic"]["ucum"] == "mm[Hg]"


# --- discharge -----------------------------------------------------------------------------------

READY = DischargeInputs(
    minutes_since_end=60,
    systolic=132,
    diastolic=84,
    heart_rate=76,
    baseline_systolic=128,
    baseline_diastolic=80,
    baseline_heart_rate=72,
    spo2=97,
    on_room_air=True,
    moaas=5,
    oriented=True,
    ambulating=True,
    cadss_total=1,
    escort_confirmed=True,
    driving_counselling_documented=True,
)


def test_iv_patient_ready_for_discharge() -> None:
    result = discharge_check(READY, "iv-ketamine")
    assert result.allowed
    assert {c.id for c in result.criteria} == {
        "observation_time",
        "blood_pressure",
        "heart_rate",
        "spo2",
        "sedation",
        "oriented_ambulating",
        "dissociation",
        "escort",
        "driving_counselling",
    }
    assert all(c.status == "met" and c.reason and c.sources for c in result.criteria)
    assert result.observation_minutes == 60
    assert result.settings["discharge_spo2_above"] == 92
    assert result.knowledge_version == knowledge_version()
    assert result.to_json_dict()["allowed"] is True


def test_esketamine_needs_two_hours_and_the_rems_form() -> None:
    result = discharge_check(replace(READY, minutes_since_end=119), "intranasal-esketamine")
    assert not result.allowed
    assert result.criterion("observation_time").status == "not_met"
    assert result.criterion("rems_form").status == "unknown"
    done = replace(READY, minutes_since_end=120, rems_form_queued=True)
    assert discharge_check(done, "intranasal-esketamine").allowed


DISCHARGE = [
    # (changes, criterion, status)
    ({"minutes_since_end": 59}, "observation_time", "not_met"),
    ({"minutes_since_end": 60}, "observation_time", "met"),
    ({"minutes_since_end": None}, "observation_time", "unknown"),
    ({"systolic": 139, "diastolic": 89, "baseline_systolic": None}, "blood_pressure", "met"),
    ({"systolic": 150, "diastolic": 84, "baseline_systolic": None}, "blood_pressure", "unknown"),
    ({"systolic": 153, "diastolic": 96, "baseline_systolic": 128}, "blood_pressure", "met"),
    ({"systolic": 154, "diastolic": 96, "baseline_systolic": 128}, "blood_pressure", "not_met"),
    ({"systolic": 150, "diastolic": 97, "baseline_diastolic": 80}, "blood_pressure", "not_met"),
    ({"systolic": None}, "blood_pressure", "unknown"),
    ({"heart_rate": 86, "baseline_heart_rate": 72}, "heart_rate", "met"),  # +14 = 19.4%
    ({"heart_rate": 87, "baseline_heart_rate": 72}, "heart_rate", "not_met"),
    ({"heart_rate": 56, "baseline_heart_rate": 70}, "heart_rate", "met"),  # -20%
    ({"heart_rate": 55, "baseline_heart_rate": 70}, "heart_rate", "not_met"),
    ({"baseline_heart_rate": None}, "heart_rate", "unknown"),
    ({"heart_rate": None}, "heart_rate", "unknown"),
    ({"spo2": 93}, "spo2", "met"),
    ({"spo2": 92}, "spo2", "not_met"),  # must be above 92
    ({"on_room_air": False}, "spo2", "not_met"),
    ({"on_room_air": None}, "spo2", "unknown"),
    ({"spo2": None}, "spo2", "unknown"),
    ({"moaas": 5}, "sedation", "met"),
    ({"moaas": 4}, "sedation", "not_met"),
    ({"moaas": 0}, "sedation", "not_met"),
    ({"moaas": None}, "sedation", "unknown"),
    ({"oriented": False}, "oriented_ambulating", "not_met"),
    ({"ambulating": False}, "oriented_ambulating", "not_met"),
    ({"ambulating": None}, "oriented_ambulating", "unknown"),
    ({"oriented": False, "ambulating": None}, "oriented_ambulating", "not_met"),
    ({"cadss_total": 4}, "dissociation", "met"),
    ({"cadss_total": 5}, "dissociation", "not_met"),
    ({"cadss_total": 6, "cadss_baseline": 6}, "dissociation", "met"),
    ({"cadss_total": 7, "cadss_baseline": 6}, "dissociation", "not_met"),
    ({"cadss_total": None}, "dissociation", "unknown"),
    ({"cadss_total": 20, "dissociation_resolved": True}, "dissociation", "met"),
    ({"dissociation_resolved": False}, "dissociation", "not_met"),
    ({"escort_confirmed": False}, "escort", "not_met"),
    ({"escort_confirmed": None}, "escort", "unknown"),
    ({"driving_counselling_documented": False}, "driving_counselling", "not_met"),
    ({"driving_counselling_documented": None}, "driving_counselling", "unknown"),
]


@pytest.mark.parametrize(("changes", "criterion", "status"), DISCHARGE)
def test_discharge_criteria(changes: dict[str, Any], criterion: str, status: str) -> None:
    result = discharge_check(replace(READY, **changes), "iv-ketamine")
    assert result.criterion(criterion).status == status, result.criterion(criterion)
    # Unknown never counts as met: discharge needs every required criterion met.
    assert result.allowed is (status == "met")
    if status != "met":
        assert criterion in {c.id for c in (*result.not_met, *result.unknown)}


def test_nothing_recorded_means_nothing_is_met() -> None:
    result = discharge_check(DischargeInputs(), "iv-ketamine")
    assert not result.allowed
    assert {c.status for c in result.criteria} == {"unknown"}


def test_discharge_accepts_a_protocol_definition() -> None:
    assert discharge_check(READY, get_protocol("im-ketamine")).allowed


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"moaas": 6}, "moaas"),
        ({"cadss_total": 93}, "cadss_total"),
        ({"minutes_since_end": -1}, "minutes_since_end"),
        ({"systolic": 80, "diastolic": 90}, "diastolic"),
        ({"baseline_systolic": 400}, "baseline_systolic"),
        ({"spo2": 101}, "spo2"),
    ],
)
def test_discharge_refuses_impossible_inputs(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(VitalSignError) as info:
        discharge_check(replace(READY, **changes), "iv-ketamine")
    assert info.value.field == field


@pytest.mark.parametrize("protocol", ["oral-ketamine", "no-such-protocol"])
def test_discharge_needs_a_clinic_protocol(protocol: str) -> None:
    with pytest.raises(VitalSignError) as info:
        discharge_check(READY, protocol)
    assert info.value.field == "protocol"


def test_screening_and_pre_dose_blood_pressure_bands_agree() -> None:
    """The same bands stand in eligibility.yaml and monitoring.yaml: they must not drift."""
    from ketacare.clinical.eligibility import EligibilitySettings

    screening = EligibilitySettings.defaults()
    pre_dose = MonitoringSettings.defaults()
    for band in ("caution", "hold", "refuse"):
        for axis in ("systolic", "diastolic"):
            name = f"bp_{band}_{axis}"
            assert getattr(screening, name) == getattr(pre_dose, name), name


_reading = st.fixed_dictionaries(
    {},
    optional={
        "systolic": st.integers(120, 260),
        "diastolic": st.integers(40, 119),
        "heart_rate": st.integers(30, 200),
        "spo2": st.integers(70, 100),
        "respiratory_rate": st.integers(5, 40),
    },
)


@given(st.lists(_reading, max_size=8))
def test_a_batch_raises_exactly_the_alerts_of_its_samples_one_by_one(
    samples: list[dict[str, int]],
) -> None:
    baseline = {"systolic": 122, "diastolic": 78, "heart_rate": 70}
    assert alerts_for_samples(samples, baseline) == [alerts(s, baseline) for s in samples]


@pytest.mark.parametrize(("value", "shown"), [(10**400, "1e308 or more"), (-(10**400), "-1e308")])
def test_an_integer_beyond_any_float_is_out_of_range_not_an_error(value: int, shown: str) -> None:
    # It used to raise OverflowError while checking it was finite.
    (problem,) = validate_vitals({"systolic": value})
    assert (problem.field, problem.code) == ("systolic", "out_of_range")
    assert shown in problem.text
