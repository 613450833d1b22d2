"""Patients: register, edit, search, chart; body measurements; the medication list."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)
from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ketacare.app.audit import audited
from ketacare.app.errors import Conflict, InvalidInput, NotFound
from ketacare.app.paging import decode_cursor, encode_cursor
from ketacare.app.permissions import Actor, Permission, require
from ketacare.app.text import fold, like_prefix
from ketacare.store.models import BodyMeasurement, MedicationEntry, Patient
from ketacare.store.types import utcnow


class Sex(StrEnum):
    """Administrative sex, as FHIR's AdministrativeGender."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Stage(StrEnum):
    """Where the patient is in the programme."""

    INTAKE = "intake"
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    IN_COURSE = "in_course"
    MAINTENANCE = "maintenance"
    DISCHARGED = "discharged"


class MedicationStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    STOPPED = "stopped"
    ENTERED_IN_ERROR = "entered_in_error"


MRN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
PHONE_RE = re.compile(r"^\+?[0-9 ()./-]{5,40}$")
EARLIEST_BIRTH = date(1900, 1, 1)
# Plausible ranges (clinical-reference section C): anything outside is an entry error.
WEIGHT_KG = (30.0, 300.0)
HEIGHT_CM = (120.0, 230.0)


def _name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_name)]


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class PatientFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    family_name: Name
    given_name: Name
    date_of_birth: date
    sex: Sex
    phone: str | None = Field(default=None, max_length=40)
    email: EmailStr | None = None
    address: str | None = Field(default=None, max_length=500)

    _blank = field_validator("phone", "email", "address", mode="before")(_blank_to_none)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not PHONE_RE.match(value):
            raise ValueError("use digits, spaces and + ( ) - . / only")
        return value

    @field_validator("date_of_birth")
    @classmethod
    def _dob(cls, value: date) -> date:
        if value < EARLIEST_BIRTH:
            raise ValueError(f"must be on or after {EARLIEST_BIRTH.isoformat()}")
        if value > datetime.now(UTC).date():
            raise ValueError("must not be in the future")
        return value


class PatientCreate(PatientFields):
    mrn: str = Field(min_length=1, max_length=32, description="Medical record number")

    @field_validator("mrn")
    @classmethod
    def _mrn(cls, value: str) -> str:
        if not MRN_RE.match(value):
            raise ValueError(
                "use letters, digits and dashes (up to 32), starting with a letter or digit"
            )
        return value.upper()


class PatientUpdate(PatientFields):
    version: int = Field(ge=1, description="The version you read; a stale one is refused (409).")


class PatientSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    mrn: str
    family_name: str
    given_name: str
    date_of_birth: date
    sex: Sex
    stage: Stage


class PatientOut(PatientSummary):
    phone: str | None
    email: str | None
    address: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class MeasurementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measured_at: datetime | None = Field(default=None, description="Defaults to now (UTC).")
    weight_kg: float | None = Field(default=None, ge=WEIGHT_KG[0], le=WEIGHT_KG[1])
    height_cm: float | None = Field(default=None, ge=HEIGHT_CM[0], le=HEIGHT_CM[1])

    _blank = field_validator("measured_at", "weight_kg", "height_cm", mode="before")(_blank_to_none)

    @field_validator("measured_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-01-05T09:30:00Z)")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> MeasurementCreate:
        if self.weight_kg is None and self.height_cm is None:
            raise ValueError("enter a weight, a height, or both")
        return self


class MeasurementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    measured_at: datetime
    weight_kg: float | None
    height_cm: float | None


class MedicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="As the patient or label says it")
    dose_text: str | None = Field(default=None, max_length=200)
    start_date: date | None = None
    stop_date: date | None = None
    status: MedicationStatus = MedicationStatus.ACTIVE

    _blank = field_validator("dose_text", "start_date", "stop_date", mode="before")(_blank_to_none)

    @model_validator(mode="after")
    def _dates(self) -> MedicationCreate:
        if self.start_date and self.stop_date and self.stop_date < self.start_date:
            raise ValueError("stop_date must not be before start_date")
        return self


class MedicationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1)
    status: MedicationStatus
    dose_text: str | None = Field(default=None, max_length=200)
    stop_date: date | None = None

    _blank = field_validator("dose_text", "stop_date", mode="before")(_blank_to_none)


class MedicationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str = Field(validation_alias="name_entered")
    dose_text: str | None
    start_date: date | None
    stop_date: date | None
    status: MedicationStatus
    version: int


