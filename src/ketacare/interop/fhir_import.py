"""Read a FHIR R4 Bundle from another system into typed import items (no database).

Every entry becomes exactly one item: a :class:`PatientItem`, :class:`MedicationItem`,
:class:`ObservationItem` or :class:`ConditionItem` when KetaCare understands it, otherwise a
:class:`KeptItem` that carries the resource as received and why it was not used. Problems are
:class:`Finding` s (warning: kept but not understood; error: refused as impossible), so nothing
is dropped silently. A bundle that is not valid FHIR raises :class:`BundleError`, whose issues
name the entry and field (``entry[3].resource.valueQuantity.unit: ...``).

Resources are validated with ``fhir.resources.R4B`` (wire-compatible with R4 for the resources
read here). Codes and units: LOINC for body weight, height and blood pressure, UCUM units,
ICD-10 and SNOMED CT for ADHD (the small table below). Plausible ranges are those of
knowledge/monitoring.yaml, the same that dosing and session monitoring use.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ketacare.clinical.monitoring import validate_vitals

__all__ = [
    "BUNDLE_TYPES",
    "BundleError",
    "BundleIssue",
    "Coding",
    "ConditionItem",
    "Finding",
    "ImportItem",
    "KeptItem",
    "MedicationItem",
    "ObservationItem",
    "ParsedBundle",
    "PatientItem",
    "PatientRef",
    "content_hash",
    "parse_bundle",
]

BUNDLE_TYPES = ("transaction", "batch", "collection")
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ICD10 = (
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10-ca",
)
MR_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
UNKNOWN_SOURCE = "urn:ketacare:unknown-source"

# LOINC codes read (the rest are kept as received).
OBSERVATION_CODES = {
    "29463-7": "weight",  # Body weight
    "3141-9": "weight",  # Body weight Measured
    "8302-2": "height",  # Body height
    "85354-9": "blood_pressure",  # Blood pressure panel with all children optional
    "55284-4": "blood_pressure",  # Blood pressure systolic and diastolic
    "8480-6": "systolic",  # Systolic blood pressure
    "8462-4": "diastolic",  # Diastolic blood pressure
}
# UCUM code -> factor to KetaCare's unit (kg, cm, mm[Hg]); printed aliases map to UCUM.
UNIT_FACTORS = {
    "weight": {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237},
    "height": {"cm": 1.0, "m": 100.0, "mm": 0.1, "[in_i]": 2.54},
    "blood_pressure": {"mm[Hg]": 1.0},
}
UNIT_ALIASES = {"lb": "[lb_av]", "lbs": "[lb_av]", "in": "[in_i]", "mmhg": "mm[Hg]"}
# ADHD as the referral coded it: ICD-10 F90 and its children, SNOMED CT 406506008.
ADHD_ICD10 = re.compile(r"^F90(\.[0-9A-Z]{1,4})?$")
ADHD_SNOMED = frozenset({"406506008"})

MEDICATION_STATUS = {
    "active": "active",
    "on-hold": "on_hold",
    "stopped": "stopped",
    "completed": "stopped",
    "entered-in-error": "entered_in_error",
    "not-taken": "stopped",
    # Not knowing whether a medicine is taken must not hide it from interaction screening.
    "intended": "active",
    "unknown": "active",
}
SEX = ("female", "male", "other", "unknown")
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,39}$")
MRN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
NAME_MAX, DOSE_MAX, ADDRESS_MAX, PHONE_MAX, EMAIL_MAX = 100, 200, 500, 40, 200


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleIssue:
    path: str
    message: str


class BundleError(ValueError):
    """The input is not a Bundle KetaCare can read; every issue names where."""

    def __init__(self, issues: Sequence[BundleIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(f"{i.path}: {i.message}" for i in self.issues))

    @property
    def message(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Finding:
    """Something the importer could not use as sent. ``warning``: kept as received but not
    understood; ``error``: refused (impossible, or nothing to attach it to)."""

    index: int | None
    resource_type: str
    severity: Literal["warning", "error"]
    code: str
    path: str
    message: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "resource_type": self.resource_type,
            "severity": self.severity,
            "code": self.code,
            "path": self.path,
            "message": self.message,
        }


@dataclass(frozen=True)
class Coding:
    system: str | None
    code: str | None
    display: str | None

    def to_json_dict(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class PatientRef:
    """Who a resource is about: a Patient entry of this bundle (``index``), or a patient the
    sender identified by id (imported earlier) or by MRN."""

    index: int | None = None
    external_id: str | None = None
    mrn: str | None = None


@dataclass(frozen=True)
class _Item:
    index: int
    resource_type: str
    external_id: str
    content_hash: str
    resource: Mapping[str, Any]  # as received


@dataclass(frozen=True)
class PatientItem(_Item):
    mrn: str
    family_name: str
    given_name: str
    birth_date: date
    sex: str
    phone: str | None = None
    email: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class MedicationItem(_Item):
    patient: PatientRef
    name: str
    codings: tuple[Coding, ...]
    dose_text: str | None
    status: str  # a KetaCare MedicationStatus value
    start_date: date | None
    stop_date: date | None


@dataclass(frozen=True)
class ObservationItem(_Item):
    patient: PatientRef
    kind: Literal["weight", "height", "blood_pressure", "systolic", "diastolic"]
    effective_at: datetime
    coding: Coding
    weight_kg: float | None = None
    height_cm: float | None = None
    systolic: float | None = None
    diastolic: float | None = None

    @property
    def readings(self) -> dict[str, float]:
        names = ("weight_kg", "height_cm", "systolic", "diastolic")
        return {n: v for n in names if (v := getattr(self, n)) is not None}


@dataclass(frozen=True)
class ConditionItem(_Item):
    patient: PatientRef
    codings: tuple[Coding, ...]
    coding: Coding  # the one KetaCare understands, else the first
    known: str | None  # "adhd", or None when KetaCare does not act on the code
    clinical_status: str | None
    onset: str | None


@dataclass(frozen=True)
class KeptItem(_Item):
    """A resource kept as received: not understood (``kept``) or refused (``refused``)."""

    patient: PatientRef | None
    disposition: Literal["kept", "refused"]
    reason: str
    coding: Coding | None = None
    effective_at: datetime | None = None
    readings: Mapping[str, Any] | None = None
    unit: str | None = None


_Base = tuple[int, str, str, str, dict[str, Any]]
ImportItem = PatientItem | MedicationItem | ObservationItem | ConditionItem | KeptItem


@dataclass(frozen=True)
class ParsedBundle:
    bundle_type: str
    source: str
    items: tuple[ImportItem, ...]
    findings: tuple[Finding, ...]
    # Medication entries read into the MedicationStatement that refers to them: index -> index.
    merged: Mapping[int, int] = field(default_factory=dict)


# --- helpers -----------------------------------------------------------------------------


def content_hash(resource: Mapping[str, Any]) -> str:
    """SHA-256 of the resource's canonical JSON: the same content always hashes the same."""
    text = json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "root" and not any(c in str(part) for c in "[(<"):
            # pydantic's own steps (root models, validator names) are not FHIR fields.
            out += f".{part}"
    return out


