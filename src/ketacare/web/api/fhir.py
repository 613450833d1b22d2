"""FHIR R4B read API under /api/v1/fhir: metadata, Patient read and search, a patient's record
($everything) and Observation search. Answers are ``application/fhir+json``; errors are
OperationOutcomes with the HTTP status of the rest of the API (401, 403, 404, 422)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ketacare.app import fhir as uc
from ketacare.app.errors import DomainError, InvalidInput
from ketacare.interop.fhir import operation_outcome
from ketacare.web.auth import DbSession, Principal, optional_principal

router = APIRouter(prefix="/fhir", tags=["fhir"])

FHIR_JSON = "application/fhir+json"
MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
ISSUE_CODE = {401: "login", 403: "forbidden", 404: "not-found", 409: "conflict", 422: "invalid"}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "A FHIR resource"},
    401: {"description": "OperationOutcome: sign in or send an API token"},
    403: {"description": "OperationOutcome: your role may not read patient records"},
    404: {"description": "OperationOutcome: no such patient in your clinic"},
    422: {"description": "OperationOutcome: a parameter is not valid"},
}


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def _base(request: Request) -> str:
    return f"{request.base_url}api/v1/fhir/"


def _outcome(status: int, message: str, expression: str | None = None) -> FhirResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = operation_outcome(ISSUE_CODE.get(status, "processing"), message, expression=expression)
    return FhirResponse(body, status_code=status, headers=headers)


def _answer(principal: Principal | None, build: Callable[[Principal], dict[str, Any]]) -> Any:
    """Run a use-case and answer with its resource, or with an OperationOutcome."""
    if principal is None:
        return _outcome(401, "Sign in, or send an API token as 'Authorization: Bearer ...'.")
    from ketacare.web.errors import status_of  # web.errors imports the API package

    try:
        resource = build(principal)
    except DomainError as exc:
        field = exc.field if isinstance(exc, InvalidInput) else None
        return _outcome(status_of(exc), exc.message, field)
    return FhirResponse(resource, headers={"Cache-Control": "no-store"})


def _patient_id(raw: str) -> int:
    found = uc.record_id(raw)
    if found is None:
        raise InvalidInput("id", f"id: {raw!r} is not a patient id (ids are whole numbers).")
    return found


@router.get(
    "/metadata",
    response_class=FhirResponse,
    responses=RESPONSES,
    summary="CapabilityStatement (FHIR 4.3.0)",
)
def metadata(request: Request, principal: MaybePrincipal) -> Any:
    return _answer(principal, lambda _p: uc.capability_statement(_base(request)))


@router.get("/Patient", response_class=FhirResponse, responses=RESPONSES, summary="Search patients")
def search_patients(
    request: Request,
    db: DbSession,
    principal: MaybePrincipal,
    id_: Annotated[
        str | None, Query(alias="_id", description="Patient ids, comma-separated")
    ] = None,
    identifier: Annotated[
        str | None, Query(description="MRN: system|value or value, comma-separated")
    ] = None,
    count: Annotated[str | None, Query(alias="_count", description="At most (1-500)")] = None,
) -> Any:
    return _answer(
        principal,
        lambda p: uc.search_patients(
            db,
            p.actor,
            ids=id_,
            identifier=identifier,
            count=count,
            base_url=_base(request),
            self_url=str(request.url),
        ),
    )


@router.get(
    "/Patient/{patient_id}",
    response_class=FhirResponse,
    responses=RESPONSES,
    summary="Read a Patient",
)
def read_patient(db: DbSession, principal: MaybePrincipal, patient_id: str) -> Any:
    return _answer(principal, lambda p: uc.read_patient(db, p.actor, _patient_id(patient_id)))


@router.get(
    "/Patient/{patient_id}/$everything",
    response_class=FhirResponse,
    responses=RESPONSES,
    summary="The patient's whole record as a Bundle",
)
def everything(request: Request, db: DbSession, principal: MaybePrincipal, patient_id: str) -> Any:
    return _answer(
        principal,
        lambda p: uc.export_patient(db, p.actor, _patient_id(patient_id), base_url=_base(request)),
    )


@router.get(
    "/Observation",
    response_class=FhirResponse,
    responses=RESPONSES,
    summary="Search a patient's Observations",
)
def search_observations(
    request: Request,
    db: DbSession,
    principal: MaybePrincipal,
    patient: Annotated[str | None, Query(description="12 or Patient/12")] = None,
    category: Annotated[str | None, Query(description="vital-signs or survey")] = None,
    code: Annotated[str | None, Query(description="system|code or code")] = None,
) -> Any:
    return _answer(
        principal,
        lambda p: uc.search_observations(
            db,
            p.actor,
            patient=patient,
            category=category,
            code=code,
            base_url=_base(request),
            self_url=str(request.url),
        ),
    )
