"""Default eligibility exclusions relaxed with a reason, through the API and the settings page;
a label contraindication can never be relaxed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.store.models import Clinic
from tests.conftest import ClinicWorld, bearer, ui_login

REASON = "Medical director 2026-12-01: co-managed with the patient's psychiatrist."
NOTE = "Clinic protocol v4, section 2."


def test_the_api_relaxes_a_default_exclusion_and_refuses_a_label_contraindication(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    admin = bearer(db, world_a.users[Role.ADMIN])
    label = client.put(
        "/api/v1/clinic/settings",
        json={
            "eligibility_relaxations": {"aneurysmal_vascular_disease": REASON},
            "change_note": NOTE,
            "version": 1,
        },
        headers=admin,
    )
    assert label.status_code == 422
    (error,) = label.json()["detail"]
    assert error["loc"] == ["body", "eligibility_relaxations.aneurysmal_vascular_disease"]
    assert "can never be relaxed" in error["msg"]
    saved = client.put(
        "/api/v1/clinic/settings",
        json={
            "eligibility_relaxations": {"schizophrenia": REASON},
            "change_note": NOTE,
            "version": 1,
        },
        headers=admin,
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["eligibility_relaxations"] == {"schizophrenia": REASON}


def _form(csrf: str, **fields: str) -> dict[str, str | list[str]]:
    return {
        "version": "1",
        "days": ["0", "1", "2", "3", "4"],
        "opens": "08:00",
        "closes": "17:00",
        "closed_dates": "",
        "change_note": NOTE,
        "csrf_token": csrf,
        **fields,
    }


def test_the_settings_page_relaxes_with_a_reason_and_keeps_it_on_the_next_save(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-admin")
    page = client.get("/admin/settings").text
    assert 'name="relax.schizophrenia"' in page and 'name="relax.pregnancy"' in page
    assert 'name="relax.aneurysmal_vascular_disease"' not in page
    assert "cannot be relaxed" in page
    short = client.post("/admin/settings", data=_form(csrf, **{"relax.pregnancy": "ok"}))
    assert short.status_code == 422
    assert 'id="e-eligibility_relaxations-pregnancy"' in short.text
    assert "at least 20 characters" in short.text
    saved = client.post("/admin/settings", data=_form(csrf, **{"relax.schizophrenia": REASON}))
    assert saved.status_code == 303, saved.text
    again = client.get(saved.headers["location"]).text
    assert REASON.replace("'", "&#39;") in again
    # Saving the calendar again keeps the relaxation the form shows.
    kept = client.post(
        "/admin/settings",
        data=_form(csrf, version="2", opens="09:00", **{"relax.schizophrenia": REASON}),
    )
    assert kept.status_code == 303, kept.text
    clinic = db.get(Clinic, world_a.clinic.id)
    db.refresh(clinic)
    assert clinic is not None and clinic.settings is not None
    assert clinic.settings["eligibility_relaxations"] == {"schizophrenia": REASON}
