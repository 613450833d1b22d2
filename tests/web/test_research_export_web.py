"""The research download: the API streams the CSV to researchers only, the Research page links
to it, and another clinic's rows never appear."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app import research_export as rx
from ketacare.app.patients import keyed_id, pseudonym
from ketacare.app.permissions import Role
from ketacare.store.models import AuditEvent, TreatmentSession
from tests.app.test_research_export import SECRET, Built, populate
from tests.conftest import ClinicWorld, bearer, ui_login

URL = "/api/v1/research/export/{table}.csv"


@pytest.fixture
def built(db: Session, world_a: ClinicWorld, world_b: ClinicWorld) -> Built:
    populate(db, world_b)
    return populate(db, world_a)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("table", list(rx.ExportTable))
def test_a_researcher_downloads_the_clinics_table_as_csv(
    client: TestClient, db: Session, built: Built, table: rx.ExportTable
) -> None:
    response = client.get(
        URL.format(table=table), headers=bearer(db, built.world.users[Role.RESEARCHER])
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{table}.csv"'
    assert response.text.splitlines()[0] == ",".join(rx.COLUMNS[table])
    body = rows(response.text)
    assert len(body) == {rx.ExportTable.ASSESSMENTS: 6, rx.ExportTable.SESSIONS: 3}[table]
    cid = built.world.clinic.id
    assert {r["patient"] for r in body} <= {
        pseudonym(SECRET, cid, p.id) for p in built.world.patients
    }
    for text in built.secrets:
        assert text not in response.text
    (event,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "research.export")).all()
    assert event.detail == {"table": table.value, "rows": len(body), "complete": True}


@pytest.mark.parametrize("table", list(rx.ExportTable))
@pytest.mark.parametrize("role", [Role.ADMIN, Role.PRESCRIBER, Role.NURSE, Role.THERAPIST])
def test_every_other_role_is_refused(
    client: TestClient, db: Session, built: Built, role: Role, table: rx.ExportTable
) -> None:
    response = client.get(URL.format(table=table), headers=bearer(db, built.world.users[role]))
    assert response.status_code == 403
    assert "patient.read_deidentified" in response.json()["detail"]
    assert built.world.patients[0].mrn not in response.text
    outcomes = db.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "research.export"))
    assert list(outcomes) == ["denied"]


def test_without_a_sign_in_the_download_is_refused(client: TestClient, built: Built) -> None:
    assert client.get(URL.format(table="sessions")).status_code == 401


def test_another_clinics_rows_are_absent(
    client: TestClient, db: Session, built: Built, world_b: ClinicWorld
) -> None:
    headers = bearer(db, world_b.users[Role.RESEARCHER])
    sessions = rows(client.get(URL.format(table="sessions"), headers=headers).text)
    theirs = {
        keyed_id(SECRET, "session", world_b.clinic.id, sid)
        for sid in db.scalars(
            select(TreatmentSession.id).where(TreatmentSession.clinic_id == world_b.clinic.id)
        )
    }
    assert {r["session"] for r in sessions} == theirs
    mine = {pseudonym(SECRET, built.world.clinic.id, p.id) for p in built.world.patients}
    assessments = rows(client.get(URL.format(table="assessments"), headers=headers).text)
    assert assessments and not {r["patient"] for r in assessments} & mine


def test_the_research_page_links_the_downloads_and_the_link_works_signed_in(
    client: TestClient, db: Session, built: Built
) -> None:
    ui_login(client, "a-researcher")
    page = client.get("/research")
    assert page.status_code == 200
    for table in rx.ExportTable:
        url = URL.format(table=table)
        assert f'href="{url}" download' in page.text
        download = client.get(url)
        assert download.status_code == 200
        api = client.get(url, headers=bearer(db, built.world.users[Role.RESEARCHER]))
        assert download.text == api.text


def test_staff_see_no_research_page_to_download_from(client: TestClient, built: Built) -> None:
    ui_login(client, "a-nurse")
    assert client.get("/research").status_code == 403
    assert "/research/export" not in client.get("/account").text
