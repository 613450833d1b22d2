"""Interaction screening as a use-case: screen any list, or a patient's current medicines
(stored with the knowledge version in force, and audited)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.errors import InvalidInput
from ketacare.app.patients import MedicationStatus, _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.interactions import screen
from ketacare.knowledge import knowledge_version
from ketacare.store.models import InteractionScreen, MedicationEntry, Patient
from ketacare.store.types import utcnow

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
    """The screening contract (as ``ketacare interactions --json``), plus where it was stored."""

    agent: str
    route: str
    knowledge_version: str
    findings: list[dict[str, Any]]
    no_known_interaction: list[dict[str, Any]]
    not_reviewed: list[dict[str, Any]]
    unrecognized: list[dict[str, Any]]
    screen_id: int | None = None
    screened_at: datetime | None = None

    @property
    def highest(self) -> str | None:
        return highest_severity({"findings": self.findings})


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
    agent: Agent = "ketamine",
    route: Route | None = None,
) -> ScreenOut:
    """Screen the patient's current medicines. An unchanged list under the same knowledge
    version reuses the stored screen; any change is screened and stored anew."""
    with audited(db, actor, "interaction.screen", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        out, reused, _names = screen_current(db, actor, patient, agent=agent, route=route)
        note.detail = {"screen_id": out.screen_id}
        note.detail.update({"reused": True} if reused else {"highest_severity": out.highest})
        return out


def screen_current(
    db: Session,
    actor: Actor,
    patient: Patient,
    *,
    agent: Agent = "ketamine",
    route: Route | None = None,
) -> tuple[ScreenOut, bool, list[str]]:
    """The screen of the patient's current list inside the caller's transaction, whether a
    stored screen of the same list and knowledge version was reused, and the names screened."""
    names = list(
        db.scalars(
            select(MedicationEntry.name_entered)
            .where(
                MedicationEntry.patient_id == patient.id,
                MedicationEntry.status.in_(CURRENT),
            )
            .order_by(MedicationEntry.id)
        )
    )
    route = route or default_route(agent)  # type: ignore[assignment]
    version = knowledge_version()
    digest = hashlib.sha256(json.dumps([agent, route, sorted(names), version]).encode()).hexdigest()
    latest = db.scalar(
        select(InteractionScreen)
        .where(InteractionScreen.patient_id == patient.id)
        .order_by(InteractionScreen.screened_at.desc(), InteractionScreen.id.desc())
        .limit(1)
    )
    if latest is not None and latest.input_hash == digest:
        out = ScreenOut(**latest.result, screen_id=latest.id, screened_at=latest.screened_at)
        return out, True, names
    result = screen(names, agent, route).to_json_dict() if names else _empty(agent, route)
    row = InteractionScreen(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        screened_at=utcnow(),
        screened_by=actor.user_id,
        agent=agent,
        route=str(route),
        knowledge_version=result["knowledge_version"],
        input_hash=digest,
        inputs={"medications": names},
        result=result,
        highest_severity=highest_severity(result),
    )
    db.add(row)
    db.flush()
    return ScreenOut(**result, screen_id=row.id, screened_at=row.screened_at), False, names


def _empty(agent: str, route: str | None) -> dict[str, Any]:
    return {
        "agent": agent,
        "route": route,
        "knowledge_version": knowledge_version(),
        "findings": [],
        "no_known_interaction": [],
        "not_reviewed": [],
        "unrecognized": [],
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
