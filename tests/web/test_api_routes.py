"""Every API route x every role x own clinic / other clinic, from the app's route table."""

from __future__ import annotations

from collections import defaultdict

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role, allowed
from ketacare.store.models import MedicationEntry, Patient
from tests.conftest import ROLES, ClinicWorld, bearer
from tests.web.route_table import routes
from tests.web.routes import ROUTES, Target, build


def test_the_route_table_in_the_tests_covers_every_api_route(client: TestClient) -> None:
    api = {(m, p) for m, p in routes(client.app) if p.startswith("/api/") and "openapi" not in p}
    assert api == set(ROUTES)


def _medicine(db: Session, world: ClinicWorld) -> int:
    med = MedicationEntry(
        clinic_id=world.clinic.id, patient_id=world.patients[0].id, name_entered="Strattera 40 mg"
    )
    db.add(med)
    db.commit()
    return med.id


CASES = [(m, p, r) for (m, p) in sorted(ROUTES) for r in ROLES]


@pytest.mark.parametrize(("method", "path", "role"), CASES, ids=lambda v: str(v))
def test_each_role_gets_exactly_what_the_permission_table_allows(
    client: TestClient, db: Session, world_a: ClinicWorld, method: str, path: str, role: Role
) -> None:
    user = world_a.users[role]
    target = Target(world_a.patients[0].id, _medicine(db, world_a), user)
    url, body = build(db, method, path, target)
    response = client.request(method, url, json=body, headers=bearer(db, user))
    case = ROUTES[(method, path)]
    if case.permission is None or allowed(role, case.permission):
        assert response.status_code == case.ok, response.text
    else:
        assert response.status_code == 403, response.text


# Every route aimed at a clinic's record (a patient, session, course, therapy session, ...).
PATIENT_ROUTES = [(m, p) for (m, p) in sorted(ROUTES) if "{" in p and "{token_id}" not in p]


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [(m, p, r) for m, p in PATIENT_ROUTES for r in ROLES],
    ids=lambda v: str(v),
)
def test_no_role_reaches_another_clinics_patient_through_any_route(
    client: TestClient,
    db: Session,
    world_a: ClinicWorld,
    world_b: ClinicWorld,
    method: str,
    path: str,
    role: Role,
) -> None:
    victim = world_b.patients[0]
    target = Target(victim.id, _medicine(db, world_b), world_a.users[role])
    url, body = build(db, method, path, target)
    # After the victim's records for this route were made (planning a course moves the stage).
    db.refresh(victim)
    before = (victim.family_name, victim.version)
    response = client.request(method, url, json=body, headers=bearer(db, world_a.users[role]))
    assert response.status_code in (403, 404), response.text
    assert victim.family_name not in response.text and victim.mrn not in response.text
    db.expire_all()
    row = db.get(Patient, victim.id)
    assert row is not None and (row.family_name, row.version) == before
    meds = db.scalars(
        select(MedicationEntry.status).where(MedicationEntry.patient_id == victim.id)
    ).all()
    assert meds == ["active"]


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES), ids=lambda v: str(v))
def test_every_api_route_needs_authentication(
    client: TestClient, db: Session, world_a: ClinicWorld, method: str, path: str
) -> None:
    target = Target(world_a.patients[0].id, 1, world_a.users[Role.NURSE])
    # Every other path id (session, order, course, ...) is 1: authentication comes first.
    url = path.format_map(defaultdict(lambda: 1, patient_id=target.patient_id))
    response = client.request(method, url, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_lists_only_show_the_callers_clinic(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    body = client.get("/api/v1/patients?limit=100", headers=headers).json()
    assert {p["mrn"] for p in body["items"]} == {p.mrn for p in world_a.patients}
    research = client.get(
        "/api/v1/research/patients", headers=bearer(db, world_a.users[Role.RESEARCHER])
    ).json()
    assert len(research["items"]) == len(world_a.patients)