def _clean(message: str, limit: int = 300) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _validate(kind: str, data: Mapping[str, Any], path: str) -> tuple[Any, list[BundleIssue]]:
    try:
        cls = get_fhir_model_class(kind)
        return cls.model_validate(data), []
    except ValidationError as exc:
        issues = [
            BundleIssue(path + _loc(e.get("loc", ())), _clean(e.get("msg", "is not valid")))
            for e in exc.errors()
        ]
        return None, issues or [BundleIssue(path, "is not a valid " + kind)]
    except (ValueError, TypeError, KeyError, RecursionError, AttributeError) as exc:
        # fhir.resources raises KeyError for an unknown contained resource type, etc.
        return None, [BundleIssue(path, _clean(f"is not a valid {kind} ({exc!r})"))]


def _codings(concept: Any) -> tuple[Coding, ...]:
    if concept is None:
        return ()
    return tuple(Coding(c.system, c.code, c.display) for c in (concept.coding or ()))


def _concept_text(concept: Any) -> str | None:
    if concept is None:
        return None
    if concept.text and concept.text.strip():
        return concept.text.strip()
    for c in concept.coding or ():
        if c.display and c.display.strip():
            return c.display.strip()
    return None


def _describe(coding: Coding | None) -> str:
    if coding is None:
        return "no code"
    code = f"{coding.system or '(no system)'}|{coding.code or '(no code)'}"
    return f"{code} ({coding.display!r})" if coding.display else code


