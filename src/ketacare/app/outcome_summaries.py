"""Per-patient outcome summaries kept in step with the records they come from.

The clinic dashboard compares each dosed patient's baseline and latest totals. Looking them up
for every patient of a large clinic on every page view is slow, so the first dose and, per
scale, the baseline and latest totals are stored and refreshed in the same transaction as any
write that can change them: a rating recorded, a dose started. ``rebuild`` recomputes them
from scratch (after a bulk load, or to check them); the definitions are those of the outcome
rules (docs/outcomes.md): baseline = the latest rating at or before the first dose, latest =
the latest rating after it, ratings taken during a dosing session (CADSS, MOAA/S) excluded.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, select, true
from sqlalchemy.orm import Session, aliased

from ketacare.store.models import (
    Assessment,
    PatientFirstDose,
    PatientScaleSummary,
    TreatmentSession,
)


def _scope(column: Any, value: int | None, ids: Collection[int] | None, id_column: Any) -> Any:
    """Rows of one clinic (``value``) and/or of some patients (``ids``); all when neither."""
    clauses = []
    if value is not None:
        clauses.append(column == value)
    if ids is not None:
        clauses.append(id_column.in_(list(ids)))
    return and_(true(), *clauses)


def _first_doses(db: Session, clinic_id: int | None, patient_ids: Collection[int] | None) -> None:
    first = (
        select(
            TreatmentSession.patient_id.label("patient_id"),
            TreatmentSession.clinic_id.label("clinic_id"),
            func.min(TreatmentSession.dose_started_at).label("first_at"),
        )
        .where(
            TreatmentSession.dose_started_at.is_not(None),
            _scope(TreatmentSession.clinic_id, clinic_id, patient_ids, TreatmentSession.patient_id),
        )
        .group_by(TreatmentSession.patient_id, TreatmentSession.clinic_id)
        .subquery("first_dose")
    )
    dosed = aliased(TreatmentSession)
    protocol = (
        select(dosed.protocol_id)
        .where(
            dosed.patient_id == first.c.patient_id,
            dosed.dose_started_at == first.c.first_at,
        )
        .order_by(dosed.id)
        .limit(1)
        .scalar_subquery()
    )
    db.execute(
        insert(PatientFirstDose).from_select(
            ["patient_id", "clinic_id", "first_dose_at", "protocol_id"],
            select(first.c.patient_id, first.c.clinic_id, first.c.first_at, protocol),
        )
    )


def _total(first_at: ColumnElement[Any], patient: Any, instrument: Any, *, before: bool) -> Any:
    rating = aliased(Assessment)
    when = rating.administered_at <= first_at if before else rating.administered_at > first_at
    return (
        select(rating.total)
        .where(
            rating.patient_id == patient,
            rating.instrument == instrument,
            rating.session_id.is_(None),
            when,
        )
        .order_by(rating.administered_at.desc(), rating.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _scale_summaries(
    db: Session, clinic_id: int | None, patient_ids: Collection[int] | None
) -> None:
    scales = (
        select(Assessment.patient_id.label("patient_id"), Assessment.instrument.label("instrument"))
        .where(
            Assessment.session_id.is_(None),
            _scope(Assessment.clinic_id, clinic_id, patient_ids, Assessment.patient_id),
        )
        .distinct()
        .subquery("scales")
    )
    d = PatientFirstDose
    db.execute(
        insert(PatientScaleSummary).from_select(
            ["patient_id", "instrument", "clinic_id", "baseline_total", "latest_total"],
            select(
                d.patient_id,
                scales.c.instrument,
                d.clinic_id,
                _total(d.first_dose_at, d.patient_id, scales.c.instrument, before=True),
                _total(d.first_dose_at, d.patient_id, scales.c.instrument, before=False),
            ).join(scales, scales.c.patient_id == d.patient_id),
        )
    )


def _recompute(db: Session, clinic_id: int | None, patient_ids: Collection[int] | None) -> None:
    for table in (PatientScaleSummary, PatientFirstDose):
        db.execute(
            delete(table).where(_scope(table.clinic_id, clinic_id, patient_ids, table.patient_id))
        )
    _first_doses(db, clinic_id, patient_ids)
    _scale_summaries(db, clinic_id, patient_ids)


def refresh(db: Session, patient_ids: Collection[int]) -> None:
    """Recompute the summaries of these patients inside the caller's transaction. Call it
    after flushing any write that adds a rating or starts a dose."""
    if patient_ids:
        db.flush()
        _recompute(db, None, set(patient_ids))


def rebuild(db: Session, clinic_id: int | None = None) -> None:
    """Recompute every summary (of one clinic, or of all) from the records themselves."""
    db.flush()
    _recompute(db, clinic_id, None)
