"""Downloads of a patient's PDF reports from the chart."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ketacare.app import reports as uc
from ketacare.web.api.reports import pdf_response
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(prefix="/patients")


@router.get("/{patient_id}/report.pdf")
def progress_report(db: DbSession, principal: CurrentPrincipal, patient_id: int) -> Response:
    data = uc.progress_report(db, principal.actor, patient_id)
    return pdf_response(data, uc.filename("progress-report", patient_id))


@router.get("/{patient_id}/sheet.pdf")
def patient_sheet(db: DbSession, principal: CurrentPrincipal, patient_id: int) -> Response:
    data = uc.patient_sheet(db, principal.actor, patient_id)
    return pdf_response(data, uc.filename("patient-information", patient_id))
