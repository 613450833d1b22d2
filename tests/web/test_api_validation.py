"""Bad input answers 422 naming the field; never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from tests.conftest import ClinicWorld, bearer

GOOD = {
    "mrn": "V-1",
    "family_name": "Varga",
    "given_name": "Ivan",
    "date_of_birth": "1979-12-31",
    "sex": "male",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date_of_birth": "31/12/1979"}, "date_of_birth"),
        ({"sex": "M"}, "sex"),
        ({"mrn": ""}, "mrn"),
        ({"email": "ivan@"}, "email"),
        ({"family_name": "x" * 101}, "family_name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_patient_fields_are_named(
    client: TestClient, db: Session, world_a: ClinicWorld, change: dict[str, object], field: str
) -> None:
    response = client.post(
        "/api/v1/patients", json={**GOOD, **change}, headers=bearer(db, world_a.users[Role.NURSE])
    )
    assert response.status_code == 422
    assert field in [e["loc"][-1] for e in response.json()["detail"]]


def test_a_duplicate_mrn_is_a_422_on_the_mrn_field(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    assert client.post("/api/v1/patients", json=GOOD, headers=headers).status_code == 201
    again = client.post("/api/v1/patients", json=GOOD, headers=headers)
    assert again.status_code == 422
    assert again.json()["detail"][0]["loc"] == ["body", "mrn"]


def test_a_stale_version_is_409(client: TestClient, db: Session, world_a: ClinicWorld) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    pid = world_a.patients[0].id
    body = {k: v for k, v in GOOD.items() if k != "mrn"}
    assert (
        client.put(
            f"/api/v1/patients/{pid}", json={**body, "version": 1}, headers=headers
        ).status_code
        == 200
    )
    stale = client.put(f"/api/v1/patients/{pid}", json={**body, "version": 1}, headers=headers)
    assert stale.status_code == 409


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/patients/abc",
        "/api/v1/patients?limit=0",
        "/api/v1/patients?limit=1000",
        "/api/v1/patients?cursor=%%%",
        "/api/v1/audit?since=yesterday",
    ],
)
def test_malformed_queries_are_422_not_500(
    client: TestClient, db: Session, world_a: ClinicWorld, url: str
) -> None:
    response = client.get(url, headers=bearer(db, world_a.users[Role.ADMIN]))
    assert response.status_code == 422


def test_an_unknown_patient_is_404_with_a_readable_message(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    response = client.get("/api/v1/patients/987654", headers=bearer(db, world_a.users[Role.NURSE]))
    assert response.status_code == 404
    assert response.json() == {"detail": "No patient 987654 in your clinic."}


def test_a_revoked_or_forged_token_is_401(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer kc_deadbeef_forged"})
    assert response.status_code == 401
