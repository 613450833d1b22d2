"""FHIR import: ``POST /api/v1/fhir`` takes a transaction, batch or collection Bundle.

The answer is a transaction-response (or batch-response) Bundle with one entry per entry
received, each with its status and an OperationOutcome of its findings; with
``Prefer: return=OperationOutcome`` it is one OperationOutcome listing every finding. An invalid
bundle is refused with 422 and an OperationOutcome naming each entry and field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from ketacare.app import fhir_import as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(tags=["fhir"])

FHIR_JSON = "application/fhir+json"
ACCEPTED = (FHIR_JSON, "application/json")
MAX_BYTES = 20 * 1024 * 1024
STATUS = {
    "created": "201 Created",
    "updated": "200 OK",
    "unchanged": "200 OK",
    "merged": "200 OK",
    "kept": "200 OK",
    "refused": "422 Unprocessable Entity",
}
ISSUE_TYPE = {
    "unknown_code": "code-invalid",
    "unknown_unit": "code-invalid",
    "unknown_status": "code-invalid",
    "unsupported_resource": "not-supported",
    "implausible_value": "value",
    "future_time": "value",
    "no_time": "required",
    "no_value": "required",
    "unresolved_reference": "not-found",
    "patient_refused": "not-found",
    "invalid_patient": "business-rule",
}


async def _body(request: Request) -> bytes:
    return await request.body()


def _outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "OK"}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def _issue(severity: str, code: str, path: str, text: str) -> dict[str, Any]:
    expression = "Bundle" if path in ("", "$") else f"Bundle.{path}"
    return {"severity": severity, "code": code, "diagnostics": text, "expression": [expression]}


def _finding_issue(f: uc.FindingOut) -> dict[str, Any]:
    kind = ISSUE_TYPE.get(f.code, "informational" if f.severity == "warning" else "processing")
    return _issue(f.severity, kind, f.path, f"{f.code}: {f.message}")


def _fhir(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _refuse(status: int, code: str, path: str, text: str) -> JSONResponse:
    return _fhir(_outcome([_issue("error", code, path, text)]), status)


def response_bundle(report: uc.ImportReport) -> dict[str, Any]:
    """The transaction-response (batch-response for a batch or collection) Bundle."""
    by_entry: dict[int, list[dict[str, Any]]] = {}
    for f in report.findings:
        if f.index is not None:
            by_entry.setdefault(f.index, []).append(_finding_issue(f))
    kind = "transaction-response" if report.bundle_type == "transaction" else "batch-response"
    entries = []
    for e in report.entries:
        response: dict[str, Any] = {"status": STATUS[e.outcome]}
        if e.index in by_entry:
            response["outcome"] = _outcome(by_entry[e.index])
        entries.append({"response": response})
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


@router.post(
    "/fhir",
    summary="Import a FHIR Bundle (transaction, batch or collection)",
    description=(
        "Patients, MedicationStatements, Observations (body weight and height, blood "
        "pressure) and Conditions are created or updated; codes, units or resource types "
        "KetaCare does not read are kept as received and reported as warnings, impossible "
        "values are refused as errors. Importing the same bundle again changes nothing."
    ),
    responses={
        200: {"description": "Response Bundle, or OperationOutcome on request"},
        415: {"description": "Not JSON"},
        422: {"description": "Invalid bundle: OperationOutcome naming entry and field"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "object"}} for t in ACCEPTED},
        }
    },
)
def import_fhir(
    db: DbSession,
    principal: CurrentPrincipal,
    body: Annotated[bytes, Depends(_body)],
    content_type: Annotated[str | None, Header()] = None,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in ACCEPTED:
        return _refuse(
            415, "not-supported", "", f"send the Bundle as {' or '.join(ACCEPTED)}, not {media!r}."
        )
    if len(body) > MAX_BYTES:
        return _refuse(413, "too-costly", "", f"the bundle is over {MAX_BYTES // 2**20} MB.")
    try:
        report = uc.import_json(db, principal.actor, body)
    except uc.InvalidBundle as exc:
        issues = [_issue("error", "invalid", i.path, i.message) for i in exc.issues]
        return _fhir(_outcome(issues), 422)
    if prefer and "return=operationoutcome" in prefer.replace(" ", "").lower():
        return _fhir(_outcome([_finding_issue(f) for f in report.findings]))
    return _fhir(response_bundle(report))


@router.get(
    "/patients/{patient_id}/imported-records",
    response_model=uc.ImportedRecords,
    summary="Imported conditions and kept resources (blood pressures, unknown codes)",
)
def imported_records(
    db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> uc.ImportedRecords:
    return uc.list_imported(db, principal.actor, patient_id)
