"""Clinic settings: they round-trip, decisions see the effective values, invalid overrides name
the field, a stale version is a conflict, and only an administrator changes them."""

from __future__ import annotations

import re
from datetime import date, time

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app.clinic_settings import (
    CalendarSettings,
    ClinicSettingsIn,
    effective_settings,
    get_clinic_settings,
    update_clinic_settings,
)
from ketacare.app.errors import Conflict, Forbidden, InvalidInput
from ketacare.app.permissions import Role
from ketacare.store.models import AuditEvent

CHANGE = {
    "calendar": {
        "days": [3, 0, 1],
        "opens": "07:30",
        "closes": "15:00",
        "closed_dates": ["2026-12-25", "2027-01-01"],
    },
    "monitoring": {"bp_hold_systolic": 170, "cbt_session_minutes": 45},
    "require_second_check": True,
    "change_note": "Medical director's memo of 2026-11-30 (clinic protocol v3).",
}


def test_settings_round_trip_and_feed_decisions(db: Session, world_a: ClinicWorld) -> None:
    admin = world_a.actor(Role.ADMIN)
    fresh = get_clinic_settings(db, world_a.actor(Role.NURSE))
    assert fresh.version == 1 and fresh.monitoring == {} and fresh.calendar.days == [0, 1, 2, 3, 4]
    saved = update_clinic_settings(db, admin, ClinicSettingsIn.model_validate(CHANGE), 1)
    assert saved.version == 2
    again = get_clinic_settings(db, world_a.actor(Role.THERAPIST))
    assert again.calendar.days == [0, 1, 3]
    assert (again.calendar.opens, again.calendar.closes) == (time(7, 30), time(15))
    assert again.calendar.closed_dates == [date(2026, 12, 25), date(2027, 1, 1)]
    assert again.monitoring == {"bp_hold_systolic": 170, "cbt_session_minutes": 45}
    assert again.require_second_check is True
    assert again.effective_monitoring["bp_hold_systolic"] == 170
    assert again.effective_monitoring["bp_caution_systolic"] == 140  # the cited default
    effective = effective_settings(db, world_a.clinic.id)
    calendar = effective.clinic_calendar()
    assert calendar.days == frozenset({0, 1, 3}) and calendar.tz == "America/Toronto"
    assert effective.monitoring.cbt_session_minutes == 45
    audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "settings.update")).one()
    assert audit.detail is not None
    assert audit.detail["note"] == CHANGE["change_note"]
    assert (
        audit.detail["before"] is None
        and audit.detail["after"]["monitoring"] == CHANGE["monitoring"]
    )


@pytest.mark.parametrize(
    ("monitoring", "field", "text"),
    [
        # Below the caution threshold of 140: the bands must rise.
        ({"bp_hold_systolic": 130}, "monitoring", "systolic thresholds must rise"),
        ({"bp_hold_systolic": 900}, "monitoring.bp_hold_systolic", "less than or equal to 250"),
        ({"bp_hold_sistolic": 170}, "monitoring.bp_hold_sistolic", "Extra inputs"),
        ({"cbt_window_start_hours": 80}, "monitoring", "CBT window must start before it ends"),
        (
            {"alert_systolic_critical_below": 95},
            "monitoring",
            "the critical low systolic threshold must be below the warning one "
            "(alert_systolic_critical_below 95, alert_systolic_warning_below 90)",
        ),
        (
            {"alert_heart_rate_critical_above": 100},
            "monitoring",
            "the critical high heart-rate threshold must be above the warning one",
        ),
        (
            {"alert_mean_arterial_pressure_below": 20},
            "monitoring.alert_mean_arterial_pressure_below",
            "greater than or equal to 30",
        ),
    ],
)
def test_an_invalid_override_names_the_field(
    db: Session, world_a: ClinicWorld, monitoring: dict[str, int], field: str, text: str
) -> None:
    data = ClinicSettingsIn.model_validate({"monitoring": monitoring})
    with pytest.raises(InvalidInput) as info:
        update_clinic_settings(db, world_a.actor(Role.ADMIN), data, 1)
    assert info.value.field == field
    assert text in info.value.message
    assert get_clinic_settings(db, world_a.actor(Role.ADMIN)).version == 1


