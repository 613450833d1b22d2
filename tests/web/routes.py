"""The API route table as the tests see it: each route's permission and a valid request."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ketacare.app import courses as course_uc
from ketacare.app.assessments import _store
from ketacare.app.intake import _evaluate, consent_text
from ketacare.app.permissions import Actor, Permission, Role
from ketacare.app.users import actor_for, create_api_token
from ketacare.store.models import (
    Assessment,
    Clinic,
    DoseOrder,
    MedicationEntry,
    Patient,
    SessionAlert,
    TherapySession,
    TreatmentCourse,
    TreatmentSession,
    User,
    VitalSample,
)
from ketacare.store.types import utcnow
from tests.conftest import ready_for_dosing

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


def _flagged(db: Session, t: Target) -> dict[str, Any]:
    """A scheduled session of a patient with an open risk flag (PHQ-9 item 9 above 0)."""
    flag = _urgent_assessment(db, t)
    return {**_session("scheduled")(db, t), **flag}


def _risk_decision(db: Session, t: Target) -> dict[str, Any]:
    latest = db.scalar(
        select(Assessment.id)
        .where(Assessment.patient_id == t.patient_id, Assessment.urgent.is_(True))
        .order_by(Assessment.id.desc())
        .limit(1)
    )
    return {
        "decision": "proceed",
        "reason": "C-SSRS screen negative for intent; safety plan reviewed",
        "flags": [f"assessment:{latest}"],
    }


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
        ready_for_dosing(db, patient)
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


def _session_row(db: Session, t: Target, status: str = "in_progress", **values: Any) -> int:
    patient = db.get(Patient, t.patient_id)
    assert patient is not None
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id="iv-ketamine",
        scheduled_at=utcnow() - timedelta(hours=4),
        status=status,
        baseline={"systolic": 120, "diastolic": 80, "heart_rate": 70},
        started_at=utcnow() - timedelta(hours=3),
        **values,
    )
    db.add(row)
    db.flush()
    return row.id


def _order_row(db: Session, session_id: int, clinic_id: int) -> int:
    order = DoseOrder(
        clinic_id=clinic_id,
        session_id=session_id,
        status="ordered",
        dose_mg=35.0,
        mg_per_kg=0.5,
        inputs={},
        output={},
        knowledge_version="test",
        ordered_by=None,
    )
    db.add(order)
    db.flush()
    return order.id


def _with_order(db: Session, t: Target) -> dict[str, Any]:
    sid = _session_row(db, t)
    session = db.get(TreatmentSession, sid)
    assert session is not None
    order_id = _order_row(db, sid, session.clinic_id)
    db.commit()
    return {"session_id": sid, "order_id": order_id}


def _dosing(db: Session, t: Target) -> dict[str, Any]:
    sid = _session_row(db, t, dose_started_at=utcnow() - timedelta(hours=3))
    db.commit()
    return {"session_id": sid}


def _ready_to_sign(db: Session, t: Target) -> dict[str, Any]:
    """Dosing ended two hours ago, readings back to baseline, awake, not dissociated."""
    now = utcnow()
    sid = _session_row(
        db, t, dose_started_at=now - timedelta(hours=3), dose_ended_at=now - timedelta(hours=2)
    )
    session = db.get(TreatmentSession, sid)
    patient = db.get(Patient, t.patient_id)
    assert session is not None and patient is not None
    # The reading at about 40 minutes after the dose started, then one back at the pre-dose
    # 120/80 before discharge.
    for minutes_ago, systolic, diastolic in ((140, 132, 84), (30, 118, 78)):
        db.add(
            VitalSample(
                clinic_id=session.clinic_id,
                session_id=sid,
                measured_at=now - timedelta(minutes=minutes_ago),
                systolic=systolic,
                diastolic=diastolic,
                heart_rate=72,
                spo2=98,
                respiratory_rate=14,
                source="manual",
            )
        )
    for instrument, answers in (("moaas", [5]), ("cadss", [0] * 23)):
        _store(db, patient, instrument, answers, source="staff", at=now, recorded_by=None)
        db.flush()
    db.execute(update(Assessment).where(Assessment.patient_id == patient.id).values(session_id=sid))
    db.commit()
    return {"session_id": sid}


def _sign_request(db: Session, t: Target) -> dict[str, Any]:
    version = db.scalar(
        select(TreatmentSession.version)
        .where(TreatmentSession.patient_id == t.patient_id)
        .order_by(TreatmentSession.id.desc())
        .limit(1)
    )
    form = dict.fromkeys(("on_room_air", "oriented", "ambulating", "escort_confirmed"), True)
    return {**form, "driving_counselling_documented": True, "version": version or 1}


def _signed(db: Session, t: Target) -> dict[str, Any]:
    sid = _session_row(db, t, status="completed", signed_at=utcnow())
    db.commit()
    return {"session_id": sid}


def _with_alert(db: Session, t: Target) -> dict[str, Any]:
    sid = _session_row(db, t)
    session = db.get(TreatmentSession, sid)
    assert session is not None
    vital = VitalSample(
        clinic_id=session.clinic_id,
        session_id=sid,
        measured_at=utcnow(),
        systolic=190,
        diastolic=95,
        source="manual",
    )
    db.add(vital)
    db.flush()
    alert = SessionAlert(
        clinic_id=session.clinic_id,
        session_id=sid,
        vital_sample_id=vital.id,
        code="sbp_high",
        severity="critical",
        field="systolic",
        value=190,
        threshold=180,
        text="Systolic 190",
        sources=["ketacare-clinic-convention"],
        knowledge_version="test",
    )
    db.add(alert)
    db.commit()
    return {"session_id": sid, "alert_id": alert.id}


def _alerts_body(db: Session, t: Target) -> dict[str, Any]:
    """The newest alert of the target patient's sessions (made by ``_with_alert``)."""
    alert_id = db.scalar(
        select(SessionAlert.id)
        .join(TreatmentSession, TreatmentSession.id == SessionAlert.session_id)
        .where(TreatmentSession.patient_id == t.patient_id)
        .order_by(SessionAlert.id.desc())
        .limit(1)
    )
    return {"alert_ids": [alert_id], "action": "Rechecked, paused"}


