"""Dosing sessions: the blood-pressure gate, device batches of vital signs, alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import sessions as uc
from ketacare.app.errors import Forbidden, InvalidInput, NotFound
from ketacare.app.permissions import Role
from ketacare.store.models import MedicationEntry, VitalSample

NOW = datetime.now(UTC)


# Answers that pass every pre-dose check but the blood pressure.
PASSING = {"fasting": "yes", "escort": "yes", "pregnancy": "not_pregnant"}


def scheduled(db: Session, world: ClinicWorld) -> int:
    patient = world.patients[0]
    if not patient_medicines(db, patient.id):
        # A medicine with no known interaction: the re-screen proceeds.
        db.add(
            MedicationEntry(
                clinic_id=patient.clinic_id, patient_id=patient.id, name_entered="ibuprofen 400 mg"
            )
        )
        db.commit()
    return uc.create_session(
        db, world.actor(Role.NURSE), patient.id, uc.SessionCreate(scheduled_at=NOW)
    ).id


def patient_medicines(db: Session, patient_id: int) -> list[str]:
    return list(
        db.scalars(
            select(MedicationEntry.name_entered).where(MedicationEntry.patient_id == patient_id)
        )
    )


def started(db: Session, world: ClinicWorld, systolic: float = 124, diastolic: float = 78) -> int:
    sid = scheduled(db, world)
    uc.start_session(
        db,
        world.actor(Role.NURSE),
        sid,
        uc.PreCheck(systolic=systolic, diastolic=diastolic, **PASSING),  # type: ignore[arg-type]
    )
    return sid


@pytest.mark.parametrize(
    ("systolic", "diastolic", "role", "extra", "outcome"),
    [
        (139, 89, Role.NURSE, {}, "proceed"),
        (140, 85, Role.NURSE, {}, "acknowledge_caution"),
        (140, 85, Role.NURSE, {"acknowledge_caution": True}, "caution"),
        (150, 100, Role.NURSE, {"override_reason": "Rechecked, anxious, usual BP"}, Forbidden),
        (150, 100, Role.PRESCRIBER, {}, "override_reason"),
        (150, 100, Role.PRESCRIBER, {"override_reason": "Rechecked twice, white-coat"}, "hold"),
        (180, 90, Role.PRESCRIBER, {"override_reason": "no override is possible here"}, "systolic"),
        (
            120,
            110,
            Role.PRESCRIBER,
            {"override_reason": "no override is possible here"},
            "systolic",
        ),
    ],
)
def test_the_blood_pressure_gate_decides_who_may_start(
    db: Session,
    world_a: ClinicWorld,
    systolic: float,
    diastolic: float,
    role: Role,
    extra: dict[str, object],
    outcome: object,
) -> None:
    sid = scheduled(db, world_a)
    check = uc.PreCheck(systolic=systolic, diastolic=diastolic, **PASSING, **extra)  # type: ignore[arg-type]
    if outcome is Forbidden:
        with pytest.raises(Forbidden):
            uc.start_session(db, world_a.actor(role), sid, check)
    elif outcome in ("proceed", "caution", "hold"):
        out = uc.start_session(db, world_a.actor(role), sid, check)
        assert out.status == "in_progress"
        assert out.gate is not None
        assert out.gate["band"] == outcome
    else:
        with pytest.raises(InvalidInput) as err:
            uc.start_session(db, world_a.actor(role), sid, check)
        assert err.value.field == outcome


def test_a_device_batch_stores_the_valid_samples_and_reports_the_impossible_one(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = started(db, world_a)
    batch = uc.VitalsBatch(
        samples=[
            {
                "measured_at": NOW - timedelta(minutes=10),
                "systolic": 130,
                "diastolic": 80,
                "heart_rate": 82,
                "spo2": 98,
                "sample_key": "pump-1",
            },
            {
                "measured_at": NOW - timedelta(minutes=5),
                "systolic": 80,
                "diastolic": 120,
                "sample_key": "pump-2",
            },
            {"measured_at": NOW - timedelta(minutes=4), "heart_rate": 400, "sample_key": "pump-3"},
            {
                "measured_at": NOW,
                "systolic": 168,
                "diastolic": 104,
                "spo2": 90,
                "sample_key": "pump-4",
            },
        ]
    )  # type: ignore[arg-type]
    out = uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, batch)
    assert len(out.stored) == 2
    assert [(r.index, r.field, r.code) for r in out.rejected] == [
        (1, "diastolic", "diastolic_not_below_systolic"),
        (2, "heart_rate", "out_of_range"),
    ]
    codes = {a.code for a in out.alerts}
    # +44 systolic and +26 diastolic over the 124/78 baseline; SpO2 90 below 92.
    assert {a.field for a in out.alerts} >= {"systolic", "diastolic", "spo2"}
    assert all(a.vital_sample_id == out.stored[1] for a in out.alerts), codes
    again = uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, batch)
    assert again.stored == []
    assert again.duplicates == [0, 3]
    assert db.scalar(select(func.count()).select_from(VitalSample)) == 2
    detail = uc.get_session(db, world_a.actor(Role.THERAPIST), sid)
    assert [v.systolic for v in detail.vitals] == [130, 168]
    assert len(detail.alerts) == len(out.alerts)


def test_vitals_are_refused_before_the_session_starts(db: Session, world_a: ClinicWorld) -> None:
    sid = scheduled(db, world_a)
    batch = uc.VitalsBatch(samples=[{"measured_at": NOW, "heart_rate": 70}])  # type: ignore[list-item]
    with pytest.raises(InvalidInput) as err:
        uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, batch)
    assert err.value.field == "status"


def test_a_sample_from_the_future_is_rejected(db: Session, world_a: ClinicWorld) -> None:
    sid = started(db, world_a)
    batch = uc.VitalsBatch(samples=[{"measured_at": NOW + timedelta(hours=1), "heart_rate": 70}])  # type: ignore[list-item]
    out = uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, batch)
    assert [r.field for r in out.rejected] == ["measured_at"]


def test_another_clinics_session_is_not_found(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    sid = started(db, world_b)
    with pytest.raises(NotFound):
        uc.get_session(db, world_a.actor(Role.PRESCRIBER), sid)


def test_a_plannable_protocol_is_required(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(InvalidInput) as err:
        uc.create_session(
            db,
            world_a.actor(Role.NURSE),
            world_a.patients[0].id,
            uc.SessionCreate(protocol_id="oral-ketamine", scheduled_at=NOW),
        )
    assert err.value.field == "protocol_id"
