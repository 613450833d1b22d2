"""Suicide-risk flags at the point of dosing (query helpers; the use-cases that call them audit).

A flag is open until a prescriber decides to proceed on it: an urgent rating whose flag
``session_checks.yaml`` lists (PHQ-9 item 9, C-SSRS), or a CBT note in force whose risk check
found suicidal thoughts. A chart acknowledgement of a rating does not close it for dosing: the
prescriber is told before the next dose, as the flag's own text asks."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import JSON, String, and_, cast, exists, literal_column, null, select, union_all
from sqlalchemy.orm import Session, aliased

from ketacare.clinical.prechecks import (
    RiskDecisionBrief,
    RiskFlag,
    assessment_risk_flags,
    ordered_flags,
    therapy_risk_flag,
)
from ketacare.knowledge.instrument_defs import load_instruments
from ketacare.knowledge.session_defs import load_session_checks
from ketacare.store.models import (
    Assessment,
    RiskDecision,
    RiskDecisionFlag,
    TherapySession,
    User,
)


def _risk_instruments() -> list[str]:
    """Instruments with a flag rule that session_checks.yaml lists as a risk flag."""
    codes = {f.code for f in load_session_checks().risk_flags.assessment_flags}
    return sorted(
        i.id for i in load_instruments().values() if any(f.code in codes for f in i.flags)
    )


def _proceeded(link: Any) -> Any:
    """A prescriber decided to proceed on the flag ``link`` points at."""
    return (
        select(RiskDecisionFlag.id)
        .join(RiskDecision, RiskDecision.id == RiskDecisionFlag.decision_id)
        .where(link, RiskDecision.decision == "proceed")
        .exists()
    )


def _open_flags_statement(clinic_id: int, patient_ids: Collection[int]) -> Any:
    """One statement for any number of patients: urgent ratings and CBT notes in force with a
    risk found, that no decision to proceed covers."""
    ratings = select(
        literal_column("'assessment'", String).label("kind"),
        Assessment.id.label("ref_id"),
        Assessment.patient_id.label("patient_id"),
        Assessment.administered_at.label("at"),
        Assessment.instrument.label("code"),
        Assessment.source.label("source"),
        Assessment.answers.label("answers"),
        Assessment.result.label("result"),
    ).where(
        Assessment.clinic_id == clinic_id,
        Assessment.patient_id.in_(patient_ids),
        Assessment.urgent.is_(True),
        Assessment.instrument.in_(_risk_instruments()),
        ~_proceeded(RiskDecisionFlag.assessment_id == Assessment.id),
    )
    later = aliased(TherapySession)
    found = TherapySession.note[("risk_check", "result")].as_string()
    notes = select(
        literal_column("'therapy'", String),
        TherapySession.id,
        TherapySession.patient_id,
        TherapySession.scheduled_at,
        found,
        cast(null(), String),
        cast(null(), JSON),
        cast(null(), JSON),
    ).where(
        TherapySession.clinic_id == clinic_id,
        TherapySession.patient_id.in_(patient_ids),
        found.is_not(None),
        found != "none",
        # Only the note in force: an amended note speaks through its amendment.
        ~exists().where(and_(later.amends_id == TherapySession.id)),
        ~_proceeded(RiskDecisionFlag.therapy_session_id == TherapySession.id),
    )
    return union_all(ratings, notes)


def open_flags(
    db: Session, clinic_id: int, patient_ids: Collection[int]
) -> dict[int, tuple[RiskFlag, ...]]:
    """Each patient's open risk flags, critical first (patients without one are left out)."""
    if not patient_ids:
        return {}
    found: dict[int, list[RiskFlag]] = {}
    for r in db.execute(_open_flags_statement(clinic_id, sorted(set(patient_ids)))):
        if r.kind == "assessment":
            flags = assessment_risk_flags(
                r.ref_id, r.code, r.answers or [], (r.result or {}).get("flags", []), r.at, r.source
            )
        else:
            flag = therapy_risk_flag(r.ref_id, r.code, r.at)
            flags = [flag] if flag else []
        if flags:
            found.setdefault(r.patient_id, []).extend(flags)
    return {pid: ordered_flags(flags) for pid, flags in found.items()}


def session_decisions(db: Session, session_id: int) -> list[RiskDecisionBrief]:
    """The risk decisions recorded for this session, oldest first."""
    rows = db.execute(
        select(RiskDecision, User.display_name)
        .outerjoin(User, User.id == RiskDecision.decided_by)
        .where(RiskDecision.session_id == session_id)
        .order_by(RiskDecision.decided_at, RiskDecision.id)
    ).all()
    return [
        RiskDecisionBrief(
            decision=d.decision,  # type: ignore[arg-type]
            reason=d.reason,
            at=d.decided_at,
            by=name or "a prescriber",
            flag_keys=tuple(str(f["key"]) for f in d.flags),
        )
        for d, name in rows
    ]


def flag_links(clinic_id: int, decision_id: int, keys: Collection[str]) -> list[RiskDecisionFlag]:
    """The link rows of a decision to the flags it covers (keys as ``RiskFlag.key``)."""
    links = []
    for key in sorted(keys):
        kind, ref = key.split(":", 1)
        links.append(
            RiskDecisionFlag(
                clinic_id=clinic_id,
                decision_id=decision_id,
                assessment_id=int(ref) if kind == "assessment" else None,
                therapy_session_id=int(ref) if kind == "therapy" else None,
            )
        )
    return links
