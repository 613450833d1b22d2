"""Synthetic clinics at scale, for benchmarks and load tests: patients at every stage, a course
of dosing sessions for the treated ones (with alerts and adverse events), and rating scales
over time. Bulk inserts (Core executemany in large chunks), so 10^5 patients and 10^6
assessments load in minutes on PostgreSQL.

Everything is invented; nothing here is a clinical decision. The demo clinic (app/demo.py) is the
place for records made by the real clinical functions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.orm import Session

from ketacare.app import outcome_summaries
from ketacare.store.models import (
    AdverseEvent,
    Assessment,
    Clinic,
    Patient,
    SessionAlert,
    TreatmentCourse,
    TreatmentSession,
    VitalSample,
)

CHUNK = 10_000
STAGE_WEIGHTS = {
    "intake": 20,
    "eligible": 10,
    "ineligible": 8,
    "in_course": 22,
    "maintenance": 22,
    "discharged": 18,
}
TREATED = {"in_course", "maintenance", "discharged"}
PROTOCOL_WEIGHTS = {"iv-ketamine": 80, "intranasal-esketamine": 12, "im-ketamine": 8}
SCALES = {"phq9": (9, 3), "gad7": (7, 3), "asrs": (18, 4)}
AE_CODES = ("nausea", "dizziness", "headache", "hypertension", "emergence_reaction")


@dataclass(frozen=True)
class Filled:
    clinic_id: int
    patients: int
    sessions: int
    assessments: int
    alerts: int
    adverse_events: int
    vitals: int = 0


def chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Rows in lists of CHUNK, for bulk inserts of bounded size."""
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _answers(rng: random.Random, instrument: str, level: float) -> tuple[list[int], int]:
    count, top = SCALES[instrument]
    answers = [max(0, min(top, round(rng.gauss(level * top, 0.7)))) for _ in range(count)]
    if instrument == "phq9":
        answers[8] = 0
    return answers, sum(answers)


