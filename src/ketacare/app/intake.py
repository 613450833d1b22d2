"""Intake on the chart, the eligibility decision and its signed review, and informed consent."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from ketacare.app import assessments as sc
from ketacare.app.audit import audited
from ketacare.app.clinic_settings import effective_settings
from ketacare.app.errors import Conflict, InvalidInput
from ketacare.app.interactions import CURRENT, PlannedProtocol, clinic_today, planned_protocol
from ketacare.app.patients import Stage, _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.eligibility import (
    BloodPressure,
    EligibilitySettings,
    HistoryCode,
    Intake,
    PriorTreatment,
    assess,
    plannable_protocol,
)
from ketacare.clinical.interactions import StoppedMedication, max_washout_days, screen
from ketacare.clinical.prechecks import ProgrammeStatus
from ketacare.knowledge import load_yaml
from ketacare.store.models import (
    Assessment,
    BodyMeasurement,
    ConsentRecord,
    EligibilityReview,
    IntakeRecord,
    MedicationEntry,
    Patient,
)
from ketacare.store.types import utcnow

INTAKE_SCORES = ("asrs", "phq9", "gad7")
log = logging.getLogger(__name__)


class IntakeForm(BaseModel):
    """What staff record at intake. Age, weight, medicines and scale answers come from the
    chart itself, so they are entered once."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    adhd_diagnosis: bool | None = Field(None, description="Confirmed ADHD diagnosis")
    diagnosis_by: str | None = Field(None, max_length=200, description="Who diagnosed ADHD")
    diagnosis_when: str | None = Field(None, max_length=100, description="When (e.g. 2019)")
    prior_adhd_treatments: list[PriorTreatment] = Field(default_factory=list, max_length=30)
    history: list[HistoryCode] = Field(default_factory=list)
    blood_pressure: BloodPressure | None = None
    heart_rate: int | None = Field(None, ge=20, le=250)
    planned_protocol: str | None = Field(
        None,
        max_length=40,
        description="Protocol id planned (e.g. intranasal-esketamine); the interaction screen "
        "uses its agent and route until a course or session is planned",
    )
    notes: str | None = Field(None, max_length=4000)

    @field_validator("planned_protocol")
    @classmethod
    def _plannable(cls, value: str | None) -> str | None:
        return plannable_protocol(value or None)


class IntakeOut(BaseModel):
    id: int
    recorded_at: datetime
    recorded_by: int | None
    form: IntakeForm


class ReasonOut(BaseModel):
    code: str
    severity: str
    text: str
    sources: list[str]


class EligibilityView(BaseModel):
    """The decision as computed now from the chart, and the latest signed review."""

    decision: str
    reasons: list[ReasonOut]
    knowledge_version: str
    settings: dict[str, Any]
    intake_id: int | None
    inputs: dict[str, Any]
    latest_review: ReviewOut | None = None


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    computed_decision: str
    final_decision: str
    override_reason: str | None
    knowledge_version: str
    signed_by: int | None
    signed_at: datetime
    amends_id: int | None
    output: dict[str, Any]


class SignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    computed_decision: Literal["eligible", "needs_review", "ineligible"] = Field(
        description="The decision you reviewed; a different one now means the data changed"
    )
    final_decision: Literal["eligible", "ineligible"]
    override_reason: str | None = Field(None, max_length=4000)


def _intake_out(row: IntakeRecord) -> IntakeOut:
    return IntakeOut(
        id=row.id,
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
        form=IntakeForm.model_validate(row.data),
    )


