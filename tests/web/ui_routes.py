"""The HTML UI route table as the tests see it: each route's permission and a valid request.

Like tests/web/routes.py for the API. ``form`` builds the fields of a valid POST (the test adds
the CSRF token); ``ids`` makes the records a route is aimed at (a session, a course, ...).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app import assessments as sc
from ketacare.app import session_record as rec
from ketacare.app.clinic_settings import get_clinic_settings
from ketacare.app.intake import consent_text
from ketacare.app.permissions import Actor, Permission, Role
from ketacare.store.models import BodyMeasurement, MedicationEntry, Patient, TreatmentSession
from ketacare.store.types import utcnow
from tests.web.routes import (
    THERAPY_NOTE,
    Target,
    _course,
    _course_start,
    _course_version,
    _dosing,
    _eligible,
    _flagged,
    _own_token,
    _ready_to_sign,
    _risk_decision,
    _session,
    _session_row,
    _sign_body,
    _signed,
    _therapy,
    _urgent_assessment,
    _with_alert,
)

P = Permission
Ids = dict[str, Any]
Form = Callable[[Session, Target, Ids], dict[str, Any]]


@dataclass(frozen=True)
class UiCase:
    """One UI route. ``permission`` None: any signed-in user (or anyone, when ``public``).

    ``ok`` is the answer to a caller who may use the route. ``exercised`` False: a valid request
    is impractical here (signing in, a current authenticator code); ``note`` says where the
    success path is tested. ``signed_out`` is the answer to a signed-out browser, for public
    routes only (other routes send it to /login).
    """

    permission: Permission | None
    form: Form | None = None
    ok: int = 200
    ids: Callable[[Session, Target], Ids] | None = None
    query: dict[str, str] | None = None
    public: bool = False
    signed_out: int | None = None
    exercised: bool = True
    note: str = ""
    # Whether an allowed request stores something; by default a POST answered 201 or 303.
    stores: bool | None = None

    @property
    def writes(self) -> bool:
        if self.stores is not None:
            return self.stores
        return self.ok in (201, 303) and self.form is not None


def _fields(**values: Any) -> Form:
    return lambda _d, _t, _ids: dict(values)


def patient_form() -> dict[str, str]:
    return {
        "mrn": f"UI-{uuid.uuid4().hex[:10]}",
        "family_name": "Matrixregistered",
        "given_name": "Registeredgiven",
        "date_of_birth": "1991-02-03",
        "sex": "male",
        "phone": "",
        "email": "",
        "address": "",
    }


def _patient_edit(db: Session, t: Target, _ids: Ids) -> dict[str, Any]:
    version = db.scalar(select(Patient.version).where(Patient.id == t.patient_id))
    form = {**patient_form(), "family_name": "Matrixedited", "version": str(version)}
    del form["mrn"]
    return form


def _medication_update(db: Session, t: Target, _ids: Ids) -> dict[str, Any]:
    version = db.scalar(
        select(MedicationEntry.version).where(MedicationEntry.id == t.medication_id)
    )
    return {"status": "on_hold", "version": str(version)}


def _sign_review(db: Session, t: Target, _ids: Ids) -> dict[str, Any]:
    return _sign_body(db, t)


def _plan(db: Session, t: Target, _ids: Ids) -> dict[str, Any]:
    _eligible(db, t)
    start = _course_start().isoformat()
    return {"protocol_id": "iv-ketamine", "start_date": start, "infusions": "6", "cbt": "on"}


def _replan(db: Session, t: Target, ids: Ids) -> dict[str, Any]:
    return {
        "course_id": str(ids["course_id"]),
        "version": str(_course_version(db, t)),
        "missed": "infusion-1",
        "reason": "Patient unwell, rang to cancel.",
        "from_date": (_course_start() + timedelta(days=1)).isoformat(),
    }


def _stop_course(db: Session, t: Target, ids: Ids) -> dict[str, Any]:
    return {
        "course_id": str(ids["course_id"]),
        "version": str(_course_version(db, t)),
        "reason": "Patient moved away.",
    }


def _settings(db: Session, t: Target, _ids: Ids) -> dict[str, Any]:
    """The clinic's settings as the page shows them, saved again with a note."""
    now = get_clinic_settings(db, Actor(t.caller.clinic_id, Role.SYSTEM, "ui route test"))
    cal = now.calendar
    return {
        "days": [str(d) for d in cal.days],
        "opens": cal.opens.strftime("%H:%M"),
        "closes": cal.closes.strftime("%H:%M"),
        "closed_dates": "\n".join(d.isoformat() for d in cal.closed_dates),
        "change_note": "Saved unchanged by the route matrix.",
        "version": str(now.version),
    }


