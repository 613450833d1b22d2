"""The report use-cases: what the progress report and the information sheet print, who may
have them, the audit trail, the clinic boundary and a query count that does not grow."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pypdf
import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import demo as demo_uc
from ketacare.app import reports as uc
from ketacare.app.assessments import _store
from ketacare.app.errors import Forbidden, NotFound
from ketacare.app.outcomes import patient_outcomes, raised_flags
from ketacare.app.permissions import Actor, Role
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.instrument_defs import reference_ids
from ketacare.store.models import (
    AdverseEvent,
    AuditEvent,
    DoseOrder,
    MedicationEntry,
    Patient,
    SessionAlert,
    TreatmentSession,
    User,
    VitalSample,
)
from ketacare.store.types import utcnow

FOOTER = (
    "Decision support: the clinician decides. Psychiatric ketamine use is off-label; "
    "no trial of ketamine for ADHD exists."
)


def _text(data: bytes) -> str:
    """The PDF's text with line breaks and runs of spaces folded to single spaces."""
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def _dosed_session(
    db: Session, patient: Patient, days_ago: int, *, dose_mg: float, signer: User
) -> TreatmentSession:
    start = utcnow() - timedelta(days=days_ago)
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id="iv-ketamine",
        number=None,
        scheduled_at=start,
        status="completed",
        baseline={"systolic": 122, "diastolic": 78, "heart_rate": 70},
        gate={"band": "proceed", "reasons": []},
        started_at=start,
        dose_started_at=start,
        dose_ended_at=start + timedelta(minutes=40),
        ended_at=start + timedelta(hours=2),
        discharge={"allowed": True, "criteria": []},
    )
    db.add(row)
    db.flush()
    db.add(
        DoseOrder(
            clinic_id=patient.clinic_id,
            session_id=row.id,
            status="ordered",
            dose_mg=dose_mg,
            mg_per_kg=0.5,
            inputs={},
            output={},
            knowledge_version="test",
            ordered_by=signer.id,
            ordered_at=start - timedelta(minutes=10),
        )
    )
    return row


def _record(db: Session, world: ClinicWorld, sessions: int = 3) -> Patient:
    """A patient with PHQ-9 at baseline and after dosing, dosed sessions with orders, an
    adverse event and an alert, and two medicines that interact with ketamine."""
    patient = world.patients[0]
    nurse = world.users[Role.NURSE]
    rows = [
        _dosed_session(db, patient, 20 - 2 * n, dose_mg=35.0 + n, signer=nurse)
        for n in range(sessions)
    ]
    for n, row in enumerate(rows, start=1):
        row.number = n
    first = rows[0]
    db.add(
        AdverseEvent(
            clinic_id=patient.clinic_id,
            session_id=first.id,
            patient_id=patient.id,
            code="nausea",
            severity="mild",
            onset_at=first.dose_started_at + timedelta(minutes=20),
            action="Ondansetron 4 mg IV.",
            outcome="resolved",
            knowledge_version="test",
        )
    )
    vital = VitalSample(
        clinic_id=patient.clinic_id,
        session_id=first.id,
        measured_at=first.dose_started_at + timedelta(minutes=30),
        systolic=185,
        diastolic=95,
        source="manual",
    )
    db.add(vital)
    db.flush()
    db.add(
        SessionAlert(
            clinic_id=patient.clinic_id,
            session_id=first.id,
            vital_sample_id=vital.id,
            code="sbp_high",
            severity="critical",
            field="systolic",
            value=185,
            threshold=180,
            text="Systolic 185",
            sources=["ketacare-clinic-convention"],
            knowledge_version="test",
        )
    )
    db.flush()
    # Signed last: a signed session takes no more records.
    for row in rows:
        row.signed_by = nurse.id
        row.signed_at = row.ended_at
    now = utcnow()
    for days_ago, answers in ((25, [3, 3, 2, 2, 2, 2, 2, 2, 0]), (5, [1, 1, 1, 1, 1, 1, 1, 1, 0])):
        _store(
            db,
            patient,
            "phq9",
            answers,
            source="staff",
            at=now - timedelta(days=days_ago),
            recorded_by=None,
        )
    for name, dose in (("Vyvanse", "50 mg every morning"), ("Xanax", "0.5 mg at night")):
        db.add(
            MedicationEntry(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                name_entered=name,
                dose_text=dose,
                status="active",
            )
        )
    db.commit()
    return patient


def test_the_progress_report_prints_the_record(db: Session, world_a: ClinicWorld) -> None:
    patient = _record(db, world_a)
    prescriber = world_a.actor(Role.PRESCRIBER)
    text = _text(uc.progress_report(db, prescriber, patient.id))
    assert f"{patient.family_name}, {patient.given_name}" in text
    assert f"MRN {patient.mrn}" in text
    assert "Clinic A" in text
    # Session 2 was dosed with 36 mg at 0.5 mg/kg and signed by the nurse.
    assert re.search(r"\b2 completed 36 0\.5 proceed\b", text), text
    assert "Nausea (mild)" in text and "Ondansetron 4 mg IV." in text
    assert "Nurse of A" in text
    # The interaction screen of the current medicines, with the rule's advice and evidence.
    assert "Psychostimulants" in text and "Record the time of the last stimulant dose" in text
    assert "Benzodiazepines" in text
    assert FOOTER in text
    assert f"knowledge {knowledge_version()}" in text


