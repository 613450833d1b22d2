"""The dashboard page and its date filter."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from tests.conftest import ClinicWorld, bearer, ui_login


def test_the_dashboard_page_shows_its_sections(client: TestClient, world_a: ClinicWorld) -> None:
    ui_login(client, world_a.users[Role.PRESCRIBER].username)
    page = client.get("/dashboard?date_from=2026-01-01&date_to=2026-06-30")
    assert page.status_code == 200
    for text in ("Patients by stage", "Response by protocol", "Safety, 2026-01-01 to 2026-06-30"):
        assert text in page.text
    assert "no trial of ketamine for ADHD" in page.text


def test_a_reversed_period_is_explained(client: TestClient, world_a: ClinicWorld) -> None:
    ui_login(client, world_a.users[Role.NURSE].username)
    page = client.get("/dashboard?date_from=2026-06-30&date_to=2026-01-01")
    assert page.status_code == 422
    assert "date_from" in page.text


def test_researchers_cannot_open_it(client: TestClient, world_a: ClinicWorld) -> None:
    ui_login(client, world_a.users[Role.RESEARCHER].username)
    assert client.get("/dashboard").status_code == 403


def test_a_reversed_period_is_422_naming_date_from_in_the_api(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    # The period's own rule used to fail outside request validation: a 500.
    response = client.get(
        "/api/v1/dashboard?date_from=2000-01-01&date_to=1999-12-31",
        headers=bearer(db, world_a.users[Role.PRESCRIBER]),
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "date_from"]
    assert error["msg"] == "date_from: must not be after date_to"
