"""The outcome summaries follow every write that can change them, and always equal a rebuild
from the records themselves."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.app.test_session_record import ORDER, running, weigh
from tests.conftest import ClinicWorld

from ketacare.app import outcome_summaries
from ketacare.app import session_record as rec
from ketacare.app.assessments import AssessmentCreate, record_assessment
from ketacare.app.permissions import Role
from ketacare.store.models import PatientFirstDose, PatientScaleSummary
from ketacare.store.types import utcnow

PHQ9_20 = [3, 3, 3, 3, 2, 2, 2, 2, 0]  # total 20, item 9 = 0
PHQ9_9 = [1, 1, 1, 1, 1, 1, 1, 2, 0]  # total 9
PHQ9_4 = [1, 1, 1, 1, 0, 0, 0, 0, 0]  # total 4


def _state(db: Session) -> tuple[set[tuple], set[tuple]]:
    db.expire_all()
    doses = {
        (r.patient_id, r.clinic_id, r.first_dose_at, r.protocol_id)
        for r in db.scalars(select(PatientFirstDose))
    }
    scales = {
        (r.patient_id, r.instrument, r.clinic_id, r.baseline_total, r.latest_total)
        for r in db.scalars(select(PatientScaleSummary))
    }
    return doses, scales


def _rate(db: Session, world: ClinicWorld, answers: list[int], days_ago: float) -> None:
    record_assessment(
        db,
        world.actor(Role.NURSE),
        world.patients[0].id,
        AssessmentCreate(
            instrument="phq9",
            answers=answers,
            administered_at=utcnow() - timedelta(days=days_ago),
        ),
    )


def _matches_rebuild(db: Session) -> tuple[set[tuple], set[tuple]]:
    kept = _state(db)
    outcome_summaries.rebuild(db)
    db.commit()
    assert _state(db) == kept
    return kept


def test_ratings_and_the_first_dose_keep_the_summary_in_step(
    db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[0]
    _rate(db, world_a, PHQ9_20, days_ago=3)
    # Not dosed yet: no summary.
    assert _matches_rebuild(db) == (set(), set())

    weigh(db, world_a)
    sid = running(db, world_a)
    rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    rec.start_dose(db, world_a.actor(Role.NURSE), sid)
    doses, scales = _matches_rebuild(db)
    assert [(d[0], d[3]) for d in doses] == [(patient.id, "iv-ketamine")]
    assert scales == {(patient.id, "phq9", patient.clinic_id, 20, None)}

    # A rating during the dose is not an outcome rating; one afterwards is the latest.
    rec.record_score(
        db, world_a.actor(Role.NURSE), sid, rec.SessionScoreIn(instrument="moaas", answers=[4])
    )
    _rate(db, world_a, PHQ9_9, days_ago=0)
    assert _matches_rebuild(db)[1] == {(patient.id, "phq9", patient.clinic_id, 20, 9)}

    # A rating entered later but dated before the first dose becomes the baseline.
    _rate(db, world_a, PHQ9_4, days_ago=1)
    assert _matches_rebuild(db)[1] == {(patient.id, "phq9", patient.clinic_id, 4, 9)}


def test_a_rebuild_touches_only_the_clinic_named(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    for world in (world_a, world_b):
        _rate(db, world, PHQ9_20, days_ago=3)
        weigh(db, world)
        sid = running(db, world)
        rec.order_dose(db, world.actor(Role.PRESCRIBER), sid, ORDER)
        rec.start_dose(db, world.actor(Role.NURSE), sid)
    before = _state(db)
    assert len(before[0]) == 2
    outcome_summaries.rebuild(db, world_a.patients[0].clinic_id)
    db.commit()
    assert _state(db) == before
