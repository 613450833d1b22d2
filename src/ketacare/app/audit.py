"""The audit trail: every use-case touching patient data appends one event, success or not."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ketacare.app.errors import DomainError
from ketacare.app.permissions import Actor, Permission, require
from ketacare.store.models import AuditEvent
from ketacare.store.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class AuditNote:
    """Filled in by the use-case while it runs (e.g. the id of a patient it created)."""

    patient_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def event(actor: Actor, action: str, outcome: str, note: AuditNote) -> AuditEvent:
    return AuditEvent(
        clinic_id=actor.clinic_id,
        user_id=actor.user_id,
        actor=actor.label,
        action=action,
        patient_id=note.patient_id,
        outcome=outcome,
        detail=note.detail or None,
    )


# One statement for every append: its compiled form is cached once, whatever the values.
# inline(): no RETURNING of the new id, which nothing reads.
_INSERT = insert(AuditEvent.__table__).inline()  # type: ignore[arg-type]


def _append(db: Session, actor: Actor, action: str, outcome: str, note: AuditNote) -> None:
    # A plain INSERT after the use-case's own writes: the trail is written on every request, and
    # the unit of work adds nothing for an append-only row.
    db.flush()
    # On the session's connection (same transaction), past the ORM's statement handling.
    db.connection().execute(
        _INSERT,
        {
            "at": utcnow(),
            "clinic_id": actor.clinic_id,
            "user_id": actor.user_id,
            "actor": actor.label,
            "action": action,
            "patient_id": note.patient_id,
            "outcome": outcome,
            "detail": note.detail or None,
        },
    )


@contextmanager
def audited(
    db: Session, actor: Actor, action: str, *, patient_id: int | None = None
) -> Iterator[AuditNote]:
    """Run one use-case as one transaction and append its audit event.

    On success the event is written in the same transaction as the change. On failure the
    change is rolled back and the failure is recorded in a transaction of its own, so refused
    and failed attempts are in the trail too.
    """
    note = AuditNote(patient_id=patient_id)
    try:
        yield note
        _append(db, actor, action, "success", note)
        db.commit()
    except DomainError as exc:
        db.rollback()
        note.detail["error"] = exc.message
        db.add(event(actor, action, exc.outcome, note))
        db.commit()
        raise
    except Exception:
        db.rollback()
        try:
            db.add(event(actor, action, "error", note))
            db.commit()
        except Exception:  # the database itself may be the failure
            db.rollback()
            log.exception("could not record the failed %s in the audit trail", action)
        raise


def record(db: Session, actor: Actor, action: str, outcome: str, **detail: Any) -> None:
    """Append a stand-alone event (sign-in, sign-out) in its own transaction."""
    db.add(event(actor, action, outcome, AuditNote(detail=detail)))
    db.commit()


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    user_id: int | None
    actor: str
    action: str
    patient_id: int | None
    outcome: str
    detail: dict[str, Any] | None


class AuditFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int | None = None
    patient_id: int | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 50


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_before_id: int | None


def list_events(db: Session, actor: Actor, flt: AuditFilter) -> AuditPage:
    """Newest first, keyset-paged by id, always inside the actor's clinic."""
    with audited(db, actor, "audit.list") as note:
        require(actor, Permission.AUDIT_READ)
        note.detail = flt.model_dump(exclude_none=True, mode="json")
        limit = max(1, min(flt.limit, 200))
        stmt = select(AuditEvent).where(AuditEvent.clinic_id == actor.clinic_id)
        if flt.user_id is not None:
            stmt = stmt.where(AuditEvent.user_id == flt.user_id)
        if flt.patient_id is not None:
            stmt = stmt.where(AuditEvent.patient_id == flt.patient_id)
        if flt.action:
            stmt = stmt.where(AuditEvent.action == flt.action)
        if flt.outcome:
            stmt = stmt.where(AuditEvent.outcome == flt.outcome)
        if flt.since is not None:
            stmt = stmt.where(AuditEvent.at >= flt.since)
        if flt.until is not None:
            stmt = stmt.where(AuditEvent.at < flt.until)
        if flt.before_id is not None:
            stmt = stmt.where(AuditEvent.id < flt.before_id)
        rows = db.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)).all()
        items = [AuditEventOut.model_validate(r) for r in rows[:limit]]
        next_before = items[-1].id if len(rows) > limit else None
        return AuditPage(items=items, next_before_id=next_before)
