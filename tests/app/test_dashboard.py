"""The dashboard's figures against a clinic computed by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import outcome_summaries
from ketacare.app.dashboard import DashboardFilter, clinic_dashboard
from ketacare.app.errors import Forbidden
from ketacare.app.permissions import Role
from ketacare.store.models import (
    AdverseEvent,
    Assessment,
    Patient,
    SessionAlert,
    TreatmentSession,
    VitalSample,
)
from ketacare.store.types import utcnow

NOW = utcnow()
DAY = timedelta(days=1)


def _rate(
    db: Session, patient: Patient, instrument: str, total: int, at: object, **kw: object
) -> None:
    db.add(
        Assessment(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            instrument=instrument,
            administered_at=at,
            source="staff",
            answers=[],
            total=total,
            result={},
            knowledge_version="test",
            **kw,
        )
    )


def _dose(db: Session, patient: Patient, protocol: str, at: object) -> TreatmentSession:
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id=protocol,
        scheduled_at=at,
        status="completed",
        started_at=at,
        dose_started_at=at,
        dose_ended_at=at + timedelta(minutes=40),  # type: ignore[operator]
    )
    db.add(row)
    db.flush()
    return row


def _alert(db: Session, session: TreatmentSession, severity: str) -> None:
    vital = VitalSample(
        clinic_id=session.clinic_id,
        session_id=session.id,
        measured_at=session.dose_started_at,
        systolic=185,
        source="device",
    )
    db.add(vital)
    db.flush()
    db.add(
        SessionAlert(
            clinic_id=session.clinic_id,
            session_id=session.id,
            vital_sample_id=vital.id,
            code="sbp_at_least",
            severity=severity,
            field="systolic",
            value=185,
            threshold=180,
            text="x",
            sources=[],
            knowledge_version="test",
        )
    )


@pytest.fixture
def clinic(db: Session, world_a: ClinicWorld, world_b: ClinicWorld) -> ClinicWorld:
    a, b, c = world_a.patients
    d = Patient(
        clinic_id=a.clinic_id,
        mrn="A-OLD",
        family_name="Old",
        given_name="Course",
        family_key="old",
        given_key="course",
        name_key="old course",
        date_of_birth=a.date_of_birth,
        sex="male",
        stage="discharged",
    )
    db.add(d)
    a.stage, b.stage, c.stage = "in_course", "maintenance", "in_course"
    db.flush()
    # A: PHQ-9 20 -> 10 (exactly 50%: responds), GAD-7 10 -> 6 (40%: no), ASRS 40 -> 28 (30%).
    first_a = _dose(db, a, "iv-ketamine", NOW - 20 * DAY)
    second_a = _dose(db, a, "iv-ketamine", NOW - 16 * DAY)
    for instrument, before, after in (("phq9", 20, 10), ("gad7", 10, 6), ("asrs", 40, 28)):
        _rate(db, a, instrument, before + 5, NOW - 40 * DAY)  # older: not the baseline
        _rate(db, a, instrument, before, NOW - 21 * DAY)
        _rate(db, a, instrument, after, NOW - 5 * DAY)
    # A rating made during a dose is not an outcome rating.
    _rate(db, a, "phq9", 0, NOW - 2 * DAY, session_id=second_a.id)
    _alert(db, first_a, "critical")
    _alert(db, first_a, "warning")
    # B: PHQ-9 baseline 4 (below 5: not evaluable), GAD-7 12 -> 6 (50%: responds), no ASRS.
    first_b = _dose(db, b, "iv-ketamine", NOW - 10 * DAY)
    _rate(db, b, "phq9", 4, NOW - 11 * DAY)
    _rate(db, b, "phq9", 1, NOW - 3 * DAY)
    _rate(db, b, "gad7", 12, NOW - 11 * DAY)
    _rate(db, b, "gad7", 6, NOW - 3 * DAY)
    db.add(
        AdverseEvent(
            clinic_id=b.clinic_id,
            session_id=first_b.id,
            patient_id=b.id,
            code="nausea",
            severity="severe",
            serious=True,
            onset_at=NOW - 10 * DAY,
            outcome="resolved",
            knowledge_version="test",
        )
    )
    # C: esketamine, PHQ-9 15 -> 8 (46.7%: no); no later GAD-7.
    first_c = _dose(db, c, "intranasal-esketamine", NOW - 8 * DAY)
    _rate(db, c, "phq9", 15, NOW - 9 * DAY)
    _rate(db, c, "phq9", 8, NOW - 1 * DAY)
    _rate(db, c, "gad7", 9, NOW - 9 * DAY)
    _alert(db, first_c, "warning")
    # D: first dose long before the period: counted nowhere in it.
    old = _dose(db, d, "iv-ketamine", NOW - 400 * DAY)
    _rate(db, d, "phq9", 20, NOW - 401 * DAY)
    _rate(db, d, "phq9", 2, NOW - 300 * DAY)
    _alert(db, old, "critical")
    # Another clinic's data never counts.
    _dose(db, world_b.patients[0], "iv-ketamine", NOW - 5 * DAY)
    db.add(
        TreatmentSession(
            clinic_id=a.clinic_id,
            patient_id=c.id,
            protocol_id="iv-ketamine",
            scheduled_at=NOW,
            status="scheduled",
        )
    )
    # Rows written directly, as a bulk load would: the summaries are rebuilt from them.
    outcome_summaries.rebuild(db)
    db.commit()
    return world_a


def test_the_figures_match_the_hand_count(db: Session, clinic: ClinicWorld) -> None:
    d = clinic_dashboard(db, clinic.actor(Role.PRESCRIBER), DashboardFilter())
    stages = {s.stage: s.patients for s in d.stages}
    assert stages["in_course"] == 2 and stages["maintenance"] == 1 and stages["discharged"] == 1
    assert d.patients == 4
    s = d.safety
    assert (s.sessions, s.alerts, s.critical_alerts) == (4, 3, 1)
    assert (s.adverse_events, s.serious_adverse_events) == (1, 1)
    assert (s.alerts_per_100, s.critical_alerts_per_100, s.adverse_events_per_100) == (
        75.0,
        25.0,
        25.0,
    )
    rates = {
        (r.protocol_id, r.instrument): (r.patients, r.evaluable, r.responders) for r in d.response
    }
    assert rates == {
        ("intranasal-esketamine", "phq9"): (1, 1, 0),
        ("intranasal-esketamine", "gad7"): (1, 0, 0),
        ("intranasal-esketamine", "asrs"): (1, 0, 0),
        ("iv-ketamine", "phq9"): (2, 1, 1),
        ("iv-ketamine", "gad7"): (2, 2, 1),
        ("iv-ketamine", "asrs"): (2, 1, 1),
    }
    asrs = next(r for r in d.response if r.instrument == "asrs" and r.protocol_id == "iv-ketamine")
    assert asrs.exploratory and asrs.rate == 1.0
    assert next(r for r in d.response if r.evaluable == 0).rate is None
    assert d.today.dosing_sessions == 1


def test_the_period_selects_the_cohort_and_the_sessions(db: Session, clinic: ClinicWorld) -> None:
    start = (NOW - 500 * DAY).date()
    d = clinic_dashboard(
        db,
        clinic.actor(Role.NURSE),
        DashboardFilter(date_from=start, date_to=(NOW - 300 * DAY).date()),
    )
    assert d.safety.sessions == 1 and d.safety.critical_alerts == 1
    assert {(r.protocol_id, r.instrument): r.responders for r in d.response}[
        ("iv-ketamine", "phq9")
    ] == 1


def test_the_dashboard_uses_a_fixed_number_of_statements(db: Session, clinic: ClinicWorld) -> None:
    statements: list[str] = []
    engine = db.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        clinic_dashboard(db, clinic.actor(Role.NURSE), DashboardFilter())
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) <= 10, selects


def test_researchers_and_bad_periods_are_refused(db: Session, clinic: ClinicWorld) -> None:
    with pytest.raises(Forbidden):
        clinic_dashboard(db, clinic.actor(Role.RESEARCHER), DashboardFilter())
    with pytest.raises(ValueError, match="date_from"):
        DashboardFilter(date_from=NOW.date(), date_to=(NOW - DAY).date())
