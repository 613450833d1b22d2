"""A patient's outcomes: rating-scale trajectories with their flags (response, remission,
non-response, worsening, new PHQ-9 item 9), stimulant doses per week, and the adverse events
and alerts of each dosing session. Read-only and audited.

A fixed number of queries whatever the patient's history (the chart must not slow down as it
grows): patient, clinic zone, assessments, sessions, adverse-event counts, alert counts and
medications, one each.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.patients import _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.outcomes import patient_outcomes as compute_outcomes
from ketacare.clinical.stimulants import stimulant_doses
from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.outcome_defs import load_outcomes
from ketacare.store.models import (
    AdverseEvent,
    Assessment,
    Clinic,
    MedicationEntry,
    SessionAlert,
    TreatmentSession,
)
from ketacare.store.types import utcnow

# The stimulant chart starts this long before the first rating or dose, to show the doses
# the patient came in on, and spans at most MAX_STIMULANT_WEEKS.
STIMULANT_LEAD_DAYS = 28
STIMULANT_DEFAULT_DAYS = 12 * 7
MAX_STIMULANT_WEEKS = 104


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TrajectoryPointOut(_Out):
    administered_at: datetime
    total: int
    role: Literal["pre_baseline", "baseline", "follow_up"]
    change: int | None
    percent_change: float | None


class WeeklyPointOut(_Out):
    iso_year: int
    iso_week: int
    week_start: date
    administered_at: datetime
    total: int
    measurements: int
    change: int | None
    percent_change: float | None


class SessionPointOut(_Out):
    session: int = Field(description="Dosing session number, 1 = the first dose")
    dose_started_at: datetime
    administered_at: datetime
    total: int
    measurements: int = Field(description="Ratings between this dose and the next")
    change: int | None
    percent_change: float | None


class OutcomeFlagOut(_Out):
    code: str = Field(description="response | remission | non_response | worsening | item9_new")
    label: str
    status: Literal["met", "not_met", "unknown", "not_applicable"]
    text: str = Field(description="What was found for this patient")
    definition: str = Field(description="The rule as written for clinicians, values filled in")
    evidence: Literal["V", "S", "M"]
    sources: list[str]
    at: datetime | None = Field(description="The rating that decided it")


class InstrumentOutcomeOut(_Out):
    instrument: str
    short_name: str
    label: str
    max_total: int
    exploratory: bool
    exploratory_text: str | None
    baseline: TrajectoryPointOut | None
    baseline_reason: str | None
    latest: TrajectoryPointOut | None = Field(description="The latest rating after the baseline")
    change: int | None
    percent_change: float | None
    percent_change_reason: str | None = Field(description="Why the percent is None")
    trajectory: list[TrajectoryPointOut]
    weekly: list[WeeklyPointOut] = Field(description="The last rating of each ISO week")
    per_session: list[SessionPointOut] = Field(
        description="The last rating after each dosing session, before the next dose"
    )
    flags: list[OutcomeFlagOut]
    baseline_definition: str
    percent_change_definition: str
    dosed_sessions: int
    first_dose_at: datetime | None
    thresholds: dict[str, int | float]
    sources: list[str]
    tz: str
    knowledge_version: str


class DoseReadingOut(_Out):
    text: str | None
    status: Literal["read", "unknown"]
    mg_per_day: float | None
    reason: str | None
    administrations: list[tuple[float, float]]


class EntryDoseOut(_Out):
    entry_id: int | None
    name: str
    ingredient: str
    dose_text: str | None
    reading: DoseReadingOut
    start_date: date | None
    stop_date: date | None
    status: str


class WeekDoseOut(_Out):
    iso_year: int
    iso_week: int
    week_start: date
    status: Literal["dose", "not_taken", "unknown"]
    mg_per_day: float | None
    lowest_mg_per_day: float | None
    days_taken: int
    reason: str | None


class IngredientWeeksOut(_Out):
    ingredient: str
    entries: list[EntryDoseOut]
    weeks: list[WeekDoseOut]


class StimulantDosesOut(_Out):
    start: date
    end: date
    ingredients: list[IngredientWeeksOut]
    unrecognized: list[str] = Field(description="Names matching no medicine: check them")
    text: str
    evidence: str
    sources: list[str]
    classes: list[str]
    knowledge_version: str


class SessionSafetyOut(BaseModel):
    """One dosing session with the adverse events and alerts recorded in it."""

    session_id: int
    course_id: int | None
    number: int | None
    protocol_id: str
    status: str
    scheduled_at: datetime
    dose_started_at: datetime | None
    adverse_events: int
    serious_adverse_events: int
    severe_adverse_events: int
    alerts: int
    critical_alerts: int


class ReferenceOut(BaseModel):
    id: str
    title: str
    citation: str | None = None
    evidence: str


class PatientOutcomesOut(BaseModel):
    patient_id: int
    generated_at: datetime
    timezone: str
    knowledge_version: str
    notice: str = Field(description="What the evidence does and does not show")
    notice_sources: list[str]
    note: str
    thresholds: dict[str, int | float] = Field(description="Every outcome setting in force")
    overridden: list[str]
    dosed_sessions: int
    first_dose_at: datetime | None
    instruments: list[InstrumentOutcomeOut]
    stimulants: StimulantDosesOut
    sessions: list[SessionSafetyOut]
    references: dict[str, ReferenceOut] = Field(description="Every source cited, by id")


def _stimulant_range(
    today: date, assessed: list[datetime], first_dose_at: datetime | None, zone: ZoneInfo
) -> tuple[date, date]:
    moments = [*assessed, *([first_dose_at] if first_dose_at else [])]
    if moments:
        start = min(m.astimezone(zone).date() for m in moments) - timedelta(STIMULANT_LEAD_DAYS)
    else:
        start = today - timedelta(STIMULANT_DEFAULT_DAYS)
    start = max(min(start, today), today - timedelta(weeks=MAX_STIMULANT_WEEKS))
    return start, today


def _references(ids: set[str]) -> dict[str, ReferenceOut]:
    known = load_catalog().references
    return {
        ref_id: ReferenceOut(
            id=ref_id,
            title=known[ref_id].title,
            citation=known[ref_id].citation,
            evidence=known[ref_id].evidence,
        )
        for ref_id in sorted(ids)
        if ref_id in known
    }


def _cited(out: PatientOutcomesOut) -> set[str]:
    ids = set(out.notice_sources) | set(out.stimulants.sources)
    for scale in out.instruments:
        ids |= set(scale.sources)
        for flag in scale.flags:
            ids |= set(flag.sources)
    return ids


def patient_outcomes(
    db: Session, actor: Actor, patient_id: int, *, now: datetime | None = None
) -> PatientOutcomesOut:
    """The patient's outcomes as the clinician reviews them (PATIENT_READ; researchers use
    the de-identified export instead). In-session ratings (CADSS, MOAA/S, anything recorded
    in a session) are left out."""
    with audited(db, actor, "outcomes.view", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        tz = db.scalar(select(Clinic.timezone).where(Clinic.id == actor.clinic_id)) or "UTC"
        zone = ZoneInfo(tz)
        defs = load_outcomes()
        assessments = db.execute(
            select(
                Assessment.instrument,
                Assessment.administered_at,
                Assessment.total,
                Assessment.answers,
            ).where(
                Assessment.clinic_id == actor.clinic_id,
                Assessment.patient_id == patient.id,
                Assessment.session_id.is_(None),
                Assessment.instrument.in_(defs.instrument_ids),
            )
        ).all()
        sessions = db.scalars(
            select(TreatmentSession)
            .where(
                TreatmentSession.clinic_id == actor.clinic_id,
                TreatmentSession.patient_id == patient.id,
            )
            .order_by(TreatmentSession.scheduled_at, TreatmentSession.id)
        ).all()
        events = {
            row.session_id: row
            for row in db.execute(
                select(
                    AdverseEvent.session_id,
                    func.count().label("total"),
                    func.sum(case((AdverseEvent.serious.is_(True), 1), else_=0)).label("serious"),
                    func.sum(case((AdverseEvent.severity == "severe", 1), else_=0)).label("severe"),
                )
                .where(
                    AdverseEvent.clinic_id == actor.clinic_id,
                    AdverseEvent.patient_id == patient.id,
                )
                .group_by(AdverseEvent.session_id)
            )
        }
        alerts = {
            row.session_id: row
            for row in db.execute(
                select(
                    SessionAlert.session_id,
                    func.count().label("total"),
                    func.sum(case((SessionAlert.severity == "critical", 1), else_=0)).label(
                        "critical"
                    ),
                )
                .join(TreatmentSession, TreatmentSession.id == SessionAlert.session_id)
                .where(
                    SessionAlert.clinic_id == actor.clinic_id,
                    TreatmentSession.patient_id == patient.id,
                )
                .group_by(SessionAlert.session_id)
            )
        }
        medications = db.scalars(
            select(MedicationEntry).where(
                MedicationEntry.clinic_id == actor.clinic_id,
                MedicationEntry.patient_id == patient.id,
            )
        ).all()

        dosed = [s for s in sessions if s.dose_started_at is not None]
        dose_times = sorted(s.dose_started_at for s in dosed if s.dose_started_at is not None)
        outcomes = compute_outcomes(
            [(a.instrument, a.administered_at, a.total, a.answers) for a in assessments],
            dosed_sessions=dose_times,
            definitions=defs,
            tz=tz,
            # Non-response is judged at the checkpoint of the protocol dosed.
            protocol_ids=[s.protocol_id for s in dosed],
        )
        generated = now or utcnow()
        start, end = _stimulant_range(
            generated.astimezone(zone).date(),
            [a.administered_at for a in assessments],
            outcomes.first_dose_at,
            zone,
        )
        stimulants = stimulant_doses(
            [
                {
                    "id": m.id,
                    "name": m.name_entered,
                    "dose_text": m.dose_text,
                    "start_date": m.start_date,
                    "stop_date": m.stop_date,
                    "status": m.status,
                    "recorded_on": m.created_at.astimezone(zone).date(),
                }
                for m in medications
            ],
            start=start,
            end=end,
        )
        safety = [
            SessionSafetyOut(
                session_id=s.id,
                course_id=s.course_id,
                number=s.number,
                protocol_id=s.protocol_id,
                status=s.status,
                scheduled_at=s.scheduled_at,
                dose_started_at=s.dose_started_at,
                adverse_events=int(events[s.id].total) if s.id in events else 0,
                serious_adverse_events=int(events[s.id].serious or 0) if s.id in events else 0,
                severe_adverse_events=int(events[s.id].severe or 0) if s.id in events else 0,
                alerts=int(alerts[s.id].total) if s.id in alerts else 0,
                critical_alerts=int(alerts[s.id].critical or 0) if s.id in alerts else 0,
            )
            for s in sessions
            if s.dose_started_at is not None or s.id in events or s.id in alerts
        ]
        out = PatientOutcomesOut(
            patient_id=patient.id,
            generated_at=generated,
            timezone=tz,
            knowledge_version=outcomes.knowledge_version,
            notice=outcomes.notice,
            notice_sources=list(outcomes.notice_sources),
            note=outcomes.note,
            thresholds=dict(outcomes.thresholds),
            overridden=list(outcomes.overridden),
            dosed_sessions=outcomes.dosed_sessions,
            first_dose_at=outcomes.first_dose_at,
            instruments=[InstrumentOutcomeOut.model_validate(i) for i in outcomes.instruments],
            stimulants=StimulantDosesOut.model_validate(stimulants),
            sessions=safety,
            references={},
        )
        out.references = _references(_cited(out))
        note.detail = {
            "raised": [f"{i.instrument}:{f.code}" for i, f in raised_flags(out)],
            "dosed_sessions": out.dosed_sessions,
        }
        return out


def raised_flags(out: PatientOutcomesOut) -> list[tuple[InstrumentOutcomeOut, OutcomeFlagOut]]:
    """The flags that are met, scale by scale (for summaries: the PDF report, a dashboard)."""
    return [(i, f) for i in out.instruments for f in i.flags if f.status == "met"]
