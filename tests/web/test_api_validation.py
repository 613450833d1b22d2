"""Bad input answers 422 naming the field; never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from tests.conftest import ClinicWorld, bearer, ui_login

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


TOO_LARGE = "2147483648"  # one more than the largest id the database holds


@pytest.mark.parametrize(
    ("method", "url", "where", "name"),
    [
        ("GET", f"/api/v1/patients/{TOO_LARGE}", "path", "patient_id"),
        ("POST", f"/api/v1/sessions/{TOO_LARGE}/dose/end", "path", "session_id"),
        ("PATCH", f"/api/v1/patients/1/medications/-{TOO_LARGE}0", "path", "medication_id"),
        ("GET", f"/api/v1/audit?patient_id={TOO_LARGE}", "query", "patient_id"),
    ],
)
def test_an_id_too_large_for_the_database_is_422_naming_it(
    client: TestClient,
    db: Session,
    world_a: ClinicWorld,
    method: str,
    url: str,
    where: str,
    name: str,
) -> None:
    # These reached the SQLite driver, which cannot bind them: a 500.
    response = client.request(method, url, headers=bearer(db, world_a.users[Role.ADMIN]))
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == [where, name]
    assert "at most 2147483647" in error["msg"]


def test_the_largest_id_is_simply_not_found_and_a_caller_without_token_is_401_first(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    largest = client.get("/api/v1/patients/2147483647", headers=headers)
    assert largest.status_code == 404
    assert client.get(f"/api/v1/patients/{TOO_LARGE}").status_code == 401


def test_an_id_too_large_on_a_page_is_explained_not_a_500(
    client: TestClient, world_a: ClinicWorld
) -> None:
    ui_login(client, world_a.users[Role.NURSE].username)
    page = client.get(f"/patients/{TOO_LARGE}")
    assert page.status_code == 422
    assert "patient_id" in page.text


def test_opening_hours_with_a_time_zone_are_422_naming_the_field(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    body = {"calendar": {"opens": "08:00", "closes": "00:00:00Z"}, "version": 1}
    response = client.put(
        "/api/v1/clinic/settings", json=body, headers=bearer(db, world_a.users[Role.ADMIN])
    )
    assert response.status_code == 422, response.text
    assert ["body", "calendar", "closes"] in [e["loc"] for e in response.json()["detail"]]


def test_the_schema_declares_the_errors_routes_answer(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, ops in paths.items():
        for method, op in ops.items():
            if path.startswith("/api/v1/fhir/"):
                continue  # OperationOutcomes, declared by the FHIR routes
            for status in ("400", "401", "403", "404"):
                content = op["responses"][status]["content"]["application/json"]
                assert content["schema"] == error, (method, path, status)
    # A record someone else may change at the same moment: a stale or concurrent write is 409.
    for method, path in [
        ("post", "/api/v1/sessions/{session_id}/sign"),
        ("post", "/api/v1/sessions/{session_id}/start"),
        ("post", "/api/v1/sessions/{session_id}/dose/end"),
        ("patch", "/api/v1/patients/{patient_id}/medications/{medication_id}"),
    ]:
        assert "409" in paths[path][method]["responses"], (method, path)