class PatientChart(BaseModel):
    patient: PatientOut
    latest_weight: MeasurementOut | None
    latest_height: MeasurementOut | None
    measurements: list[MeasurementOut]
    medications: list[MedicationOut]


class PatientPage(BaseModel):
    items: list[PatientSummary]
    next_cursor: str | None


class DeidentifiedPatient(BaseModel):
    pseudonym: str
    birth_year: int
    sex: Sex
    stage: Stage


class DeidentifiedPage(BaseModel):
    items: list[DeidentifiedPatient]
    next_cursor: str | None


# --- helpers -------------------------------------------------------------------------------


# The statements most requests run are built once: building a statement and its cache key
# costs more than running it.
_PATIENT_IN_CLINIC = select(Patient).where(
    Patient.id == bindparam("patient_id"), Patient.clinic_id == bindparam("clinic_id")
)


def _scoped_patient(db: Session, actor: Actor, patient_id: int) -> Patient:
    patient = db.scalar(
        _PATIENT_IN_CLINIC, {"patient_id": patient_id, "clinic_id": actor.clinic_id}
    )
    if patient is None:
        raise NotFound(f"No patient {patient_id} in your clinic.")
    return patient


def _set_names(patient: Patient, family: str, given: str) -> None:
    patient.family_name, patient.given_name = family, given
    patient.family_key, patient.given_key = fold(family), fold(given)
    patient.name_key = f"{patient.family_key} {patient.given_key}"


# --- use-cases -----------------------------------------------------------------------------


def create_patient(db: Session, actor: Actor, data: PatientCreate) -> PatientOut:
    with audited(db, actor, "patient.create") as note:
        require(actor, Permission.PATIENT_WRITE)
        if db.scalar(
            select(Patient.id).where(Patient.clinic_id == actor.clinic_id, Patient.mrn == data.mrn)
        ):
            raise InvalidInput("mrn", f"MRN {data.mrn} is already used by another patient.")
        patient = Patient(
            clinic_id=actor.clinic_id,
            mrn=data.mrn,
            date_of_birth=data.date_of_birth,
            sex=data.sex.value,
            phone=data.phone,
            email=data.email,
            address=data.address,
            stage=Stage.INTAKE.value,
        )
        _set_names(patient, data.family_name, data.given_name)
        db.add(patient)
        try:
            db.flush()
        except IntegrityError:
            # Two registrations raced for the same MRN; the unique index decided.
            raise InvalidInput(
                "mrn", f"MRN {data.mrn} is already used by another patient."
            ) from None
        note.patient_id = patient.id
        return PatientOut.model_validate(patient)