# The chart page's statements are built once (building a statement and its cache key costs
# more than running it); each takes :patient_id.
_PATIENT = bindparam("patient_id")
_LATEST_INTAKE = (
    select(IntakeRecord)
    .where(IntakeRecord.patient_id == _PATIENT)
    .order_by(IntakeRecord.recorded_at.desc(), IntakeRecord.id.desc())
    .limit(1)
)
_LATEST_WEIGHT = (
    select(BodyMeasurement.weight_kg)
    .where(BodyMeasurement.patient_id == _PATIENT, BodyMeasurement.weight_kg.isnot(None))
    .order_by(BodyMeasurement.measured_at.desc(), BodyMeasurement.id.desc())
    .limit(1)
)
_CURRENT_MEDICATIONS = (
    select(MedicationEntry.name_entered)
    .where(MedicationEntry.patient_id == _PATIENT, MedicationEntry.status.in_(CURRENT))
    .order_by(MedicationEntry.id)
)
# Stopped entries that may still be in a washout (the screen decides which are), or undated.
_STOPPED_MEDICATIONS = (
    select(MedicationEntry.name_entered, MedicationEntry.stop_date)
    .where(
        MedicationEntry.patient_id == _PATIENT,
        MedicationEntry.status == "stopped",
        or_(MedicationEntry.stop_date.is_(None), MedicationEntry.stop_date >= bindparam("since")),
    )
    .order_by(MedicationEntry.id)
)
_RANKED_SCORES = (
    select(
        Assessment.instrument,
        Assessment.answers,
        func.row_number()
        .over(
            partition_by=Assessment.instrument,
            order_by=(Assessment.administered_at.desc(), Assessment.id.desc()),
        )
        .label("rank"),
    )
    .where(Assessment.patient_id == _PATIENT, Assessment.instrument.in_(INTAKE_SCORES))
    .subquery()
)
# The latest answers to each intake scale, in one statement whatever the history.
_LATEST_SCORES = select(_RANKED_SCORES.c.instrument, _RANKED_SCORES.c.answers).where(
    _RANKED_SCORES.c.rank == 1
)
_LATEST_REVIEW = (
    select(EligibilityReview)
    .where(EligibilityReview.patient_id == _PATIENT)
    .order_by(EligibilityReview.signed_at.desc(), EligibilityReview.id.desc())
    .limit(1)
)
# Ratings made during a dosing session (MOAA/S, CADSS) are shown on that session.
_RECENT_RATINGS = (
    select(Assessment)
    .where(Assessment.patient_id == _PATIENT, Assessment.session_id.is_(None))
    .order_by(Assessment.administered_at.desc(), Assessment.id.desc())
    .limit(30)
)
_CONSENTS = (
    select(ConsentRecord)
    .where(ConsentRecord.patient_id == _PATIENT)
    .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
)
_LATEST_CONSENT_STATUS = (
    select(ConsentRecord.status)
    .where(ConsentRecord.patient_id == _PATIENT)
    .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
    .limit(1)
)


def latest_intake(db: Session, patient_id: int) -> IntakeRecord | None:
    return db.scalar(_LATEST_INTAKE, {"patient_id": patient_id})


