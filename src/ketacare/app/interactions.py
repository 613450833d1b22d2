"""Interaction screening as a use-case: screen any list, or a patient's current medicines
(stored with the knowledge version in force, and audited).

A patient's medicines are screened for the agent and route they are planned to receive: the
protocol of the active course, else of the next scheduled session, else the intake's planned
protocol, else the clinic's IV ketamine protocol. Medicines stopped within the washout of their
class (MAO inhibitors: 14 days) are screened with them. A screen that fails is returned as not
screened (never as "no interactions") and is not stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Date, bindparam, cast, literal, null, or_, select, union_all
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.errors import InvalidInput
from ketacare.app.patients import MedicationStatus, _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.interactions import (
    DEFAULT_PROTOCOL,
    StoppedMedication,
    max_washout_days,
    screen,
    unscreened_inputs,
)
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.protocol_defs import ProtocolDef, load_protocols
from ketacare.store.models import (
    Clinic,
    IntakeRecord,
    InteractionScreen,
    MedicationEntry,
    Patient,
    TreatmentCourse,
    TreatmentSession,
)
from ketacare.store.types import utcnow

log = logging.getLogger(__name__)

Agent = Literal["ketamine", "esketamine"]
Route = Literal["iv", "im", "intranasal", "oral", "sublingual"]
SEVERITY_ORDER = ("contraindicated", "major", "moderate", "minor")
# Medicines the patient is taking now, or may restart: both matter before a dose.
CURRENT = (MedicationStatus.ACTIVE.value, MedicationStatus.ON_HOLD.value)


def default_route(agent: str) -> str:
    return "intranasal" if agent == "esketamine" else "iv"


class ScreenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    medications: list[str] = Field(min_length=1, max_length=100)
    agent: Agent = "ketamine"
    route: Route | None = Field(default=None, description="Default: iv (ketamine), intranasal")


class ScreenOut(BaseModel):
    """The screening contract (as ``ketacare interactions --json``), plus where it was stored.
    ``screened`` False: the screen did not run (``not_screened_reason`` says why); the lists
    are then empty and mean nothing."""

    agent: str
    route: str
    knowledge_version: str
    findings: list[dict[str, Any]]
    no_known_interaction: list[dict[str, Any]]
    not_reviewed: list[dict[str, Any]]
    unrecognized: list[dict[str, Any]]
    stopped_screened: list[dict[str, Any]] = Field(default_factory=list)
    screened: bool = True
    not_screened_reason: str | None = None
    protocol_id: str | None = None
    protocol_chosen_by: str | None = None
    screen_id: int | None = None
    screened_at: datetime | None = None

    @property
    def highest(self) -> str | None:
        return highest_severity({"findings": self.findings})

    @property
    def unscreened(self) -> tuple[str, ...]:
        return unscreened_inputs(self.model_dump())


def _validated_names(names: list[str]) -> list[str]:
    cleaned = []
    for i, name in enumerate(names):
        name = " ".join(name.split())
        if not name:
            raise InvalidInput(f"medications[{i}]", "A medicine name is empty.")
        if len(name) > 200:
            raise InvalidInput(
                f"medications[{i}]", "A medicine name is longer than 200 characters."
            )
        cleaned.append(name)
    return cleaned


def screen_list(actor: Actor, request: ScreenRequest) -> ScreenOut:
    """Screen any list (the stand-alone checker): no patient data, nothing stored."""
    require(actor, Permission.INTERACTIONS_CHECK)
    names = _validated_names(request.medications)
    route = request.route or default_route(request.agent)
    return ScreenOut(**screen(names, request.agent, route).to_json_dict())


def highest_severity(result: dict[str, Any]) -> str | None:
    found = {f["severity"] for f in result.get("findings", [])}
    return next((s for s in SEVERITY_ORDER if s in found), None)


def screen_patient(
    db: Session,
    actor: Actor,
    patient_id: int,
    *,
    agent: Agent | None = None,
    route: Route | None = None,
) -> ScreenOut:
    """Screen the patient's current medicines for ``agent`` and ``route`` (default: those of the
    planned protocol). An unchanged list under the same knowledge version reuses the stored
    screen; any change is screened and stored anew."""
    with audited(db, actor, "interaction.screen", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        out, reused, _names = screen_current(db, actor, patient, agent=agent, route=route)
        note.detail = {"screen_id": out.screen_id}
        if not out.screened:
            note.detail["not_screened"] = out.not_screened_reason
        note.detail.update({"reused": True} if reused else {"highest_severity": out.highest})
        return out


@dataclass(frozen=True)
class PlannedProtocol:
    protocol: ProtocolDef
    chosen_by: str  # course | session | intake | default

    def describe(self) -> str:
        why = {
            "course": "the active course",
            "session": "the next scheduled session",
            "intake": "the intake's planned protocol",
        }.get(self.chosen_by, "default: the clinic's IV protocol")
        return f"{self.protocol.name} ({why})"


_PATIENT = bindparam("patient_id")
_NO_DAY = cast(null(), Date)


def _one(kind: str, value: Any, where: Any, order: Any) -> Any:
    """A one-row part of the context statement: (kind, value, no day, order 0)."""
    return (
        select(
            literal(kind).label("kind"),
            value.label("value"),
            _NO_DAY.label("day"),
            literal(0).label("ord"),
        )
        .where(*where)
        .order_by(*order)
        .limit(1)
        .subquery()
    )


_COURSE = _one(
    "course",
    TreatmentCourse.protocol_id,
    (TreatmentCourse.patient_id == _PATIENT, TreatmentCourse.status == "active"),
    (TreatmentCourse.created_at.desc(), TreatmentCourse.id.desc()),
)
_SESSION = _one(
    "session",
    TreatmentSession.protocol_id,
    (TreatmentSession.patient_id == _PATIENT, TreatmentSession.status == "scheduled"),
    (TreatmentSession.scheduled_at.asc(), TreatmentSession.id.asc()),
)
_INTAKE = _one(
    "intake",
    IntakeRecord.data["planned_protocol"].as_string(),
    (IntakeRecord.patient_id == _PATIENT,),
    (IntakeRecord.recorded_at.desc(), IntakeRecord.id.desc()),
)
_ZONE = _one("zone", Clinic.timezone, (Clinic.id == bindparam("clinic_id"),), (Clinic.id,))
# Where the plan comes from: the active course's and the next scheduled session's protocols.
_PLANNED = union_all(select(_COURSE), select(_SESSION))
_LATEST_INTAKE_DATA = (
    select(IntakeRecord.data)
    .where(IntakeRecord.patient_id == _PATIENT)
    .order_by(IntakeRecord.recorded_at.desc(), IntakeRecord.id.desc())
    .limit(1)
)
# Everything a patient's screen needs, in one statement: the current medicines, the stopped ones
# that may still be in a washout, the plan (course, session, intake) and the clinic's zone.
_CONTEXT = union_all(
    select(literal("current"), MedicationEntry.name_entered, _NO_DAY, MedicationEntry.id).where(
        MedicationEntry.patient_id == _PATIENT, MedicationEntry.status.in_(CURRENT)
    ),
    select(
        literal("stopped"),
        MedicationEntry.name_entered,
        MedicationEntry.stop_date,
        MedicationEntry.id,
    ).where(
        MedicationEntry.patient_id == _PATIENT,
        MedicationEntry.status == MedicationStatus.STOPPED.value,
        or_(MedicationEntry.stop_date.is_(None), MedicationEntry.stop_date >= bindparam("since")),
    ),
    select(_COURSE),
    select(_SESSION),
    select(_INTAKE),
    select(_ZONE),
)
_UNREAD: Any = object()


def _plan_of(found: Mapping[str, Any], intake_planned: Any) -> PlannedProtocol:
    protocols = load_protocols()
    for kind in ("course", "session"):
        if found.get(kind) in protocols:
            return PlannedProtocol(protocols[found[kind]], kind)
    if intake_planned in protocols:
        return PlannedProtocol(protocols[intake_planned], "intake")
    return PlannedProtocol(protocols[DEFAULT_PROTOCOL], "default")


def planned_protocol(
    db: Session, patient: Patient, intake_data: Mapping[str, Any] | None = _UNREAD
) -> PlannedProtocol:
    """The protocol the patient is planned to receive, and where that comes from: the active
    course, else the next scheduled session, else the intake's planned protocol (``intake_data``:
    the latest intake's data when the caller already read it), else the clinic's IV protocol."""
    of_patient = {"patient_id": patient.id}
    found = {row.kind: row.value for row in db.execute(_PLANNED, of_patient)}
    if intake_data is _UNREAD:
        intake_data = db.scalar(_LATEST_INTAKE_DATA, of_patient)
    return _plan_of(found, (intake_data or {}).get("planned_protocol"))


@dataclass(frozen=True)
class _Context:
    names: list[str]
    stopped: list[StoppedMedication]
    plan: PlannedProtocol
    today: date


def _context(db: Session, patient: Patient) -> _Context:
    """What the patient's screen needs, read in one statement."""
    # A day of slack: the stopped entries are read before the clinic's date is known; the screen
    # decides which washouts still run.
    since = utcnow().date() - timedelta(days=max_washout_days() + 1)
    params = {"patient_id": patient.id, "clinic_id": patient.clinic_id, "since": since}
    rows = sorted(db.execute(_CONTEXT, params), key=lambda row: row[3])
    names = [row[1] for row in rows if row[0] == "current"]
    stopped = [StoppedMedication(row[1], row[2]) for row in rows if row[0] == "stopped"]
    found = {row[0]: row[1] for row in rows if row[0] not in ("current", "stopped")}
    zone = ZoneInfo(found.get("zone") or "UTC")
    return _Context(
        names, stopped, _plan_of(found, found.get("intake")), utcnow().astimezone(zone).date()
    )