def update_patient(db: Session, actor: Actor, patient_id: int, data: PatientUpdate) -> PatientOut:
    with audited(db, actor, "patient.update", patient_id=patient_id) as note:
        require(actor, Permission.PATIENT_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        if patient.version != data.version:
            raise Conflict(
                "Someone else changed this patient since you opened it. "
                "Reload the chart and apply your change again."
            )
        before = PatientOut.model_validate(patient).model_dump(mode="json")
        _set_names(patient, data.family_name, data.given_name)
        patient.date_of_birth = data.date_of_birth
        patient.sex = data.sex.value
        patient.phone, patient.email, patient.address = data.phone, data.email, data.address
        patient.updated_at = utcnow()
        try:
            db.flush()
        except StaleDataError:
            raise Conflict(
                "Someone else changed this patient at the same moment. Reload and try again."
            ) from None
        after = PatientOut.model_validate(patient).model_dump(mode="json")
        note.detail = {
            "changed": sorted(
                k for k in after if before.get(k) != after[k] and k not in {"updated_at", "version"}
            )
        }
        return PatientOut.model_validate(patient)


def get_chart(db: Session, actor: Actor, patient_id: int) -> PatientChart:
    with audited(db, actor, "patient.view", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        return chart_of(db, _scoped_patient(db, actor, patient_id))


def chart_of(db: Session, patient: Patient) -> PatientChart:
    """The chart of a patient already in scope (query helper; callers audit)."""
    of_patient = {"patient_id": patient.id}
    measurements = db.scalars(_RECENT_MEASUREMENTS, of_patient).all()
    latest_weight = _latest(db, patient.id, "weight", measurements)
    latest_height = _latest(db, patient.id, "height", measurements)
    meds = db.scalars(_MEDICATIONS, of_patient).all()
    return PatientChart(
        patient=PatientOut.model_validate(patient),
        latest_weight=latest_weight,
        latest_height=latest_height,
        measurements=[MeasurementOut.model_validate(m) for m in measurements],
        medications=[MedicationOut.model_validate(m) for m in meds],
    )


def _latest_of(column: Any) -> Select[tuple[BodyMeasurement]]:
    return (
        select(BodyMeasurement)
        .where(BodyMeasurement.patient_id == bindparam("patient_id"), column.isnot(None))
        .order_by(BodyMeasurement.measured_at.desc(), BodyMeasurement.id.desc())
        .limit(1)
    )


_VALUE = {"weight": BodyMeasurement.weight_kg, "height": BodyMeasurement.height_cm}
_LATEST = {kind: _latest_of(column) for kind, column in _VALUE.items()}
RECENT_MEASUREMENTS = 20
_RECENT_MEASUREMENTS = (
    select(BodyMeasurement)
    .where(BodyMeasurement.patient_id == bindparam("patient_id"))
    .order_by(BodyMeasurement.measured_at.desc(), BodyMeasurement.id.desc())
    .limit(RECENT_MEASUREMENTS)
)
_MEDICATIONS = (
    select(MedicationEntry)
    .where(MedicationEntry.patient_id == bindparam("patient_id"))
    .order_by(MedicationEntry.status, MedicationEntry.name_entered, MedicationEntry.id)
)


def _latest(
    db: Session,
    patient_id: int,
    kind: Literal["weight", "height"],
    recent: Sequence[BodyMeasurement],
) -> MeasurementOut | None:
    """The latest measurement with this value: among the recent ones (newest first) when one
    has it, else looked up (older than all of them, or there is none)."""
    column = _VALUE[kind].key
    row = next((m for m in recent if getattr(m, column) is not None), None)
    if row is None and len(recent) == RECENT_MEASUREMENTS:
        row = db.scalar(_LATEST[kind], {"patient_id": patient_id})
    return MeasurementOut.model_validate(row) if row else None


def list_patients(
    db: Session, actor: Actor, *, q: str = "", cursor: str | None = None, limit: int = 25
) -> PatientPage:
    """Patients in name order, keyset-paged. ``q`` matches an MRN prefix, or every word of it
    matches the start of the family or given name ("smi jo" finds Jo Smith)."""
    with audited(db, actor, "patient.list") as note:
        require(actor, Permission.PATIENT_READ)
        q = q.strip()[:100]
        note.detail = {"q": q} if q else {}
        limit = max(1, min(limit, 100))
        stmt = select(Patient).where(Patient.clinic_id == actor.clinic_id)
        if q:
            words = [
                or_(
                    Patient.family_key.like(like_prefix(w), escape="\\"),
                    Patient.given_key.like(like_prefix(w), escape="\\"),
                )
                for w in fold(q).split()
            ]
            stmt = stmt.where(
                or_(Patient.mrn.like(like_prefix(q.upper()), escape="\\"), and_(*words))
            )
        if cursor:
            name_key, last_id = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    Patient.name_key > name_key,
                    and_(Patient.name_key == name_key, Patient.id > last_id),
                )
            )
        rows = db.scalars(stmt.order_by(Patient.name_key, Patient.id).limit(limit + 1)).all()
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].name_key, page[-1].id) if len(rows) > limit else None
        return PatientPage(
            items=[PatientSummary.model_validate(p) for p in page], next_cursor=next_cursor
        )


def pseudonym(secret: str, clinic_id: int, patient_id: int) -> str:
    """A keyed hash: stable for research joins, not reversible without the clinic's secret."""
    mac = hmac.new(secret.encode(), f"{clinic_id}:{patient_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:16]


def keyed_id(secret: str, kind: str, clinic_id: int, row_id: int) -> str:
    """A keyed hash of another kind of row ("session", ...), like :func:`pseudonym`. The kind
    is part of the message, so a session never shares a pseudonym with a patient."""
    message = f"{kind}:{clinic_id}:{row_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:16]


def list_deidentified(
    db: Session, actor: Actor, *, secret: str, after_id: int | None = None, limit: int = 50
) -> DeidentifiedPage:
    """Research view: no name, MRN, contact or exact birth date."""
    with audited(db, actor, "research.patient_list"):
        require(actor, Permission.PATIENT_READ_DEIDENTIFIED)
        limit = max(1, min(limit, 500))
        stmt = select(Patient.id, Patient.date_of_birth, Patient.sex, Patient.stage).where(
            Patient.clinic_id == actor.clinic_id
        )
        if after_id is not None:
            stmt = stmt.where(Patient.id > after_id)
        rows = db.execute(stmt.order_by(Patient.id).limit(limit + 1)).all()
        items = [
            DeidentifiedPatient(
                pseudonym=pseudonym(secret, actor.clinic_id, r.id),
                birth_year=r.date_of_birth.year,
                sex=Sex(r.sex),
                stage=Stage(r.stage),
            )
            for r in rows[:limit]
        ]
        # The cursor is an opaque position, not the patient id.
        nxt = (
            base64.urlsafe_b64encode(str(rows[limit - 1].id).encode()).decode()
            if len(rows) > limit
            else None
        )
        return DeidentifiedPage(items=items, next_cursor=nxt)


def decode_research_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor", "The page cursor is not valid; start from the first page."
        ) from None