def test_a_stale_version_is_a_conflict(db: Session, world_a: ClinicWorld) -> None:
    admin = world_a.actor(Role.ADMIN)
    update_clinic_settings(db, admin, ClinicSettingsIn(), 1)
    with pytest.raises(Conflict):
        update_clinic_settings(db, admin, ClinicSettingsIn.model_validate(CHANGE), 1)
    assert get_clinic_settings(db, admin).monitoring == {}


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.RESEARCHER])
def test_only_an_administrator_changes_settings(
    db: Session, world_a: ClinicWorld, role: Role
) -> None:
    with pytest.raises(Forbidden):
        update_clinic_settings(db, world_a.actor(role), ClinicSettingsIn.model_validate(CHANGE), 1)


def test_each_clinic_has_its_own_settings(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    update_clinic_settings(
        db, world_a.actor(Role.ADMIN), ClinicSettingsIn.model_validate(CHANGE), 1
    )
    other = get_clinic_settings(db, world_b.actor(Role.NURSE))
    assert other.version == 1 and other.monitoring == {}
    assert effective_settings(db, world_b.clinic.id).require_second_check is False


@pytest.mark.parametrize("field", ["opens", "closes"])
def test_opening_hours_with_a_time_zone_are_refused_naming_the_field(field: str) -> None:
    # The clinic's time zone applies; an offset used to reach the opening/closing comparison
    # (naive against aware) and fail there.
    calendar = {"opens": "08:00", "closes": "17:00", field: "09:00:00Z"}
    with pytest.raises(ValidationError) as info:
        ClinicSettingsIn.model_validate({"calendar": calendar})
    (error,) = info.value.errors()
    assert error["loc"] == ("calendar", field)
    assert "without a time zone" in error["msg"]


def test_the_schema_declares_opening_hours_as_local_times_the_api_sends() -> None:
    # JSON Schema's "time" format needs a UTC offset, which the hours (correctly) do not carry.
    props = ClinicSettingsIn.model_json_schema()["$defs"]["CalendarSettings"]["properties"]
    sent = CalendarSettings().model_dump(mode="json")
    for name in ("opens", "closes"):
        assert "format" not in props[name]
        assert re.fullmatch(props[name]["pattern"], sent[name])
        assert re.fullmatch(props[name]["pattern"], "07:30")
        assert not re.fullmatch(props[name]["pattern"], "07:30:00Z")


# --- default eligibility exclusions relaxed with a reason ---------------------------------------

SCHIZOPHRENIA_REASON = "Medical director 2026-12-01: co-managed with the patient's psychiatrist."


def test_a_default_exclusion_is_relaxed_with_its_reason_and_the_trail_keeps_it(
    db: Session, world_a: ClinicWorld
) -> None:
    admin = world_a.actor(Role.ADMIN)
    relax = {"eligibility_relaxations": {"schizophrenia": SCHIZOPHRENIA_REASON}}
    # A clinical value: the change note is required.
    with pytest.raises(InvalidInput) as info:
        update_clinic_settings(db, admin, ClinicSettingsIn.model_validate(relax), 1)
    assert info.value.field == "change_note"
    note = {"change_note": "Clinic protocol v4, section 2 (signed by the medical director)."}
    saved = update_clinic_settings(db, admin, ClinicSettingsIn.model_validate(relax | note), 1)
    assert saved.eligibility_relaxations == {"schizophrenia": SCHIZOPHRENIA_REASON}
    effective = effective_settings(db, world_a.clinic.id).eligibility
    assert effective.relaxed_exclusions == {"schizophrenia": SCHIZOPHRENIA_REASON}
    audit = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "settings.update", AuditEvent.outcome == "success"
        )
    ).one()
    assert audit.detail is not None
    assert audit.detail["after"]["eligibility_relaxations"] == relax["eligibility_relaxations"]
    assert audit.detail["note"] == note["change_note"]


