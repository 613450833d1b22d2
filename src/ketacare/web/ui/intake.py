"""Intake form, eligibility sign-off, consent, rating scales and questionnaire links."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from ketacare.app import assessments as sc
from ketacare.app import intake as uc
from ketacare.app import patients as pt
from ketacare.app.errors import Conflict, InvalidInput
from ketacare.app.permissions import Permission, require
from ketacare.clinical.eligibility import HistoryCode, TreatmentResponse
from ketacare.clinical.instruments import instrument
from ketacare.knowledge.eligibility_defs import load_contraindications
from ketacare.knowledge.protocol_defs import load_protocols
from ketacare.web.auth import CurrentPrincipal, DbSession
from ketacare.web.ui.render import render

router = APIRouter(prefix="/patients/{patient_id}")
TREATMENT_ROWS = 4
# The history checkboxes, grouped by what the default rules make of them.
HISTORY_GROUPS = (
    ("label_contraindication", "Contraindications in a product label (exclude)"),
    ("clinic_default", "Excluded by the clinic's default for an elective, off-label treatment"),
    ("caution", "Reviewed by a prescriber"),
)


def _history_groups() -> list[tuple[str, list[Any]]]:
    """(heading, conditions) in the knowledge file's order; every HistoryCode appears once."""
    conditions = load_contraindications().by_code()
    groups: dict[str, list[Any]] = {key: [] for key, _ in HISTORY_GROUPS}
    for code in HistoryCode:
        condition = conditions[code.value]
        key = condition.basis if condition.classification == "exclusion" else "caution"
        groups[key].append(condition)
    return [(heading, groups[key]) for key, heading in HISTORY_GROUPS if groups[key]]


