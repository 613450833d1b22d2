"""The outcomes use-case: what it loads (no in-session ratings), what it counts per session,
who may read it, the audit trail, another clinic, and a query count that does not grow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import outcomes as uc
from ketacare.app.assessments import _store
from ketacare.app.errors import Forbidden, NotFound
from ketacare.app.permissions import Role
from ketacare.knowledge import knowledge_version
from ketacare.store.models import (
    AdverseEvent,
    AuditEvent,
    MedicationEntry,
    Patient,
    SessionAlert,
    TreatmentSession,
    VitalSample,
)

NOW = datetime(2026, 3, 30, 15, 0, tzinfo=UTC)
FIRST_DOSE = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
READERS = [Role.ADMIN, Role.PRESCRIBER, Role.NURSE, Role.THERAPIST]


def phq9(total: int, item9: int = 0) -> list[int]:
    values, rest = [0] * 9, total - item9
    for i in range(8):
        values[i] = min(3, rest)
        rest -= values[i]
    values[8] = item9
    return values


def rate(db: Session, patient: Patient, instrument: str, answers: list[int], at: datetime) -> int:
    row = _store(db, patient, instrument, answers, source="staff", at=at, recorded_by=None)
    db.commit()
    return row.id


def dosing_session(
    db: Session,
    patient: Patient,
    number: int,
    dose_at: datetime | None,
    protocol_id: str = "iv-ketamine",
) -> int:
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        number=number,
        protocol_id=protocol_id,
        scheduled_at=(dose_at or NOW) - timedelta(minutes=30),
        status="completed" if dose_at else "scheduled",
        started_at=dose_at - timedelta(minutes=20) if dose_at else None,
        dose_started_at=dose_at,
        dose_ended_at=dose_at + timedelta(minutes=40) if dose_at else None,
    )
    db.add(row)
    db.commit()
    return row.id


def adverse_event(
    db: Session, patient: Patient, session_id: int, *, serious: bool = False, severity: str = "mild"
) -> None:
    db.add(
        AdverseEvent(
            clinic_id=patient.clinic_id,
            session_id=session_id,
            patient_id=patient.id,
            code="nausea",
            severity=severity,
            serious=serious,
            onset_at=FIRST_DOSE + timedelta(minutes=10),
            outcome="resolved",
            knowledge_version=knowledge_version(),
        )
    )
    db.commit()


def alert(db: Session, patient: Patient, session_id: int, severity: str = "warning") -> None:
    sample = VitalSample(
        clinic_id=patient.clinic_id,
        session_id=session_id,
        measured_at=FIRST_DOSE + timedelta(minutes=15),
        systolic=185,
        diastolic=100,
        source="manual",
    )
    db.add(sample)
    db.flush()
    db.add(
        SessionAlert(
            clinic_id=patient.clinic_id,
            session_id=session_id,
            vital_sample_id=sample.id,
            code="systolic_high",
            severity=severity,
            field="systolic",
            value=185,
            threshold=180,
            text="Systolic 185 at or above 180.",
            sources=["ketacare-clinic-convention"],
            knowledge_version=knowledge_version(),
        )
    )
    db.commit()


def medicine(db: Session, patient: Patient, name: str, dose: str, start: date) -> None:
    db.add(
        MedicationEntry(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            name_entered=name,
            dose_text=dose,
            start_date=start,
            status="active",
        )
    )
    db.commit()


@pytest.fixture
def course(db: Session, world_a: ClinicWorld) -> Patient:
    """Baseline PHQ-9 18, four infusions, then PHQ-9 8; a CADSS rated during infusion 1."""
    patient = world_a.patients[0]
    ids = [dosing_session(db, patient, n + 1, FIRST_DOSE + timedelta(days=2 * n)) for n in range(4)]
    dosing_session(db, patient, 5, None)  # scheduled, not dosed: not counted
    rate(db, patient, "phq9", phq9(18), FIRST_DOSE - timedelta(days=2))
    rate(db, patient, "gad7", [2, 2, 2, 2, 2, 1, 1], FIRST_DOSE - timedelta(days=2))
    rate(db, patient, "phq9", phq9(8, item9=1), FIRST_DOSE + timedelta(days=7))
    cadss = rate(db, patient, "cadss", [1] * 23, FIRST_DOSE + timedelta(minutes=40))
    # A PHQ-9 rated inside a session is an in-session rating: not an outcome point.
    in_session = rate(db, patient, "phq9", phq9(27), FIRST_DOSE + timedelta(minutes=50))
    from ketacare.store.models import Assessment

    for assessment_id in (cadss, in_session):
        row = db.get(Assessment, assessment_id)
        assert row is not None
        row.session_id = ids[0]
    db.commit()
    adverse_event(db, patient, ids[0])
    adverse_event(db, patient, ids[0], serious=True, severity="severe")
    alert(db, patient, ids[1], "critical")
    alert(db, patient, ids[1])
    medicine(db, patient, "Concerta 54 mg ER tab", "1 tab every morning", date(2025, 6, 1))
    medicine(db, patient, "Strattera", "80 mg daily", date(2025, 6, 1))
    return patient


def test_the_outcomes_of_a_course_with_flags_sessions_and_stimulants(
    db: Session, world_a: ClinicWorld, course: Patient
) -> None:
    out = uc.patient_outcomes(db, world_a.actor(Role.PRESCRIBER), course.id, now=NOW)
    assert out.patient_id == course.id and out.timezone == "America/Toronto"
    assert out.dosed_sessions == 4 and out.first_dose_at == FIRST_DOSE
    phq = next(i for i in out.instruments if i.instrument == "phq9")
    # The in-session PHQ-9 of 27 is left out: the trajectory is 18 -> 8.
    assert [p.total for p in phq.trajectory] == [18, 8]
    assert phq.baseline is not None and phq.baseline.total == 18
    assert (phq.change, phq.percent_change) == (-10, -55.6)
    flags = {f.code: f.status for f in phq.flags}
    assert flags == {
        "response": "met",
        "remission": "not_met",
        "non_response": "not_met",
        "worsening": "unknown",
        "item9_new": "met",
    }
    assert [i.instrument for i in out.instruments] == ["phq9", "gad7", "asrs"]
    asrs = out.instruments[2]
    assert asrs.exploratory and asrs.trajectory == []
    assert [f.code for i, f in uc.raised_flags(out)] == ["response", "item9_new"]
    assert out.thresholds["phq9_response_fall_percent"] == 50
    assert out.knowledge_version == knowledge_version()
    # Every cited source is resolved for display.
    assert "sanacora-2017" in out.references and "adhd-ketamine-no-trials" in out.references

    assert [
        (
            s.number,
            s.adverse_events,
            s.serious_adverse_events,
            s.severe_adverse_events,
            s.alerts,
            s.critical_alerts,
        )
        for s in out.sessions
    ] == [
        (1, 2, 1, 1, 0, 0),
        (2, 0, 0, 0, 2, 1),
        (3, 0, 0, 0, 0, 0),
        (4, 0, 0, 0, 0, 0),
    ]
    stimulants = out.stimulants
    assert [i.ingredient for i in stimulants.ingredients] == ["methylphenidate"]
    weeks = stimulants.ingredients[0].weeks
    assert {w.mg_per_day for w in weeks} == {54.0}
    # From four weeks before the first rating to today.
    assert stimulants.start == date(2026, 1, 31) and stimulants.end == date(2026, 3, 30)


@pytest.mark.parametrize(
    ("protocol_id", "sessions", "expected", "checkpoint"),
    [
        ("iv-ketamine", 4, "met", 4),
        # The esketamine label evaluates benefit at the end of induction (8 sessions).
        ("intranasal-esketamine", 4, "not_met", 8),
        ("intranasal-esketamine", 8, "met", 8),
    ],
)
def test_non_response_uses_the_checkpoint_of_the_protocol_dosed(
    db: Session,
    world_a: ClinicWorld,
    protocol_id: str,
    sessions: int,
    expected: str,
    checkpoint: int,
) -> None:
    patient = world_a.patients[0]
    doses = [FIRST_DOSE + timedelta(days=3.5 * n) for n in range(sessions)]
    for number, dose_at in enumerate(doses, start=1):
        dosing_session(db, patient, number, dose_at, protocol_id)
    rate(db, patient, "phq9", phq9(18), FIRST_DOSE - timedelta(days=2))
    rate(db, patient, "phq9", phq9(16), doses[-1] + timedelta(days=1))  # an 11% fall
    out = uc.patient_outcomes(db, world_a.actor(Role.PRESCRIBER), patient.id, now=NOW)
    phq = next(i for i in out.instruments if i.instrument == "phq9")
    flag = next(f for f in phq.flags if f.code == "non_response")
    assert flag.status == expected, flag.text
    assert out.thresholds["non_response_after_sessions"] == checkpoint


def test_a_patient_without_data_is_unknown_throughout(db: Session, world_a: ClinicWorld) -> None:
    out = uc.patient_outcomes(db, world_a.actor(Role.NURSE), world_a.patients[1].id, now=NOW)
    assert out.dosed_sessions == 0 and out.sessions == []
    for scale in out.instruments:
        assert scale.baseline is None
        assert all(f.status in ("unknown", "not_applicable") for f in scale.flags)
    assert out.stimulants.ingredients == []
    assert (out.stimulants.end - out.stimulants.start).days == uc.STIMULANT_DEFAULT_DAYS


@pytest.mark.parametrize("role", READERS)
def test_clinical_staff_may_read_outcomes(
    db: Session, world_a: ClinicWorld, course: Patient, role: Role
) -> None:
    out = uc.patient_outcomes(db, world_a.actor(role), course.id, now=NOW)
    assert out.patient_id == course.id


def test_researchers_never_read_a_patients_outcomes(
    db: Session, world_a: ClinicWorld, course: Patient
) -> None:
    with pytest.raises(Forbidden):
        uc.patient_outcomes(db, world_a.actor(Role.RESEARCHER), course.id)
    row = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert row is not None and (row.action, row.outcome) == ("outcomes.view", "denied")


def test_another_clinics_patient_is_not_found(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld, course: Patient
) -> None:
    for role in READERS:
        with pytest.raises(NotFound):
            uc.patient_outcomes(db, world_b.actor(role), course.id)


def test_every_read_is_audited_with_the_raised_flags(
    db: Session, world_a: ClinicWorld, course: Patient
) -> None:
    actor = world_a.actor(Role.THERAPIST)
    uc.patient_outcomes(db, actor, course.id, now=NOW)
    row = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert row is not None
    assert (row.action, row.outcome, row.patient_id, row.user_id) == (
        "outcomes.view",
        "success",
        course.id,
        actor.user_id,
    )
    assert row.detail == {"raised": ["phq9:response", "phq9:item9_new"], "dosed_sessions": 4}


def _count_selects(db: Session, run: object) -> int:
    seen: list[str] = []

    def on_execute(*args: object) -> None:
        seen.append(str(args[2]))

    engine = db.get_bind()
    db.expire_all()
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        run()  # type: ignore[operator]
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    return sum(1 for s in seen if s.lstrip().upper().startswith("SELECT"))


def test_the_query_count_is_the_same_for_1_or_20_assessments(
    db: Session, world_a: ClinicWorld
) -> None:
    actor = world_a.actor(Role.PRESCRIBER)
    small, large = world_a.patients[1], world_a.patients[2]
    session = dosing_session(db, small, 1, FIRST_DOSE)
    rate(db, small, "phq9", phq9(15), FIRST_DOSE - timedelta(days=1))
    adverse_event(db, small, session)
    medicine(db, small, "Ritalin", "10 mg twice daily", date(2025, 1, 1))
    for n in range(6):
        sid = dosing_session(db, large, n + 1, FIRST_DOSE + timedelta(days=2 * n))
        adverse_event(db, large, sid)
        alert(db, large, sid)
    for week in range(20):
        instrument = ("phq9", "gad7", "asrs")[week % 3]
        answers = {"phq9": phq9(12), "gad7": [1] * 7, "asrs": [2] * 18}[instrument]
        rate(db, large, instrument, answers, FIRST_DOSE + timedelta(days=week - 3))
    for k in range(4):
        medicine(db, large, f"Ritalin {5 * (k + 1)} mg", "1 tab daily", date(2025, 1, 1))

    one = _count_selects(db, lambda: uc.patient_outcomes(db, actor, small.id, now=NOW))
    many = _count_selects(db, lambda: uc.patient_outcomes(db, actor, large.id, now=NOW))
    assert one == many
    assert one <= 8
    out = uc.patient_outcomes(db, actor, large.id, now=NOW)
    assert sum(len(i.trajectory) for i in out.instruments) == 20 and len(out.sessions) == 6