@pytest.mark.parametrize(
    ("relaxations", "field", "text"),
    [
        (
            {"aneurysmal_vascular_disease": SCHIZOPHRENIA_REASON},
            "eligibility_relaxations.aneurysmal_vascular_disease",
            "can never be relaxed",
        ),
        (
            {"recent_myocardial_infarction": SCHIZOPHRENIA_REASON},
            "eligibility_relaxations.recent_myocardial_infarction",
            "can never be relaxed",
        ),
        ({"pregnancy": "ok"}, "eligibility_relaxations.pregnancy", "at least 20 characters"),
        ({"psychosis": SCHIZOPHRENIA_REASON}, "eligibility_relaxations.psychosis", "caution"),
    ],
)
def test_a_relaxation_that_is_not_allowed_names_the_field(
    db: Session, world_a: ClinicWorld, relaxations: dict[str, str], field: str, text: str
) -> None:
    data = ClinicSettingsIn.model_validate(
        {"eligibility_relaxations": relaxations, "change_note": "Clinic protocol v4."}
    )
    with pytest.raises(InvalidInput) as info:
        update_clinic_settings(db, world_a.actor(Role.ADMIN), data, 1)
    assert info.value.field == field
    assert text in info.value.message
    assert effective_settings(db, world_a.clinic.id).eligibility.relaxed_exclusions == {}


def test_the_hypotension_and_critical_heart_rate_limits_are_clinic_settings(
    db: Session, world_a: ClinicWorld
) -> None:
    from ketacare.clinical.monitoring import alerts

    change = {
        "monitoring": {
            "alert_systolic_warning_below": 95,
            "alert_mean_arterial_pressure_below": 70,
            "alert_heart_rate_critical_above": 140,
            "discharge_systolic_at_least": 95,
        },
        "change_note": "Medical director: older patients on antihypertensives (protocol v4).",
    }
    update_clinic_settings(
        db, world_a.actor(Role.ADMIN), ClinicSettingsIn.model_validate(change), 1
    )
    monitoring = effective_settings(db, world_a.clinic.id).monitoring
    assert [a.code for a in alerts({"systolic": 94, "diastolic": 62}, None, monitoring)] == [
        "systolic_low"
    ]
    assert [a.severity for a in alerts({"heart_rate": 135}, None, monitoring)] == ["warning"]
    defaults = get_clinic_settings(db, world_a.actor(Role.NURSE)).effective_monitoring
    assert defaults["alert_systolic_critical_below"] == 80  # the cited default still
    assert defaults["discharge_systolic_at_least"] == 95


def test_overrides_stored_before_a_new_setting_fall_back_to_the_defaults_and_say_so(
    db: Session, world_a: ClinicWorld
) -> None:
    # A high heart-rate warning of 135 was valid before the critical tier (130) existed.
    from ketacare.clinical.monitoring import MonitoringSettings, alerts

    world_a.clinic.settings = {"monitoring": {"alert_heart_rate_above": 135}}
    db.commit()
    effective = effective_settings(db, world_a.clinic.id)
    assert effective.monitoring == MonitoringSettings.defaults()
    assert effective.problem is not None
    assert "cited defaults apply" in effective.problem
    # Every decision still runs, with the cited thresholds: 120/min is a warning again.
    assert [a.code for a in alerts({"heart_rate": 120}, None, effective.monitoring)] == [
        "heart_rate_high"
    ]
    shown = get_clinic_settings(db, world_a.actor(Role.ADMIN))
    assert shown.problem == effective.problem
    assert shown.monitoring == {"alert_heart_rate_above": 135}  # kept for the admin to correct