def _session_sign(db: Session, _t: Target, ids: Ids) -> dict[str, Any]:
    version = db.scalar(
        select(TreatmentSession.version).where(TreatmentSession.id == ids["session_id"])
    )
    yes = ("on_room_air", "oriented", "ambulating", "escort_confirmed")
    return {
        **dict.fromkeys(yes, "yes"),
        "driving_counselling_documented": "yes",
        "version": version,
    }


def _ordered(db: Session, t: Target) -> Ids:
    """A session in progress with a dose order calculated from a fresh weight, as the
    prescriber's form makes it (the page shows every step of the calculation)."""
    sid = _session_row(db, t)
    session = db.get(TreatmentSession, sid)
    assert session is not None
    db.add(
        BodyMeasurement(
            clinic_id=session.clinic_id,
            patient_id=t.patient_id,
            measured_at=utcnow(),
            weight_kg=70.0,
        )
    )
    db.commit()
    prescriber = Actor(session.clinic_id, Role.SYSTEM, "ui route test")
    request = rec.OrderRequest(mg_per_kg=0.5, minutes=40, bag_volume_ml=100)
    return {"session_id": sid, "order_id": rec.order_dose(db, prescriber, sid, request).id}


def self_report_link(db: Session, t: Target) -> Ids:
    """A patient's one-time questionnaire link (PHQ-9), made by the clinic."""
    patient = db.get(Patient, t.patient_id)
    assert patient is not None
    clinic = Actor(patient.clinic_id, Role.SYSTEM, "ui route test")
    invite = sc.SelfReportInvite(instruments=["phq9"])
    return {"token": sc.create_self_report_link(db, clinic, patient.id, invite).token}


NOTE_FORM = {
    "attendance": THERAPY_NOTE["attendance"],
    "minutes": str(THERAPY_NOTE["minutes"]),
    "risk_asked": "yes",
    "risk_result": THERAPY_NOTE["risk_check"]["result"],
}
PHQ9_ZEROS = {f"item{i}": "0" for i in range(1, 10)}
PRECHECK = {
    "systolic": "122",
    "diastolic": "78",
    "fasting": "yes",
    "escort": "yes",
    "pregnancy": "not_pregnant",
    "acknowledge_caution": "yes",
}

SIGN_IN = "sign-in itself: tests/web/test_ui.py, tests/app/test_two_factor.py"
TOTP = "needs the authenticator's current code: tests/app/test_two_factor.py; here a wrong one"

