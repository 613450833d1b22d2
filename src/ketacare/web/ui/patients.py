"""Patient list and search, registration, editing and the chart."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from ketacare.app import chart as chart_uc
from ketacare.app import fhir_import as fhir_import_uc
from ketacare.app import patients as uc
from ketacare.app.assessments import SELF_REPORT_INSTRUMENTS, STAFF_INSTRUMENTS
from ketacare.app.errors import Conflict, InvalidInput
from ketacare.app.permissions import Permission, require
from ketacare.web.auth import CurrentPrincipal, DbSession, Principal
from ketacare.web.ui.render import parse_form, render

router = APIRouter(prefix="/patients")


@router.get("")
def patient_list(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(max_length=100)] = "",
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    page = uc.list_patients(db, principal.actor, q=q, cursor=cursor, limit=25)
    # HTMX live search swaps only the results.
    template = (
        "patients/_results.html" if request.headers.get("hx-request") else "patients/list.html"
    )
    return render(request, template, principal, page=page, q=q)


@router.get("/new")
def new_patient(request: Request, principal: CurrentPrincipal) -> Response:
    # A form is offered only to those who may submit it (the use-case checks the submission).
    require(principal.actor, Permission.PATIENT_WRITE)
    return render(request, "patients/form.html", principal, values={}, errors={}, patient=None)


@router.post("/new")
async def create_patient(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    form = await request.form()
    data, errors = parse_form(uc.PatientCreate, form)
    if data is not None:
        try:
            patient = uc.create_patient(db, principal.actor, data)
            return RedirectResponse(f"/patients/{patient.id}", status_code=303)
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
    return render(
        request,
        "patients/form.html",
        principal,
        status_code=422,
        values=dict(form),
        errors=errors,
        patient=None,
    )


def _chart(
    request: Request,
    db: DbSession,
    principal: Principal,
    patient_id: int,
    *,
    status_code: int = 200,
    **forms: Any,
) -> Response:
    page = chart_uc.chart_page(db, principal.actor, patient_id)
    chart = page.chart
    context: dict[str, Any] = {
        "programme": page.programme,
        "self_report_instruments": SELF_REPORT_INSTRUMENTS,
        "measurement_errors": {},
        "measurement_values": {},
        "medication_errors": {},
        "medication_values": {},
        "statuses": list(uc.MedicationStatus),
        "staff_instruments": STAFF_INSTRUMENTS,
    }
    context.update(forms)
    return render(
        request, "patients/chart.html", principal, status_code=status_code, chart=chart, **context
    )


@router.get("/{patient_id}")
def chart(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    return _chart(request, db, principal, patient_id)


@router.get("/{patient_id}/imported")
def imported(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    """The chart's card of what other systems sent (diagnoses, blood pressures, kept codes)."""
    records = fhir_import_uc.list_imported(db, principal.actor, patient_id)
    return render(request, "patients/_imported.html", principal, records=records)


@router.get("/{patient_id}/edit")
def edit_patient(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    require(principal.actor, Permission.PATIENT_WRITE)
    chart = uc.get_chart(db, principal.actor, patient_id)
    values = chart.patient.model_dump(mode="json")
    return render(
        request, "patients/form.html", principal, values=values, errors={}, patient=chart.patient
    )


@router.post("/{patient_id}/edit")
async def update_patient(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    data, errors = parse_form(uc.PatientUpdate, form)
    status_code = 422
    if data is not None:
        try:
            uc.update_patient(db, principal.actor, patient_id, data)
            return RedirectResponse(f"/patients/{patient_id}", status_code=303)
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
        except Conflict as exc:
            errors, status_code = {"form": exc.message}, 409
    current = uc.get_chart(db, principal.actor, patient_id).patient
    return render(
        request,
        "patients/form.html",
        principal,
        status_code=status_code,
        values=dict(form),
        errors=errors,
        patient=current,
    )


@router.post("/{patient_id}/measurements")
async def add_measurement(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    data, errors = parse_form(uc.MeasurementCreate, form)
    if data is not None:
        try:
            uc.add_measurement(db, principal.actor, patient_id, data)
            return RedirectResponse(f"/patients/{patient_id}#measurements", status_code=303)
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
    return _chart(
        request,
        db,
        principal,
        patient_id,
        status_code=422,
        measurement_errors=errors,
        measurement_values=dict(form),
    )


@router.post("/{patient_id}/medications")
async def add_medication(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    form = await request.form()
    data, errors = parse_form(uc.MedicationCreate, form)
    if data is not None:
        try:
            uc.add_medication(db, principal.actor, patient_id, data)
            return RedirectResponse(f"/patients/{patient_id}#medications", status_code=303)
        except InvalidInput as exc:
            errors = {exc.field: exc.message}
    return _chart(
        request,
        db,
        principal,
        patient_id,
        status_code=422,
        medication_errors=errors,
        medication_values=dict(form),
    )


@router.post("/{patient_id}/medications/{medication_id}")
async def update_medication(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    patient_id: int,
    medication_id: int,
) -> Response:
    form = await request.form()
    data, errors = parse_form(uc.MedicationUpdate, form)
    if data is not None:
        try:
            uc.update_medication(db, principal.actor, patient_id, medication_id, data)
            return RedirectResponse(f"/patients/{patient_id}#medications", status_code=303)
        except (InvalidInput, Conflict) as exc:
            errors = {"status": exc.message}
    return _chart(request, db, principal, patient_id, status_code=422, medication_errors=errors)
