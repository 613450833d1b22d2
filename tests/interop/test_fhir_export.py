"""FHIR export of a demo clinic's patient: every resource validates with the R4B models, every
reference resolves inside the Bundle, codes and values match the stored rows, nothing of another
clinic leaks, and loading takes the same number of queries for a small and a full record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from ketacare.app import demo as demo_uc
from ketacare.app import fhir as uc
from ketacare.app.errors import Forbidden, NotFound
from ketacare.app.interactions import screen_patient
from ketacare.app.permissions import Actor, Role
from ketacare.interop.fhir import mrn_system
from ketacare.store.models import (
    Assessment,
    AuditEvent,
    BodyMeasurement,
    DoseOrder,
    MedicationEntry,
    Patient,
    TherapySession,
    TreatmentSession,
    VitalSample,
)
from ketacare.store.types import utcnow
from tests.conftest import ClinicWorld, make_clinic

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
FULL_RECORD_TYPES = {
    "Patient",
    "Organization",
    "Practitioner",
    "Condition",
    "MedicationStatement",
    "Observation",
    "Questionnaire",
    "QuestionnaireResponse",
    "MedicationAdministration",
    "Procedure",
    "CarePlan",
    "Appointment",
    "DetectedIssue",
    "Consent",
    "ClinicalImpression",
    "Provenance",
}


@dataclass
class Demo:
    actor: Actor
    patient: Patient
    other: ClinicWorld


@pytest.fixture
def demo(db: Session, password_hash: str, monkeypatch: pytest.MonkeyPatch) -> Demo:
    """The demo clinic, a second clinic, and an in-course demo patient with a current
    interaction screen (the demo stores none) and a medicine RxNorm codes (sertraline)."""
    monkeypatch.setattr(demo_uc, "hash_password", lambda _password: password_hash)
    result = demo_uc.load_demo(db, now=utcnow())
    other = make_clinic(db, "other", password_hash)
    db.add(
        MedicationEntry(
            clinic_id=other.clinic.id,
            patient_id=other.patients[0].id,
            name_entered="Adderall XR 20 mg",
        )
    )
    actor = Actor(result.clinic_id, Role.SYSTEM, "test")
    # In course, with CBT sessions still to come: every kind of resource is in the record.
    patient = db.scalars(
        select(Patient)
        .where(Patient.clinic_id == result.clinic_id, Patient.stage == "in_course")
        .where(
            Patient.id.in_(
                select(TherapySession.patient_id).where(TherapySession.status == "scheduled")
            )
        )
        .order_by(Patient.id)
    ).first()
    assert patient is not None
    db.add(
        MedicationEntry(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            name_entered="Sertraline 50 mg",
            dose_text="50 mg daily",
        )
    )
    db.commit()
    screen_patient(db, actor, patient.id)
    return Demo(actor, patient, other)


def _by_type(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        # A Reference; DetectedIssue.reference (a rule's URI) is a resource's own field.
        if isinstance(node.get("reference"), str) and "resourceType" not in node:
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def test_a_full_record_has_every_resource_type_and_each_validates_as_r4b(
    db: Session, demo: Demo
) -> None:
    bundle = uc.export_patient(db, demo.actor, demo.patient.id)
    assert bundle["type"] == "collection"
    types = _by_type(bundle)
    assert set(types) == FULL_RECORD_TYPES
    for entry in bundle["entry"]:
        resource = entry["resource"]
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        # Nothing is lost or renamed by the model: the export is exactly what R4B defines.
        assert json.loads(model.model_dump_json()) == resource
    get_fhir_model_class("Bundle").model_validate(bundle)
    # One of each per stored row.
    pid = demo.patient.id
    sessions = db.scalars(select(TreatmentSession).where(TreatmentSession.patient_id == pid)).all()
    started = [s for s in sessions if s.status not in ("scheduled", "missed", "cancelled")]
    therapy = db.scalars(select(TherapySession).where(TherapySession.patient_id == pid)).all()
    done = [t for t in therapy if t.signed_at is not None]
    assert len(types["Procedure"]) == len(started) + len(done)
    assert len(types["Appointment"]) == len(sessions) + len(therapy) - len(started) - len(done)
    assessments = db.scalars(select(Assessment).where(Assessment.patient_id == pid)).all()
    assert len(types["QuestionnaireResponse"]) == len(assessments)
    assert {q["url"] for q in types["Questionnaire"]} == {
        f"urn:ketacare:questionnaire:{a.instrument}" for a in assessments
    }
    signed = [s for s in started if s.signed_at] + done
    assert len(types["Provenance"]) == len(signed) + 1  # and the signed eligibility review
    meds = db.scalars(select(MedicationEntry).where(MedicationEntry.patient_id == pid)).all()
    assert len(types["MedicationStatement"]) == len(meds)


def test_every_reference_resolves_to_an_entry_of_the_bundle(db: Session, demo: Demo) -> None:
    bundle = uc.export_patient(db, demo.actor, demo.patient.id)
    full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"{resource['resourceType']}/{resource['id']}"
    references = list(_references(bundle))
    assert len(references) > 500
    assert set(references) <= set(full_urls)
    questionnaires = {q["url"] for q in _by_type(bundle)["Questionnaire"]}
    for response in _by_type(bundle)["QuestionnaireResponse"]:
        assert response["questionnaire"] in questionnaires
    # With a base URL the fullUrls are absolute and the references stay relative to it.
    based = uc.export_patient(db, demo.actor, demo.patient.id, base_url="https://x.test/fhir/")
    assert {e["fullUrl"] for e in based["entry"]} == {f"https://x.test/fhir/{u}" for u in full_urls}


def _coding(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in resource["code"]["coding"]]


def test_vital_signs_carry_loinc_codes_ucum_units_and_the_stored_values(
    db: Session, demo: Demo
) -> None:
    bundle = uc.export_patient(db, demo.actor, demo.patient.id)
    obs = {o["id"]: o for o in _by_type(bundle)["Observation"]}
    vitals = db.scalars(
        select(VitalSample)
        .join(TreatmentSession, VitalSample.session_id == TreatmentSession.id)
        .where(TreatmentSession.patient_id == demo.patient.id)
    ).all()
    assert len(vitals) > 20
    for v in vitals:
        bp = obs[f"obs-bp-{v.id}"]
        assert _coding(bp) == [(LOINC, "85354-9")]
        assert bp["category"][0]["coding"][0]["code"] == "vital-signs"
        assert bp["partOf"] == [{"reference": f"Procedure/proc-session-{v.session_id}"}]
        components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in bp["component"]}
        assert components == {
            "8480-6": {"value": v.systolic, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
            "8462-4": {"value": v.diastolic, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
        }
        for prefix, codes, unit, value in (
            ("hr", [(LOINC, "8867-4")], "/min", v.heart_rate),
            ("spo2", [(LOINC, "59408-5"), (LOINC, "2708-6")], "%", v.spo2),
            ("rr", [(LOINC, "9279-1")], "/min", v.respiratory_rate),
        ):
            o = obs[f"obs-{prefix}-{v.id}"]
            assert _coding(o) == codes
            assert o["valueQuantity"] == {
                "value": value,
                "unit": unit,
                "system": UCUM,
                "code": unit,
            }
            assert o["effectiveDateTime"].endswith("Z")
    for m in db.scalars(
        select(BodyMeasurement).where(BodyMeasurement.patient_id == demo.patient.id)
    ):
        if m.weight_kg is not None:
            weight = obs[f"obs-weight-{m.id}"]
            assert _coding(weight) == [(LOINC, "29463-7")]
            assert weight["valueQuantity"]["value"] == m.weight_kg
            assert weight["valueQuantity"]["code"] == "kg"
        if m.height_cm is not None:
            height = obs[f"obs-height-{m.id}"]
            assert _coding(height) == [(LOINC, "8302-2")]
            assert (height["valueQuantity"]["value"], height["valueQuantity"]["code"]) == (
                m.height_cm,
                "cm",
            )


def test_scales_doses_medicines_and_findings_are_coded_as_the_knowledge_files_say(
    db: Session, demo: Demo
) -> None:
    bundle = uc.export_patient(db, demo.actor, demo.patient.id)
    types = _by_type(bundle)
    obs = {o["id"]: o for o in types["Observation"]}
    expected = {
        "phq9": ("http://loinc.org", "44261-6"),
        "gad7": ("http://loinc.org", "70274-6"),
        "asrs": ("urn:ketacare:codesystem", "asrs-v1.1-total"),
        "moaas": ("urn:ketacare:codesystem", "moaas-score"),
        "cadss": ("urn:ketacare:codesystem", "cadss-total"),
    }
    assessments = db.scalars(select(Assessment).where(Assessment.patient_id == demo.patient.id))
    seen = set()
    for a in assessments:
        score = obs[f"obs-score-{a.id}"]
        assert _coding(score) == [expected[a.instrument]]
        assert score["valueInteger"] == a.total
        assert score["derivedFrom"] == [{"reference": f"QuestionnaireResponse/qr-{a.id}"}]
        if a.band:
            assert {"text": a.band} in score["interpretation"]
        seen.add(a.instrument)
    assert seen == set(expected)
    responses = {r["id"]: r for r in types["QuestionnaireResponse"]}
    phq9 = db.scalars(
        select(Assessment).where(
            Assessment.instrument == "phq9", Assessment.patient_id == demo.patient.id
        )
    ).first()
    assert phq9 is not None
    items = responses[f"qr-{phq9.id}"]["item"]
    assert [i["linkId"] for i in items] == [str(n) for n in range(1, 10)]
    loinc_answers = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
    assert [i["answer"][0]["valueCoding"]["code"] for i in items] == [
        loinc_answers[v] for v in phq9.answers
    ]

    administrations = {m["id"]: m for m in types["MedicationAdministration"]}
    orders = db.scalars(
        select(DoseOrder)
        .join(TreatmentSession, DoseOrder.session_id == TreatmentSession.id)
        .where(TreatmentSession.patient_id == demo.patient.id, DoseOrder.status == "ordered")
    ).all()
    dosed = [o for o in orders if f"medadm-{o.id}" in administrations]
    assert dosed
    for order in dosed:
        given = administrations[f"medadm-{order.id}"]
        assert given["dosage"]["dose"] == {
            "value": order.dose_mg,
            "unit": "mg",
            "system": UCUM,
            "code": "mg",
        }
        assert given["dosage"]["route"]["coding"][0]["code"] == "47625008"
        assert given["medicationCodeableConcept"]["coding"][0]["code"] == "6130"
        assert given["partOf"] == [{"reference": f"Procedure/proc-session-{order.session_id}"}]

    statements = {s["medicationCodeableConcept"]["text"]: s for s in types["MedicationStatement"]}
    sertraline = statements["Sertraline 50 mg"]
    assert sertraline["status"] == "active"
    assert sertraline["medicationCodeableConcept"]["coding"] == [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "36437",
            "display": "sertraline",
        }
    ]
    stopped = [s for s in types["MedicationStatement"] if s["status"] == "stopped"]
    assert stopped and all("end" in s["effectivePeriod"] for s in stopped)

    condition = types["Condition"][0]
    assert [(c["system"], c["code"]) for c in condition["code"]["coding"]] == [
        ("http://snomed.info/sct", "406506008"),
        ("http://hl7.org/fhir/sid/icd-10-cm", "F90.9"),
    ]
    issues = types["DetectedIssue"]
    assert issues
    for issue in issues:
        assert issue["severity"] in ("high", "moderate", "low")
        assert issue["mitigation"][0]["action"]["text"]
        assert issue["implicated"]
    patient = types["Patient"][0]
    assert patient["identifier"][0]["system"] == mrn_system("demo")
    assert patient["identifier"][0]["value"] == demo.patient.mrn
    assert patient["birthDate"] == demo.patient.date_of_birth.isoformat()
    assert patient["name"][0]["family"] == demo.patient.family_name


def test_nothing_of_another_clinic_and_no_record_for_researchers_or_other_clinics(
    db: Session, demo: Demo
) -> None:
    bundle = uc.export_patient(db, demo.actor, demo.patient.id)
    text = json.dumps(bundle)
    for other in demo.other.patients:
        assert other.mrn not in text and other.family_name not in text
    assert "Adderall XR 20 mg" not in text
    subjects = {ref for ref in _references(bundle) if ref.startswith("Patient/")}
    assert subjects == {f"Patient/{demo.patient.id}"}
    other_actor = demo.other.actor(Role.PRESCRIBER)
    with pytest.raises(NotFound):
        uc.export_patient(db, other_actor, demo.patient.id)
    with pytest.raises(Forbidden):
        uc.export_patient(db, demo.other.actor(Role.RESEARCHER), demo.other.patients[0].id)
    with pytest.raises(Forbidden):
        uc.export_all(db, demo.other.actor(Role.RESEARCHER))
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_(["fhir.export", "fhir.export_all"]))
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.outcome, e.patient_id) for e in events] == [
        ("fhir.export", "success", demo.patient.id),
        ("fhir.export", "not_found", demo.patient.id),
        ("fhir.export", "denied", demo.other.patients[0].id),
        ("fhir.export_all", "denied", None),
    ]
    assert events[0].detail == {"resources": len(bundle["entry"])}
    # The whole other clinic: its own patients only.
    bundles = list(uc.export_all(db, demo.other.actor(Role.PRESCRIBER)))
    assert [b["entry"][0]["resource"]["identifier"][0]["value"] for b in bundles] == [
        p.mrn for p in demo.other.patients
    ]


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_number_of_queries_does_not_grow_with_the_record(
    db: Session, engine: Engine, demo: Demo
) -> None:
    with counting(engine) as full:
        big = uc.export_patient(db, demo.actor, demo.patient.id)
    with counting(engine) as small, pytest.raises(NotFound):
        uc.export_patient(db, demo.actor, demo.other.patients[0].id)  # not found: fewer
    empty = db.scalars(
        select(Patient).where(Patient.clinic_id == demo.actor.clinic_id, Patient.stage == "intake")
    ).first()
    assert empty is not None
    with counting(engine) as little:
        record = uc.export_patient(db, demo.actor, empty.id)
    # The demo's record grows with the days its course has run; it is always many times the
    # record of a patient at intake.
    assert len(big["entry"]) > 10 * len(record["entry"])
    assert len(big["entry"]) > 100
    assert len(full) == len(little) <= 20
    assert len(small) < len(full)
    # A whole clinic in chunks: the same queries per chunk, whatever the number of patients.
    with counting(engine) as clinic:
        bundles = list(uc.export_all(db, demo.actor))
    assert len(bundles) == 30
    assert len(clinic) <= 2 * len(full)