def test_the_outcome_flags_are_printed_with_their_definitions(
    db: Session, world_a: ClinicWorld
) -> None:
    patient = _record(db, world_a)
    actor = world_a.actor(Role.PRESCRIBER)
    outcomes = patient_outcomes(db, actor, patient.id)
    raised = raised_flags(outcomes)
    assert raised, "PHQ-9 fell from 18 to 8 after dosing: a flag is raised"
    text = _text(uc.progress_report(db, actor, patient.id))
    for _scale, flag in raised:
        assert " ".join(flag.label.split()) in text
        assert " ".join(flag.definition.split()) in text
    assert " ".join(outcomes.notice.split()) in text


def test_a_demo_patient_with_a_full_course_gets_every_session(db: Session) -> None:
    result = demo_uc.load_demo(db, now=utcnow())
    actor = Actor(result.clinic_id, Role.SYSTEM, "test")
    patient = db.scalar(
        select(Patient).where(Patient.clinic_id == result.clinic_id, Patient.stage == "maintenance")
    )
    assert patient is not None
    data = uc.progress_data(db, actor, patient.id)
    sessions = [s for c in data.courses for s in c.sessions]
    dosed = [s for s in sessions if s.dose_mg is not None]
    assert len(dosed) == 6
    text = _text(uc.render_progress(data))
    for s in dosed:
        assert f"{s.dose_mg:g}" in text
    assert "Signatures" in text and "Session 6 signed off" in text


def test_the_information_sheet_is_plain_language_with_the_patients_interactions(
    db: Session, world_a: ClinicWorld
) -> None:
    patient = _record(db, world_a)
    text = _text(uc.patient_sheet(db, world_a.actor(Role.NURSE), patient.id))
    assert "Patient information" in text
    assert "until the next day, after a restful night's sleep" in text
    assert "An adult you know must collect you and take you home." in text
    assert "No solid food for 6 hours" in text  # the infusion's fasting instruction
    assert "Vyvanse" in text and "Record the time of the last stimulant dose" in text
    assert "Does Xanax help ADHD?" in text and "Xanax is alprazolam, a benzodiazepine" in text
    assert "Can I take ibuprofen before ketamine?" in text
    assert FOOTER in text


def test_researchers_may_not_have_either_report(db: Session, world_a: ClinicWorld) -> None:
    researcher = world_a.actor(Role.RESEARCHER)
    for use_case in (uc.progress_report, uc.patient_sheet):
        with pytest.raises(Forbidden):
            use_case(db, researcher, world_a.patients[0].id)


def test_another_clinics_patient_is_not_found_and_the_attempt_is_audited(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    victim = _record(db, world_b)
    nurse = world_a.actor(Role.NURSE)
    for use_case in (uc.progress_report, uc.patient_sheet):
        with pytest.raises(NotFound):
            use_case(db, nurse, victim.id)
    outcomes = db.scalars(
        select(AuditEvent.outcome).where(
            AuditEvent.action.in_(("report.progress", "report.sheet")),
            AuditEvent.patient_id == victim.id,
        )
    ).all()
    assert sorted(outcomes) == ["not_found", "not_found"]


def test_each_report_is_audited_with_the_screen_it_showed(
    db: Session, world_a: ClinicWorld
) -> None:
    patient = _record(db, world_a)
    uc.progress_report(db, world_a.actor(Role.THERAPIST), patient.id)
    uc.patient_sheet(db, world_a.actor(Role.THERAPIST), patient.id)
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_(("report.progress", "report.sheet")))
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.outcome, e.patient_id) for e in events] == [
        ("report.progress", "success", patient.id),
        ("report.sheet", "success", patient.id),
    ]
    assert events[0].user_id == world_a.users[Role.THERAPIST].id
    # The unchanged medication list is screened once and that screen is reused.
    assert events[0].detail["screen_id"] == events[1].detail["screen_id"] is not None


@contextmanager
def _counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_report_reads_a_fixed_number_of_queries_however_long_the_record(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    short = _record(db, world_a, sessions=1)
    long = _record(db, world_b, sessions=6)
    engine = db.get_bind()
    counts = []
    for world, patient in ((world_a, short), (world_b, long)):
        actor = world.actor(Role.PRESCRIBER)
        uc.progress_data(db, actor, patient.id)  # the first read stores the screen
        with _counting(engine) as statements:
            data = uc.progress_data(db, actor, patient.id)
        counts.append(len(statements))
        assert sum(len(c.sessions) for c in data.courses) in (1, 6)
    assert counts[0] == counts[1], counts
    assert counts[0] <= 30


def test_the_faq_cites_every_answer_and_claims_no_efficacy() -> None:
    faq = uc.load_faq()
    known = reference_ids()
    for entry in (*faq.sections, *faq.questions):
        assert entry.sources and set(entry.sources) <= known
    text = " ".join(
        [s.text for s in faq.sections] + [f"{q.question} {q.answer}" for q in faq.questions]
    ).lower()
    for claim in (
        "promising",
        "improves attention",
        "improve attention",
        "improves focus",
        "effective for adhd",
        "relief from adhd",
        "recent studies",
        "cognitive-enhancing",
    ):
        assert claim not in text
    # The seed article's unresolved PubMed ids are not cited anywhere.
    assert not re.search(r"\b(37340091|39116252|29532791|35817136)\b", text)
    by_id = {q.id: q for q in faq.questions}
    assert (
        "alprazolam" in by_id["xanax"].answer and "not an ADHD treatment" in by_id["xanax"].answer
    )
    ibuprofen = by_id["ibuprofen"].answer
    assert "no known interaction" in ibuprofen and "phenylephrine" in ibuprofen
    assert "serotonin syndrome" in by_id["antidepressants"].answer
    assert "adults only" in by_id["right-for-me"].answer
