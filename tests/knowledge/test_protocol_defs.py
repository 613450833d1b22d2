"""protocols.yaml and monitoring.yaml: the reference's cited defaults, validated at load."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from ketacare.clinical.monitoring import MonitoringSettings
from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids
from ketacare.knowledge.protocol_defs import (
    DISCHARGE_CRITERIA,
    FlatDosing,
    MonitoringDef,
    ProtocolsDef,
    WeightDosing,
    get_protocol,
    load_monitoring,
    load_protocols,
    load_protocols_file,
)

PROTOCOLS = load_yaml("protocols.yaml")
MONITORING = load_yaml("monitoring.yaml")


def _protocols(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(PROTOCOLS)
    mutate(data)
    return data


def _monitoring(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(MONITORING)
    mutate(data)
    return data


def _by_id(data: dict[str, Any], protocol_id: str) -> dict[str, Any]:
    return next(p for p in data["protocols"] if p["id"] == protocol_id)


# --- contents: the defaults of clinical-reference.md section C --------------------------------


def test_the_five_protocols_load_and_only_clinic_routes_are_plannable() -> None:
    protocols = load_protocols()
    assert list(protocols) == [
        "iv-ketamine",
        "im-ketamine",
        "intranasal-esketamine",
        "oral-ketamine",
        "sublingual-ketamine",
    ]
    assert {k for k, p in protocols.items() if p.plannable} == {
        "iv-ketamine",
        "im-ketamine",
        "intranasal-esketamine",
    }


def test_iv_ketamine_defaults_match_the_reference() -> None:
    iv = get_protocol("iv-ketamine")
    dosing = iv.dosing
    assert isinstance(dosing, WeightDosing)
    assert (dosing.standard_mg_per_kg.value, dosing.standard_mg_per_kg.evidence) == (0.5, "V")
    assert "sanacora-2017" in dosing.standard_mg_per_kg.sources
    assert (dosing.min_mg_per_kg.value, dosing.max_mg_per_kg.value) == (0.5, 1.0)
    assert dosing.max_mg_per_kg.evidence == "M"
    assert dosing.escalation_step_mg_per_kg.value == 0.25
    assert dosing.absolute_cap_mg.value == 150
    assert iv.timing is not None
    assert iv.timing.standard_minutes.value == 40
    assert (iv.timing.min_minutes.value, iv.timing.max_minutes.value) == (40, 60)
    assert iv.course is not None
    assert iv.course.induction_sessions.value == 6
    assert iv.course.min_gap_hours.value == 48
    assert iv.course.span_days_max.value == 21
    assert iv.monitoring is not None
    assert iv.monitoring.observation_minutes.value == 60
    assert iv.monitoring.observation_minutes.evidence == "M"
    assert iv.monitoring.rems_required is False


def test_esketamine_is_flat_dosed_per_the_label() -> None:
    spray = get_protocol("intranasal-esketamine")
    dosing = spray.dosing
    assert isinstance(dosing, FlatDosing)
    assert dosing.device_mg.value == 28
    assert dosing.doses_mg.value == (56, 84)
    assert dosing.first_dose_mg.value == 56
    assert dosing.rest_between_devices_minutes.value == 5
    assert dosing.older_adult_doses_mg.value == (28, 56, 84)
    assert spray.monitoring is not None
    assert spray.monitoring.observation_minutes.value == 120
    assert spray.monitoring.observation_minutes.evidence == "V"
    assert spray.monitoring.rems_required is True
    assert spray.course is not None
    assert spray.course.induction_sessions.value == 8
    assert spray.course.max_sessions_per_7_days.value == 2
    assert [p.weeks for p in spray.course.phases] == ["1-4", "5-8", "9 onward"]
    assert all("spravato-us-pi-dosage" in p.sources for p in spray.course.phases)


def test_im_ketamine_marks_what_is_unverified() -> None:
    im = get_protocol("im-ketamine")
    dosing = im.dosing
    assert isinstance(dosing, WeightDosing)
    assert (dosing.min_mg_per_kg.value, dosing.max_mg_per_kg.value) == (0.25, 0.5)
    assert "chilukuri-2014" in dosing.min_mg_per_kg.sources
    assert dosing.max_mg_per_kg.evidence == "M"
    assert im.course is not None
    assert im.course.induction_sessions.evidence == "M"


@pytest.mark.parametrize("protocol_id", ["oral-ketamine", "sublingual-ketamine"])
def test_at_home_routes_are_history_only_with_the_reason(protocol_id: str) -> None:
    protocol = get_protocol(protocol_id)
    assert protocol.plannable is False
    assert protocol.not_plannable_reason is not None
    assert "at-home" in protocol.not_plannable_reason
    assert "sanacora-2017" in protocol.not_plannable_sources
    assert protocol.dosing is None and protocol.course is None


def test_monitoring_defaults_match_the_reference() -> None:
    values = {name: entry.value for name, entry in load_monitoring().settings.items()}
    assert values["bp_caution_systolic"] == 140 and values["bp_caution_diastolic"] == 90
    assert values["bp_hold_systolic"] == 160 and values["bp_hold_diastolic"] == 100
    assert values["bp_refuse_systolic"] == 180 and values["bp_refuse_diastolic"] == 110
    assert values["alert_systolic_at_least"] == 180
    assert values["alert_diastolic_at_least"] == 110
    assert values["alert_systolic_rise_at_least"] == 40
    assert values["alert_diastolic_rise_at_least"] == 25
    assert values["alert_heart_rate_above"] == 110
    assert values["alert_heart_rate_below"] == 50
    assert values["alert_spo2_warning_below"] == 92
    assert values["alert_spo2_critical_below"] == 88
    assert values["alert_respiratory_rate_below"] == 10
    assert values["weight_freshness_days"] == 30
    assert (values["cbt_window_start_hours"], values["cbt_window_end_hours"]) == (24, 72)
    assert values["discharge_spo2_above"] == 92
    assert values["discharge_moaas"] == 5
    # Hypotension and the critical heart-rate tiers (clinical reference, section C).
    assert values["alert_systolic_warning_below"] == 90
    assert values["alert_systolic_critical_below"] == 80
    assert values["alert_mean_arterial_pressure_below"] == 65
    assert values["alert_heart_rate_critical_above"] == 130
    assert values["alert_heart_rate_critical_below"] == 40
    assert values["discharge_systolic_at_least"] == 90


@pytest.mark.parametrize("protocol_id", ["iv-ketamine", "im-ketamine", "intranasal-esketamine"])
def test_every_clinic_protocol_names_its_blood_pressure_reassessment(protocol_id: str) -> None:
    monitoring = get_protocol(protocol_id).monitoring
    assert monitoring is not None
    assert monitoring.bp_reassessment_minutes.value == 40
    assert monitoring.bp_reassessment_window_minutes.value == 10
    if protocol_id == "intranasal-esketamine":
        assert "spravato-us-pi-blood-pressure" in monitoring.bp_reassessment_minutes.sources


def test_gate_bands_and_alert_rules() -> None:
    monitoring = load_monitoring()
    gate = {b.band: b for b in monitoring.bp_gate}
    assert gate["refuse"].override_allowed is False
    assert gate["hold"].override_allowed is True
    assert gate["caution"].acknowledgement_required is True
    assert {a.code for a in monitoring.alerts} == {
        "systolic_high",
        "diastolic_high",
        "systolic_rise",
        "diastolic_rise",
        "heart_rate_high",
        "heart_rate_low",
        "spo2_low",
        "spo2_critical",
        "respiratory_rate_low",
        "systolic_low",
        "systolic_low_critical",
        "mean_arterial_pressure_low",
        "heart_rate_high_critical",
        "heart_rate_low_critical",
    }


def test_plausibility_ranges() -> None:
    ranges = {k: (v.min, v.max) for k, v in load_monitoring().plausibility.ranges.items()}
    assert ranges == {
        "systolic": (50, 300),
        "diastolic": (20, 200),
        "heart_rate": (20, 250),
        "spo2": (50, 100),
        "respiratory_rate": (4, 60),
        "weight_kg": (30, 300),
        "height_cm": (120, 230),
    }


def test_discharge_criteria_cover_the_composite_check() -> None:
    criteria = load_monitoring().discharge
    assert tuple(c.id for c in criteria) == DISCHARGE_CRITERIA
    assert {c.id for c in criteria if c.applies_to == "rems"} == {"rems_form"}
    assert all(c.required for c in criteria)


def test_vital_sign_loinc_codes_and_units() -> None:
    codes = {c.key: (c.loinc, c.ucum) for c in load_monitoring().vital_sign_codes.codes}
    assert codes["systolic"] == ("8480-6", "mm[Hg]")
    assert codes["diastolic"] == ("8462-4", "mm[Hg]")
    assert codes["blood_pressure_panel"] == ("85354-9", None)
    assert codes["heart_rate"] == ("8867-4", "/min")
    assert codes["respiratory_rate"] == ("9279-1", "/min")
    assert codes["spo2"] == ("59408-5", "%")
    assert codes["oxygen_saturation_arterial"] == ("2708-6", "%")
    assert codes["weight_kg"] == ("29463-7", "kg")
    assert codes["height_cm"] == ("8302-2", "cm")
    assert codes["bmi"] == ("39156-5", "kg/m2")
    assert codes["temperature"] == ("8310-5", "Cel")
    assert len(codes) == 13


def test_every_source_exists_in_references() -> None:
    known = reference_ids()
    for protocol in load_protocols().values():
        assert protocol.all_source_ids() <= known, protocol.id
    assert load_monitoring().all_source_ids() <= known


def test_monitoring_settings_cover_exactly_the_knowledge_file() -> None:
    assert set(MonitoringSettings.model_fields) == set(load_monitoring().settings)


def test_loaders_are_cached() -> None:
    assert load_protocols_file() is load_protocols_file()
    assert load_monitoring() is load_monitoring()


# --- validation: a wrong file does not load ----------------------------------------------------


@pytest.mark.parametrize(
    ("protocol_id", "path", "value", "message"),
    [
        ("iv-ketamine", ("dosing", "min_mg_per_kg", "value"), 1.2, "mg/kg must satisfy"),
        ("iv-ketamine", ("dosing", "standard_mg_per_kg", "value"), 1.5, "mg/kg must satisfy"),
        ("iv-ketamine", ("dosing", "absolute_cap_mg", "value"), 0, "must be positive"),
        ("iv-ketamine", ("timing", "min_minutes", "value"), 70, "minutes must satisfy"),
        ("iv-ketamine", ("course", "induction_sessions", "value"), 0, "at least 1"),
        ("iv-ketamine", ("dosing", "standard_mg_per_kg", "evidence"), "X", "evidence"),
        ("iv-ketamine", ("dosing", "standard_mg_per_kg", "sources"), [], "sources"),
        ("intranasal-esketamine", ("dosing", "doses_mg", "value"), [56, 80], "multiples of 28"),
        ("intranasal-esketamine", ("dosing", "first_dose_mg", "value"), 28, "one of doses_mg"),
        ("oral-ketamine", ("not_plannable_reason",), None, "needs a reason"),
        ("iv-ketamine", ("course",), None, "needs dosing, timing, course"),
        ("iv-ketamine", ("surprise",), 1, "Extra inputs"),
        (
            "iv-ketamine",
            ("monitoring", "bp_reassessment_window_minutes", "value"),
            40,
            "cannot reach back to the dose start",
        ),
        (
            "intranasal-esketamine",
            ("monitoring", "bp_reassessment_window_minutes", "value"),
            0,
            "must be positive",
        ),
    ],
)
def test_inconsistent_protocols_are_refused(
    protocol_id: str, path: tuple[str, ...], value: Any, message: str
) -> None:
    def mutate(data: dict[str, Any]) -> None:
        target = _by_id(data, protocol_id)
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    with pytest.raises(ValidationError, match=message):
        ProtocolsDef.model_validate(_protocols(mutate))


def test_duplicate_protocol_ids_are_refused() -> None:
    data = _protocols(lambda d: d["protocols"].append(copy.deepcopy(d["protocols"][0])))
    with pytest.raises(ValidationError, match="protocol ids repeated"):
        ProtocolsDef.model_validate(data)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["settings"]["bp_hold_systolic"].update(value=130), "must rise"),
        (lambda d: d["settings"]["bp_refuse_diastolic"].update(value=95), "must rise"),
        (lambda d: d["settings"]["alert_spo2_critical_below"].update(value=95), "SpO2 critical"),
        (lambda d: d["settings"]["alert_heart_rate_below"].update(value=120), "heart-rate"),
        (
            lambda d: d["settings"]["alert_systolic_critical_below"].update(value=90),
            "critical low systolic threshold must be below the warning one",
        ),
        (
            lambda d: d["settings"]["alert_systolic_warning_below"].update(value=180),
            "low systolic alert threshold must be below the high one",
        ),
        (
            lambda d: d["settings"]["alert_heart_rate_critical_above"].update(value=110),
            "critical high heart-rate threshold must be above the warning one",
        ),
        (
            lambda d: d["settings"]["alert_heart_rate_critical_below"].update(value=55),
            "critical low heart-rate threshold must be below the warning one",
        ),
        (
            lambda d: next(
                a for a in d["alerts"] if a["code"] == "mean_arterial_pressure_low"
            ).update(kind="rise", comparison="at_least"),
            "no rise rule",
        ),
        (lambda d: d["settings"]["cbt_window_start_hours"].update(value=80), "CBT window"),
        (lambda d: d["alerts"][0].update(setting="nope"), "unknown setting"),
        (lambda d: d["alerts"][0].update(text="{nope}"), "unknown placeholders"),
        (lambda d: d["alerts"].append(copy.deepcopy(d["alerts"][0])), "unique"),
        (lambda d: d["bp_gate"].reverse(), "bands must be"),
        (lambda d: d["discharge"].pop(), "discharge criteria"),
        (lambda d: d["plausibility"]["ranges"]["spo2"].update(min=100), "range min"),
        (lambda d: d["plausibility"]["ranges"].pop("height_cm"), "plausibility"),
        (lambda d: d["vital_sign_codes"]["codes"][2].update(loinc="8480"), "pattern"),
    ],
)
def test_inconsistent_monitoring_is_refused(mutate: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MonitoringDef.model_validate(_monitoring(mutate))


def test_an_unknown_source_stops_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from ketacare.knowledge import protocol_defs

    data = _protocols(lambda d: d["protocols"][0].update(sources=["no-such-reference"]))
    monkeypatch.setattr(protocol_defs, "load_yaml", lambda name: data)
    protocol_defs.load_protocols_file.cache_clear()
    try:
        with pytest.raises(ValueError, match="no-such-reference"):
            protocol_defs.load_protocols_file()
    finally:
        monkeypatch.undo()
        protocol_defs.load_protocols_file.cache_clear()
    assert protocol_defs.load_protocols_file().protocols


def test_new_references_are_appended_and_cited() -> None:
    known = reference_ids()
    for ref in (
        "spravato-us-pi-dosage",
        "chilukuri-2014",
        "ketalar-us-pi-dosage-administration",
        "aldrete-1995",
        "fhir-r4-vital-signs",
        "seed-002-cbt-placement",
    ):
        assert ref in known