def _to_utc(value: Any) -> datetime | None:
    """A FHIR dateTime/instant as aware UTC; a full date is taken as its midnight UTC;
    a partial date (year, year-month) is too imprecise and gives None."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    return None


def _date_of(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return None


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _number(value: Decimal | float | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _unit(quantity: Any) -> str | None:
    """The UCUM code of a quantity (its code, else its printed unit via a few aliases)."""
    code = quantity.code if quantity.system in (None, UCUM) else None
    raw = code or quantity.unit
    if raw is None:
        return None
    raw = raw.strip()
    return UNIT_ALIASES.get(raw.lower(), raw)


def _external_id(resource: Any, full_url: str | None, digest: str) -> str:
    if getattr(resource, "id", None):
        key = str(resource.id)
    elif getattr(resource, "identifier", None):
        ident = resource.identifier
        first = ident[0] if isinstance(ident, list) else ident
        key = f"{first.system or ''}|{first.value or ''}"
    elif full_url:
        key = full_url
    else:
        key = f"sha256:{digest}"
    return key if len(key) <= 255 else f"sha256:{content_hash({'key': key})}"


# --- the parser ----------------------------------------------------------------------------


class _Parser:
    def __init__(self, bundle: Mapping[str, Any], now: datetime) -> None:
        self.bundle = bundle
        self.now = now
        self.findings: list[Finding] = []
        self.patients: dict[int, PatientItem | KeptItem] = {}
        self.patient_keys: dict[str, int] = {}
        self.medications: dict[str, tuple[int, Any]] = {}
        self.used_medications: dict[int, int] = {}

    def finding(
        self, index: int | None, kind: str, severity: str, code: str, path: str, message: str
    ) -> None:
        self.findings.append(Finding(index, kind, severity, code, path, message))  # type: ignore[arg-type]

    def kept(
        self,
        base: _Base,
        patient: PatientRef | None,
        severity: Literal["warning", "error"],
        code: str,
        path: str,
        reason: str,
        *,
        coding: Coding | None = None,
        effective_at: datetime | None = None,
        readings: Mapping[str, Any] | None = None,
        unit: str | None = None,
    ) -> KeptItem:
        index, kind = base[0], base[1]
        self.finding(index, kind, severity, code, path, reason)
        return KeptItem(
            *base,
            patient=patient,
            disposition="kept" if severity == "warning" else "refused",
            reason=reason,
            coding=coding,
            effective_at=effective_at,
            readings=readings,
            unit=unit,
        )

    # -- patients and references

    def patient(self, base: _Base, res: Any) -> Any:
        index = base[0]
        path = f"entry[{index}].resource"

        def refuse(where: str, reason: str) -> KeptItem:
            return self.kept(base, None, "error", "invalid_patient", where, reason)

        mrn, _system = _mrn(res)
        if mrn is None:
            return refuse(f"{path}.identifier", "no identifier to use as the MRN; add one.")
        if not MRN_RE.match(mrn):
            return refuse(
                f"{path}.identifier",
                f"identifier {mrn!r} cannot be an MRN (letters, digits and dashes, up to 32).",
            )
        name = _official_name(res)
        family = " ".join((name.family or "").split()) if name else ""
        given = " ".join(" ".join(name.given or ()).split()) if name else ""
        if not family or not given:
            return refuse(f"{path}.name", "a family and a given name are both needed.")
        if len(family) > NAME_MAX or len(given) > NAME_MAX:
            return refuse(f"{path}.name", f"names are limited to {NAME_MAX} characters.")
        birth = res.birthDate
        if not isinstance(birth, date):
            return refuse(f"{path}.birthDate", "a full birth date (YYYY-MM-DD) is needed.")
        if birth < date(1900, 1, 1) or birth > self.now.date():
            return refuse(f"{path}.birthDate", f"{birth.isoformat()} is not a possible birth date.")
        sex = res.gender or "unknown"
        if sex not in SEX:
            return refuse(f"{path}.gender", f"{sex!r} is not one of {', '.join(SEX)}.")
        if res.gender is None:
            self.finding(
                index,
                "Patient",
                "warning",
                "missing_gender",
                f"{path}.gender",
                "no administrative gender sent; recorded as unknown.",
            )
        phone, email = self.telecom(index, res, path)
        address = _address(res)
        if address and len(address) > ADDRESS_MAX:
            self.finding(
                index,
                "Patient",
                "warning",
                "too_long",
                f"{path}.address",
                f"address longer than {ADDRESS_MAX} characters; shortened.",
            )
            address = address[:ADDRESS_MAX]
        return PatientItem(
            *base,
            mrn=mrn.upper(),
            family_name=family,
            given_name=given,
            birth_date=birth,
            sex=sex,
            phone=phone,
            email=email,
            address=address,
        )

    def telecom(self, index: int, res: Any, path: str) -> tuple[str | None, str | None]:
        phone = email = None
        for i, point in enumerate(res.telecom or ()):
            value = (point.value or "").strip()
            where = f"{path}.telecom[{i}]"
            if point.system == "phone" and phone is None and value:
                if re.match(r"^\+?[0-9 ()./-]{5,40}$", value):
                    phone = value
                else:
                    self.finding(
                        index,
                        "Patient",
                        "warning",
                        "invalid_phone",
                        where,
                        f"phone {value!r} is not a phone number KetaCare accepts; not recorded.",
                    )
            elif point.system == "email" and email is None and value:
                if re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value) and len(value) <= EMAIL_MAX:
                    email = value
                else:
                    self.finding(
                        index,
                        "Patient",
                        "warning",
                        "invalid_email",
                        where,
                        f"e-mail {value!r} is not an address KetaCare accepts; not recorded.",
                    )
        return phone, email

    def register_patient(self, index: int, full_url: str | None, res: Any) -> None:
        if full_url:
            self.patient_keys[full_url] = index
        if res.id:
            self.patient_keys[f"Patient/{res.id}"] = index

    def reference(self, index: int, ref: Any, path: str) -> PatientRef | str:
        """The patient a reference points to, or why it cannot be followed."""
        if ref is None:
            return "no subject (patient) reference."
        if ref.reference:
            text = ref.reference.strip()
            if text in self.patient_keys:
                return PatientRef(index=self.patient_keys[text])
            match = re.search(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/.*)?$", text)
            if match:
                local = f"Patient/{match.group(1)}"
                if local in self.patient_keys:
                    return PatientRef(index=self.patient_keys[local])
                return PatientRef(external_id=match.group(1))
            return f"reference {text!r} is not a Patient in this bundle."
        if ref.identifier is not None and ref.identifier.value:
            return PatientRef(mrn=ref.identifier.value.strip().upper())
        return "the subject reference has neither a reference nor an identifier."

    def subject(self, base: _Base, ref: Any, field_: str) -> PatientRef | KeptItem:
        index = base[0]
        path = f"entry[{index}].resource.{field_}"
        found = self.reference(index, ref, path)
        if isinstance(found, str):
            return self.kept(base, None, "error", "unresolved_reference", path, found)
        if found.index is not None and isinstance(self.patients.get(found.index), KeptItem):
            return self.kept(
                base,
                None,
                "error",
                "patient_refused",
                path,
                f"its patient (entry[{found.index}]) was refused; see that finding.",
            )
        return found

    # -- medications

    def medication(self, base: _Base, res: Any) -> Any:
        index = base[0]
        path = f"entry[{index}].resource"
        who = self.subject(base, res.subject, "subject")
        if isinstance(who, KeptItem):
            return who
        codings: tuple[Coding, ...] = ()
        name: str | None = None
        if res.medicationCodeableConcept is not None:
            codings = _codings(res.medicationCodeableConcept)
            name = _concept_text(res.medicationCodeableConcept)
        elif res.medicationReference is not None:
            med = self.medication_resource(index, res, res.medicationReference.reference or "")
            if med is not None:
                codings, name = _codings(med.code), _concept_text(med.code)
                # A changed Medication entry changes the statement's content too.
                both = {"statement": base[4], "medication": med.model_dump(mode="json")}
                base = (*base[:3], content_hash(both), base[4])
        if name is None:
            for c in codings:
                if c.code:
                    name = f"{c.system or ''}|{c.code}".lstrip("|")
                    break
        if not name:
            return self.kept(
                base,
                who,
                "warning",
                "no_medication_name",
                f"{path}.medicationCodeableConcept",
                "no medicine name or code to put on the medication list; kept as received.",
            )
        if len(name) > DOSE_MAX:
            name = name[:DOSE_MAX]
            self.finding(
                index,
                "MedicationStatement",
                "warning",
                "too_long",
                f"{path}.medication",
                f"medicine name longer than {DOSE_MAX} characters; shortened.",
            )
        status = MEDICATION_STATUS.get(res.status or "")
        if status is None:
            return self.kept(
                base,
                who,
                "warning",
                "unknown_status",
                f"{path}.status",
                f"status {res.status!r} is not a MedicationStatement status; kept.",
            )
        if res.status in ("intended", "unknown", "not-taken"):
            self.finding(
                index,
                "MedicationStatement",
                "warning",
                "status_mapped",
                f"{path}.status",
                f"status {res.status!r} recorded as {status} (screening counts active "
                "medicines); check with the patient.",
            )
        start = stop = None
        if res.effectivePeriod is not None:
            start = _date_of(res.effectivePeriod.start)
            stop = _date_of(res.effectivePeriod.end)
        elif res.effectiveDateTime is not None:
            start = _date_of(res.effectiveDateTime)
        if start and stop and stop < start:
            self.finding(
                index,
                "MedicationStatement",
                "warning",
                "dates_reversed",
                f"{path}.effectivePeriod.end",
                f"end {stop.isoformat()} is before start {start.isoformat()}; end not recorded.",
            )
            stop = None
        return MedicationItem(
            *base,
            patient=who,
            name=name,
            codings=codings,
            dose_text=_dose_text(res),
            status=status,
            start_date=start,
            stop_date=stop,
        )

    def medication_resource(self, index: int, statement: Any, ref: str) -> Any:
        if ref.startswith("#"):
            for item in statement.contained or ():
                if (
                    getattr(item, "id", None) == ref[1:]
                    and item.get_resource_type() == "Medication"
                ):
                    return item
            return None
        hit = self.medications.get(ref)
        if hit is None and "/Medication/" in f"/{ref}":
            hit = self.medications.get("Medication/" + ref.rsplit("/Medication/", 1)[-1])
        if hit is None:
            return None
        self.used_medications[hit[0]] = index
        return hit[1]

    # -- observations

    def observation(self, base: _Base, res: Any) -> Any:
        index = base[0]
        path = f"entry[{index}].resource"
        who = self.subject(base, res.subject, "subject")
        if isinstance(who, KeptItem):
            return who
        codings = _codings(res.code)
        known = next(
            (c for c in codings if c.system == LOINC and c.code in OBSERVATION_CODES), None
        )
        shown = known or (codings[0] if codings else Coding(None, None, _concept_text(res.code)))
        effective = _to_utc(
            res.effectiveDateTime
            or res.effectiveInstant
            or (res.effectivePeriod.start if res.effectivePeriod else None)
            or res.issued
        )
        keep: dict[str, Any] = {"coding": shown, "effective_at": effective}
        if known is None:
            quantity = res.valueQuantity
            if quantity is not None and _number(quantity.value) is not None:
                keep |= {"readings": {"value": _number(quantity.value)}, "unit": _unit(quantity)}
            return self.kept(
                base,
                who,
                "warning",
                "unknown_code",
                f"{path}.code",
                f"code {_describe(shown)} is not one KetaCare reads; kept as received.",
                **keep,
            )
        if res.status in ("entered-in-error", "cancelled"):
            return self.kept(
                base,
                who,
                "warning",
                "not_final",
                f"{path}.status",
                f"status {res.status!r}: not used; kept as received.",
                **keep,
            )
        if effective is None:
            return self.kept(
                base,
                who,
                "error",
                "no_time",
                f"{path}.effectiveDateTime",
                "no effective date and time (a full date at least); not used.",
                **keep,
            )
        if effective > self.now:
            return self.kept(
                base,
                who,
                "error",
                "future_time",
                f"{path}.effectiveDateTime",
                f"measured at {effective.isoformat()}, in the future; not used.",
                **keep,
            )
        kind = OBSERVATION_CODES[known.code or ""]
        if kind == "blood_pressure":
            return self.blood_pressure(base, res, who, known, effective)
        quantity = res.valueQuantity
        if quantity is None or _number(quantity.value) is None:
            return self.kept(
                base,
                who,
                "warning",
                "no_value",
                f"{path}.valueQuantity",
                "no numeric valueQuantity; kept as received.",
                **keep,
            )
        value, unit = _number(quantity.value), _unit(quantity)
        assert value is not None
        family = "blood_pressure" if kind in ("systolic", "diastolic") else kind
        factor = UNIT_FACTORS[family].get(unit or "")
        if factor is None:
            return self.kept(
                base,
                who,
                "warning",
                "unknown_unit",
                f"{path}.valueQuantity.unit",
                f"unit {unit!r} is not a unit of {kind.replace('_', ' ')} "
                f"({', '.join(UNIT_FACTORS[family])}); kept as received, not used.",
                readings={"value": value},
                unit=unit,
                **keep,
            )
        name = {"weight": "weight_kg", "height": "height_cm"}.get(kind, kind)
        converted = round(value * factor, 2 if kind == "weight" else 1)
        problems = validate_vitals({name: converted})
        if problems:
            return self.kept(
                base,
                who,
                "error",
                "implausible_value",
                f"{path}.valueQuantity.value",
                problems[0].text,
                readings={"value": value},
                unit=unit,
                **keep,
            )
        return ObservationItem(
            *base,
            patient=who,
            kind=kind,
            effective_at=effective,
            coding=known,  # type: ignore[arg-type]
            **{name: converted},
        )

    def blood_pressure(
        self,
        base: _Base,
        res: Any,
        who: PatientRef,
        known: Coding,
        effective: datetime,
    ) -> ObservationItem | KeptItem:
        index = base[0]
        path = f"entry[{index}].resource"
        values: dict[str, float] = {}
        units: set[str] = set()
        for i, comp in enumerate(res.component or ()):
            where = f"{path}.component[{i}]"
            code = next((c.code for c in _codings(comp.code) if c.system == LOINC and c.code), None)
            kind = OBSERVATION_CODES.get(code or "")
            if kind not in ("systolic", "diastolic"):
                self.finding(
                    index,
                    "Observation",
                    "warning",
                    "unknown_code",
                    f"{where}.code",
                    f"component {_describe(next(iter(_codings(comp.code)), None))} is not read; "
                    "kept in the stored resource.",
                )
                continue
            quantity = comp.valueQuantity
            value = _number(quantity.value) if quantity is not None else None
            if value is None:
                continue
            unit = _unit(quantity)
            units.add(unit or "")
            if unit not in UNIT_FACTORS["blood_pressure"]:
                return self.kept(
                    base,
                    who,
                    "warning",
                    "unknown_unit",
                    f"{where}.valueQuantity.unit",
                    f"unit {unit!r} is not mm[Hg]; kept as received, not used.",
                    coding=known,
                    effective_at=effective,
                    unit=unit,
                )
            values[kind] = value
        keep = {"coding": known, "effective_at": effective, "readings": values or None}
        if not values:
            return self.kept(
                base,
                who,
                "warning",
                "no_value",
                f"{path}.component",
                "no systolic or diastolic value in the panel; kept as received.",
                **keep,
            )
        problems = validate_vitals(values)
        if problems:
            return self.kept(
                base,
                who,
                "error",
                "implausible_value",
                f"{path}.component",
                problems[0].text,
                unit="mm[Hg]",
                **keep,
            )
        return ObservationItem(
            *base,
            patient=who,
            kind="blood_pressure",
            effective_at=effective,
            coding=known,
            systolic=values.get("systolic"),
            diastolic=values.get("diastolic"),
        )

    # -- conditions

    def condition(self, base: _Base, res: Any) -> Any:
        index = base[0]
        path = f"entry[{index}].resource"
        who = self.subject(base, res.subject, "subject")
        if isinstance(who, KeptItem):
            return who
        codings = _codings(res.code)
        text = _concept_text(res.code)
        if not codings and not text:
            return self.kept(
                base,
                who,
                "warning",
                "no_code",
                f"{path}.code",
                "no code or text: nothing to put on the problem list; kept as received.",
            )
        verification = _first_code(res.verificationStatus)
        if verification in ("entered-in-error", "refuted"):
            return self.kept(
                base,
                who,
                "warning",
                "not_confirmed",
                f"{path}.verificationStatus",
                f"verification status {verification!r}: not put on the problem list.",
                coding=codings[0] if codings else None,
            )
        adhd = next((c for c in codings if _is_adhd(c)), None)
        coding = adhd or (codings[0] if codings else Coding(None, None, text))
        if coding.display is None and text:
            coding = Coding(coding.system, coding.code, text)
        if adhd is None:
            self.finding(
                index,
                "Condition",
                "warning",
                "unknown_code",
                f"{path}.code",
                f"code {_describe(coding)} is not one KetaCare acts on; kept on the problem "
                "list (eligibility reads the intake, not this list).",
            )
        onset = (
            res.onsetDateTime
            or res.onsetString
            or (res.onsetPeriod.start if res.onsetPeriod else None)
        )
        return ConditionItem(
            *base,
            patient=who,
            codings=codings,
            coding=coding,
            known="adhd" if adhd else None,
            clinical_status=_first_code(res.clinicalStatus),
            onset=(_text_of(onset) or "")[:40] or None,
        )

    # -- the whole bundle

    def run(self) -> ParsedBundle:
        bundle = self.bundle
        if not isinstance(bundle, Mapping):
            raise BundleError([BundleIssue("$", "the file must hold one JSON object, a Bundle.")])
        if bundle.get("resourceType") != "Bundle":
            got = bundle.get("resourceType")
            raise BundleError([BundleIssue("resourceType", f"must be 'Bundle', not {got!r}.")])
        btype = bundle.get("type")
        if btype not in BUNDLE_TYPES:
            raise BundleError(
                [BundleIssue("type", f"must be one of {', '.join(BUNDLE_TYPES)}, not {btype!r}.")]
            )
        entries = bundle.get("entry")
        entries = [] if entries is None else entries
        if not isinstance(entries, list):
            raise BundleError([BundleIssue("entry", "must be a list of entries.")])
        # The bundle without its resources first (entry fields, type, meta), then each resource.
        shell = {
            **bundle,
            "entry": [_without_resource(e) if isinstance(e, Mapping) else e for e in entries],
        }
        meta, issues = _validate("Bundle", shell, "")
        issues = [BundleIssue(i.path.lstrip(".") or "$", i.message) for i in issues]
        resources: list[tuple[int, str | None, Mapping[str, Any], Any]] = []
        for index, entry in enumerate(entries):
            path = f"entry[{index}]"
            if not isinstance(entry, Mapping):
                continue
            raw = entry.get("resource")
            full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            method = (
                (entry.get("request") or {}).get("method")
                if isinstance(entry.get("request"), Mapping)
                else None
            )
            if raw is None:
                issues.append(BundleIssue(f"{path}.resource", "is missing."))
                continue
            if not isinstance(raw, Mapping) or not isinstance(raw.get("resourceType"), str):
                issues.append(
                    BundleIssue(f"{path}.resource", "must be an object with a resourceType.")
                )
                continue
            if not RESOURCE_TYPE.match(raw["resourceType"]):
                issues.append(
                    BundleIssue(
                        f"{path}.resource.resourceType",
                        f"{_clean(repr(raw['resourceType']), 60)} is not a FHIR resource type.",
                    )
                )
                continue
            if method == "DELETE":
                issues.append(
                    BundleIssue(f"{path}.request.method", "DELETE is not accepted by an import.")
                )
                continue
            kind = raw["resourceType"]
            model = None
            if kind in _READ:
                model, problems = _validate(kind, raw, f"{path}.resource")
                issues += problems
            resources.append((index, full_url, raw, model))
        if issues:
            raise BundleError(issues)
        return self.translate(str(btype), meta, resources)

    def translate(
        self,
        btype: str,
        meta: Any,
        resources: list[tuple[int, str | None, Mapping[str, Any], Any]],
    ) -> ParsedBundle:
        for index, full_url, _raw, model in resources:
            if model is None:
                continue
            kind = model.get_resource_type()
            if kind == "Patient":
                self.register_patient(index, full_url, model)
            elif kind == "Medication":
                for key in filter(None, (full_url, model.id and f"Medication/{model.id}")):
                    self.medications[key] = (index, model)
        source = _source(meta, [m for *_, m in resources if m is not None])
        seen: set[tuple[str, str]] = set()
        bases: dict[int, _Base] = {}
        for index, full_url, raw, model in resources:
            digest = content_hash(raw)
            kind = raw["resourceType"]
            ext = (
                _external_id(model, full_url, digest)
                if model is not None
                else (
                    str(raw["id"])
                    if isinstance(raw.get("id"), str) and raw["id"]
                    else full_url or f"sha256:{digest}"
                )[:255]
            )
            if (kind, ext) in seen:
                ext = f"{ext}@entry[{index}]"[-255:]
            seen.add((kind, ext))
            bases[index] = (index, kind, ext, digest, dict(raw))
        items: dict[int, ImportItem] = {}
        # Patients first, so that references know which were refused.
        for index, _url, raw, model in resources:
            if raw["resourceType"] == "Patient":
                self.patients[index] = items[index] = self.patient(bases[index], model)
        handlers = {
            "MedicationStatement": self.medication,
            "Observation": self.observation,
            "Condition": self.condition,
        }
        for index, _url, raw, model in resources:
            kind = raw["resourceType"]
            if kind in handlers:
                items[index] = handlers[kind](bases[index], model)
        for index, _url, raw, _model in resources:
            kind = raw["resourceType"]
            if index in items or (kind == "Medication" and index in self.used_medications):
                continue
            if kind == "Medication":
                reason = "a Medication no MedicationStatement refers to; kept as received."
            else:
                reason = f"resource type {kind} is not imported by KetaCare; kept as received."
            items[index] = self.kept(
                bases[index],
                _subject_of(raw, self),
                severity="warning",
                code="unsupported_resource",
                path=f"entry[{index}].resource.resourceType",
                reason=reason,
            )
        ordered = tuple(items[i] for i in sorted(items))
        return ParsedBundle(
            btype, source, ordered, tuple(self.findings), dict(self.used_medications)
        )


_READ = ("Patient", "MedicationStatement", "Observation", "Condition", "Medication")


def _without_resource(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "resource"}


def _subject_of(raw: Mapping[str, Any], parser: _Parser) -> PatientRef | None:
    """Best effort for a resource type not read: its subject or patient, if it names one."""
    for key in ("subject", "patient"):
        ref = raw.get(key)
        if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
            text = ref["reference"].strip()
            if text in parser.patient_keys:
                index = parser.patient_keys[text]
                if isinstance(parser.patients.get(index), PatientItem):
                    return PatientRef(index=index)
    return None


def _mrn(res: Any) -> tuple[str | None, str | None]:
    idents = [i for i in (res.identifier or ()) if i.value and i.value.strip()]
    for ident in idents:
        codes = _codings(ident.type)
        if any(c.code == "MR" and c.system in (None, MR_TYPE) for c in codes):
            return ident.value.strip(), ident.system
    if idents:
        return idents[0].value.strip(), idents[0].system
    return None, None


def _official_name(res: Any) -> Any:
    names = list(res.name or ())
    for name in names:
        if name.use == "official":
            return name
    usable = [n for n in names if n.use not in ("old", "anonymous")]
    return (usable or names or [None])[0]


def _address(res: Any) -> str | None:
    for addr in res.address or ():
        if addr.text and addr.text.strip():
            return " ".join(addr.text.split())
        parts = [*(addr.line or ()), addr.city, addr.state, addr.postalCode, addr.country]
        text = ", ".join(" ".join(p.split()) for p in parts if p and p.strip())
        if text:
            return text
    return None


def _dose_text(res: Any) -> str | None:
    texts: list[str] = []
    for dosage in res.dosage or ():
        if dosage.text and dosage.text.strip():
            texts.append(" ".join(dosage.text.split()))
            continue
        for rate in dosage.doseAndRate or ():
            q = rate.doseQuantity
            if q is not None and _number(q.value) is not None:
                texts.append(f"{_number(q.value):g} {q.unit or q.code or ''}".strip())
    text = "; ".join(texts)
    return text[:DOSE_MAX] or None


def _first_code(concept: Any) -> str | None:
    for c in _codings(concept):
        if c.code:
            return c.code[:20]
    return None


def _is_adhd(coding: Coding) -> bool:
    code = (coding.code or "").strip().upper()
    if coding.system in ICD10:
        return bool(ADHD_ICD10.match(code))
    return coding.system == SNOMED and code in ADHD_SNOMED


def _source(meta: Any, models: list[Any]) -> str:
    """The sending system: Bundle.meta.source, else the system of a patient's MRN."""
    if meta is not None and meta.meta is not None and meta.meta.source:
        return str(meta.meta.source)[:255]
    for model in models:
        if model.get_resource_type() == "Patient":
            _mrn_value, system = _mrn(model)
            if system:
                return str(system)[:255]
    return UNKNOWN_SOURCE


def _storable(bundle: Any) -> None:
    """Refuse what no database column can hold: NaN or infinite numbers, NUL characters."""
    try:
        json.dumps(bundle, allow_nan=False)
    except ValueError:
        issue = BundleIssue("$", "numbers must be finite (no NaN or Infinity).")
        raise BundleError([issue]) from None
    except TypeError:
        raise BundleError([BundleIssue("$", "holds values that are not JSON.")]) from None
    stack = [bundle]
    while stack:
        value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            issue = BundleIssue("$", "text must not contain NUL characters (\\u0000).")
            raise BundleError([issue])
        if isinstance(value, Mapping):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def parse_bundle(bundle: Any, *, now: datetime) -> ParsedBundle:
    """Translate a Bundle (as parsed from JSON) into import items and findings.

    Raises :class:`BundleError` (and nothing else) when the input is not a transaction, batch
    or collection Bundle of valid resources; ``now`` is the time after which a measurement is
    in the future.
    """
    try:
        _storable(bundle)
        return _Parser(bundle, now).run()
    except BundleError:
        raise
    except RecursionError:
        raise BundleError([BundleIssue("$", "the JSON is nested too deeply.")]) from None