UI_ROUTES: dict[tuple[str, str], UiCase] = {
    # Public: no sign-in needed.
    ("GET", "/"): UiCase(None, ok=303, public=True, signed_out=303),
    ("GET", "/login"): UiCase(None, ok=303, public=True, signed_out=200),
    ("POST", "/login"): UiCase(None, public=True, exercised=False, note=SIGN_IN),
    ("POST", "/login/code"): UiCase(None, public=True, exercised=False, note=SIGN_IN),
    ("GET", "/healthz"): UiCase(None, public=True, signed_out=200),
    # The patient's questionnaire: the one-time link is the credential, whoever opens it.
    ("GET", "/r/{token}"): UiCase(None, ids=self_report_link, public=True, signed_out=200),
    ("POST", "/r/{token}"): UiCase(
        None,
        _fields(**{f"phq9-{i}": "0" for i in range(1, 10)}),
        ids=self_report_link,
        public=True,
        signed_out=200,
        stores=True,
    ),
    # Any signed-in user.
    # Signing out would end the module's shared browser; tests/web/test_ui.py signs out.
    ("POST", "/logout"): UiCase(None, ok=303, exercised=False, note=SIGN_IN),
    ("GET", "/evidence"): UiCase(None),
    ("GET", "/account"): UiCase(P.TOKEN_MANAGE_OWN),
    ("POST", "/account/tokens"): UiCase(P.TOKEN_MANAGE_OWN, _fields(name="matrix"), 201),
    ("POST", "/account/tokens/{token_id}/revoke"): UiCase(
        P.TOKEN_MANAGE_OWN, _fields(), 303, ids=_own_token
    ),
    ("POST", "/account/totp/setup"): UiCase(None, _fields()),
    ("POST", "/account/totp/enable"): UiCase(
        None, _fields(pending="", code="000000"), 422, note=TOTP
    ),
    ("POST", "/account/totp/disable"): UiCase(None, _fields(code="000000"), 422, note=TOTP),
    ("GET", "/interactions"): UiCase(P.INTERACTIONS_CHECK, query={"meds": "Vyvanse 50 mg"}),
    # Administration.
    ("GET", "/admin/audit"): UiCase(P.AUDIT_READ),
    ("GET", "/admin/settings"): UiCase(P.PATIENT_READ),
    ("POST", "/admin/settings"): UiCase(P.SETTINGS_MANAGE, _settings, 303),
    ("GET", "/research"): UiCase(P.PATIENT_READ_DEIDENTIFIED),
    ("GET", "/dashboard"): UiCase(P.PATIENT_READ),
    # Patients and the chart.
    ("GET", "/patients"): UiCase(P.PATIENT_READ),
    ("GET", "/patients/new"): UiCase(P.PATIENT_WRITE),
    ("POST", "/patients/new"): UiCase(P.PATIENT_WRITE, lambda _d, _t, _i: patient_form(), 303),
    ("GET", "/patients/{patient_id}"): UiCase(P.PATIENT_READ),
    ("GET", "/patients/{patient_id}/edit"): UiCase(P.PATIENT_WRITE),
    ("POST", "/patients/{patient_id}/edit"): UiCase(P.PATIENT_WRITE, _patient_edit, 303),
    ("POST", "/patients/{patient_id}/measurements"): UiCase(
        P.MEASUREMENT_WRITE, _fields(weight_kg="71.5", height_cm=""), 303
    ),
    ("POST", "/patients/{patient_id}/medications"): UiCase(
        P.MEDICATION_WRITE, _fields(name="Vyvanse 50 mg", dose_text="", start_date=""), 303
    ),
    ("POST", "/patients/{patient_id}/medications/{medication_id}"): UiCase(
        P.MEDICATION_WRITE, _medication_update, 303
    ),
    ("GET", "/patients/{patient_id}/interactions"): UiCase(P.PATIENT_READ),
    ("GET", "/patients/{patient_id}/outcomes"): UiCase(P.PATIENT_READ),
    ("GET", "/patients/{patient_id}/imported"): UiCase(P.PATIENT_READ),
    ("GET", "/patients/{patient_id}/report.pdf"): UiCase(P.PATIENT_READ),
    ("GET", "/patients/{patient_id}/sheet.pdf"): UiCase(P.PATIENT_READ),
    # Intake, eligibility, consent, rating scales, questionnaire links.
    ("GET", "/patients/{patient_id}/intake"): UiCase(P.INTAKE_WRITE),
    ("POST", "/patients/{patient_id}/intake"): UiCase(
        P.INTAKE_WRITE, _fields(adhd_diagnosis="yes", history="glaucoma"), 303
    ),
    ("POST", "/patients/{patient_id}/eligibility/sign"): UiCase(
        P.ELIGIBILITY_SIGN, _sign_review, 303
    ),
    ("POST", "/patients/{patient_id}/consents"): UiCase(
        P.CONSENT_WRITE,
        lambda _d, _t, _i: {"consent_version": consent_text()["version"], "status": "given"},
        303,
    ),
    ("GET", "/patients/{patient_id}/assessments/new"): UiCase(P.ASSESSMENT_WRITE),
    ("POST", "/patients/{patient_id}/assessments/new"): UiCase(
        P.ASSESSMENT_WRITE, _fields(**PHQ9_ZEROS), 303
    ),
    ("POST", "/patients/{patient_id}/assessments/{assessment_id}/acknowledge"): UiCase(
        P.ASSESSMENT_WRITE, _fields(note="C-SSRS done"), 303, ids=_urgent_assessment
    ),
    ("POST", "/patients/{patient_id}/self-report-links"): UiCase(
        P.SELF_REPORT_INVITE, _fields(instruments="phq9"), 201
    ),
    # Treatment course.
    ("GET", "/patients/{patient_id}/course"): UiCase(P.PATIENT_READ),
    ("POST", "/patients/{patient_id}/course"): UiCase(P.COURSE_WRITE, _plan, 303),
    ("POST", "/patients/{patient_id}/course/replan"): UiCase(
        P.COURSE_WRITE, _replan, 303, ids=_course
    ),
    ("POST", "/patients/{patient_id}/course/stop"): UiCase(
        P.COURSE_WRITE, _stop_course, 303, ids=_course
    ),
    ("GET", "/patients/{patient_id}/courses/{course_id}.ics"): UiCase(P.PATIENT_READ, ids=_course),
    # Psychotherapy.
    ("GET", "/therapy"): UiCase(P.PATIENT_READ),
    ("GET", "/patients/{patient_id}/therapy"): UiCase(P.PATIENT_READ),
    ("POST", "/patients/{patient_id}/therapy"): UiCase(
        P.THERAPY_WRITE, _fields(scheduled_at="2026-12-01T10:00", minutes="50"), 303
    ),
    ("GET", "/therapy/{therapy_id}"): UiCase(P.PATIENT_READ, ids=_therapy("scheduled")),
    ("POST", "/therapy/{therapy_id}/note"): UiCase(
        P.THERAPY_WRITE, _fields(**NOTE_FORM, version="1"), 303, ids=_therapy("scheduled")
    ),
    ("POST", "/therapy/{therapy_id}/amend"): UiCase(
        P.THERAPY_WRITE,
        _fields(**NOTE_FORM, reason="Minutes corrected."),
        303,
        ids=_therapy("signed"),
    ),
    ("POST", "/therapy/{therapy_id}/cancel"): UiCase(
        P.THERAPY_WRITE,
        _fields(status="cancelled", reason="Patient unwell.", version="1"),
        303,
        ids=_therapy("scheduled"),
    ),
    # Dosing sessions.
    ("GET", "/sessions"): UiCase(P.PATIENT_READ),
    ("GET", "/sessions/{session_id}"): UiCase(P.PATIENT_READ, ids=_session("in_progress")),
    ("GET", "/sessions/{session_id}/live"): UiCase(P.PATIENT_READ, ids=_session("in_progress")),
    ("POST", "/sessions/{session_id}/start"): UiCase(
        P.SESSION_WRITE, _fields(**PRECHECK), 303, ids=_session("scheduled")
    ),
    ("POST", "/sessions/{session_id}/order"): UiCase(
        P.DOSE_ORDER,
        _fields(mg_per_kg="0.5", minutes="40", basis="bag", basis_value="100"),
        303,
        ids=_session("in_progress"),
    ),
    ("POST", "/sessions/{session_id}/orders/{order_id}/verify"): UiCase(
        P.DOSE_VERIFY, _fields(), 303, ids=_ordered
    ),
    ("POST", "/sessions/{session_id}/dose/start"): UiCase(
        P.SESSION_WRITE, _fields(), 303, ids=_ordered
    ),
    ("POST", "/sessions/{session_id}/dose/end"): UiCase(
        P.SESSION_WRITE, _fields(), 303, ids=_dosing
    ),
    ("POST", "/sessions/{session_id}/pause"): UiCase(
        P.SESSION_WRITE, _fields(reason="BP settling"), 303, ids=_session("in_progress")
    ),
    ("POST", "/sessions/{session_id}/resume"): UiCase(
        P.SESSION_WRITE, _fields(), 303, ids=_session("paused")
    ),
    ("POST", "/sessions/{session_id}/stop"): UiCase(
        P.SESSION_WRITE, _fields(reason="Patient asked"), 303, ids=_session("in_progress")
    ),
    ("POST", "/sessions/{session_id}/record/vitals"): UiCase(
        P.SESSION_WRITE, _fields(heart_rate="80"), 303, ids=_session("in_progress")
    ),
    ("POST", "/sessions/{session_id}/record/score"): UiCase(
        P.SESSION_WRITE, _fields(instrument="moaas", item1="5"), 303, ids=_session("in_progress")
    ),
    ("POST", "/sessions/{session_id}/record/adverse-event"): UiCase(
        P.SESSION_WRITE,
        _fields(code="nausea", severity="mild", serious="no", outcome="ongoing"),
        303,
        ids=_session("in_progress"),
    ),
    ("POST", "/sessions/{session_id}/risk-decision"): UiCase(
        P.SESSION_OVERRIDE,
        lambda db, t, _ids: (
            {k: v for k, v in _risk_decision(db, t).items() if k != "flags"}
            | {"flag": _risk_decision(db, t)["flags"][0]}
        ),
        303,
        ids=_flagged,
    ),
    ("POST", "/sessions/{session_id}/alerts/{alert_id}/ack"): UiCase(
        P.SESSION_WRITE, _fields(action="Rechecked, paused"), 303, ids=_with_alert
    ),
    ("POST", "/sessions/{session_id}/alerts/ack"): UiCase(
        P.SESSION_WRITE,
        lambda _d, _t, ids: {"alert_id": str(ids["alert_id"]), "action": "Rechecked, paused"},
        303,
        ids=_with_alert,
    ),
    # Evaluating the discharge checklist reads the session and stores nothing.
    ("POST", "/sessions/{session_id}/discharge"): UiCase(P.PATIENT_READ, _fields(), ids=_dosing),
    ("POST", "/sessions/{session_id}/sign"): UiCase(
        P.SESSION_SIGN, _session_sign, 303, ids=_ready_to_sign
    ),
    ("POST", "/sessions/{session_id}/amend"): UiCase(
        P.SESSION_WRITE, _fields(text="Late entry: patient had tea"), 303, ids=_signed
    ),
}


