"""The FHIR round trip: a record exported by one clinic, imported into an empty clinic and
exported again carries the same clinical content (demographics, medicines, weights, heights,
blood pressures, diagnoses), and every resource of both exports validates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy.orm import Session

from ketacare.app import fhir as fhir_export
from ketacare.app import fhir_import
from ketacare.app import patients as pu
from ketacare.app.permissions import Role
from tests.conftest import ClinicWorld, make_clinic

OTHER_EHR = Path(__file__).parent / "data" / "other_ehr_bundle.json"
IMPORTED_CODES = {"29463-7": "weight", "8302-2": "height", "85354-9": "blood pressure"}


def _content(bundle: dict[str, Any]) -> dict[str, set[Any]]:
    """What a receiving system needs to have understood, without ids or audit metadata."""
    out: dict[str, set[Any]] = {"patient": set(), "medicines": set(), "obs": set(), "dx": set()}
    for entry in bundle["entry"]:
        r = entry["resource"]
        get_fhir_model_class(r["resourceType"]).model_validate(r)
        kind = r["resourceType"]
        if kind == "Patient":
            name = r["name"][0]
            out["patient"].add(
                (
                    tuple(sorted(i["value"] for i in r.get("identifier", []))),
                    name.get("family"),
                    tuple(name.get("given", [])),
                    r.get("birthDate"),
                    r.get("gender"),
                )
            )
        elif kind == "MedicationStatement":
            concept = r.get("medicationCodeableConcept", {})
            dose = (r.get("dosage") or [{}])[0].get("text")
            out["medicines"].add((concept.get("text"), r["status"], dose))
        elif kind == "Observation":
            loinc = {c["code"] for c in r["code"]["coding"]} & set(IMPORTED_CODES)
            if not loinc:
                continue
            values = (
                (r["valueQuantity"]["value"], r["valueQuantity"]["code"])
                if "valueQuantity" in r
                else tuple(
                    (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"])
                    for c in r["component"]
                )
            )
            out["obs"].add((loinc.pop(), r["effectiveDateTime"], values))
        elif kind == "Condition":
            out["dx"].add(tuple(sorted((c.get("system"), c["code"]) for c in r["code"]["coding"])))
    return out


def test_export_import_into_an_empty_clinic_and_export_again_keeps_the_content(
    db: Session, world_a: ClinicWorld, password_hash: str
) -> None:
    nurse_a = world_a.actor(Role.NURSE)
    # A record with what another system sent (diagnosis, blood pressure, medicines, weight in
    # pounds) and what was recorded here.
    first = fhir_import.import_bundle(db, nurse_a, json.loads(OTHER_EHR.read_text()))
    pid = first.patient_ids[0]
    pu.add_measurement(db, nurse_a, pid, pu.MeasurementCreate(weight_kg=70.4, height_cm=168))
    pu.add_medication(
        db,
        nurse_a,
        pid,
        pu.MedicationCreate(name="Concerta 36 mg", dose_text="1 tab every morning"),
    )
    exported = fhir_export.export_patient(db, nurse_a, pid)
    original = _content(exported)
    assert original["dx"] and original["obs"] and len(original["medicines"]) >= 3

    empty = make_clinic(db, "rt", password_hash, n_patients=0)
    db.commit()
    nurse_c = empty.actor(Role.NURSE)
    report = fhir_import.import_bundle(db, nurse_c, exported)
    assert [f for f in report.findings if f.severity == "error"] == []
    again = fhir_export.export_patient(db, nurse_c, report.patient_ids[0])
    assert _content(again) == original
    # Receiving the same bundle again changes nothing.
    assert not fhir_import.import_bundle(db, nurse_c, exported).changed
