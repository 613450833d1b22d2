"""PDF downloads from the chart and the API: attachments that no cache keeps, for the
caller's own clinic only, never for researchers."""

from __future__ import annotations

import io

import pypdf
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.store.models import MedicationEntry
from tests.conftest import ClinicWorld, bearer, ui_login


def _text(data: bytes) -> str:
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def _assert_pdf_download(response, name: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(b"%PDF-")
    return _text(response.content)


def test_the_chart_links_to_both_reports_and_they_download(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[0]
    db.add(
        MedicationEntry(
            clinic_id=patient.clinic_id, patient_id=patient.id, name_entered="Xanax 0.5 mg"
        )
    )
    db.commit()
    ui_login(client, "a-therapist")
    chart = client.get(f"/patients/{patient.id}")
    assert f'href="/patients/{patient.id}/report.pdf"' in chart.text
    assert "Progress report (PDF)" in chart.text
    assert f'href="/patients/{patient.id}/sheet.pdf"' in chart.text
    assert "Patient information sheet (PDF)" in chart.text

    report = client.get(f"/patients/{patient.id}/report.pdf")
    text = _assert_pdf_download(report, f"ketacare-progress-report-patient-{patient.id}.pdf")
    assert f"{patient.family_name}, {patient.given_name}" in text
    assert "Benzodiazepines" in text
    assert "no trial of ketamine for ADHD exists." in text

    sheet = client.get(f"/patients/{patient.id}/sheet.pdf")
    text = _assert_pdf_download(sheet, f"ketacare-patient-information-patient-{patient.id}.pdf")
    assert "Does Xanax help ADHD?" in text


def test_the_api_serves_the_progress_report(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[1]
    response = client.get(
        f"/api/v1/patients/{patient.id}/report.pdf", headers=bearer(db, world_a.users[Role.ADMIN])
    )
    text = _assert_pdf_download(response, f"ketacare-progress-report-patient-{patient.id}.pdf")
    assert f"MRN {patient.mrn}" in text


def test_another_clinics_patient_is_not_found_in_either_face(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    victim = world_b.patients[0]
    api = client.get(
        f"/api/v1/patients/{victim.id}/report.pdf", headers=bearer(db, world_a.users[Role.NURSE])
    )
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/json")
    ui_login(client, "a-nurse")
    for kind in ("report", "sheet"):
        page = client.get(f"/patients/{victim.id}/{kind}.pdf")
        assert page.status_code == 404
        assert victim.family_name not in page.text and victim.mrn not in page.text


def test_researchers_are_refused_and_strangers_sent_to_sign_in(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[0]
    anonymous = client.get(f"/patients/{patient.id}/sheet.pdf")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    ui_login(client, "a-researcher")
    for kind in ("report", "sheet"):
        refused = client.get(f"/patients/{patient.id}/{kind}.pdf")
        assert refused.status_code == 403
        assert patient.family_name not in refused.text


def test_a_patient_id_that_is_not_a_number_is_a_clear_422(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    response = client.get(
        "/api/v1/patients/abc/report.pdf", headers=bearer(db, world_a.users[Role.NURSE])
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "patient_id"