def save_intake(db: Session, actor: Actor, patient_id: int, form: IntakeForm) -> IntakeOut:
    """Save a new revision of the intake (earlier revisions stay as they were)."""
    with audited(db, actor, "intake.save", patient_id=patient_id) as note:
        require(actor, Permission.INTAKE_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        row = IntakeRecord(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            recorded_at=utcnow(),
            recorded_by=actor.user_id,
            diagnosis_by=form.diagnosis_by,
            diagnosis_when=form.diagnosis_when,
            data=form.model_dump(mode="json"),
        )
        db.add(row)
        db.flush()
        note.detail = {"intake_id": row.id}
        return _intake_out(row)


def get_intake(db: Session, actor: Actor, patient_id: int) -> IntakeOut | None:
    with audited(db, actor, "intake.view", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        row = latest_intake(db, patient.id)
        return _intake_out(row) if row else None


@dataclass(frozen=True)
class Known:
    """What a caller already read for this patient, so the eligibility view reads it once."""

    intake: IntakeRecord | None
    weight_kg: float | None
    medications: list[str]
    stopped: list[StoppedMedication] = field(default_factory=list)
    today: date | None = None
    # The clinic's eligibility settings in force (a default exclusion relaxed with a reason).
    settings: EligibilitySettings | None = None


def _known(db: Session, patient: Patient) -> Known:
    of_patient = {"patient_id": patient.id}
    weight = db.scalar(_LATEST_WEIGHT, of_patient)
    medications = list(db.scalars(_CURRENT_MEDICATIONS, of_patient))
    settings = effective_settings(db, patient.clinic_id)  # the clinic, read once
    today = utcnow().astimezone(ZoneInfo(settings.timezone)).date()
    since = today - timedelta(days=max_washout_days())
    rows = db.execute(_STOPPED_MEDICATIONS, {**of_patient, "since": since})
    stopped = [StoppedMedication(name, stop) for name, stop in rows]
    intake = latest_intake(db, patient.id)
    return Known(intake, weight, medications, stopped, today, settings.eligibility)


def _latest_scores(db: Session, patient_id: int) -> dict[str, list[int]]:
    rows = db.execute(_LATEST_SCORES, {"patient_id": patient_id})
    found = {row.instrument: list(row.answers) for row in rows if row.answers is not None}
    return {name: found[name] for name in INTAKE_SCORES if name in found}


def _compose(
    db: Session, patient: Patient, known: Known | None = None
) -> tuple[Intake, dict[str, Any], int | None]:
    """The intake as the eligibility rules see it: the form plus what the chart knows."""
    known = known or _known(db, patient)
    latest = known.intake
    form = IntakeForm.model_validate(latest.data) if latest else IntakeForm()
    weight = known.weight_kg
    medications = known.medications
    scores = _latest_scores(db, patient.id)
    doc: dict[str, Any] = {
        "date_of_birth": patient.date_of_birth.isoformat(),
        "adhd_diagnosis": form.adhd_diagnosis,
        "prior_adhd_treatments": [t.model_dump(mode="json") for t in form.prior_adhd_treatments],
        "history": [h.value for h in form.history],
        "blood_pressure": form.blood_pressure.model_dump() if form.blood_pressure else None,
        "heart_rate": form.heart_rate,
        "weight_kg": weight,
        "medications": medications,
        "stopped_medications": [
            {"name": m.name, "stop_date": m.stop_date.isoformat() if m.stop_date else None}
            for m in known.stopped
        ],
        "planned_protocol": form.planned_protocol,
        "scores": scores or None,
    }
    try:
        intake = Intake.model_validate(doc)
    except ValidationError as exc:  # data stored under older rules
        first = exc.errors()[0]
        raise InvalidInput(str(first["loc"][0]), first["msg"]) from None
    return intake, doc, latest.id if latest else None


def _screen_intake(
    intake: Intake, plan: PlannedProtocol, today: date
) -> tuple[list[dict[str, Any]] | None, str | None, tuple[str, ...]]:
    """Findings (None: not screened), why not, and the entries whose interactions are unknown.
    A failing screen is kept as not screened, never turned into "no interactions"."""
    stopped = [StoppedMedication(m.name, m.stop_date) for m in intake.stopped_medications]
    try:
        result = screen(
            intake.medications,
            plan.protocol.agent,
            plan.protocol.route,
            stopped=stopped,
            as_of=today,
        )
    except Exception as exc:  # fail closed: not screened, with the reason
        log.exception("interaction screen failed at intake")
        return None, f"the interaction screen failed ({type(exc).__name__}: {exc})", ()
    return [f.to_json_dict() for f in result.findings], None, result.unscreened()


def _evaluate(
    db: Session, patient: Patient, known: Known | None = None
) -> tuple[Any, dict[str, Any], int | None]:
    known = known or _known(db, patient)
    intake, doc, intake_id = _compose(db, patient, known)
    today = known.today or clinic_today(db, patient)
    plan = planned_protocol(db, patient, known.intake.data if known.intake else None)
    findings, error, unscreened = _screen_intake(intake, plan, today)
    decision = assess(
        intake,
        as_of=today,
        interaction_findings=findings,
        interaction_screen_error=error,
        interaction_unscreened=unscreened,
        # The clinic's settings in force (e.g. a default exclusion relaxed with a reason); the
        # decision stores them.
        settings=known.settings or effective_settings(db, patient.clinic_id).eligibility,
    )
    inputs = {
        "intake": doc,
        "interaction_findings": findings,
        "interaction_screen": {
            "protocol": plan.protocol.id,
            "agent": plan.protocol.agent,
            "route": plan.protocol.route,
            "chosen_by": plan.chosen_by,
            "screened": findings is not None,
            "error": error,
            "unscreened": list(unscreened),
        },
    }
    return decision, inputs, intake_id


def _latest_review(db: Session, patient_id: int) -> EligibilityReview | None:
    return db.scalar(_LATEST_REVIEW, {"patient_id": patient_id})


def programme_status(db: Session, patient_id: int) -> ProgrammeStatus:
    """The latest signed eligibility decision and consent status, as they stand now: planning a
    course and every dose check them (a review amended or consent withdrawn since counts)."""
    review = _latest_review(db, patient_id)
    consent = db.scalar(_LATEST_CONSENT_STATUS, {"patient_id": patient_id})
    return ProgrammeStatus(review.final_decision if review else None, consent)


def _view(db: Session, patient: Patient, known: Known | None = None) -> EligibilityView:
    decision, inputs, intake_id = _evaluate(db, patient, known)
    out = decision.to_json_dict()
    latest = _latest_review(db, patient.id)
    return EligibilityView(
        decision=out["decision"],
        reasons=[ReasonOut(**r) for r in out["reasons"]],
        knowledge_version=out["knowledge_version"],
        settings=out["settings"],
        intake_id=intake_id,
        inputs=inputs,
        latest_review=ReviewOut.model_validate(latest) if latest else None,
    )


def eligibility(db: Session, actor: Actor, patient_id: int) -> EligibilityView:
    with audited(db, actor, "eligibility.view", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        return _view(db, patient)


def sign_review(db: Session, actor: Actor, patient_id: int, data: SignRequest) -> ReviewOut:
    """A prescriber signs the decision. ``needs_review`` must be resolved to eligible or
    ineligible with a written reason; a computed exclusion cannot be signed as eligible."""
    with audited(db, actor, "eligibility.sign", patient_id=patient_id) as note:
        require(actor, Permission.ELIGIBILITY_SIGN)
        patient = _scoped_patient(db, actor, patient_id)
        decision, inputs, intake_id = _evaluate(db, patient)
        computed = decision.decision.value
        if computed != data.computed_decision:
            raise Conflict(
                f"The decision is now {computed!r}, not {data.computed_decision!r}: the chart "
                "changed since you opened it. Review the reasons again before signing."
            )
        reason = data.override_reason or None
        if computed == "needs_review":
            if not reason or len(reason) < 10:
                raise InvalidInput(
                    "override_reason",
                    "Write why the open questions are resolved (at least 10 characters).",
                )
        elif data.final_decision != computed:
            raise InvalidInput(
                "final_decision",
                f"The rules decide {computed!r}; only a 'needs review' decision can be "
                "resolved by the prescriber.",
            )
        previous = _latest_review(db, patient.id)
        row = EligibilityReview(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            intake_id=intake_id,
            computed_decision=computed,
            final_decision=data.final_decision,
            override_reason=reason,
            inputs=inputs,
            output=decision.to_json_dict(),
            knowledge_version=decision.knowledge_version,
            signed_by=actor.user_id,
            signed_at=utcnow(),
            amends_id=previous.id if previous else None,
        )
        db.add(row)
        if patient.stage in (Stage.INTAKE, Stage.ELIGIBLE, Stage.INELIGIBLE):
            patient.stage = data.final_decision
            patient.updated_at = utcnow()
        db.flush()
        note.detail = {
            "review_id": row.id,
            "computed": computed,
            "final": data.final_decision,
            "override": reason is not None,
        }
        return ReviewOut.model_validate(row)


def list_reviews(db: Session, actor: Actor, patient_id: int) -> list[ReviewOut]:
    with audited(db, actor, "eligibility.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        rows = db.scalars(
            select(EligibilityReview)
            .where(EligibilityReview.patient_id == patient.id)
            .order_by(EligibilityReview.signed_at.desc(), EligibilityReview.id.desc())
        ).all()
        return [ReviewOut.model_validate(r) for r in rows]


# --- consent -------------------------------------------------------------------------------


@cache
def consent_text() -> dict[str, Any]:
    return load_yaml("consent.yaml")


class ConsentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    consent_version: str = Field(max_length=40, description="The version of the text reviewed")
    status: Literal["given", "withdrawn"] = "given"
    note: str | None = Field(None, max_length=2000)


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    consent_version: str
    status: str
    recorded_by: int | None
    recorded_at: datetime
    note: str | None


def record_consent(db: Session, actor: Actor, patient_id: int, data: ConsentCreate) -> ConsentOut:
    with audited(db, actor, "consent.record", patient_id=patient_id) as note:
        require(actor, Permission.CONSENT_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        current = consent_text()["version"]
        if data.status == "given" and data.consent_version != current:
            raise InvalidInput(
                "consent_version",
                f"Consent must be given for the current text ({current}); review it with the "
                "patient again.",
            )
        row = ConsentRecord(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            consent_version=data.consent_version,
            status=data.status,
            recorded_by=actor.user_id,
            recorded_at=utcnow(),
            note=data.note,
        )
        db.add(row)
        db.flush()
        note.detail = {"consent_id": row.id, "status": row.status, "version": row.consent_version}
        return ConsentOut.model_validate(row)


def list_consents(db: Session, actor: Actor, patient_id: int) -> list[ConsentOut]:
    with audited(db, actor, "consent.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        rows = db.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.patient_id == patient.id)
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        ).all()
        return [ConsentOut.model_validate(r) for r in rows]


EligibilityView.model_rebuild()


class ProgrammeSummary(BaseModel):
    """The chart's programme panel in one read: eligibility now, the latest signed review,
    scales, open urgent flags and consent."""

    eligibility: EligibilityView
    intake: IntakeOut | None
    assessments: list[sc.AssessmentOut]
    urgent_flags: list[sc.UrgentFlag]
    consents: list[ConsentOut]
    consent_version: str
    # The current consent text, to review with the patient before recording consent.
    consent_points: list[str] = Field(default_factory=list)


def programme_summary(db: Session, actor: Actor, patient_id: int) -> ProgrammeSummary:
    with audited(db, actor, "programme.view", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        return programme_of(db, patient)


def programme_of(db: Session, patient: Patient, known: Known | None = None) -> ProgrammeSummary:
    """The chart's programme panel for a patient already in scope (query helper; callers
    audit)."""
    known = known or _known(db, patient)
    of_patient = {"patient_id": patient.id}
    assessments = db.scalars(_RECENT_RATINGS, of_patient).all()
    consents = db.scalars(_CONSENTS, of_patient).all()
    return ProgrammeSummary(
        eligibility=_view(db, patient, known),
        intake=_intake_out(known.intake) if known.intake else None,
        assessments=[sc.AssessmentOut.model_validate(a) for a in assessments],
        urgent_flags=sc.open_urgent_flags(db, patient.id),
        consents=[ConsentOut.model_validate(c) for c in consents],
        consent_version=consent_text()["version"],
        consent_points=[" ".join(str(p).split()) for p in consent_text()["points"]],
    )