def _eligible(db: Session, t: Target) -> Patient:
    """A signed eligible review and consent given: what planning a course needs."""
    patient = db.get(Patient, t.patient_id)
    assert patient is not None
    ready_for_dosing(db, patient)
    return patient


def _course_start() -> date:
    return utcnow().date() + timedelta(days=7)  # a course is never planned in the past


def _course_body(db: Session, t: Target) -> dict[str, Any]:
    _eligible(db, t)
    return {"start_date": _course_start().isoformat(), "infusions": 6}


def _course(db: Session, t: Target) -> dict[str, Any]:
    patient = _eligible(db, t)
    planner = Actor(patient.clinic_id, Role.SYSTEM, "route test")
    data = course_uc.CourseCreate(start_date=_course_start())
    return {"course_id": course_uc.plan_course(db, planner, patient.id, data).id}


def _course_version(db: Session, t: Target) -> int:
    return (
        db.scalar(
            select(TreatmentCourse.version)
            .where(TreatmentCourse.patient_id == t.patient_id)
            .order_by(TreatmentCourse.id.desc())
            .limit(1)
        )
        or 1
    )


def _settings_body(db: Session, t: Target) -> dict[str, Any]:
    version = db.scalar(select(Clinic.settings_version).where(Clinic.id == t.caller.clinic_id))
    calendar = {"days": [0, 1, 2, 3], "opens": "08:30", "closes": "16:30"}
    return {"calendar": {**calendar, "closed_dates": ["2026-12-25"]}, "version": version or 1}


def _fhir_bundle(_db: Session, _t: Target) -> dict[str, Any]:
    """A one-patient collection Bundle from another system (tests/web/test_fhir_import_api.py)."""
    patient = {
        "resourceType": "Patient",
        "id": "route-1",
        "identifier": [{"system": "https://ehr.example/mrn", "value": "FHIR-ROUTE-1"}],
        "name": [{"family": "Imported", "given": ["Route"]}],
        "gender": "male",
        "birthDate": "1990-05-06",
    }
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}]}


def _own_token(db: Session, t: Target) -> dict[str, Any]:
    return {"token_id": create_api_token(db, actor_for(t.caller), "to revoke").id}


THERAPY_NOTE: dict[str, Any] = {
    "attendance": "attended",
    "minutes": 50,
    "risk_check": {"asked": True, "result": "none"},
}