def add_measurement(
    db: Session, actor: Actor, patient_id: int, data: MeasurementCreate
) -> MeasurementOut:
    with audited(db, actor, "measurement.create", patient_id=patient_id) as note:
        require(actor, Permission.MEASUREMENT_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        now = utcnow()
        measured_at = data.measured_at or now
        if measured_at > now + timedelta(minutes=5):
            raise InvalidInput("measured_at", "The measurement time is in the future.")
        row = BodyMeasurement(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            measured_at=measured_at,
            weight_kg=data.weight_kg,
            height_cm=data.height_cm,
            recorded_by=actor.user_id,
            recorded_at=now,
        )
        db.add(row)
        db.flush()
        note.detail = {"measurement_id": row.id}
        return MeasurementOut.model_validate(row)


def add_medication(
    db: Session, actor: Actor, patient_id: int, data: MedicationCreate
) -> MedicationOut:
    with audited(db, actor, "medication.create", patient_id=patient_id) as note:
        require(actor, Permission.MEDICATION_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        row = MedicationEntry(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            name_entered=data.name,
            dose_text=data.dose_text,
            start_date=data.start_date,
            stop_date=data.stop_date,
            status=data.status.value,
            created_by=actor.user_id,
        )
        db.add(row)
        db.flush()
        note.detail = {"medication_id": row.id, "name": data.name}
        return MedicationOut.model_validate(row)


def update_medication(
    db: Session, actor: Actor, patient_id: int, medication_id: int, data: MedicationUpdate
) -> MedicationOut:
    with audited(db, actor, "medication.update", patient_id=patient_id) as note:
        require(actor, Permission.MEDICATION_WRITE)
        patient = _scoped_patient(db, actor, patient_id)
        row = db.scalar(
            select(MedicationEntry).where(
                MedicationEntry.id == medication_id, MedicationEntry.patient_id == patient.id
            )
        )
        if row is None:
            raise NotFound(f"No medication {medication_id} on this patient's list.")
        if row.version != data.version:
            raise Conflict("Someone else changed this medicine since you opened it. Reload.")
        if data.stop_date and row.start_date and data.stop_date < row.start_date:
            raise InvalidInput("stop_date", "The stop date is before the start date.")
        note.detail = {"medication_id": row.id, "from": row.status, "to": data.status.value}
        row.status = data.status.value
        row.dose_text = data.dose_text if data.dose_text is not None else row.dose_text
        if data.status == MedicationStatus.STOPPED and data.stop_date is None:
            row.stop_date = row.stop_date or utcnow().date()
        elif data.stop_date is not None:
            row.stop_date = data.stop_date
        row.updated_at = utcnow()
        try:
            db.flush()
        except StaleDataError:
            raise Conflict("Someone else changed this medicine at the same moment.") from None
        return MedicationOut.model_validate(row)


def list_measurements(db: Session, actor: Actor, patient_id: int) -> list[MeasurementOut]:
    with audited(db, actor, "measurement.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        rows = db.scalars(
            select(BodyMeasurement)
            .where(BodyMeasurement.patient_id == patient.id)
            .order_by(BodyMeasurement.measured_at.desc(), BodyMeasurement.id.desc())
        ).all()
        return [MeasurementOut.model_validate(r) for r in rows]


def list_medications(db: Session, actor: Actor, patient_id: int) -> list[MedicationOut]:
    with audited(db, actor, "medication.list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        rows = db.scalars(
            select(MedicationEntry)
            .where(MedicationEntry.patient_id == patient.id)
            .order_by(MedicationEntry.status, MedicationEntry.name_entered, MedicationEntry.id)
        ).all()
        return [MedicationOut.model_validate(r) for r in rows]