def _first_error(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "form"
        errors.setdefault(field, err["msg"].removeprefix("Value error, "))
    return errors


def _intake_from_form(form: FormData) -> dict[str, Any]:
    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    diagnosis = text("adhd_diagnosis")
    treatments = []
    for i in range(TREATMENT_ROWS):
        drug = text(f"t{i}_drug")
        if not drug:
            continue
        side = text(f"t{i}_side_effects")
        treatments.append(
            {
                "drug": drug,
                "response": text(f"t{i}_response"),
                "dose": text(f"t{i}_dose"),
                "duration_weeks": text(f"t{i}_duration_weeks"),
                "side_effects": [s.strip() for s in side.split(",") if s.strip()] if side else [],
            }
        )
    systolic, diastolic = text("systolic"), text("diastolic")
    return {
        "adhd_diagnosis": {"yes": True, "no": False}.get(diagnosis or ""),
        "diagnosis_by": text("diagnosis_by"),
        "diagnosis_when": text("diagnosis_when"),
        "prior_adhd_treatments": treatments,
        "history": [v for v in form.getlist("history") if isinstance(v, str)],
        "blood_pressure": (
            {"systolic": systolic, "diastolic": diastolic} if systolic or diastolic else None
        ),
        "heart_rate": text("heart_rate"),
        "planned_protocol": text("planned_protocol"),
        "notes": text("notes"),
    }


def _form_values(intake: uc.IntakeForm | None) -> dict[str, Any]:
    if intake is None:
        return {"history": []}
    values: dict[str, Any] = {
        "adhd_diagnosis": {True: "yes", False: "no"}.get(intake.adhd_diagnosis, ""),  # type: ignore[arg-type]
        "diagnosis_by": intake.diagnosis_by,
        "diagnosis_when": intake.diagnosis_when,
        "history": [h.value for h in intake.history],
        "heart_rate": intake.heart_rate,
        "planned_protocol": intake.planned_protocol,
        "notes": intake.notes,
    }
    if intake.blood_pressure:
        values["systolic"] = intake.blood_pressure.systolic
        values["diastolic"] = intake.blood_pressure.diastolic
    for i, t in enumerate(intake.prior_adhd_treatments[:TREATMENT_ROWS]):
        values.update(
            {
                f"t{i}_drug": t.drug,
                f"t{i}_response": t.response.value,
                f"t{i}_dose": t.dose,
                f"t{i}_duration_weeks": t.duration_weeks,
                f"t{i}_side_effects": ", ".join(t.side_effects),
            }
        )
    return values


def _render_intake(
    request: Request,
    principal: Any,
    chart: pt.PatientChart,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "intake/form.html",
        principal,
        status_code=status_code,
        chart=chart,
        values=values,
        errors=errors,
        history_groups=_history_groups(),
        responses=list(TreatmentResponse),
        rows=range(TREATMENT_ROWS),
        protocols=[p for p in load_protocols().values() if p.plannable],
    )


@router.get("/intake")
def intake_form(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    # Forms are offered only to those who may submit them; the use-cases check submissions.
    require(principal.actor, Permission.INTAKE_WRITE)
    chart = pt.get_chart(db, principal.actor, patient_id)
    current = uc.get_intake(db, principal.actor, patient_id)
    return _render_intake(
        request, principal, chart, _form_values(current.form if current else None), {}
    )


@router.post("/intake")
async def save_intake(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    raw = _intake_from_form(form)
    try:
        data = uc.IntakeForm.model_validate(raw)
    except ValidationError as exc:
        chart = pt.get_chart(db, principal.actor, patient_id)
        values = {k: v for k, v in form.items() if k != "history"}
        values["history"] = raw["history"]
        return _render_intake(request, principal, chart, values, _first_error(exc), 422)
    uc.save_intake(db, principal.actor, patient_id, data)
    return RedirectResponse(f"/patients/{patient_id}#programme", status_code=303)


@router.post("/eligibility/sign")
async def sign(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    raw = {
        k: form.get(k) or None for k in ("computed_decision", "final_decision", "override_reason")
    }
    error = None
    try:
        uc.sign_review(db, principal.actor, patient_id, uc.SignRequest.model_validate(raw))
        return RedirectResponse(f"/patients/{patient_id}#programme", status_code=303)
    except ValidationError as exc:
        error = "; ".join(f"{k}: {v}" for k, v in _first_error(exc).items())
    except (InvalidInput, Conflict) as exc:
        error = exc.message
    return _chart_with(request, db, principal, patient_id, sign_error=error)


@router.post("/consents")
async def consent(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    try:
        data = uc.ConsentCreate.model_validate(
            {k: form.get(k) or None for k in ("consent_version", "status", "note")}
        )
        uc.record_consent(db, principal.actor, patient_id, data)
        return RedirectResponse(f"/patients/{patient_id}#consent", status_code=303)
    except ValidationError as exc:
        error = "; ".join(f"{k}: {v}" for k, v in _first_error(exc).items())
    except InvalidInput as exc:
        error = exc.message
    return _chart_with(request, db, principal, patient_id, consent_error=error)


@router.get("/assessments/new")
def new_assessment(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    patient_id: int,
    instrument_id: str = "phq9",
) -> Response:
    require(principal.actor, Permission.ASSESSMENT_WRITE)
    chart = pt.get_chart(db, principal.actor, patient_id)
    if instrument_id not in sc.STAFF_INSTRUMENTS:
        raise InvalidInput("instrument_id", f"Unknown instrument {instrument_id!r}.")
    return render(
        request,
        "intake/assessment.html",
        principal,
        chart=chart,
        definition=instrument(instrument_id),
        values={},
        error=None,
    )


@router.post("/assessments/new")
async def save_assessment(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    patient_id: int,
    instrument_id: str = "phq9",
) -> Response:
    form = await request.form()
    if instrument_id not in sc.STAFF_INSTRUMENTS:
        raise InvalidInput("instrument_id", f"Unknown instrument {instrument_id!r}.")
    definition = instrument(instrument_id)
    answers: list[int] = []
    error = None
    for item in definition.items:
        value = form.get(f"item{item.number}")
        if not isinstance(value, str) or not value.isdigit():
            error = f"Answer item {item.number} ({item.short_label})."
            break
        answers.append(int(value))
    if error is None:
        try:
            sc.record_assessment(
                db,
                principal.actor,
                patient_id,
                sc.AssessmentCreate(instrument=instrument_id, answers=answers),
            )
            return RedirectResponse(f"/patients/{patient_id}#programme", status_code=303)
        except InvalidInput as exc:
            error = exc.message
    chart = pt.get_chart(db, principal.actor, patient_id)
    return render(
        request,
        "intake/assessment.html",
        principal,
        status_code=422,
        chart=chart,
        definition=definition,
        values=dict(form),
        error=error,
    )


@router.post("/assessments/{assessment_id}/acknowledge")
async def acknowledge(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    patient_id: int,
    assessment_id: int,
) -> Response:
    form = await request.form()
    note = form.get("note")
    try:
        sc.acknowledge_flag(
            db, principal.actor, patient_id, assessment_id, note if isinstance(note, str) else ""
        )
        return RedirectResponse(f"/patients/{patient_id}", status_code=303)
    except InvalidInput as exc:
        return _chart_with(request, db, principal, patient_id, flag_error=exc.message)


@router.post("/self-report-links")
async def invite(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    chosen = [v for v in form.getlist("instruments") if isinstance(v, str)]
    try:
        created = sc.create_self_report_link(
            db, principal.actor, patient_id, sc.SelfReportInvite(instruments=chosen)
        )
    except ValidationError:
        return _chart_with(
            request, db, principal, patient_id, invite_error="Choose at least one questionnaire."
        )
    except InvalidInput as exc:
        return _chart_with(request, db, principal, patient_id, invite_error=exc.message)
    link = str(request.base_url).rstrip("/") + created.path
    return _chart_with(
        request, db, principal, patient_id, status_code=201, invite_link=link, invite=created
    )


def _chart_with(
    request: Request,
    db: DbSession,
    principal: Any,
    patient_id: int,
    *,
    status_code: int = 422,
    **extra: Any,
) -> Response:
    from ketacare.web.ui.patients import _chart

    return _chart(request, db, principal, patient_id, status_code=status_code, **extra)
