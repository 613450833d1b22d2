"""Before a dose: the patient's open suicide-risk flags in the patient's words (critical first),
the prescriber's decisions on them for this session, and the interval since the previous dose;
and the prescriber's decision itself (proceed with the reason, or defer), stored with the flags
it covers so the start can go ahead."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from ketacare.app.audit import audited
from ketacare.app.clinic_settings import effective_settings
from ketacare.app.errors import InvalidInput
from ketacare.app.permissions import Actor, Permission, require
from ketacare.app.risk_flags import flag_links, open_flags, session_decisions
from ketacare.app.sessions import (
    _scoped_session,
    add_event,
    interval_for,
    open_session,
)
from ketacare.knowledge import knowledge_version
from ketacare.store.models import RiskDecision
from ketacare.store.types import utcnow


class RiskFlagOut(BaseModel):
    key: str = Field(description="assessment:<id> or therapy:<id>; a decision names these")
    kind: str
    ref_id: int
    at: datetime
    level: str = Field(description="critical | urgent")
    words: str = Field(description="The question asked and the answer given, as the patient had it")
    instruction: str
    origin: str


class RiskDecisionView(BaseModel):
    decision: str
    reason: str
    at: datetime
    by: str
    flags: list[str]


class PointOfCare(BaseModel):
    risk_flags: list[RiskFlagOut] = Field(description="Open risk flags, critical first")
    decisions: list[RiskDecisionView] = Field(description="Risk decisions made for this session")
    interval: dict[str, Any] | None = Field(
        description="The interval since the previous dose, for a dose not yet started"
    )


def point_of_care(
    db: Session, actor: Actor, session_id: int, *, tz: str | None = None
) -> PointOfCare:
    """``tz``: the clinic's time zone, when the caller has its settings already."""
    with audited(db, actor, "session.point_of_care.view") as note:
        require(actor, Permission.PATIENT_READ)
        row = _scoped_session(db, actor, session_id)
        note.patient_id = row.patient_id
        flags = open_flags(db, row.clinic_id, [row.patient_id]).get(row.patient_id, ())
        interval = None
        if row.dose_started_at is None and row.signed_at is None:
            now = utcnow()
            at = max(now, row.scheduled_at) if row.status == "scheduled" else now
            zone = tz or effective_settings(db, row.clinic_id).timezone
            interval = interval_for(db, row, at, zone).to_json_dict()
        return PointOfCare(
            risk_flags=[RiskFlagOut.model_validate(f.to_json_dict()) for f in flags],
            decisions=[
                RiskDecisionView(
                    decision=d.decision, reason=d.reason, at=d.at, by=d.by, flags=list(d.flag_keys)
                )
                for d in session_decisions(db, row.id)
            ],
            interval=interval,
        )


class RiskDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["proceed", "defer"] = Field(
        description="proceed: dose with these flags known; defer: no dose until decided again"
    )
    reason: str = Field(max_length=2000, description="What was assessed and why (10+ characters)")
    flags: list[str] = Field(
        min_length=1, max_length=50, description="The keys of the open flags the decision covers"
    )


class RiskDecisionOut(BaseModel):
    id: int
    session_id: int
    decision: str
    reason: str
    flags: list[str]
    decided_by: int | None
    decided_at: datetime


def record_risk_decision(
    db: Session, actor: Actor, session_id: int, data: RiskDecisionIn
) -> RiskDecisionOut:
    """A prescriber's decision on the open risk flags shown before this session's dose. Every
    flag named must be open for this patient; a decision to proceed closes them for dosing,
    a deferral keeps them open and is shown at every start until someone decides to proceed."""
    with audited(db, actor, "session.risk_decision") as note:
        require(actor, Permission.SESSION_OVERRIDE)
        row = open_session(db, actor, session_id)
        note.patient_id = row.patient_id
        if row.dose_started_at is not None or row.status not in ("scheduled", "in_progress"):
            raise InvalidInput(
                "status", "Dosing has started or the session is over: decide before a dose."
            )
        reason = " ".join(data.reason.split())
        if len(reason) < 10:
            raise InvalidInput("reason", "Say what was assessed and why (at least 10 characters).")
        flags = {
            f.key: f
            for f in open_flags(db, row.clinic_id, [row.patient_id]).get(row.patient_id, ())
        }
        unknown = [k for k in data.flags if k not in flags]
        if unknown:
            raise InvalidInput(
                "flags",
                f"Not an open risk flag of this patient: {', '.join(unknown)}. Reload the "
                "session and decide on the flags shown.",
            )
        covered = [flags[k] for k in dict.fromkeys(data.flags)]
        decision = RiskDecision(
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            session_id=row.id,
            decision=data.decision,
            reason=reason,
            flags=[f.to_json_dict() for f in covered],
            knowledge_version=knowledge_version(),
            decided_by=actor.user_id,
            decided_at=utcnow(),
        )
        db.add(decision)
        db.flush()
        db.add_all(flag_links(row.clinic_id, decision.id, [f.key for f in covered]))
        words = "; ".join(f"{f.words}" for f in covered)
        add_event(
            db,
            actor,
            row,
            "risk_decision",
            f"Prescriber's decision on risk flags ({words}): {data.decision}. {reason}",
            decision_id=decision.id,
            decision=data.decision,
            flags=[f.key for f in covered],
        )
        db.flush()
        note.detail = {
            "session_id": row.id,
            "decision_id": decision.id,
            "decision": data.decision,
            "flags": [f.key for f in covered],
        }
        return RiskDecisionOut(
            id=decision.id,
            session_id=row.id,
            decision=decision.decision,
            reason=reason,
            flags=[f.key for f in covered],
            decided_by=actor.user_id,
            decided_at=decision.decided_at,
        )
