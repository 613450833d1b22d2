"""PDF reports of a patient: the progress report (for the clinician or the referring
physician) and the patient information sheet (plain language, with the corrected FAQ).

The data of a report is read in one audited transaction with a fixed number of queries,
whatever the length of the record; the PDF is drawn after that transaction ends, so no
database lock is held while the pages are laid out.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.interactions import screen_current
from ketacare.app.outcomes import patient_outcomes
from ketacare.app.patients import MedicationStatus, _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.knowledge import knowledge_version, load_yaml
from ketacare.knowledge.catalog import Reference, load_catalog
from ketacare.knowledge.instrument_defs import get_instrument, reference_ids
from ketacare.knowledge.protocol_defs import ProtocolDef, load_protocols
from ketacare.knowledge.session_defs import load_session_checks
from ketacare.reports import charts, pdf
from ketacare.store.models import (
    AdverseEvent,
    Assessment,
    Clinic,
    ConsentRecord,
    DoseOrder,
    DoseVerification,
    EligibilityReview,
    MedicationEntry,
    Patient,
    SessionAlert,
    SessionAmendment,
    TherapySession,
    TreatmentCourse,
    TreatmentSession,
    User,
)
from ketacare.store.types import utcnow

# Rating scales charted over time (session ratings, CADSS and MOAA/S, belong to a session).
CHARTED = ("phq9", "gad7", "asrs")
PROGRAMME_SCALES = ("phq9", "gad7", "asrs", "cssrs")
CHART_WIDTH = 600  # pixels: with the axes, about the printable width of A4 at 96 dpi


# --- the patient FAQ and the information sheet (knowledge/faq.yaml) ----------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SheetSection(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str = Field(min_length=1)
    text: str = Field(min_length=1)
    sources: tuple[str, ...] = Field(min_length=1)


class FaqEntry(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    sources: tuple[str, ...] = Field(min_length=1)


class Faq(_Strict):
    version: str = Field(min_length=1)
    title: str = Field(min_length=1)
    sections: tuple[SheetSection, ...] = Field(min_length=1)
    questions: tuple[FaqEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Faq:
        for name, ids in (
            ("sections", [s.id for s in self.sections]),
            ("questions", [q.id for q in self.questions]),
        ):
            if len(ids) != len(set(ids)):
                raise ValueError(f"faq.yaml {name}: ids repeated")
        return self

    def all_source_ids(self) -> set[str]:
        return {s for entry in (*self.sections, *self.questions) for s in entry.sources}


@cache
def load_faq() -> Faq:
    """knowledge/faq.yaml, validated: every section and answer cites known references."""
    data = Faq.model_validate(load_yaml("faq.yaml"))
    missing = sorted(data.all_source_ids() - reference_ids())
    if missing:
        raise ValueError(f"faq.yaml: sources not in references.yaml: {missing}")
    return data


# --- what a report shows -----------------------------------------------------------------------


class Cited(BaseModel):
    """A reference as a report prints it."""

    id: str
    title: str
    evidence: str

    @classmethod
    def of(cls, ref: Reference) -> Cited:
        return cls(id=ref.id, title=ref.title, evidence=ref.evidence)


class Header(BaseModel):
    patient_id: int
    mrn: str
    family_name: str
    given_name: str
    date_of_birth: date
    sex: str
    stage: str
    clinic_name: str
    clinic_timezone: str


class ReviewLine(BaseModel):
    final_decision: str
    computed_decision: str
    override_reason: str | None
    signed_by: str | None
    signed_at: datetime
    amends: bool
    reasons: list[dict[str, Any]]


class ConsentLine(BaseModel):
    status: str
    consent_version: str
    recorded_by: str | None
    recorded_at: datetime
    note: str | None


class SessionLine(BaseModel):
    id: int
    number: int | None
    scheduled_at: datetime
    dosed_at: datetime | None
    status: str
    dose_mg: float | None
    mg_per_kg: float | None
    order_status: str | None
    gate_band: str | None
    gate_override: str | None
    precheck_band: str | None
    alerts: int
    adverse_events: list[str]
    discharge: str
    signed_by: str | None
    signed_at: datetime | None


class CourseBlock(BaseModel):
    id: int | None
    protocol_id: str
    protocol_name: str
    start_date: date | None
    end_date: date | None
    status: str
    stop_reason: str | None
    revision: int
    sessions: list[SessionLine]


class ScoreLine(BaseModel):
    instrument: str
    short_name: str
    administered_at: datetime
    total: int
    max: int
    band: str | None
    source: str


class MedicineLine(BaseModel):
    name: str
    dose_text: str | None
    status: str
    start_date: date | None


class FindingLine(BaseModel):
    medicine: str
    ingredient: str
    title: str
    severity: str
    effect: str
    management: str
    evidence: str
    conflict: str | None
    sources: list[str]
    washout: list[str] = []


class InteractionBlock(BaseModel):
    screen_id: int | None
    screened_at: datetime | None
    agent: str
    route: str
    knowledge_version: str
    findings: list[FindingLine]
    no_known_interaction: list[str]
    not_reviewed: list[str]
    unrecognized: list[str]
    # False: the screen did not run; the lists above then mean nothing.
    screened: bool = True
    not_screened_reason: str | None = None


class AdverseEventLine(BaseModel):
    onset_at: datetime
    session_number: int | None
    label: str
    severity: str
    serious: bool
    action: str | None
    outcome: str


class Signature(BaseModel):
    at: datetime
    what: str
    who: str | None


class ProgressReport(BaseModel):
    header: Header
    generated_at: datetime
    knowledge_version: str
    review: ReviewLine | None
    consent: ConsentLine | None
    courses: list[CourseBlock]
    scores: list[ScoreLine]
    # ketacare.app.outcomes.patient_outcomes, when that use-case is installed.
    outcomes: Any | None = None
    medications: list[MedicineLine]
    interactions: InteractionBlock
    adverse_events: list[AdverseEventLine]
    signatures: list[Signature]
    references: dict[str, Cited]


class PatientSheet(BaseModel):
    header: Header
    generated_at: datetime
    knowledge_version: str
    faq: Faq
    protocol_name: str | None
    fasting: str
    observation_minutes: int | None
    interactions: InteractionBlock
    # The sheet's sources, numbered in the order they are first cited.
    source_numbers: dict[str, int]
    cited: list[Cited]

    def cite(self, ids: tuple[str, ...] | list[str]) -> str:
        """ "[2, 5]"-style numbers of these sources in the sheet's list."""
        return ", ".join(str(n) for n in sorted({self.source_numbers[i] for i in ids}))


