"""PDF reports of a patient."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ketacare.app import reports as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(prefix="/patients", tags=["reports"])


def pdf_response(data: bytes, filename: str) -> Response:
    """A download: saved as a file, never kept by a cache (it holds patient data)."""
    return Response(
        content=data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/{patient_id}/report.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The progress report"}},
    summary="The patient's progress report (PDF)",
)
def progress_report(db: DbSession, principal: CurrentPrincipal, patient_id: int) -> Response:
    data = uc.progress_report(db, principal.actor, patient_id)
    return pdf_response(data, uc.filename("progress-report", patient_id))
