"""Importing another EHR's Bundle: what lands where, idempotence, isolation, permissions."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import fhir as fhir_export
from ketacare.app import fhir_import as uc
from ketacare.app import patients as pu
from ketacare.app.errors import Forbidden, NotFound
from ketacare.app.interactions import screen_patient
from ketacare.app.patients import get_chart
from ketacare.app.permissions import Role
from ketacare.store.models import (
    AuditEvent,
    Base,
    BodyMeasurement,
    ExternalRecord,
    ImportedResource,
    MedicationEntry,
    Patient,
    PatientCondition,
)

DATA = Path(__file__).parents[1] / "interop" / "data" / "other_ehr_bundle.json"


def other_ehr() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def row_counts(db: Session) -> dict[str, int]:
    return {
        t.name: db.scalar(select(func.count()).select_from(t)) or 0
        for t in Base.metadata.sorted_tables
    }


def outcomes(report: uc.ImportReport) -> list[tuple[int, str, str]]:
    return [(e.index, e.resource_type, e.outcome) for e in report.entries]


def test_the_other_ehr_bundle_lands_on_the_chart(db: Session, world_a: ClinicWorld) -> None:
    nurse = world_a.actor(Role.NURSE)
    report = uc.import_bundle(db, nurse, other_ehr())
    assert outcomes(report) == [
        (0, "Patient", "created"),
        (1, "MedicationStatement", "created"),
        (2, "Medication", "merged"),
        (3, "MedicationStatement", "created"),
        (4, "Observation", "created"),
        (5, "Observation", "created"),
        (6, "Condition", "created"),
        (7, "Observation", "kept"),
        (8, "Observation", "kept"),
        (9, "Immunization", "kept"),
    ]
    assert report.counts["Observation"].model_dump() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "kept": 2,
        "refused": 0,
        "merged": 0,
    }
    assert [(f.index, f.severity, f.code) for f in report.findings] == [
        (7, "warning", "unknown_code"),
        (8, "warning", "unknown_unit"),
        (9, "warning", "unsupported_resource"),
    ]
    [pid] = report.patient_ids

    # The chart, dosing and screening read the same rows the chart's use-cases write.
    chart = get_chart(db, nurse, pid)
    assert (chart.patient.mrn, chart.patient.family_name, chart.patient.given_name) == (
        "LP-48213",
        "Nakamura-Reyes",
        "Alexandra Maria",
    )
    assert chart.patient.date_of_birth == date(1988, 9, 14)
    assert chart.patient.stage == "intake"
    assert chart.latest_weight is not None and chart.latest_weight.weight_kg == 69.99
    assert chart.latest_weight.measured_at == datetime(2026, 4, 10, 13, 15, tzinfo=UTC)
    meds = sorted((m.name, m.dose_text, m.status, m.start_date) for m in chart.medications)
    assert meds == [
        ("Vyvanse 50 mg capsule", "1 capsule by mouth every morning", "active", date(2024, 3, 1)),
        ("sertraline 50 MG Oral Tablet", "50 mg", "active", date(2023, 11, 20)),
    ]
    screen = screen_patient(db, nurse, pid)
    screened = {m["input"] for m in screen.findings + screen.no_known_interaction}
    assert screened >= {"Vyvanse 50 mg capsule", "sertraline 50 MG Oral Tablet"}

    imported = uc.list_imported(db, nurse, pid)
    [adhd] = imported.conditions
    assert (adhd.code_system, adhd.code, adhd.clinical_status, adhd.onset) == (
        "http://hl7.org/fhir/sid/icd-10",
        "F90.0",
        "active",
        "2019-06-03",
    )
    kept = {(r.disposition, r.kind, r.code, r.unit) for r in imported.resources}
    assert kept == {
        ("stored", "blood_pressure", "85354-9", "mm[Hg]"),
        ("kept", None, "99999-9", "score"),
        ("kept", None, "29463-7", "mg/dL"),
        ("kept", None, None, None),
    }
    bp = next(r for r in imported.resources if r.kind == "blood_pressure")
    assert bp.readings == {"systolic": 128.0, "diastolic": 82.0}
    immunization = db.scalar(
        select(ImportedResource).where(ImportedResource.resource_type == "Immunization")
    )
    assert immunization is not None and immunization.resource["id"] == "imm-flu-2025"
    assert immunization.patient_id == pid  # its patient reference was followed


def test_importing_the_same_bundle_again_changes_nothing(db: Session, world_a: ClinicWorld) -> None:
    nurse = world_a.actor(Role.NURSE)
    first = uc.import_bundle(db, nurse, other_ehr())
    before = row_counts(db)
    versions = (
        db.scalar(select(Patient.version).where(Patient.id == first.patient_ids[0])),
        sorted(db.scalars(select(MedicationEntry.version))),
    )
    again = uc.import_bundle(db, nurse, other_ehr())
    after = row_counts(db)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {"audit_events": 1}
    assert {e.outcome for e in again.entries} == {"unchanged", "merged"}
    assert not again.changed
    assert [f.code for f in again.findings] == [f.code for f in first.findings]  # still reported
    db.expire_all()
    assert versions == (
        db.scalar(select(Patient.version).where(Patient.id == first.patient_ids[0])),
        sorted(db.scalars(select(MedicationEntry.version))),
    )
    assert before["external_records"] == 9  # every entry but the merged Medication


def test_a_corrected_bundle_updates_in_place(db: Session, world_a: ClinicWorld) -> None:
    nurse = world_a.actor(Role.NURSE)
    first = uc.import_bundle(db, nurse, other_ehr())
    pid = first.patient_ids[0]
    changed = other_ehr()
    changed["entry"][0]["resource"]["telecom"][0]["value"] = "+1 416 555 0199"
    changed["entry"][1]["resource"]["status"] = "stopped"
    changed["entry"][1]["resource"]["effectivePeriod"]["end"] = "2026-03-31"
    changed["entry"][4]["resource"]["valueQuantity"]["value"] = 150
    # The mg/dL weight is corrected to kg: the kept copy is superseded by a measurement.
    changed["entry"][8]["resource"]["valueQuantity"] = {
        "value": 68.2,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    }
    before = row_counts(db)
    report = uc.import_bundle(db, nurse, changed)
    assert [(e.index, e.outcome) for e in report.entries if e.outcome != "unchanged"] == [
        (0, "updated"),
        (1, "updated"),
        (2, "merged"),
        (4, "updated"),
        (8, "created"),
    ]
    after = row_counts(db)
    diff = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert diff == {"audit_events": 1, "body_measurements": 1}
    patient = db.get(Patient, pid)
    assert patient is not None and patient.phone == "+1 416 555 0199" and patient.version == 2
    vyvanse = db.scalar(
        select(MedicationEntry).where(MedicationEntry.name_entered == "Vyvanse 50 mg capsule")
    )
    assert vyvanse is not None
    assert (vyvanse.status, vyvanse.stop_date, vyvanse.version) == (
        "stopped",
        date(2026, 3, 31),
        2,
    )
    weights = sorted(db.scalars(select(BodyMeasurement.weight_kg)))
    assert weights == [68.04, 68.2]  # 150 lb, and the corrected entry
    superseded = db.scalar(
        select(ImportedResource.disposition).where(ImportedResource.unit == "mg/dL")
    )
    assert superseded == "superseded"


def test_a_patient_registered_locally_is_matched_by_mrn_and_not_duplicated(
    db: Session, world_a: ClinicWorld
) -> None:
    local = world_a.patients[0]
    data = other_ehr()
    ident = data["entry"][0]["resource"]["identifier"][0]
    ident["value"] = local.mrn
    data["entry"][0]["resource"]["birthDate"] = local.date_of_birth.isoformat()
    report = uc.import_bundle(db, world_a.actor(Role.NURSE), data)
    assert report.entries[0].outcome == "updated"
    assert report.patient_ids == [local.id]
    assert db.scalar(select(func.count()).select_from(Patient)) == len(world_a.patients)
    db.refresh(local)
    assert local.family_name == "Nakamura-Reyes"


def test_an_mrn_of_someone_else_is_refused_not_merged(db: Session, world_a: ClinicWorld) -> None:
    local = world_a.patients[0]
    before = (local.family_name, local.version)
    data = other_ehr()
    data["entry"][0]["resource"]["identifier"][0]["value"] = local.mrn  # born 1985, not 1988
    report = uc.import_bundle(db, world_a.actor(Role.NURSE), data)
    assert {e.outcome for e in report.entries if e.resource_type != "Medication"} == {"refused"}
    first = report.findings[0]
    assert (first.index, first.severity, first.code) == (0, "error", "invalid_patient")
    assert "not merged" in first.message
    db.refresh(local)
    assert (local.family_name, local.version) == before
    assert db.scalar(select(func.count()).select_from(MedicationEntry)) == 0
    # Nothing is dropped: every refused entry is kept with its reason.
    kept = db.scalars(select(ImportedResource.disposition)).all()
    assert kept == ["refused"] * 9


def test_a_later_bundle_may_refer_to_a_patient_imported_earlier(
    db: Session, world_a: ClinicWorld
) -> None:
    nurse = world_a.actor(Role.NURSE)
    first = uc.import_bundle(db, nurse, other_ehr())
    later = {
        "resourceType": "Bundle",
        "type": "batch",
        "meta": {"source": "https://ehr.lakeside-psychiatry.example/fhir"},
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "obs-ht-1",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
                    "subject": {"reference": "Patient/lp-48213"},
                    "effectiveDateTime": "2026-04-10",
                    "valueQuantity": {"value": 65, "unit": "in", "code": "[in_i]"},
                }
            }
        ],
    }
    report = uc.import_bundle(db, nurse, later)
    assert report.patient_ids == first.patient_ids
    chart = get_chart(db, nurse, first.patient_ids[0])
    assert chart.latest_height is not None and chart.latest_height.height_cm == 165.1


def test_clinics_are_isolated(db: Session, world_a: ClinicWorld, world_b: ClinicWorld) -> None:
    a, b = world_a.actor(Role.NURSE), world_b.actor(Role.PRESCRIBER)
    in_a = uc.import_bundle(db, a, other_ehr())
    in_b = uc.import_bundle(db, b, other_ehr())
    # The same bundle is new to clinic B: its own patient and rows, none of A's touched.
    assert {e.outcome for e in in_b.entries} == {e.outcome for e in in_a.entries}
    assert in_a.patient_ids != in_b.patient_ids
    owners = db.execute(select(Patient.clinic_id, Patient.mrn).where(Patient.mrn == "LP-48213"))
    assert sorted(owners) == sorted(
        [(world_a.clinic.id, "LP-48213"), (world_b.clinic.id, "LP-48213")]
    )
    for model in (MedicationEntry, BodyMeasurement, PatientCondition, ImportedResource):
        per_clinic = dict(
            db.execute(select(model.clinic_id, func.count()).group_by(model.clinic_id)).all()
        )
        assert per_clinic[world_a.clinic.id] == per_clinic[world_b.clinic.id] > 0
    records = db.execute(
        select(ExternalRecord.clinic_id, func.count()).group_by(ExternalRecord.clinic_id)
    ).all()
    assert dict(records) == {world_a.clinic.id: 9, world_b.clinic.id: 9}
    with pytest.raises(NotFound):
        uc.list_imported(db, b, in_a.patient_ids[0])
    # A reference to an MRN finds patients of the caller's clinic only.
    by_mrn = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Condition",
                    "code": {"text": "Migraine"},
                    "subject": {"identifier": {"value": world_a.patients[0].mrn}},
                }
            }
        ],
    }
    report = uc.import_bundle(db, b, by_mrn)
    assert report.entries[0].outcome == "refused"
    assert report.findings[-1].code == "unresolved_reference"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.THERAPIST, Role.RESEARCHER])
def test_roles_that_may_not_record_medicines_cannot_import(
    db: Session, world_a: ClinicWorld, role: Role
) -> None:
    before = row_counts(db)
    with pytest.raises(Forbidden):
        uc.import_bundle(db, world_a.actor(role), other_ehr())
    after = row_counts(db)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {"audit_events": 1}
    last = db.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert last is not None and (last.action, last.outcome) == ("fhir.import", "denied")


def test_an_invalid_bundle_writes_nothing_but_its_audit_event(
    db: Session, world_a: ClinicWorld
) -> None:
    data = other_ehr()
    data["entry"][4]["resource"]["valueQuantity"]["value"] = "heavy"
    before = row_counts(db)
    with pytest.raises(uc.InvalidBundle) as caught:
        uc.import_bundle(db, world_a.actor(Role.NURSE), data)
    assert caught.value.field == "entry[4].resource.valueQuantity.value"
    after = row_counts(db)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {"audit_events": 1}
    last = db.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert last is not None and last.outcome == "invalid"


def test_malformed_json_is_an_invalid_bundle(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(uc.InvalidBundle) as caught:
        uc.import_json(db, world_a.actor(Role.NURSE), b'{"resourceType": "Bundle",')
    assert caught.value.field.startswith("line 1 column")


def test_the_import_is_audited_with_its_counts(db: Session, world_a: ClinicWorld) -> None:
    report = uc.import_bundle(db, world_a.actor(Role.PRESCRIBER), other_ehr())
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "fhir.import"))
    assert event is not None
    assert (event.outcome, event.patient_id) == ("success", report.patient_ids[0])
    assert event.detail is not None
    assert event.detail["source"] == "https://ehr.lakeside-psychiatry.example/fhir"
    assert (event.detail["created"], event.detail["kept"], event.detail["findings"]) == (6, 3, 3)


def test_a_bundle_of_two_patients_leaves_an_event_on_each(
    db: Session, world_a: ClinicWorld
) -> None:
    data = other_ehr()
    second = copy.deepcopy(data["entry"][0])
    second["fullUrl"] = "urn:uuid:second"
    second["resource"]["id"] = "lp-50000"
    second["resource"]["identifier"] = [{"system": "https://x.example/mrn", "value": "LP-50000"}]
    data["entry"].append(second)
    report = uc.import_bundle(db, world_a.actor(Role.NURSE), data)
    assert len(report.patient_ids) == 2
    events = db.scalars(
        select(AuditEvent.patient_id).where(
            AuditEvent.action == "fhir.import", AuditEvent.patient_id.isnot(None)
        )
    ).all()
    assert sorted(events) == report.patient_ids


def test_a_record_exported_by_one_clinic_imports_into_another(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    source, target = world_a.actor(Role.NURSE), world_b.actor(Role.NURSE)
    pid = world_a.patients[0].id
    pu.add_measurement(db, source, pid, pu.MeasurementCreate(weight_kg=81.3, height_cm=180))
    pu.add_medication(db, source, pid, pu.MedicationCreate(name="Adderall XR 20 mg"))
    bundle = fhir_export.export_patient(db, source, pid)
    report = uc.import_bundle(db, target, bundle)
    assert report.counts["Patient"].created == 1
    assert report.counts["MedicationStatement"].created == 1
    assert report.counts["Observation"].created == 2  # weight and height
    chart = get_chart(db, target, report.patient_ids[0])
    assert chart.patient.mrn == world_a.patients[0].mrn
    assert chart.latest_weight is not None and chart.latest_weight.weight_kg == 81.3
    assert chart.latest_height is not None and chart.latest_height.height_cm == 180.0
    assert [m.name for m in chart.medications] == ["Adderall XR 20 mg"]
    assert not uc.import_bundle(db, target, bundle).changed


def test_a_contact_detail_kept_out_does_not_stop_the_registration(
    db: Session, world_a: ClinicWorld
) -> None:
    data = other_ehr()
    data["entry"][0]["resource"]["telecom"][1]["value"] = "alex..nr@example.org"
    report = uc.import_bundle(db, world_a.actor(Role.NURSE), data)
    assert report.entries[0].outcome == "created"
    assert (report.findings[0].index, report.findings[0].code) == (0, "invalid_email")
    patient = db.get(Patient, report.patient_ids[0])
    assert patient is not None and patient.email is None and patient.phone == "+1 416 555 0142"