# --- gathering ---------------------------------------------------------------------------------


def _names(db: Session, clinic_id: int, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.execute(
        select(User.id, User.display_name).where(User.id.in_(wanted), User.clinic_id == clinic_id)
    ).all()
    return {r.id: r.display_name for r in rows}


def _header(patient: Patient, clinic: Clinic) -> Header:
    return Header(
        patient_id=patient.id,
        mrn=patient.mrn,
        family_name=patient.family_name,
        given_name=patient.given_name,
        date_of_birth=patient.date_of_birth,
        sex=patient.sex,
        stage=patient.stage,
        clinic_name=clinic.name,
        clinic_timezone=clinic.timezone,
    )


def _clinic(db: Session, clinic_id: int) -> Clinic:
    clinic = db.get(Clinic, clinic_id)
    assert clinic is not None  # the actor's own clinic
    return clinic


def _protocol(protocol_id: str) -> ProtocolDef | None:
    return load_protocols().get(protocol_id)


def _interactions(
    db: Session, actor: Actor, patient: Patient, protocol: ProtocolDef | None
) -> InteractionBlock:
    """The stored screen of the current medicines (screened and stored now when the list or the
    knowledge changed since the last one), for the agent and route of the patient's protocol
    (without one, of the planned protocol)."""
    agent = protocol.agent if protocol else None
    route = protocol.route if protocol else None
    out, _reused, _names_screened = screen_current(db, actor, patient, agent=agent, route=route)
    return InteractionBlock(
        screen_id=out.screen_id,
        screened_at=out.screened_at,
        agent=out.agent,
        route=out.route,
        knowledge_version=out.knowledge_version,
        findings=[
            FindingLine(
                medicine=f["input"],
                ingredient=f["ingredient"],
                title=f["title"],
                severity=f["severity"],
                effect=f["effect"],
                management=f["management"],
                evidence=f["evidence"],
                conflict=f.get("conflict"),
                sources=list(f["sources"]),
                washout=list(f.get("washout") or ()),
            )
            for f in out.findings
        ],
        no_known_interaction=[e["input"] for e in out.no_known_interaction],
        not_reviewed=[e["input"] for e in out.not_reviewed],
        unrecognized=[e["input"] for e in out.unrecognized],
        screened=out.screened,
        not_screened_reason=out.not_screened_reason,
    )


def _discharge_text(row: TreatmentSession) -> str:
    discharge = row.discharge
    if not discharge:
        return ""
    if discharge.get("allowed"):
        return "criteria met"
    pending = [
        str(c.get("id", "")).replace("_", " ")
        for c in discharge.get("criteria", [])
        if c.get("required") and c.get("status") != "met"
    ]
    text = f"not met: {', '.join(pending)}" if pending else "criteria not met"
    reason = discharge.get("override_reason")
    return f"{text}; signed with the reason: {reason}" if reason else text


def _gather_progress(db: Session, actor: Actor, patient: Patient) -> ProgressReport:
    clinic = _clinic(db, actor.clinic_id)
    reviews = list(
        db.scalars(
            select(EligibilityReview)
            .where(EligibilityReview.patient_id == patient.id)
            .order_by(EligibilityReview.signed_at, EligibilityReview.id)
        )
    )
    consents = list(
        db.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.patient_id == patient.id)
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        )
    )
    courses = list(
        db.scalars(
            select(TreatmentCourse)
            .where(TreatmentCourse.patient_id == patient.id)
            .order_by(TreatmentCourse.start_date, TreatmentCourse.id)
        )
    )
    sessions = list(
        db.scalars(
            select(TreatmentSession)
            .where(TreatmentSession.patient_id == patient.id)
            .order_by(TreatmentSession.scheduled_at, TreatmentSession.id)
        )
    )
    of_patient = select(TreatmentSession.id).where(TreatmentSession.patient_id == patient.id)
    orders = list(
        db.scalars(
            select(DoseOrder)
            .where(DoseOrder.session_id.in_(of_patient))
            .order_by(DoseOrder.ordered_at, DoseOrder.id)
        )
    )
    verifications = list(
        db.scalars(
            select(DoseVerification)
            .join(DoseOrder, DoseOrder.id == DoseVerification.order_id)
            .where(DoseOrder.session_id.in_(of_patient))
        )
    )
    alert_counts = dict(
        db.execute(
            select(SessionAlert.session_id, func.count(SessionAlert.id))
            .where(SessionAlert.session_id.in_(of_patient))
            .group_by(SessionAlert.session_id)
        ).all()
    )
    adverse = list(
        db.scalars(
            select(AdverseEvent)
            .where(AdverseEvent.patient_id == patient.id)
            .order_by(AdverseEvent.onset_at, AdverseEvent.id)
        )
    )
    amendments = list(
        db.scalars(
            select(SessionAmendment)
            .where(SessionAmendment.session_id.in_(of_patient))
            .order_by(SessionAmendment.recorded_at, SessionAmendment.id)
        )
    )
    therapy_signed = list(
        db.scalars(
            select(TherapySession)
            .where(TherapySession.patient_id == patient.id, TherapySession.signed_at.is_not(None))
            .order_by(TherapySession.signed_at, TherapySession.id)
        )
    )
    assessments = list(
        db.scalars(
            select(Assessment)
            .where(
                Assessment.patient_id == patient.id,
                Assessment.session_id.is_(None),
                Assessment.instrument.in_(PROGRAMME_SCALES),
            )
            .order_by(Assessment.administered_at, Assessment.id)
        )
    )
    medications = list(
        db.scalars(
            select(MedicationEntry)
            .where(
                MedicationEntry.patient_id == patient.id,
                MedicationEntry.status.in_(
                    (MedicationStatus.ACTIVE.value, MedicationStatus.ON_HOLD.value)
                ),
            )
            .order_by(MedicationEntry.name_entered, MedicationEntry.id)
        )
    )
    latest_protocol = _protocol(courses[-1].protocol_id) if courses else None
    if latest_protocol is None and sessions:
        latest_protocol = _protocol(sessions[-1].protocol_id)
    interactions = _interactions(db, actor, patient, latest_protocol)
    names = _names(
        db,
        actor.clinic_id,
        {r.signed_by for r in reviews}
        | {c.recorded_by for c in consents}
        | {s.signed_by for s in sessions}
        | {o.ordered_by for o in orders}
        | {v.verified_by for v in verifications}
        | {a.recorded_by for a in amendments}
        | {t.therapist_id for t in therapy_signed},
    )

    def who(user_id: int | None) -> str | None:
        return names.get(user_id) if user_id is not None else None

    checks = load_session_checks()
    ae_label = {a.code: a.label for a in checks.adverse_events}
    ae_by_session: dict[int, list[str]] = defaultdict(list)
    for event in adverse:
        label = ae_label.get(event.code, event.code)
        ae_by_session[event.session_id].append(f"{label} ({event.severity})")
    # The order in force is the last one (a changed order is a new row).
    order_of: dict[int, DoseOrder] = {o.session_id: o for o in orders}
    number_of = {s.id: s.number for s in sessions}

    def line(row: TreatmentSession) -> SessionLine:
        order = order_of.get(row.id)
        gate = row.gate or {}
        return SessionLine(
            id=row.id,
            number=row.number,
            scheduled_at=row.scheduled_at,
            dosed_at=row.dose_started_at,
            status=row.status,
            dose_mg=order.dose_mg if order and order.status == "ordered" else None,
            mg_per_kg=order.mg_per_kg if order and order.status == "ordered" else None,
            order_status=order.status if order else None,
            gate_band=gate.get("band"),
            gate_override=row.gate_override_reason,
            precheck_band=(row.prechecks or {}).get("band"),
            alerts=int(alert_counts.get(row.id, 0)),
            adverse_events=ae_by_session.get(row.id, []),
            discharge=_discharge_text(row),
            signed_by=who(row.signed_by),
            signed_at=row.signed_at,
        )

    by_course: dict[int | None, list[SessionLine]] = defaultdict(list)
    for row in sessions:
        by_course[row.course_id].append(line(row))
    blocks = []
    for course in courses:
        rows = by_course.pop(course.id, [])
        protocol = _protocol(course.protocol_id)
        planned_end = max(
            (s["start"][:10] for s in course.plan.get("sessions", []) if s.get("start")),
            default=None,
        )
        blocks.append(
            CourseBlock(
                id=course.id,
                protocol_id=course.protocol_id,
                protocol_name=protocol.name if protocol else course.protocol_id,
                start_date=course.start_date,
                end_date=date.fromisoformat(planned_end) if planned_end else None,
                status=course.status,
                stop_reason=course.stop_reason,
                revision=course.revision,
                sessions=rows,
            )
        )
    for course_id, rows in by_course.items():
        # Sessions outside any course (or of a course in another list): shown on their own.
        first = next(s for s in sessions if s.id == rows[0].id)
        protocol = _protocol(first.protocol_id)
        blocks.append(
            CourseBlock(
                id=course_id,
                protocol_id=first.protocol_id,
                protocol_name=protocol.name if protocol else first.protocol_id,
                start_date=None,
                end_date=None,
                status="sessions outside a planned course",
                stop_reason=None,
                revision=0,
                sessions=rows,
            )
        )

    scores = []
    for a in assessments:
        definition = get_instrument(a.instrument)
        scores.append(
            ScoreLine(
                instrument=a.instrument,
                short_name=definition.short_name,
                administered_at=a.administered_at,
                total=a.total,
                max=definition.scoring.max,
                band=a.band,
                source=a.source,
            )
        )

    signatures: list[Signature] = []
    for r in reviews:
        what = f"Eligibility review: {r.final_decision.replace('_', ' ')}"
        signatures.append(Signature(at=r.signed_at, what=what, who=who(r.signed_by)))
    for c in consents:
        what = f"Consent {c.status} ({c.consent_version})"
        signatures.append(Signature(at=c.recorded_at, what=what, who=who(c.recorded_by)))
    for o in orders:
        number = number_of.get(o.session_id)
        dose = f"{pdf.format_number(o.dose_mg)} mg" if o.dose_mg is not None else "refused"
        signatures.append(
            Signature(
                at=o.ordered_at,
                what=f"Dose order, session {number or o.session_id}: {dose}",
                who=who(o.ordered_by),
            )
        )
    order_session = {o.id: o.session_id for o in orders}
    for v in verifications:
        number = number_of.get(order_session.get(v.order_id, 0))
        signatures.append(
            Signature(
                at=v.verified_at,
                what=f"Dose checked by a second person, session {number or '?'}",
                who=who(v.verified_by),
            )
        )
    for s in sessions:
        if s.signed_at is not None:
            signatures.append(
                Signature(
                    at=s.signed_at,
                    what=f"Session {s.number or s.id} signed off",
                    who=who(s.signed_by),
                )
            )
    for a in amendments:
        signatures.append(
            Signature(
                at=a.recorded_at,
                what=f"Amendment to session {number_of.get(a.session_id) or a.session_id}",
                who=who(a.recorded_by),
            )
        )
    for t in therapy_signed:
        assert t.signed_at is not None
        what = "CBT note amended" if t.amends_id else "CBT note signed"
        signatures.append(Signature(at=t.signed_at, what=what, who=who(t.therapist_id)))
    signatures.sort(key=lambda s: s.at)

    latest_review = reviews[-1] if reviews else None
    latest_consent = consents[-1] if consents else None
    catalog = load_catalog()
    return ProgressReport(
        header=_header(patient, clinic),
        generated_at=utcnow(),
        knowledge_version=knowledge_version(),
        review=ReviewLine(
            final_decision=latest_review.final_decision,
            computed_decision=latest_review.computed_decision,
            override_reason=latest_review.override_reason,
            signed_by=who(latest_review.signed_by),
            signed_at=latest_review.signed_at,
            amends=latest_review.amends_id is not None,
            reasons=list((latest_review.output or {}).get("reasons", [])),
        )
        if latest_review
        else None,
        consent=ConsentLine(
            status=latest_consent.status,
            consent_version=latest_consent.consent_version,
            recorded_by=who(latest_consent.recorded_by),
            recorded_at=latest_consent.recorded_at,
            note=latest_consent.note,
        )
        if latest_consent
        else None,
        courses=blocks,
        scores=scores,
        medications=[
            MedicineLine(
                name=m.name_entered, dose_text=m.dose_text, status=m.status, start_date=m.start_date
            )
            for m in medications
        ],
        interactions=interactions,
        adverse_events=[
            AdverseEventLine(
                onset_at=e.onset_at,
                session_number=number_of.get(e.session_id),
                label=ae_label.get(e.code, e.code),
                severity=e.severity,
                serious=e.serious,
                action=e.action,
                outcome=e.outcome,
            )
            for e in adverse
        ],
        signatures=signatures,
        references={k: Cited.of(v) for k, v in catalog.references.items()},
    )