def clinic_today(db: Session, patient: Patient) -> date:
    clinic = db.get(Clinic, patient.clinic_id)
    zone = ZoneInfo(clinic.timezone if clinic is not None else "UTC")
    return utcnow().astimezone(zone).date()


def screen_current(
    db: Session,
    actor: Actor,
    patient: Patient,
    *,
    agent: Agent | None = None,
    route: Route | None = None,
    as_of: date | None = None,
) -> tuple[ScreenOut, bool, list[str]]:
    """The screen of the patient's current list inside the caller's transaction, whether a
    stored screen of the same list and knowledge version was reused, and the names screened.
    Without ``agent`` the planned protocol's agent and route are used."""
    context = _context(db, patient)
    plan = context.plan if agent is None else None
    if plan is not None:
        agent = plan.protocol.agent
        route = route or plan.protocol.route  # type: ignore[assignment]
    assert agent is not None
    names = context.names
    route = route or default_route(agent)  # type: ignore[assignment]
    as_of = as_of or context.today
    stopped = context.stopped
    planned = {
        "protocol_id": plan.protocol.id if plan else None,
        "protocol_chosen_by": plan.chosen_by if plan else None,
    }
    version = knowledge_version()
    payload: list[Any] = [agent, route, sorted(names), version]
    if stopped:  # whether a washout still runs depends on the day
        stops = [[m.name, m.stop_date.isoformat() if m.stop_date else None] for m in stopped]
        payload += [sorted(stops, key=str), as_of.isoformat()]
    digest = hashlib.sha256(json.dumps(payload).encode()).hexdigest()
    latest = db.scalar(
        select(InteractionScreen)
        .where(InteractionScreen.patient_id == patient.id)
        .order_by(InteractionScreen.screened_at.desc(), InteractionScreen.id.desc())
        .limit(1)
    )
    if latest is not None and latest.input_hash == digest:
        out = ScreenOut(
            **latest.result, **planned, screen_id=latest.id, screened_at=latest.screened_at
        )
        return out, True, names
    try:
        result = (
            screen(names, agent, route, stopped=stopped, as_of=as_of).to_json_dict()
            if names or stopped
            else _empty(agent, route)
        )
    except Exception as exc:  # fail closed: not screened, never "no interactions"
        log.exception("interaction screen failed for patient %s", patient.id)
        reason = f"The interaction screen failed ({type(exc).__name__}: {exc})."
        out = ScreenOut(
            **_empty(agent, route), screened=False, not_screened_reason=reason, **planned
        )
        return out, False, names
    row = InteractionScreen(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        screened_at=utcnow(),
        screened_by=actor.user_id,
        agent=agent,
        route=str(route),
        knowledge_version=result["knowledge_version"],
        input_hash=digest,
        inputs={
            "medications": names,
            "stopped": [
                {"name": m.name, "stop_date": m.stop_date.isoformat() if m.stop_date else None}
                for m in stopped
            ],
            "as_of": as_of.isoformat(),
            **planned,
        },
        result=result,
        highest_severity=highest_severity(result),
    )
    db.add(row)
    db.flush()
    out = ScreenOut(**result, **planned, screen_id=row.id, screened_at=row.screened_at)
    return out, False, names


def _empty(agent: str, route: str | None) -> dict[str, Any]:
    return {
        "agent": agent,
        "route": route,
        "knowledge_version": knowledge_version(),
        "findings": [],
        "no_known_interaction": [],
        "not_reviewed": [],
        "unrecognized": [],
        "stopped_screened": [],
    }


class StoredScreen(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    screened_at: datetime
    agent: str
    route: str
    knowledge_version: str
    highest_severity: str | None
    inputs: dict[str, Any]
    result: dict[str, Any]


def list_patient_screens(db: Session, actor: Actor, patient_id: int) -> list[StoredScreen]:
    with audited(db, actor, "interaction.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        rows = db.scalars(
            select(InteractionScreen)
            .where(InteractionScreen.patient_id == patient.id)
            .order_by(InteractionScreen.screened_at.desc(), InteractionScreen.id.desc())
            .limit(50)
        ).all()
        return [StoredScreen.model_validate(r) for r in rows]
