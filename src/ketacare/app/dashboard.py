"""The clinic dashboard: patients by stage, response rates by protocol, alerts and adverse events
per 100 dosing sessions, and today's work. Every figure is aggregated in SQL (a fixed number of
statements, whatever the clinic's size), so it stays fast at 10^5 patients.

Response follows the outcome definitions of ``knowledge/outcomes.yaml`` (the same thresholds the
chart uses): baseline = the last rating on or before the patient's first dose, latest = the last
rating after it; a patient is evaluable when both exist and the baseline is at least the
scale's minimum. A rate is a count of patients, shown with its denominator; never an efficacy
claim."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import and_, case, false, func, literal, select
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.clinic_settings import effective_settings
from ketacare.app.errors import InvalidInput
from ketacare.app.patients import Stage
from ketacare.app.permissions import Actor, Permission, require
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.outcome_defs import load_outcomes
from ketacare.knowledge.protocol_defs import load_protocols
from ketacare.store.models import (
    AdverseEvent,
    Assessment,
    FlagAcknowledgement,
    Patient,
    PatientFirstDose,
    PatientScaleSummary,
    SessionAlert,
    TherapySession,
    TreatmentSession,
)
from ketacare.store.types import utcnow

RECORDING = ("in_progress", "paused", "stopped")
DEFAULT_DAYS = 90


class DashboardFilter(BaseModel):
    """Local dates of the clinic, both included; default the last 90 days."""

    date_from: date | None = None
    date_to: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> DashboardFilter:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from: must not be after date_to")
        return self


class StageCount(BaseModel):
    stage: str
    patients: int


class ResponseRate(BaseModel):
    protocol_id: str
    protocol: str
    instrument: str
    label: str
    exploratory: bool
    response_fall_percent: float
    min_baseline: float
    patients: int = Field(description="Patients whose first dose falls in the period")
    evaluable: int = Field(description="With a baseline of at least the minimum and a later rating")
    responders: int
    rate: float | None = Field(description="responders / evaluable; None when none evaluable")


class SafetyRates(BaseModel):
    sessions: int = Field(description="Dosing sessions whose dose started in the period")
    alerts: int
    critical_alerts: int
    adverse_events: int
    serious_adverse_events: int
    alerts_per_100: float | None
    critical_alerts_per_100: float | None
    adverse_events_per_100: float | None
    serious_adverse_events_per_100: float | None


class Today(BaseModel):
    dosing_sessions: int
    running: int
    awaiting_sign_off: int
    therapy_sessions: int
    unsigned_therapy_notes: int
    urgent_flags: int


class Dashboard(BaseModel):
    date_from: date
    date_to: date
    stages: list[StageCount]
    patients: int
    response: list[ResponseRate]
    safety: SafetyRates
    today: Today
    definitions: dict[str, Any]
    notice: str
    knowledge_version: str


def _per_100(count: int, sessions: int) -> float | None:
    return round(count * 100 / sessions, 1) if sessions else None


def _bounds(day_from: date, day_to: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day_from, time.min, tzinfo=zone)
    end = datetime.combine(day_to + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def _stages(db: Session, clinic_id: int) -> list[StageCount]:
    counts = dict(
        db.execute(
            select(Patient.stage, func.count())
            .where(Patient.clinic_id == clinic_id)
            .group_by(Patient.stage)
        ).all()
    )
    return [StageCount(stage=s.value, patients=int(counts.get(s.value, 0))) for s in Stage]


def _response(db: Session, clinic_id: int, start: datetime, end: datetime) -> list[ResponseRate]:
    """Per protocol of the first dose, the patients whose first dose falls in the period and,
    per outcome scale, how many could be evaluated and how many responded. Two statements
    over the per-patient summaries (app/outcome_summaries.py), not a lookup per patient."""
    outcomes = load_outcomes()
    values = outcomes.values()
    scales = outcomes.instruments
    cohort = and_(
        PatientFirstDose.clinic_id == clinic_id,
        PatientFirstDose.first_dose_at >= start,
        PatientFirstDose.first_dose_at < end,
    )
    patients = dict(
        db.execute(
            select(PatientFirstDose.protocol_id, func.count())
            .where(cohort)
            .group_by(PatientFirstDose.protocol_id)
        ).all()
    )
    base, last = PatientScaleSummary.baseline_total, PatientScaleSummary.latest_total
    evaluable = case(
        *(
            (
                PatientScaleSummary.instrument == scale.id,
                base >= (values[scale.min_baseline_setting] if scale.min_baseline_setting else 0),
            )
            for scale in scales
        ),
        else_=false(),
    )
    percent = case(
        *(
            (PatientScaleSummary.instrument == scale.id, literal(values[scale.response_setting]))
            for scale in scales
        ),
    )
    evaluable = and_(base.is_not(None), last.is_not(None), evaluable)
    # Exact integer arithmetic: (baseline - latest) * 100 >= percent * baseline.
    responded = and_(evaluable, (base - last) * 100 >= percent * base)
    counted = {
        (row.protocol_id, row.instrument): row
        for row in db.execute(
            select(
                PatientFirstDose.protocol_id,
                PatientScaleSummary.instrument,
                func.sum(case((evaluable, 1), else_=0)).label("evaluable"),
                func.sum(case((responded, 1), else_=0)).label("responders"),
            )
            .join(
                PatientScaleSummary, PatientScaleSummary.patient_id == PatientFirstDose.patient_id
            )
            .where(cohort, PatientScaleSummary.instrument.in_([scale.id for scale in scales]))
            .group_by(PatientFirstDose.protocol_id, PatientScaleSummary.instrument)
        ).all()
    }
    protocols = load_protocols()
    out: list[ResponseRate] = []
    for protocol_id, count in sorted(patients.items()):
        for scale in scales:
            row = counted.get((protocol_id, scale.id))
            evaluable_n = int(row.evaluable or 0) if row else 0
            responders = int(row.responders or 0) if row else 0
            out.append(
                ResponseRate(
                    protocol_id=protocol_id,
                    protocol=protocols[protocol_id].name
                    if protocol_id in protocols
                    else protocol_id,
                    instrument=scale.id,
                    label=scale.label,
                    exploratory=scale.exploratory,
                    response_fall_percent=values[scale.response_setting],
                    min_baseline=values[scale.min_baseline_setting]
                    if scale.min_baseline_setting
                    else 0,
                    patients=int(count),
                    evaluable=evaluable_n,
                    responders=responders,
                    rate=round(responders / evaluable_n, 3) if evaluable_n else None,
                )
            )
    return out


def _safety(db: Session, clinic_id: int, start: datetime, end: datetime) -> SafetyRates:
    in_period = and_(
        TreatmentSession.clinic_id == clinic_id,
        TreatmentSession.dose_started_at >= start,
        TreatmentSession.dose_started_at < end,
    )
    sessions = db.scalar(select(func.count()).select_from(TreatmentSession).where(in_period)) or 0
    alert_row = db.execute(
        select(
            func.count(SessionAlert.id),
            func.sum(case((SessionAlert.severity == "critical", 1), else_=0)),
        )
        .join(TreatmentSession, TreatmentSession.id == SessionAlert.session_id)
        .where(in_period)
    ).one()
    event_row = db.execute(
        select(
            func.count(AdverseEvent.id),
            func.sum(case((AdverseEvent.serious.is_(True), 1), else_=0)),
        )
        .join(TreatmentSession, TreatmentSession.id == AdverseEvent.session_id)
        .where(in_period)
    ).one()
    alerts, critical = int(alert_row[0] or 0), int(alert_row[1] or 0)
    events, serious = int(event_row[0] or 0), int(event_row[1] or 0)
    return SafetyRates(
        sessions=sessions,
        alerts=alerts,
        critical_alerts=critical,
        adverse_events=events,
        serious_adverse_events=serious,
        alerts_per_100=_per_100(alerts, sessions),
        critical_alerts_per_100=_per_100(critical, sessions),
        adverse_events_per_100=_per_100(events, sessions),
        serious_adverse_events_per_100=_per_100(serious, sessions),
    )


def _today(db: Session, clinic_id: int, zone: ZoneInfo, today: date) -> Today:
    start, end = _bounds(today, today, zone)
    todays = and_(
        TreatmentSession.clinic_id == clinic_id,
        TreatmentSession.scheduled_at >= start,
        TreatmentSession.scheduled_at < end,
    )
    open_session = and_(
        TreatmentSession.clinic_id == clinic_id,
        TreatmentSession.status.in_(RECORDING),
        TreatmentSession.signed_at.is_(None),
    )
    dosing = db.execute(
        select(
            func.sum(case((todays, 1), else_=0)),
            func.sum(
                case((and_(open_session, TreatmentSession.dose_ended_at.is_(None)), 1), else_=0)
            ),
            func.sum(
                case((and_(open_session, TreatmentSession.dose_ended_at.is_not(None)), 1), else_=0)
            ),
        ).where(TreatmentSession.clinic_id == clinic_id, todays | open_session)
    ).one()
    therapy = db.execute(
        select(
            func.sum(
                case(
                    (
                        and_(
                            TherapySession.scheduled_at >= start, TherapySession.scheduled_at < end
                        ),
                        1,
                    ),
                    else_=0,
                )
            ),
            func.sum(
                case(
                    (
                        and_(TherapySession.signed_at.is_(None), TherapySession.scheduled_at < end),
                        1,
                    ),
                    else_=0,
                )
            ),
        ).where(
            TherapySession.clinic_id == clinic_id,
            TherapySession.status == "scheduled",
            TherapySession.scheduled_at < end,
        )
    ).one()
    urgent = (
        db.scalar(
            select(func.count(Assessment.id))
            .outerjoin(FlagAcknowledgement, FlagAcknowledgement.assessment_id == Assessment.id)
            .where(
                Assessment.clinic_id == clinic_id,
                Assessment.urgent.is_(True),
                FlagAcknowledgement.id.is_(None),
            )
        )
        or 0
    )
    return Today(
        dosing_sessions=int(dosing[0] or 0),
        running=int(dosing[1] or 0),
        awaiting_sign_off=int(dosing[2] or 0),
        therapy_sessions=int(therapy[0] or 0),
        unsigned_therapy_notes=int(therapy[1] or 0),
        urgent_flags=int(urgent),
    )


def clinic_dashboard(db: Session, actor: Actor, flt: DashboardFilter) -> Dashboard:
    with audited(db, actor, "dashboard.view") as note:
        require(actor, Permission.PATIENT_READ)
        zone = ZoneInfo(effective_settings(db, actor.clinic_id).timezone)
        today = utcnow().astimezone(zone).date()
        date_to = flt.date_to or today
        date_from = flt.date_from or date_to - timedelta(days=DEFAULT_DAYS - 1)
        if (date_to - date_from).days > 3660:
            raise InvalidInput("date_from", "Choose a period of at most ten years.")
        start, end = _bounds(date_from, date_to, zone)
        stages = _stages(db, actor.clinic_id)
        outcomes = load_outcomes()
        note.detail = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}
        return Dashboard(
            date_from=date_from,
            date_to=date_to,
            stages=stages,
            patients=sum(s.patients for s in stages),
            response=_response(db, actor.clinic_id, start, end),
            safety=_safety(db, actor.clinic_id, start, end),
            today=_today(db, actor.clinic_id, zone, today),
            definitions={
                d.id: {"label": d.label, "text": d.text, "evidence": d.evidence}
                for d in outcomes.definitions
                if d.id in ("baseline", "response")
            },
            notice=" ".join(outcomes.notice.text.split()),
            knowledge_version=knowledge_version(),
        )
