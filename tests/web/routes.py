"""The API route table as the tests see it: each route's permission and a valid request."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.assessments import _store
from ketacare.app.intake import _evaluate, consent_text
from ketacare.app.permissions import Permission
from ketacare.app.users import actor_for, create_api_token
from ketacare.store.models import MedicationEntry, Patient, TreatmentSession, User
from ketacare.store.types import utcnow

P = Permission


@dataclass(frozen=True)
class Target:
    """Ids a request is aimed at: a patient, one of its medicines, the caller."""

    patient_id: int
    medication_id: int
    caller: User


def _patient_body(_db: Session, _t: Target) -> dict[str, Any]:
    return {
        "mrn": f"T-{uuid.uuid4().hex[:10]}",
        "family_name": "Route",
        "given_name": "Test",
        "date_of_birth": "1991-02-03",
        "sex": "male",
    }


def _patient_update(db: Session, t: Target) -> dict[str, Any]:
    version = db.scalar(select(Patient.version).where(Patient.id == t.patient_id)) or 1
    return {
        "family_name": "Changed",
        "given_name": "Name",
        "date_of_birth": "1991-02-03",
        "sex": "male",
        "version": version,
    }


def _medication_update(db: Session, t: Target) -> dict[str, Any]:
    version = db.scalar(
        select(MedicationEntry.version).where(MedicationEntry.id == t.medication_id)
    )
    return {"status": "on_hold", "version": version or 1}


def _urgent_assessment(db: Session, t: Target) -> dict[str, Any]:
    patient = db.get(Patient, t.patient_id)
    assert patient is not None
    row = _store(
        db,
        patient,
        "phq9",
        [0, 0, 0, 0, 0, 0, 0, 0, 1],
        source="staff",
        at=utcnow(),
        recorded_by=None,
    )
    db.commit()
    return {"assessment_id": row.id}


def _sign_body(db: Session, t: Target) -> dict[str, Any]:
    patient = db.get(Patient, t.patient_id)
    assert patient is not None
    decision, _inputs, _intake = _evaluate(db, patient)
    db.rollback()
    return {
        "computed_decision": decision.decision.value,
        "final_decision": "ineligible",
        "override_reason": "Reviewed with the patient in clinic.",
    }


def _session(status: str) -> Callable[[Session, Target], dict[str, Any]]:
    def make(db: Session, t: Target) -> dict[str, Any]:
        patient = db.get(Patient, t.patient_id)
        assert patient is not None
        row = TreatmentSession(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            protocol_id="iv-ketamine",
            scheduled_at=utcnow(),
            status=status,
            baseline={"systolic": 120, "diastolic": 80} if status == "in_progress" else None,
        )
        db.add(row)
        db.commit()
        return {"session_id": row.id}

    return make


def _own_token(db: Session, t: Target) -> dict[str, Any]:
    return {"token_id": create_api_token(db, actor_for(t.caller), "to revoke").id}


@dataclass(frozen=True)
class RouteCase:
    permission: Permission | None
    body: Callable[[Session, Target], dict[str, Any]] | None = None
    ok: int = 200
    # Extra path ids a case makes for itself (e.g. a token to revoke).
    ids: Callable[[Session, Target], dict[str, Any]] | None = None


ROUTES: dict[tuple[str, str], RouteCase] = {
    ("GET", "/api/v1/patients"): RouteCase(P.PATIENT_READ),
    ("POST", "/api/v1/patients"): RouteCase(P.PATIENT_WRITE, _patient_body, 201),
    ("GET", "/api/v1/patients/{patient_id}"): RouteCase(P.PATIENT_READ),
    ("PUT", "/api/v1/patients/{patient_id}"): RouteCase(P.PATIENT_WRITE, _patient_update),
    ("GET", "/api/v1/patients/{patient_id}/measurements"): RouteCase(P.PATIENT_READ),
    ("POST", "/api/v1/patients/{patient_id}/measurements"): RouteCase(
        P.MEASUREMENT_WRITE, lambda _d, _t: {"weight_kg": 71.5}, 201
    ),
    ("GET", "/api/v1/patients/{patient_id}/medications"): RouteCase(P.PATIENT_READ),
    ("POST", "/api/v1/patients/{patient_id}/medications"): RouteCase(
        P.MEDICATION_WRITE, lambda _d, _t: {"name": "Vyvanse 50 mg"}, 201
    ),
    ("PATCH", "/api/v1/patients/{patient_id}/medications/{medication_id}"): RouteCase(
        P.MEDICATION_WRITE, _medication_update
    ),
    ("POST", "/api/v1/interactions/screen"): RouteCase(
        P.INTERACTIONS_CHECK, lambda _d, _t: {"medications": ["Vyvanse 50 mg"]}
    ),
    ("POST", "/api/v1/patients/{patient_id}/interaction-screens"): RouteCase(
        P.PATIENT_READ, ok=201
    ),
    ("GET", "/api/v1/patients/{patient_id}/interaction-screens"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/patients/{patient_id}/intake"): RouteCase(P.PATIENT_READ),
    ("PUT", "/api/v1/patients/{patient_id}/intake"): RouteCase(
        P.INTAKE_WRITE, lambda _d, _t: {"adhd_diagnosis": True, "history": ["glaucoma"]}, 201
    ),
    ("GET", "/api/v1/patients/{patient_id}/eligibility"): RouteCase(P.PATIENT_READ),
    ("POST", "/api/v1/patients/{patient_id}/eligibility-reviews"): RouteCase(
        P.ELIGIBILITY_SIGN, _sign_body, 201
    ),
    ("GET", "/api/v1/patients/{patient_id}/eligibility-reviews"): RouteCase(P.PATIENT_READ),
    ("POST", "/api/v1/patients/{patient_id}/consents"): RouteCase(
        P.CONSENT_WRITE, lambda _d, _t: {"consent_version": consent_text()["version"]}, 201
    ),
    ("GET", "/api/v1/patients/{patient_id}/consents"): RouteCase(P.PATIENT_READ),
    ("POST", "/api/v1/patients/{patient_id}/assessments"): RouteCase(
        P.ASSESSMENT_WRITE, lambda _d, _t: {"instrument": "gad7", "answers": [1] * 7}, 201
    ),
    ("GET", "/api/v1/patients/{patient_id}/assessments"): RouteCase(P.PATIENT_READ),
    (
        "POST",
        "/api/v1/patients/{patient_id}/assessments/{assessment_id}/acknowledgement",
    ): RouteCase(
        P.ASSESSMENT_WRITE, lambda _d, _t: {"note": "C-SSRS done"}, 204, ids=_urgent_assessment
    ),
    ("POST", "/api/v1/patients/{patient_id}/self-report-links"): RouteCase(
        P.SELF_REPORT_INVITE, lambda _d, _t: {"instruments": ["phq9"]}, 201
    ),
    ("GET", "/api/v1/consent-text"): RouteCase(None),
    ("POST", "/api/v1/patients/{patient_id}/sessions"): RouteCase(
        P.SESSION_WRITE, lambda _d, _t: {"scheduled_at": "2026-12-01T15:00:00Z"}, 201
    ),
    ("GET", "/api/v1/sessions/{session_id}"): RouteCase(
        P.PATIENT_READ, ids=_session("in_progress")
    ),
    ("POST", "/api/v1/sessions/{session_id}/start"): RouteCase(
        P.SESSION_WRITE,
        lambda _d, _t: {"systolic": 122, "diastolic": 78},
        ids=_session("scheduled"),
    ),
    ("POST", "/api/v1/sessions/{session_id}/vitals"): RouteCase(
        P.SESSION_WRITE,
        lambda _d, _t: {"samples": [{"measured_at": "2026-01-01T10:00:00Z", "heart_rate": 80}]},
        ids=_session("in_progress"),
    ),
    ("GET", "/api/v1/audit"): RouteCase(P.AUDIT_READ),
    ("GET", "/api/v1/research/patients"): RouteCase(P.PATIENT_READ_DEIDENTIFIED),
    ("GET", "/api/v1/me"): RouteCase(None),
    ("GET", "/api/v1/tokens"): RouteCase(P.TOKEN_MANAGE_OWN),
    ("POST", "/api/v1/tokens"): RouteCase(P.TOKEN_MANAGE_OWN, lambda _d, _t: {"name": "x"}, 201),
    ("DELETE", "/api/v1/tokens/{token_id}"): RouteCase(P.TOKEN_MANAGE_OWN, ok=204, ids=_own_token),
}


def build(db: Session, method: str, path: str, target: Target) -> tuple[str, dict[str, Any] | None]:
    case = ROUTES[(method, path)]
    ids = {"patient_id": target.patient_id, "medication_id": target.medication_id}
    if case.ids:
        ids.update(case.ids(db, target))
    return path.format(**ids), (case.body(db, target) if case.body else None)
