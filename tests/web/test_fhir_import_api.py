"""``POST /api/v1/fhir``: response Bundles and OperationOutcomes, validated as FHIR R4B."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketacare.app.permissions import Role
from ketacare.store.models import Base, Patient
from tests.conftest import ClinicWorld, bearer, ui_login

DATA = Path(__file__).parents[1] / "interop" / "data" / "other_ehr_bundle.json"
FHIR = {"Content-Type": "application/fhir+json"}


def other_ehr() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def post(client: TestClient, headers: dict[str, str], body: Any, **extra: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/api/v1/fhir", content=content, headers={**headers, **FHIR, **extra})


def counts(db: Session) -> dict[str, int]:
    return {
        t.name: db.scalar(select(func.count()).select_from(t)) or 0
        for t in Base.metadata.sorted_tables
        if t.name not in ("audit_events", "api_tokens")
    }


def test_a_transaction_gets_a_transaction_response(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    response = post(client, headers, other_ehr())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    reply = Bundle.model_validate(body)
    assert reply.type == "transaction-response"
    statuses = [e.response.status for e in reply.entry]
    assert statuses == ["201 Created"] * 2 + ["200 OK"] + ["201 Created"] * 4 + ["200 OK"] * 3
    warning = body["entry"][8]["response"]["outcome"]["issue"][0]
    assert warning["severity"] == "warning" and warning["code"] == "code-invalid"
    assert warning["expression"] == ["Bundle.entry[8].resource.valueQuantity.unit"]
    assert "mg/dL" in warning["diagnostics"]
    assert "outcome" not in body["entry"][0]["response"]

    before = counts(db)
    again = post(client, headers, other_ehr())
    assert again.status_code == 200
    assert {e["response"]["status"] for e in again.json()["entry"]} == {"200 OK"}
    assert counts(db) == before


def test_the_findings_as_an_operation_outcome(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    response = post(
        client,
        bearer(db, world_a.users[Role.PRESCRIBER]),
        other_ehr(),
        Prefer="return=OperationOutcome",
    )
    assert response.status_code == 200, response.text
    outcome = OperationOutcome.model_validate(response.json())
    assert [(i.severity, i.code, i.expression) for i in outcome.issue] == [
        ("warning", "code-invalid", ["Bundle.entry[7].resource.code"]),
        ("warning", "code-invalid", ["Bundle.entry[8].resource.valueQuantity.unit"]),
        ("warning", "not-supported", ["Bundle.entry[9].resource.resourceType"]),
    ]


def test_a_collection_with_an_impossible_weight_gets_an_error_issue_and_a_batch_response(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    data = other_ehr()
    data["type"] = "collection"
    data["entry"][4]["resource"]["valueQuantity"]["value"] = 1543  # a slipped decimal point
    response = post(client, bearer(db, world_a.users[Role.NURSE]), data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert Bundle.model_validate(body).type == "batch-response"
    entry = body["entry"][4]["response"]
    assert entry["status"] == "422 Unprocessable Entity"
    issue = entry["outcome"]["issue"][0]
    assert (issue["severity"], issue["code"]) == ("error", "value")
    assert "outside the possible range 30-300 kg" in issue["diagnostics"]


def test_an_invalid_bundle_is_refused_with_an_operation_outcome(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    data = other_ehr()
    data["entry"][4]["resource"]["valueQuantity"]["unit"] = 12
    headers = bearer(db, world_a.users[Role.NURSE])
    before = counts(db)
    response = post(client, headers, data)
    assert response.status_code == 422
    outcome = OperationOutcome.model_validate(response.json())
    [issue] = outcome.issue
    assert (issue.severity, issue.code) == ("error", "invalid")
    assert issue.expression == ["Bundle.entry[4].resource.valueQuantity.unit"]
    assert counts(db) == before

    broken = post(client, headers, b'{"resourceType": "Bundle", "entry": [')
    assert broken.status_code == 422
    assert "not valid JSON" in broken.json()["issue"][0]["diagnostics"]
    wrong = post(client, headers, {"resourceType": "Patient"})
    assert wrong.status_code == 422
    assert wrong.json()["issue"][0]["expression"] == ["Bundle.resourceType"]


def test_plain_json_is_accepted_and_other_media_types_are_not(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    as_json = client.post("/api/v1/fhir", json=other_ehr(), headers=headers)
    assert as_json.status_code == 200, as_json.text
    text = client.post(
        "/api/v1/fhir",
        content=json.dumps(other_ehr()),
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert text.status_code == 415
    assert text.json()["resourceType"] == "OperationOutcome"


def test_the_imported_records_of_a_patient(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    response = post(client, bearer(db, world_a.users[Role.NURSE]), other_ehr())
    assert response.status_code == 200
    [pid] = json.loads(
        client.get(
            "/api/v1/patients?q=LP-48213", headers=bearer(db, world_a.users[Role.THERAPIST])
        ).text
    )["items"]
    listed = client.get(
        f"/api/v1/patients/{pid['id']}/imported-records",
        headers=bearer(db, world_a.users[Role.THERAPIST]),
    )
    assert listed.status_code == 200
    body = listed.json()
    assert [c["code"] for c in body["conditions"]] == ["F90.0"]
    bp = [r for r in body["resources"] if r["kind"] == "blood_pressure"]
    assert bp[0]["readings"] == {"systolic": 128.0, "diastolic": 82.0}
    other = client.get(
        f"/api/v1/patients/{pid['id']}/imported-records",
        headers=bearer(db, world_b.users[Role.NURSE]),
    )
    assert other.status_code == 404


def test_the_chart_shows_what_other_systems_sent(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    nurse = world_a.users[Role.NURSE]
    response = post(client, bearer(db, nurse), other_ehr())
    assert response.status_code == 200
    patient_id = db.scalar(select(Patient.id).where(Patient.mrn == "LP-48213"))
    assert patient_id is not None
    ui_login(client, nurse.username)
    card = client.get(f"/patients/{patient_id}/imported", headers={"HX-Request": "true"})
    assert card.status_code == 200
    assert "Received from other systems" in card.text
    assert "128/82 mmHg" in card.text and "F90.0" in card.text
    # The made-up code and the refused unit are shown as kept, not hidden.
    assert card.text.count('data-disposition="kept"') >= 2
    empty = client.get(f"/patients/{world_a.patients[0].id}/imported")
    assert empty.status_code == 200 and "Received from other systems" not in empty.text
    assert f'hx-get="/patients/{patient_id}/imported"' in client.get(f"/patients/{patient_id}").text