def progress_data(db: Session, actor: Actor, patient_id: int) -> ProgressReport:
    """Everything the progress report shows, read in one audited transaction."""
    with audited(db, actor, "report.progress", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        data = _gather_progress(db, actor, patient)
        note.detail = {
            "screen_id": data.interactions.screen_id,
            "sessions": sum(len(c.sessions) for c in data.courses),
        }
    # The outcomes use-case audits its own read, in a transaction of its own.
    data.outcomes = patient_outcomes(db, actor, patient_id, now=data.generated_at)
    return data


def sheet_data(db: Session, actor: Actor, patient_id: int) -> PatientSheet:
    """Everything the patient information sheet shows, read in one audited transaction."""
    with audited(db, actor, "report.sheet", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        clinic = _clinic(db, actor.clinic_id)
        protocol_id = db.scalar(
            select(TreatmentCourse.protocol_id)
            .where(TreatmentCourse.patient_id == patient.id)
            .order_by(TreatmentCourse.start_date.desc(), TreatmentCourse.id.desc())
            .limit(1)
        )
        protocol = _protocol(protocol_id) if protocol_id else None
        interactions = _interactions(db, actor, patient, protocol)
        note.detail = {"screen_id": interactions.screen_id}
        fasting_check = load_session_checks().precheck("fasting")
        administration = protocol.administration if protocol else "infusion"
        fasting = fasting_check.instructions.get(
            administration,  # type: ignore[call-overload]
            fasting_check.instructions.get("infusion", ""),
        )
        observation = (
            protocol.monitoring.observation_minutes.value
            if protocol is not None and protocol.monitoring is not None
            else None
        )
        faq = load_faq()
        order: dict[str, int] = {}
        for ids in (
            *(section.sources for section in faq.sections),
            *(f.sources for f in interactions.findings),
            *(q.sources for q in faq.questions),
        ):
            for ref_id in ids:
                order.setdefault(ref_id, len(order) + 1)
        references = load_catalog().references
        return PatientSheet(
            header=_header(patient, clinic),
            generated_at=utcnow(),
            knowledge_version=knowledge_version(),
            faq=faq,
            protocol_name=protocol.name if protocol else None,
            fasting=fasting,
            observation_minutes=observation,
            interactions=interactions,
            source_numbers=order,
            cited=[Cited.of(references[ref_id]) for ref_id in order],
        )


# --- the use-cases -----------------------------------------------------------------------------


def _score_specs(data: ProgressReport) -> list[dict[str, Any]]:
    tz = data.header.clinic_timezone
    specs = []
    for instrument in CHARTED:
        points = [s for s in data.scores if s.instrument == instrument]
        if not points:
            continue
        definition = get_instrument(instrument)
        specs.append(
            charts.scores_chart(
                [p.model_dump() for p in points],
                instrument=definition,
                bands=definition.bands,
                tz=tz,
                width=CHART_WIDTH,
                height=150,
            )
        )
    return specs


def _stimulant_specs(data: ProgressReport) -> list[dict[str, Any]]:
    """The weekly stimulant chart, when the outcomes use-case and its chart are installed."""
    stimulants = data.outcomes.stimulants if data.outcomes else None
    if stimulants is None or not stimulants.ingredients:
        return []
    return [charts.stimulant_chart(stimulants, tz=data.header.clinic_timezone, width=CHART_WIDTH)]


def stimulant_rows(outcomes: Any | None) -> list[dict[str, Any]]:
    """The weekly stimulant doses as table rows, runs of identical weeks merged into one row
    (a course of months prints as a few lines, not one per week)."""
    stimulants = outcomes.stimulants if outcomes is not None else None
    if stimulants is None or not stimulants.ingredients:
        return []

    def cell(week: Any) -> str:
        if week.status == "dose":
            text = pdf.format_number(week.mg_per_day)
            low = week.lowest_mg_per_day
            return (
                f"{text} (from {pdf.format_number(low)})"
                if low not in (None, week.mg_per_day)
                else text
            )
        return "none" if week.status == "not_taken" else "unknown"

    rows: list[dict[str, Any]] = []
    columns = [ingredient.weeks for ingredient in stimulants.ingredients]
    for index, week in enumerate(columns[0]):
        cells = [cell(weeks[index]) for weeks in columns]
        if rows and rows[-1]["cells"] == cells:
            rows[-1]["to"] = week.week_start
        else:
            rows.append({"from": week.week_start, "to": week.week_start, "cells": cells})
    return rows


def render_progress(data: ProgressReport) -> bytes:
    tz = ZoneInfo(data.header.clinic_timezone)
    return pdf.render_pdf(
        "progress.html",
        {
            "r": data,
            "tz": tz,
            "charts": [pdf.chart_svg(spec) for spec in _score_specs(data)],
            "stimulant_charts": [pdf.chart_svg(spec) for spec in _stimulant_specs(data)],
            "stimulant_rows": stimulant_rows(data.outcomes),
        },
        title=f"Progress report: {data.header.family_name}, {data.header.given_name}",
    )


def render_sheet(data: PatientSheet) -> bytes:
    tz = ZoneInfo(data.header.clinic_timezone)
    return pdf.render_pdf(
        "sheet.html",
        {"r": data, "tz": tz},
        title=f"Patient information: {data.header.given_name} {data.header.family_name}",
    )


def progress_report(db: Session, actor: Actor, patient_id: int) -> bytes:
    """The progress report of a patient of the actor's clinic, as PDF bytes."""
    return render_progress(progress_data(db, actor, patient_id))


def patient_sheet(db: Session, actor: Actor, patient_id: int) -> bytes:
    """The patient information sheet of a patient of the actor's clinic, as PDF bytes."""
    return render_sheet(sheet_data(db, actor, patient_id))


def filename(kind: str, patient_id: int) -> str:
    """The download's file name: what it is and whose, without identifying data."""
    return f"ketacare-{kind}-patient-{patient_id}.pdf"