def _therapy(state: str) -> Callable[[Session, Target], dict[str, Any]]:
    """A therapy session of the target patient: scheduled, with a complete draft, or signed."""

    def make(db: Session, t: Target) -> dict[str, Any]:
        patient = db.get(Patient, t.patient_id)
        assert patient is not None
        row = TherapySession(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            scheduled_at=utcnow(),
            minutes=50,
            status="completed" if state == "signed" else "scheduled",
            note=None if state == "scheduled" else THERAPY_NOTE,
            signed_at=utcnow() if state == "signed" else None,
        )
        db.add(row)
        db.commit()
        return {"therapy_id": row.id}

    return make


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
        lambda _d, _t: {
            "systolic": 122,
            "diastolic": 78,
            "fasting": "yes",
            "escort": "yes",
            "pregnancy": "not_pregnant",
            "acknowledge_caution": True,
        },
        ids=_session("scheduled"),
    ),
    ("GET", "/api/v1/patients/{patient_id}/sessions"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/patients/{patient_id}/outcomes"): RouteCase(P.PATIENT_READ),
    ("POST", "/api/v1/sessions/{session_id}/pause"): RouteCase(
        P.SESSION_WRITE, lambda _d, _t: {"reason": "BP settling"}, ids=_session("in_progress")
    ),
    ("POST", "/api/v1/sessions/{session_id}/resume"): RouteCase(
        P.SESSION_WRITE, lambda _d, _t: {}, ids=_session("paused")
    ),
    ("POST", "/api/v1/sessions/{session_id}/stop"): RouteCase(
        P.SESSION_WRITE, lambda _d, _t: {"reason": "Patient asked"}, ids=_session("in_progress")
    ),
    ("POST", "/api/v1/sessions/{session_id}/orders"): RouteCase(
        P.DOSE_ORDER,
        lambda _d, _t: {"mg_per_kg": 0.5, "minutes": 40, "bag_volume_ml": 100},
        201,
        ids=_session("in_progress"),
    ),
    ("POST", "/api/v1/sessions/{session_id}/orders/{order_id}/verification"): RouteCase(
        P.DOSE_VERIFY, ok=201, ids=_with_order
    ),
    ("POST", "/api/v1/sessions/{session_id}/dose/start"): RouteCase(
        P.SESSION_WRITE, ids=_with_order
    ),
    ("POST", "/api/v1/sessions/{session_id}/dose/end"): RouteCase(P.SESSION_WRITE, ids=_dosing),
    ("GET", "/api/v1/sessions/{session_id}/point-of-care"): RouteCase(
        P.PATIENT_READ, ids=_session("scheduled")
    ),
    ("POST", "/api/v1/sessions/{session_id}/risk-decisions"): RouteCase(
        P.SESSION_OVERRIDE, _risk_decision, 201, ids=_flagged
    ),
    ("POST", "/api/v1/sessions/{session_id}/scores"): RouteCase(
        P.SESSION_WRITE,
        lambda _d, _t: {"instrument": "moaas", "answers": [5]},
        201,
        ids=_session("in_progress"),
    ),
    ("POST", "/api/v1/sessions/{session_id}/adverse-events"): RouteCase(
        P.SESSION_WRITE,
        lambda _d, _t: {"code": "nausea", "severity": "mild"},
        201,
        ids=_session("in_progress"),
    ),
    ("POST", "/api/v1/sessions/{session_id}/alerts/{alert_id}/acknowledgement"): RouteCase(
        P.SESSION_WRITE, lambda _d, _t: {"action": "Rechecked, paused"}, ids=_with_alert
    ),
    ("POST", "/api/v1/sessions/{session_id}/alerts/acknowledgement"): RouteCase(
        P.SESSION_WRITE, _alerts_body, ids=_with_alert
    ),
    ("POST", "/api/v1/sessions/{session_id}/discharge-check"): RouteCase(
        P.PATIENT_READ, lambda _d, _t: {}, ids=_dosing
    ),
    ("POST", "/api/v1/sessions/{session_id}/sign"): RouteCase(
        P.SESSION_SIGN, _sign_request, ids=_ready_to_sign
    ),
    ("POST", "/api/v1/sessions/{session_id}/amendments"): RouteCase(
        P.SESSION_WRITE, lambda _d, _t: {"text": "Late entry: patient had tea"}, 201, ids=_signed
    ),
    ("GET", "/api/v1/sessions/{session_id}/record"): RouteCase(
        P.PATIENT_READ, ids=_session("in_progress")
    ),
    ("POST", "/api/v1/sessions/{session_id}/vitals"): RouteCase(
        P.SESSION_WRITE,
        lambda _d, _t: {"samples": [{"measured_at": "2026-01-01T10:00:00Z", "heart_rate": 80}]},
        ids=_session("in_progress"),
    ),
    ("POST", "/api/v1/patients/{patient_id}/courses"): RouteCase(P.COURSE_WRITE, _course_body, 201),
    ("GET", "/api/v1/patients/{patient_id}/courses"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/patients/{patient_id}/report.pdf"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/courses/{course_id}"): RouteCase(P.PATIENT_READ, ids=_course),
    ("POST", "/api/v1/courses/{course_id}/replan"): RouteCase(
        P.COURSE_WRITE,
        lambda d, t: {
            "version": _course_version(d, t),
            "missed": ["infusion-1"],
            "reason": "Patient unwell, rang to cancel.",
            "from_date": (_course_start() + timedelta(days=1)).isoformat(),
        },
        ids=_course,
    ),
    ("POST", "/api/v1/courses/{course_id}/stop"): RouteCase(
        P.COURSE_WRITE,
        lambda d, t: {"version": _course_version(d, t), "reason": "Patient moved away."},
        ids=_course,
    ),
    ("GET", "/api/v1/courses/{course_id}/calendar.ics"): RouteCase(P.PATIENT_READ, ids=_course),
    ("GET", "/api/v1/clinic/settings"): RouteCase(P.PATIENT_READ),
    ("PUT", "/api/v1/clinic/settings"): RouteCase(P.SETTINGS_MANAGE, _settings_body),
    ("POST", "/api/v1/patients/{patient_id}/therapy-sessions"): RouteCase(
        P.THERAPY_WRITE, lambda _d, _t: {"scheduled_at": "2026-12-01T15:00:00Z"}, 201
    ),
    ("GET", "/api/v1/patients/{patient_id}/therapy-sessions"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/therapy-sessions"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/therapy-sessions/{therapy_id}"): RouteCase(
        P.PATIENT_READ, ids=_therapy("scheduled")
    ),
    ("PUT", "/api/v1/therapy-sessions/{therapy_id}/note"): RouteCase(
        P.THERAPY_WRITE, lambda _d, _t: {**THERAPY_NOTE, "version": 1}, ids=_therapy("scheduled")
    ),
    ("POST", "/api/v1/therapy-sessions/{therapy_id}/sign"): RouteCase(
        P.THERAPY_WRITE, lambda _d, _t: {"version": 1}, ids=_therapy("draft")
    ),
    ("POST", "/api/v1/therapy-sessions/{therapy_id}/amendments"): RouteCase(
        P.THERAPY_WRITE,
        lambda _d, _t: {**THERAPY_NOTE, "reason": "Minutes corrected."},
        201,
        ids=_therapy("signed"),
    ),
    ("POST", "/api/v1/therapy-sessions/{therapy_id}/cancel"): RouteCase(
        P.THERAPY_WRITE,
        lambda _d, _t: {"status": "cancelled", "reason": "Patient unwell.", "version": 1},
        ids=_therapy("scheduled"),
    ),
    ("GET", "/api/v1/dashboard"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/fhir/metadata"): RouteCase(None),
    ("GET", "/api/v1/fhir/Patient"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/fhir/Patient/{patient_id}"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/fhir/Patient/{patient_id}/$everything"): RouteCase(P.PATIENT_READ),
    # Without patient= the search is refused (422); searches with it: tests/web/test_fhir_api.py
    ("GET", "/api/v1/fhir/Observation"): RouteCase(P.PATIENT_READ, ok=422),
    # Importing writes patients, medicines and measurements: nurses and prescribers.
    ("POST", "/api/v1/fhir"): RouteCase(P.MEDICATION_WRITE, _fhir_bundle),
    ("GET", "/api/v1/patients/{patient_id}/imported-records"): RouteCase(P.PATIENT_READ),
    ("GET", "/api/v1/audit"): RouteCase(P.AUDIT_READ),
    ("GET", "/api/v1/research/patients"): RouteCase(P.PATIENT_READ_DEIDENTIFIED),
    ("GET", "/api/v1/research/export/assessments.csv"): RouteCase(P.PATIENT_READ_DEIDENTIFIED),
    ("GET", "/api/v1/research/export/sessions.csv"): RouteCase(P.PATIENT_READ_DEIDENTIFIED),
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