def fill(
    engine: Engine,
    *,
    patients: int,
    assessments_per_patient: int = 10,
    vitals_per_session: int = 0,
    slug: str = "synthetic",
    seed: int = 7,
    now: datetime | None = None,
) -> Filled:
    """Add one synthetic clinic of ``patients`` patients to the database."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not security)  # nosec B311
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        clinic_id = conn.execute(
            insert(Clinic)
            .values(slug=slug, name=f"Synthetic clinic {slug}", timezone="America/Toronto")
            .returning(Clinic.id)
        ).scalar_one()
    stages = rng.choices(list(STAGE_WEIGHTS), weights=list(STAGE_WEIGHTS.values()), k=patients)

    def patient_rows() -> Iterator[dict[str, Any]]:
        for i, stage in enumerate(stages):
            family, given = f"Family{i:06d}", f"Given{i % 997}"
            yield {
                "clinic_id": clinic_id,
                "mrn": f"S-{i:07d}",
                "family_name": family,
                "given_name": given,
                "family_key": family.lower(),
                "given_key": given.lower(),
                "name_key": f"{family.lower()} {given.lower()}",
                "date_of_birth": date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
                "sex": "female" if i % 2 else "male",
                "stage": stage,
                "created_at": now - timedelta(days=30 + i % 700),
                "updated_at": now,
                "version": 1,
            }

    _insert_all(engine, Patient.__table__, patient_rows())  # type: ignore[arg-type]
    with engine.connect() as conn:
        ids = list(conn.scalars(select(Patient.id).where(Patient.clinic_id == clinic_id)))
    treated = [(pid, stage) for pid, stage in zip(ids, stages, strict=True) if stage in TREATED]
    starts = {pid: now - timedelta(days=rng.randint(8, 600)) for pid, _ in treated}
    protocols = {
        pid: rng.choices(list(PROTOCOL_WEIGHTS), weights=list(PROTOCOL_WEIGHTS.values()))[0]
        for pid, _ in treated
    }

    def course_rows() -> Iterator[dict[str, Any]]:
        for pid, stage in treated:
            yield {
                "clinic_id": clinic_id,
                "patient_id": pid,
                "protocol_id": protocols[pid],
                "start_date": starts[pid].date(),
                "status": "active" if stage == "in_course" else "completed",
                "plan": {"sessions": [], "warnings": [], "missed": [], "settings": {}},
                "revision": 0,
                "created_at": starts[pid] - timedelta(days=3),
                "updated_at": now,
                "version": 1,
            }

    _insert_all(engine, TreatmentCourse.__table__, course_rows())  # type: ignore[arg-type]
    with engine.connect() as conn:
        courses = dict(
            conn.execute(
                select(TreatmentCourse.patient_id, TreatmentCourse.id).where(
                    TreatmentCourse.clinic_id == clinic_id
                )
            ).all()
        )

    def session_rows() -> Iterator[dict[str, Any]]:
        for pid, stage in treated:
            done = rng.randint(2, 5) if stage == "in_course" else 6
            for number in range(1, 7):
                at = starts[pid] + timedelta(days=3 * (number - 1) + (number - 1) // 2)
                happened = number <= done and at < now
                yield {
                    "clinic_id": clinic_id,
                    "patient_id": pid,
                    "course_id": courses[pid],
                    "plan_key": f"infusion-{number}",
                    "number": number,
                    "protocol_id": protocols[pid],
                    "scheduled_at": at,
                    "status": "completed" if happened else "scheduled",
                    "baseline": {"systolic": 120, "diastolic": 78} if happened else None,
                    "gate": {"band": "proceed"} if happened else None,
                    "started_at": at if happened else None,
                    "dose_started_at": at + timedelta(minutes=5) if happened else None,
                    "dose_ended_at": at + timedelta(minutes=45) if happened else None,
                    "ended_at": at + timedelta(minutes=110) if happened else None,
                    "created_at": starts[pid],
                    "version": 1,
                }

    sessions = _insert_all(engine, TreatmentSession.__table__, session_rows())  # type: ignore[arg-type]
    alerts = adverse = 0
    with engine.connect() as conn:
        dosed = conn.execute(
            select(TreatmentSession.id, TreatmentSession.patient_id, TreatmentSession.started_at)
            .where(
                TreatmentSession.clinic_id == clinic_id,
                TreatmentSession.dose_started_at.is_not(None),
            )
            .order_by(TreatmentSession.id)
        ).all()

    def vital_rows() -> Iterator[dict[str, Any]]:
        # A monitored infusion: a reading every 10 minutes from the start of dosing.
        for sid, _pid, at in dosed:
            systolic, heart = rng.uniform(112, 132), rng.uniform(62, 84)
            for k in range(vitals_per_session):
                systolic += rng.uniform(-4, 6)
                heart += rng.uniform(-3, 3)
                when = at + timedelta(minutes=5 + 10 * k)
                yield {
                    "clinic_id": clinic_id,
                    "session_id": sid,
                    "measured_at": when,
                    "received_at": when,
                    "systolic": round(systolic),
                    "diastolic": round(systolic * 0.62),
                    "heart_rate": round(heart),
                    "spo2": 97.0,
                    "respiratory_rate": 14.0,
                    "source": "device",
                    "sample_key": f"syn-{sid}-{k}",
                }

    vitals = (
        _insert_all(engine, VitalSample.__table__, vital_rows())  # type: ignore[arg-type]
        if vitals_per_session
        else 0
    )
    alerted = [(sid, at) for sid, _pid, at in dosed if rng.random() < 0.12]
    if alerted:
        # Alerts point at a reading: one sample per alerted session.
        _insert_all(
            engine,
            VitalSample.__table__,  # type: ignore[arg-type]
            (
                {
                    "clinic_id": clinic_id,
                    "session_id": sid,
                    "measured_at": at + timedelta(minutes=40),
                    "received_at": at + timedelta(minutes=40),
                    "systolic": 184.0,
                    "diastolic": 96.0,
                    "source": "device",
                    "sample_key": f"syn-{sid}",
                }
                for sid, at in alerted
            ),
        )
        with engine.connect() as conn:
            samples = dict(
                conn.execute(
                    select(VitalSample.session_id, VitalSample.id).where(
                        VitalSample.clinic_id == clinic_id
                    )
                ).all()
            )
        alerts = _insert_all(
            engine,
            SessionAlert.__table__,  # type: ignore[arg-type]
            (
                {
                    "clinic_id": clinic_id,
                    "session_id": sid,
                    "vital_sample_id": samples[sid],
                    "raised_at": at + timedelta(minutes=40),
                    "code": "sbp_at_least",
                    "severity": "critical" if rng.random() < 0.3 else "warning",
                    "field": "systolic",
                    "value": 184.0,
                    "threshold": 180.0,
                    "text": "Systolic 184 mmHg is at or above 180.",
                    "sources": ["ketacare-clinic-convention"],
                    "knowledge_version": "synthetic",
                }
                for sid, at in alerted
            ),
        )
    adverse = _insert_all(
        engine,
        AdverseEvent.__table__,  # type: ignore[arg-type]
        (
            {
                "clinic_id": clinic_id,
                "session_id": sid,
                "patient_id": pid,
                "code": rng.choice(AE_CODES),
                "severity": rng.choice(("mild", "mild", "moderate")),
                "serious": False,
                "onset_at": at + timedelta(minutes=30),
                "outcome": "resolved",
                "knowledge_version": "synthetic",
                "recorded_at": at + timedelta(minutes=35),
            }
            for sid, pid, at in dosed
            if rng.random() < 0.15
        ),
    )

    # Signed last, as in the clinic: the database refuses new records in a signed session.
    with engine.begin() as conn:
        conn.execute(
            update(TreatmentSession)
            .where(
                TreatmentSession.clinic_id == clinic_id,
                TreatmentSession.dose_started_at.is_not(None),
            )
            .values(signed_at=TreatmentSession.ended_at)
        )

    def assessment_rows() -> Iterator[dict[str, Any]]:
        for pid, stage in zip(ids, stages, strict=True):
            start = starts.get(pid, now - timedelta(days=rng.randint(1, 400)))
            level = rng.uniform(0.35, 0.8)
            # Responders fall by more than half over the course; others drift.
            slope = rng.uniform(0.02, 0.16) if stage in TREATED else rng.uniform(-0.02, 0.03)
            for k in range(assessments_per_patient):
                instrument = ("phq9", "gad7", "asrs")[k % 3]
                at = start - timedelta(days=7) + timedelta(days=7 * (k // 3))
                if at > now:
                    at = now - timedelta(hours=k)
                answers, total = _answers(rng, instrument, max(0.0, level - slope * (k // 3)))
                yield {
                    "clinic_id": clinic_id,
                    "patient_id": pid,
                    "instrument": instrument,
                    "administered_at": at,
                    "source": "self_report" if k % 2 else "staff",
                    "answers": answers,
                    "total": total,
                    "band": None,
                    "positive_screen": None,
                    "urgent": False,
                    "result": {},
                    "knowledge_version": "synthetic",
                }

    assessments = _insert_all(engine, Assessment.__table__, assessment_rows())  # type: ignore[arg-type]
    with Session(engine) as db, db.begin():
        outcome_summaries.rebuild(db, clinic_id)
    return Filled(clinic_id, patients, sessions, assessments, alerts, adverse, vitals)


def _insert_all(engine: Engine, table: Table, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for batch in chunks(rows):
        with engine.begin() as conn:
            conn.execute(insert(table), batch)
        count += len(batch)
    return count