def make_ids(db: Session, method: str, path: str, target: Target) -> Ids:
    """The ids a request names, made for ``target``'s patient (and caller)."""
    case = UI_ROUTES[(method, path)]
    ids: Ids = {"patient_id": target.patient_id, "medication_id": target.medication_id}
    if case.ids:
        ids.update(case.ids(db, target))
    return ids


def request_for(
    db: Session, method: str, path: str, target: Target, ids: Ids
) -> tuple[str, dict[str, Any] | None]:
    """The URL (query included) and the form fields of a request naming ``ids``."""
    case = UI_ROUTES[(method, path)]
    url = path.format(**ids) + (f"?{urlencode(case.query)}" if case.query else "")
    return url, (case.form(db, target, ids) if case.form else None)


def build(db: Session, method: str, path: str, target: Target) -> tuple[str, dict[str, Any] | None]:
    return request_for(db, method, path, target, make_ids(db, method, path, target))


# Routes that name a second record inside the first (in the path, or the form for courses):
# the name of that inner id.
INNER_IDS: dict[tuple[str, str], str] = {
    ("POST", "/patients/{patient_id}/medications/{medication_id}"): "medication_id",
    ("POST", "/patients/{patient_id}/assessments/{assessment_id}/acknowledge"): "assessment_id",
    ("GET", "/patients/{patient_id}/courses/{course_id}.ics"): "course_id",
    ("POST", "/patients/{patient_id}/course/replan"): "course_id",
    ("POST", "/patients/{patient_id}/course/stop"): "course_id",
    ("POST", "/sessions/{session_id}/orders/{order_id}/verify"): "order_id",
    ("POST", "/sessions/{session_id}/alerts/{alert_id}/ack"): "alert_id",
    ("POST", "/sessions/{session_id}/alerts/ack"): "alert_id",
}
