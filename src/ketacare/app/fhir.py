"""FHIR export as use-cases: a patient's whole record, every patient of the clinic, the Patient
resource, and the searches the API answers. Reading a whole record is reading identifying
patient data (``patient.read``): researchers are refused; another clinic's patient is not found.

Loading takes a fixed number of queries whatever the size of the record (one per table, the
children of sessions through a subquery); the building itself is ``interop.fhir``'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ketacare import __version__
from ketacare.app.audit import audited
from ketacare.app.errors import InvalidInput, NotFound
from ketacare.app.patients import _scoped_patient
from ketacare.app.permissions import Actor, Permission, require
from ketacare.interop import fhir
from ketacare.store.models import (
    Assessment,
    BodyMeasurement,
    Clinic,
    ConsentRecord,
    DoseOrder,
    EligibilityReview,
    ImportedResource,
    IntakeRecord,
    InteractionScreen,
    MedicationEntry,
    Patient,
    PatientCondition,
    TherapySession,
    TreatmentCourse,
    TreatmentSession,
    User,
    VitalSample,
)
from ketacare.store.types import utcnow

JSON = dict[str, Any]
# Patients loaded together by export_all: bounded memory, a fixed number of queries per chunk.
CHUNK = 50
MAX_COUNT = 500
RELEASED = date(2026, 1, 1)
OBSERVATION_CATEGORIES = ("vital-signs", "survey")


def _clinic(db: Session, actor: Actor) -> Clinic:
    clinic = db.get(Clinic, actor.clinic_id)
    if clinic is None:  # the actor's own clinic always exists; a deleted one is not found
        raise NotFound("Your clinic was not found.")
    return clinic


def _rows(db: Session, model: Any, where: ColumnElement[bool], *order: Any) -> list[Any]:
    return list(db.scalars(select(model).where(where).order_by(*order, model.id)))


def _records(db: Session, clinic: Clinic, patients: Sequence[Patient]) -> list[fhir.PatientRecord]:
    """The records of several patients of one clinic, in a fixed number of queries."""
    ids = [p.id for p in patients]

    def of(model: Any) -> ColumnElement[bool]:
        return (model.clinic_id == clinic.id) & model.patient_id.in_(ids)

    sessions_of = select(TreatmentSession.id).where(of(TreatmentSession))
    tables: dict[str, list[Any]] = {
        "measurements": _rows(
            db, BodyMeasurement, of(BodyMeasurement), BodyMeasurement.measured_at
        ),
        "medications": _rows(db, MedicationEntry, of(MedicationEntry)),
        "intakes": _rows(db, IntakeRecord, of(IntakeRecord), IntakeRecord.recorded_at),
        "assessments": _rows(db, Assessment, of(Assessment), Assessment.administered_at),
        "reviews": _rows(db, EligibilityReview, of(EligibilityReview), EligibilityReview.signed_at),
        "consents": _rows(db, ConsentRecord, of(ConsentRecord), ConsentRecord.recorded_at),
        "courses": _rows(db, TreatmentCourse, of(TreatmentCourse), TreatmentCourse.created_at),
        "sessions": _rows(
            db, TreatmentSession, of(TreatmentSession), TreatmentSession.scheduled_at
        ),
        "therapy": _rows(db, TherapySession, of(TherapySession), TherapySession.scheduled_at),
        "diagnoses": _rows(db, PatientCondition, of(PatientCondition), PatientCondition.id),
        "imported_vitals": _rows(
            db,
            ImportedResource,
            of(ImportedResource)
            & (ImportedResource.disposition == "stored")
            & (ImportedResource.kind == "blood_pressure"),
            ImportedResource.effective_at,
        ),
    }
    orders = _rows(
        db,
        DoseOrder,
        (DoseOrder.clinic_id == clinic.id) & DoseOrder.session_id.in_(sessions_of),
        DoseOrder.ordered_at,
    )
    vitals = _rows(
        db,
        VitalSample,
        (VitalSample.clinic_id == clinic.id) & VitalSample.session_id.in_(sessions_of),
        VitalSample.measured_at,
    )
    rank = (
        func.row_number()
        .over(
            partition_by=InteractionScreen.patient_id,
            order_by=(InteractionScreen.screened_at.desc(), InteractionScreen.id.desc()),
        )
        .label("rank")
    )
    latest = select(InteractionScreen.id, rank).where(of(InteractionScreen)).subquery()
    screens = _rows(
        db,
        InteractionScreen,
        InteractionScreen.id.in_(select(latest.c.id).where(latest.c.rank == 1)),
    )
    user_ids = _user_ids(
        [*(r for rows in tables.values() for r in rows), *orders, *vitals, *screens]
    )
    users = {
        u.id: u
        for u in db.scalars(
            select(User).where(User.clinic_id == clinic.id, User.id.in_(sorted(user_ids)))
        )
    }
    session_patient = {s.id: s.patient_id for s in tables["sessions"]}
    records = {p.id: fhir.PatientRecord(clinic=clinic, patient=p, users=users) for p in patients}
    grouped: dict[int, dict[str, list[Any]]] = {p.id: {k: [] for k in tables} for p in patients}
    for name, rows in tables.items():
        for row in rows:
            grouped[row.patient_id][name].append(row)
    for pid, parts in grouped.items():
        for name, rows in parts.items():
            setattr(records[pid], name, rows)
    by_session: dict[int, dict[str, list[Any]]] = {}
    for name, rows in (("dose_orders", orders), ("vitals", vitals)):
        for row in rows:
            pid = session_patient[row.session_id]
            by_session.setdefault(pid, {"dose_orders": [], "vitals": []})[name].append(row)
    for pid, parts in by_session.items():
        records[pid].dose_orders, records[pid].vitals = parts["dose_orders"], parts["vitals"]
    for screen in screens:
        records[screen.patient_id].latest_screen = screen
    return [records[p.id] for p in patients]


USER_COLUMNS = (
    "recorded_by",
    "created_by",
    "signed_by",
    "ordered_by",
    "screened_by",
    "therapist_id",
)


def _user_ids(rows: Sequence[Any]) -> set[int]:
    found: set[int] = set()
    for row in rows:
        for column in USER_COLUMNS:
            value = getattr(row, column, None)
            if value is not None:
                found.add(value)
    return found


def export_patient(db: Session, actor: Actor, patient_id: int, *, base_url: str = "") -> JSON:
    """The patient's whole record as a FHIR R4B Bundle (type collection), JSON-ready."""
    with audited(db, actor, "fhir.export", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        (record,) = _records(db, _clinic(db, actor), [patient])
        bundle = fhir.patient_bundle(record, timestamp=utcnow(), base_url=base_url)
        note.detail = {"resources": len(bundle["entry"])}
        return bundle


def export_all(db: Session, actor: Actor, *, base_url: str = "") -> Iterator[JSON]:
    """Every patient's record of the actor's clinic, one Bundle each, in id order.

    The permission is checked and the export recorded in the audit trail before the first
    record is read (a refusal raises here, not on iteration); records are then loaded
    ``CHUNK`` patients at a time.
    """
    with audited(db, actor, "fhir.export_all") as note:
        require(actor, Permission.PATIENT_READ)
        clinic = _clinic(db, actor)
        ids = list(
            db.scalars(
                select(Patient.id).where(Patient.clinic_id == clinic.id).order_by(Patient.id)
            )
        )
        note.detail = {"patients": len(ids)}
    return _bundles(db, clinic, ids, base_url)


def _bundles(db: Session, clinic: Clinic, ids: list[int], base_url: str) -> Iterator[JSON]:
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        patients = list(
            db.scalars(
                select(Patient)
                .where(Patient.clinic_id == clinic.id, Patient.id.in_(chunk))
                .order_by(Patient.id)
            )
        )
        for record in _records(db, clinic, patients):
            yield fhir.patient_bundle(record, timestamp=utcnow(), base_url=base_url)
        db.rollback()  # end the read transaction of the chunk; nothing was written


def read_patient(db: Session, actor: Actor, patient_id: int) -> JSON:
    """The Patient resource."""
    with audited(db, actor, "fhir.patient_read", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        return fhir.patient_resource(fhir.PatientRecord(clinic=_clinic(db, actor), patient=patient))


def _token(value: str, field: str) -> tuple[str | None, str]:
    """A FHIR token ``system|code`` or ``code``."""
    system, sep, code = value.partition("|")
    if not sep:
        system, code = None, value  # type: ignore[assignment]
    if not code.strip():
        raise InvalidInput(field, f"{field}: give a value (system|value or value).")
    return system, code.strip()


# The largest id a row can have (INTEGER columns; PostgreSQL's end at 2^31-1).
MAX_ID = 2**31 - 1


def record_id(text: str) -> int | None:
    """A record id written in ASCII digits, within what the database holds; else None.
    (``str.isdigit`` accepts "²", which ``int`` refuses.)"""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def _count(count: str | None) -> int:
    if count is None or count == "":
        return 100
    if not (count.isascii() and count.isdigit()) or not 1 <= int(count) <= MAX_COUNT:
        raise InvalidInput("_count", f"_count: give a whole number from 1 to {MAX_COUNT}.")
    return int(count)


def search_patients(
    db: Session,
    actor: Actor,
    *,
    ids: str | None = None,
    identifier: str | None = None,
    count: str | None = None,
    base_url: str = "",
    self_url: str = "",
) -> JSON:
    """Patients of the clinic by ``_id`` and/or ``identifier`` (comma = or), as a searchset."""
    with audited(db, actor, "fhir.patient_search") as note:
        require(actor, Permission.PATIENT_READ)
        limit = _count(count)
        clinic = _clinic(db, actor)
        stmt = select(Patient).where(Patient.clinic_id == clinic.id)
        note.detail = {k: v for k, v in (("_id", ids), ("identifier", identifier)) if v}
        if ids is not None:
            wanted = [record_id(part.strip()) for part in ids.split(",")]
            if any(part is None for part in wanted):
                raise InvalidInput("_id", "_id: give patient ids (digits), separated by commas.")
            stmt = stmt.where(Patient.id.in_(wanted))
        if identifier is not None:
            mrns = []
            for part in identifier.split(","):
                system, value = _token(part, "identifier")
                if system in (None, "", fhir.mrn_system(clinic.slug)):
                    mrns.append(value.upper())
            stmt = stmt.where(Patient.mrn.in_(mrns))
        rows = db.scalars(stmt.order_by(Patient.id).limit(limit)).all()
        resources = [
            fhir.patient_resource(fhir.PatientRecord(clinic=clinic, patient=p)) for p in rows
        ]
        note.detail["matches"] = len(resources)
        return fhir.searchset(resources, timestamp=utcnow(), base_url=base_url, self_url=self_url)


def _patient_param(value: str) -> int:
    found = record_id(value.strip().removeprefix("Patient/"))
    if found is None:
        raise InvalidInput("patient", "patient: give a patient id (12) or reference (Patient/12).")
    return found


def search_observations(
    db: Session,
    actor: Actor,
    *,
    patient: str | None,
    category: str | None = None,
    code: str | None = None,
    base_url: str = "",
    self_url: str = "",
) -> JSON:
    """A patient's Observations (vital signs, weight and height, scale totals), optionally of
    one category or code, as a searchset. Another clinic's patient matches nothing."""
    with audited(db, actor, "fhir.observation_search") as note:
        require(actor, Permission.PATIENT_READ)
        if not patient:
            raise InvalidInput("patient", "patient: this search needs the patient (patient=12).")
        patient_id = note.patient_id = _patient_param(patient)
        if category is not None and category not in OBSERVATION_CATEGORIES:
            raise InvalidInput(
                "category", f"category: use one of {', '.join(OBSERVATION_CATEGORIES)}."
            )
        wanted = _token(code, "code") if code is not None else None
        row = db.scalar(
            select(Patient).where(Patient.id == patient_id, Patient.clinic_id == actor.clinic_id)
        )
        found: list[JSON] = []
        if row is not None:
            (record,) = _records(db, _clinic(db, actor), [row])
            bundle = fhir.patient_bundle(record, timestamp=utcnow())
            for entry in bundle["entry"]:
                resource = entry["resource"]
                if resource["resourceType"] == "Observation" and _matches(
                    resource, category, wanted
                ):
                    found.append(resource)
        note.detail = {"matches": len(found)}
        return fhir.searchset(found, timestamp=utcnow(), base_url=base_url, self_url=self_url)


def _matches(resource: JSON, category: str | None, code: tuple[str | None, str] | None) -> bool:
    if category is not None and not any(
        c.get("code") == category for cat in resource.get("category", []) for c in cat["coding"]
    ):
        return False
    if code is None:
        return True
    system, value = code
    return any(
        c.get("code") == value and (not system or c.get("system") == system)
        for c in resource["code"].get("coding", [])
    )


def capability_statement(base_url: str) -> JSON:
    """The server's CapabilityStatement (no patient data)."""
    return fhir.capability_statement(
        software_version=__version__, released=RELEASED, base_url=base_url
    )
