"""The FHIR API: media type, Patient read and search, $everything, Observation search, errors as
OperationOutcomes (401, 403, 404, 422), and a standard client (fhirpy) reading a running server."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient
from sqlalchemy.orm import Session

from ketacare.app.assessments import _store
from ketacare.app.permissions import Role
from ketacare.store.models import BodyMeasurement, Patient, TreatmentSession, VitalSample
from ketacare.store.types import utcnow
from tests.conftest import ClinicWorld, bearer

FHIR = "/api/v1/fhir"
FHIR_JSON = "application/fhir+json"


def _record(db: Session, patient: Patient) -> None:
    """A weight, a PHQ-9 and a signed session with three sets of vital signs."""
    now = utcnow()
    db.add(
        BodyMeasurement(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            measured_at=now - timedelta(days=1),
            weight_kg=71.5,
        )
    )
    _store(
        db, patient, "phq9", [1, 1, 2, 0, 1, 0, 1, 0, 0], source="staff", at=now, recorded_by=None
    )
    session = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id="iv-ketamine",
        scheduled_at=now - timedelta(hours=3),
        started_at=now - timedelta(hours=3),
        status="completed",
    )
    db.add(session)
    db.flush()
    for minute in (0, 10, 20):
        db.add(
            VitalSample(
                clinic_id=patient.clinic_id,
                session_id=session.id,
                measured_at=now - timedelta(hours=3) + timedelta(minutes=minute),
                systolic=120 + minute,
                diastolic=80,
                heart_rate=70,
                spo2=98,
                respiratory_rate=14,
                source="device",
            )
        )
    db.commit()


@pytest.fixture
def patient(db: Session, world_a: ClinicWorld, world_b: ClinicWorld) -> Patient:
    _record(db, world_b.patients[0])
    _record(db, world_a.patients[0])
    return world_a.patients[0]


def _outcome(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    get_fhir_model_class("OperationOutcome").model_validate(body)
    assert body["issue"][0]["code"] == code
    return str(body["issue"][0]["diagnostics"])


def test_metadata_patient_and_everything_answer_fhir_json(
    client: TestClient, db: Session, world_a: ClinicWorld, patient: Patient
) -> None:
    headers = bearer(db, world_a.users[Role.NURSE])
    meta = client.get(f"{FHIR}/metadata", headers=headers)
    assert meta.status_code == 200
    assert meta.headers["content-type"] == FHIR_JSON
    assert meta.json()["fhirVersion"] == "4.3.0"
    get_fhir_model_class("CapabilityStatement").model_validate(meta.json())

    read = client.get(f"{FHIR}/Patient/{patient.id}", headers=headers)
    assert read.headers["content-type"] == FHIR_JSON
    assert read.json()["id"] == str(patient.id)
    assert read.json()["identifier"][0] == {
        "use": "usual",
        "type": read.json()["identifier"][0]["type"],
        "system": "urn:ketacare:clinic:a:mrn",
        "value": patient.mrn,
    }
    assert read.headers["cache-control"] == "no-store"

    everything = client.get(f"{FHIR}/Patient/{patient.id}/$everything", headers=headers)
    assert everything.headers["content-type"] == FHIR_JSON
    bundle = everything.json()
    base = "http://testserver/api/v1/fhir/"
    assert bundle["entry"][0]["fullUrl"] == f"{base}Patient/{patient.id}"
    kinds = sorted({e["resource"]["resourceType"] for e in bundle["entry"]})
    assert kinds == [
        "Observation",
        "Organization",
        "Patient",
        "Procedure",
        "Questionnaire",
        "QuestionnaireResponse",
    ]
    systolic = [
        c["valueQuantity"]["value"]
        for e in bundle["entry"]
        if e["resource"]["id"].startswith("obs-bp-")
        for c in e["resource"]["component"]
        if c["code"]["coding"][0]["code"] == "8480-6"
    ]
    assert systolic == [120, 130, 140]


def test_patient_search_by_identifier_and_id_stays_in_the_clinic(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld, patient: Patient
) -> None:
    headers = bearer(db, world_a.users[Role.THERAPIST])

    def ids(query: str) -> list[str]:
        response = client.get(f"{FHIR}/Patient?{query}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["type"] == "searchset" and body["total"] == len(body.get("entry", []))
        return [e["resource"]["id"] for e in body.get("entry", [])]

    assert ids(f"identifier=urn:ketacare:clinic:a:mrn|{patient.mrn}") == [str(patient.id)]
    assert ids(f"identifier={patient.mrn.lower()}") == [str(patient.id)]
    assert ids(f"_id={patient.id},{world_a.patients[1].id}") == [
        str(patient.id),
        str(world_a.patients[1].id),
    ]
    assert ids("") == [str(p.id) for p in world_a.patients]
    victim = world_b.patients[0]
    assert ids(f"identifier={victim.mrn}") == []
    assert ids(f"_id={victim.id}") == []
    assert ids(f"identifier=urn:ketacare:clinic:b:mrn|{patient.mrn}") == []


def test_observation_search_filters_by_patient_category_and_code(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld, patient: Patient
) -> None:
    headers = bearer(db, world_a.users[Role.PRESCRIBER])

    def observations(query: str) -> list[dict]:
        response = client.get(f"{FHIR}/Observation?{query}", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == FHIR_JSON
        return [e["resource"] for e in response.json().get("entry", [])]

    everything = observations(f"patient={patient.id}")
    assert len(everything) == 1 + 1 + 3 * 4  # weight, PHQ-9 total, 3 x (BP, HR, SpO2, RR)
    assert observations(f"patient=Patient/{patient.id}") == everything
    assert len(observations(f"patient={patient.id}&category=vital-signs")) == 13
    scores = observations(f"patient={patient.id}&category=survey")
    assert [s["valueInteger"] for s in scores] == [6]
    assert len(observations(f"patient={patient.id}&code=http://loinc.org|8867-4")) == 3
    assert observations(f"patient={world_b.patients[0].id}") == []


def test_errors_are_operation_outcomes_with_the_right_status(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld, patient: Patient
) -> None:
    nurse = bearer(db, world_a.users[Role.NURSE])
    victim = world_b.patients[0]
    for path in (f"Patient/{victim.id}", f"Patient/{victim.id}/$everything", "Patient/999999"):
        response = client.get(f"{FHIR}/{path}", headers=nurse)
        assert "in your clinic" in _outcome(response, 404, "not-found")
        assert victim.mrn not in response.text and victim.family_name not in response.text
    researcher = bearer(db, world_a.users[Role.RESEARCHER])
    for path in (
        f"Patient/{patient.id}",
        f"Patient/{patient.id}/$everything",
        "Patient",
        f"Observation?patient={patient.id}",
    ):
        text = _outcome(client.get(f"{FHIR}/{path}", headers=researcher), 403, "forbidden")
        assert "patient.read" in text
    unauthenticated = client.get(f"{FHIR}/Patient/{patient.id}/$everything")
    _outcome(unauthenticated, 401, "login")
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    for path, field in (
        ("Patient/abc", "id"),
        ("Patient/abc/$everything", "id"),
        ("Patient?_id=x", "_id"),
        ("Patient?_count=0", "_count"),
        ("Patient?identifier=", "identifier"),
        ("Observation", "patient"),
        ("Observation?patient=Group/1", "patient"),
        # Digits beyond ASCII pass str.isdigit; ids beyond what the database holds.
        ("Patient/%C2%B2", "id"),
        ("Patient/99999999999999999999", "id"),
        ("Patient/99999999999999999999/$everything", "id"),
        ("Patient?_id=99999999999999999999", "_id"),
        ("Patient?_count=%C2%B2", "_count"),
        ("Observation?patient=%C2%B2", "patient"),
        ("Observation?patient=99999999999999999999", "patient"),
        (f"Observation?patient={patient.id}&category=labs", "category"),
    ):
        response = client.get(f"{FHIR}/{path}", headers=nurse)
        assert _outcome(response, 422, "invalid").startswith(f"{field}:"), path
        assert response.json()["issue"][0]["expression"] == [field]


# --- a standard FHIR client against a running server -----------------------------------------


def test_fhirpy_reads_a_patients_record_from_a_running_server(
    live_server: str, db: Session, world_a: ClinicWorld, patient: Patient
) -> None:
    token = bearer(db, world_a.users[Role.NURSE])["Authorization"]
    client = SyncFHIRClient(f"{live_server}{FHIR}", authorization=token)
    resource = client.reference("Patient", str(patient.id)).to_resource()
    assert resource["identifier"][0]["value"] == patient.mrn
    assert resource["name"][0]["family"] == patient.family_name
    found = client.resources("Patient").search(identifier=patient.mrn).fetch_all()
    assert [p.id for p in found] == [str(patient.id)]
    observations = client.resources("Observation").search(patient=str(patient.id)).fetch_all()
    assert len(observations) == 14
    heart = [o for o in observations if o["code"]["coding"][0]["code"] == "8867-4"]
    assert [o["valueQuantity"]["value"] for o in heart] == [70, 70, 70]
    bundle = client.execute(f"Patient/{patient.id}/$everything", method="get")
    assert bundle["type"] == "collection"
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} >= {"Patient", "Procedure"}
