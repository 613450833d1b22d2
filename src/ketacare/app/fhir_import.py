"""Import a FHIR Bundle from another system: patients, medication lists, weights and heights,
blood pressures and diagnoses, in one transaction.

Every entry ends as exactly one outcome: created, updated or unchanged (a row KetaCare uses),
kept (stored as received in ``imported_resources`` because KetaCare does not understand its
code, unit or type) or refused (impossible, or nothing to attach it to; also kept, with the
reason). ``external_records`` remembers which row each received resource became and a hash of
its content, so importing the same bundle again changes nothing.

Rows are built as the chart's own use-cases build them (the same validation models and
tables), so the chart, dosing and interaction screening see imported medicines and weights.
A blood pressure has no home outside a dosing session: it is kept in ``imported_resources``
(disposition ``stored``) and listed by :func:`list_imported`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.audit import AuditNote, audited, event
from ketacare.app.errors import InvalidInput
from ketacare.app.patients import (
    MedicationCreate,
    MedicationStatus,
    PatientCreate,
    _scoped_patient,
    _set_names,
)
from ketacare.app.permissions import Actor, Permission, require
from ketacare.clinical.drugs import resolve
from ketacare.interop.fhir_import import (
    BundleError,
    BundleIssue,
    ConditionItem,
    Finding,
    ImportItem,
    KeptItem,
    MedicationItem,
    ObservationItem,
    ParsedBundle,
    PatientItem,
    PatientRef,
    parse_bundle,
)
from ketacare.store.models import (
    Base,
    BodyMeasurement,
    ExternalRecord,
    ImportedResource,
    MedicationEntry,
    Patient,
    PatientCondition,
)
from ketacare.store.types import utcnow

Outcome = Literal["created", "updated", "unchanged", "kept", "refused", "merged"]
TABLES: dict[str, type[Base]] = {
    "patients": Patient,
    "medication_entries": MedicationEntry,
    "body_measurements": BodyMeasurement,
    "patient_conditions": PatientCondition,
    "imported_resources": ImportedResource,
}


class InvalidBundle(InvalidInput):
    """The bundle is not one KetaCare can read; ``issues`` name each entry and field."""

    def __init__(self, issues: tuple[BundleIssue, ...]) -> None:
        self.issues = issues
        text = "; ".join(f"{i.path}: {i.message}" for i in issues[:20])
        more = f" (and {len(issues) - 20} more)" if len(issues) > 20 else ""
        super().__init__(issues[0].path if issues else "bundle", text + more)


class FindingOut(BaseModel):
    index: int | None = Field(description="The entry's position in the bundle")
    resource_type: str
    severity: Literal["warning", "error"] = Field(
        description="warning: kept as received, not understood; error: refused"
    )
    code: str
    path: str
    message: str


class EntryResult(BaseModel):
    index: int
    resource_type: str
    external_id: str | None
    outcome: Outcome
    local_table: str | None = None
    local_id: int | None = None
    patient_id: int | None = None


class TypeCounts(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0
    refused: int = 0
    merged: int = 0


class ImportReport(BaseModel):
    bundle_type: str
    source: str
    counts: dict[str, TypeCounts]
    entries: list[EntryResult]
    findings: list[FindingOut]
    patient_ids: list[int]

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated for c in self.counts.values())


class ConditionOut(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    code_system: str | None
    code: str | None
    display: str | None
    clinical_status: str | None
    onset: str | None
    source: str
    recorded_at: datetime


class ImportedOut(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    resource_type: str
    disposition: str
    kind: str | None
    code_system: str | None
    code: str | None
    display: str | None
    effective_at: datetime | None
    readings: dict[str, Any] | None
    unit: str | None
    reason: str | None
    imported_at: datetime


class ImportedRecords(BaseModel):
    """What imports brought that has no other place on the chart."""

    conditions: list[ConditionOut]
    resources: list[ImportedOut]


@dataclass
class _Placed:
    outcome: Outcome
    table: str | None = None
    row_id: int | None = None
    patient_id: int | None = None


class _Importer:
    def __init__(self, db: Session, actor: Actor, parsed: ParsedBundle) -> None:
        self.db, self.actor, self.parsed = db, actor, parsed
        self.findings: list[Finding] = list(parsed.findings)
        self.patients: dict[int, int | None] = {}  # Patient entry index -> local id
        self.now = utcnow()

    def finding(self, item: ImportItem, severity: str, code: str, path: str, text: str) -> None:
        self.findings.append(
            Finding(item.index, item.resource_type, severity, code, path, text)  # type: ignore[arg-type]
        )

    # -- external records

    def record(self, item: ImportItem) -> ExternalRecord | None:
        return self.db.scalar(
            select(ExternalRecord).where(
                ExternalRecord.clinic_id == self.actor.clinic_id,
                ExternalRecord.system == self.parsed.source,
                ExternalRecord.resource_type == item.resource_type,
                ExternalRecord.external_id == item.external_id,
            )
        )

    def local(self, rec: ExternalRecord | None, table: str) -> Any:
        if rec is None or rec.local_table != table:
            return None
        row = self.db.get(TABLES[table], rec.local_id)
        return row if row is not None and row.clinic_id == self.actor.clinic_id else None

    def remember(self, item: ImportItem, rec: ExternalRecord | None, table: str, row: Any) -> None:
        if rec is None:
            self.db.add(
                ExternalRecord(
                    clinic_id=self.actor.clinic_id,
                    system=self.parsed.source,
                    resource_type=item.resource_type,
                    external_id=item.external_id,
                    local_table=table,
                    local_id=row.id,
                    content_hash=item.content_hash,
                )
            )
            return
        if rec.local_table == "imported_resources" and table != rec.local_table:
            # A resource that was kept is now understood: the kept copy is superseded.
            old = self.db.get(ImportedResource, rec.local_id)
            if old is not None:
                old.disposition = "superseded"
        rec.local_table, rec.local_id = table, row.id
        rec.content_hash, rec.updated_at = item.content_hash, self.now

    # -- patients

    def patient(self, item: PatientItem) -> _Placed:
        rec = self.record(item)
        row: Patient | None = self.local(rec, "patients")
        if row is not None and rec is not None and rec.content_hash == item.content_hash:
            return _Placed("unchanged", "patients", row.id, row.id)
        path = f"entry[{item.index}].resource"
        fields: dict[str, Any] = {
            "mrn": item.mrn,
            "family_name": item.family_name,
            "given_name": item.given_name,
            "date_of_birth": item.birth_date,
            "sex": item.sex,
            "phone": item.phone,
            "email": item.email,
            "address": item.address,
        }
        try:
            data = PatientCreate(**fields)
        except ValidationError as exc:
            contact = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if not contact or not contact <= {"phone", "email", "address"}:
                return self.refuse_patient(item, path, _pydantic_text(exc))
            # A contact detail KetaCare cannot accept does not stop the registration.
            for name in sorted(contact):
                self.finding(
                    item,
                    "warning",
                    f"invalid_{name}",
                    f"{path}.{'telecom' if name != 'address' else 'address'}",
                    f"{name} {fields[name]!r} is not one KetaCare accepts; not recorded.",
                )
                fields[name] = None
            data = PatientCreate(**fields)
        if row is None:
            row = self.db.scalar(
                select(Patient).where(
                    Patient.clinic_id == self.actor.clinic_id, Patient.mrn == data.mrn
                )
            )
            if row is not None and row.date_of_birth != data.date_of_birth:
                # Another system's MRN can collide with a local one: never merge two people.
                return self.refuse_patient(
                    item,
                    f"{path}.birthDate",
                    f"MRN {data.mrn} belongs to a patient born {row.date_of_birth.isoformat()} "
                    f"in KetaCare, not {data.date_of_birth.isoformat()}; not merged. Correct "
                    "the MRN or the birth date and import again.",
                )
        if row is None:
            row = Patient(
                clinic_id=self.actor.clinic_id,
                mrn=data.mrn,
                date_of_birth=data.date_of_birth,
                sex=data.sex.value,
                phone=data.phone,
                email=data.email,
                address=data.address,
                stage="intake",
            )
            _set_names(row, data.family_name, data.given_name)
            self.db.add(row)
            self.db.flush()
            self.remember(item, rec, "patients", row)
            return _Placed("created", "patients", row.id, row.id)
        if row.mrn != data.mrn:
            self.finding(
                item,
                "warning",
                "mrn_differs",
                f"{path}.identifier",
                f"the sender's MRN {data.mrn} differs from KetaCare's {row.mrn}; KetaCare's kept.",
            )
        wanted: dict[str, Any] = {
            "family_name": data.family_name,
            "given_name": data.given_name,
            "date_of_birth": data.date_of_birth,
            "sex": data.sex.value,
        }
        # Contact details the sender left out are kept as KetaCare has them.
        for name in ("phone", "email", "address"):
            if getattr(data, name) is not None:
                wanted[name] = getattr(data, name)
        changed = sorted(k for k, v in wanted.items() if getattr(row, k) != v)
        if changed:
            _set_names(row, data.family_name, data.given_name)
            for name in changed:
                if name not in ("family_name", "given_name"):
                    setattr(row, name, wanted[name])
            row.updated_at = self.now
            self.db.flush()
        self.remember(item, rec, "patients", row)
        return _Placed("updated" if changed else "unchanged", "patients", row.id, row.id)

    def refuse_patient(self, item: PatientItem, path: str, text: str) -> _Placed:
        kept = _refused(item, text)
        self.finding(item, "error", "invalid_patient", path, text)
        return self.kept(kept)

    def patient_id(self, ref: PatientRef | None) -> int | str | None:
        """The local patient a reference means, or why there is none."""
        if ref is None:
            return None
        if ref.index is not None:
            local = self.patients.get(ref.index)
            return local if local is not None else f"its patient (entry[{ref.index}]) was refused."
        if ref.external_id is not None:
            rec = self.db.scalar(
                select(ExternalRecord).where(
                    ExternalRecord.clinic_id == self.actor.clinic_id,
                    ExternalRecord.system == self.parsed.source,
                    ExternalRecord.resource_type == "Patient",
                    ExternalRecord.external_id == ref.external_id,
                    ExternalRecord.local_table == "patients",
                )
            )
            if rec is not None:
                return rec.local_id
            return f"Patient/{ref.external_id} is not in this bundle and was never imported."
        found = self.db.scalar(
            select(Patient.id).where(
                Patient.clinic_id == self.actor.clinic_id, Patient.mrn == ref.mrn
            )
        )
        return found if found is not None else f"no patient with MRN {ref.mrn} in your clinic."

    def attach(self, item: MedicationItem | ObservationItem | ConditionItem) -> int | _Placed:
        who = self.patient_id(item.patient)
        if isinstance(who, int):
            return who
        text = who or "no patient."
        self.finding(
            item, "error", "unresolved_reference", f"entry[{item.index}].resource.subject", text
        )
        kept = _refused(item, text)
        return self.kept(kept)

    # -- clinical rows

    def medication(self, item: MedicationItem) -> _Placed:
        who = self.attach(item)
        if isinstance(who, _Placed):
            return who
        rec = self.record(item)
        row: MedicationEntry | None = self.local(rec, "medication_entries")
        if row is not None and rec is not None and rec.content_hash == item.content_hash:
            return _Placed("unchanged", "medication_entries", row.id, who)
        try:
            data = MedicationCreate(
                name=item.name,
                dose_text=item.dose_text,
                start_date=item.start_date,
                stop_date=item.stop_date,
                status=MedicationStatus(item.status),
            )
        except ValidationError as exc:
            text = _pydantic_text(exc)
            self.finding(item, "error", "invalid_medication", f"entry[{item.index}].resource", text)
            return self.kept(_refused(item, text), patient_id=who)
        if resolve(data.name).status == "unrecognized":
            self.finding(
                item,
                "warning",
                "medicine_not_recognised",
                f"entry[{item.index}].resource.medicationCodeableConcept",
                f"{data.name!r} is not recognised by interaction screening; it is on the list "
                "and screened as unknown. Check the name.",
            )
        values = {
            "name_entered": data.name,
            "dose_text": data.dose_text,
            "start_date": data.start_date,
            "stop_date": data.stop_date,
            "status": data.status.value,
        }
        outcome: Outcome = "created"
        if row is None:
            row = MedicationEntry(
                clinic_id=self.actor.clinic_id,
                patient_id=who,
                created_by=self.actor.user_id,
                **values,
            )
            self.db.add(row)
        else:
            outcome = _apply(row, values, self.now)
        self.db.flush()
        self.remember(item, rec, "medication_entries", row)
        return _Placed(outcome, "medication_entries", row.id, who)

    def observation(self, item: ObservationItem) -> _Placed:
        who = self.attach(item)
        if isinstance(who, _Placed):
            return who
        if item.kind not in ("weight", "height"):
            return self.kept(
                KeptItem(
                    item.index,
                    item.resource_type,
                    item.external_id,
                    item.content_hash,
                    item.resource,
                    patient=None,
                    disposition="kept",
                    reason="",
                    coding=item.coding,
                    effective_at=item.effective_at,
                    readings=item.readings,
                    unit="mm[Hg]",
                ),
                patient_id=who,
                disposition="stored",
                kind=item.kind,
            )
        rec = self.record(item)
        row: BodyMeasurement | None = self.local(rec, "body_measurements")
        if row is not None and rec is not None and rec.content_hash == item.content_hash:
            return _Placed("unchanged", "body_measurements", row.id, who)
        values = {
            "measured_at": item.effective_at,
            "weight_kg": item.weight_kg,
            "height_cm": item.height_cm,
        }
        outcome: Outcome = "created"
        if row is None:
            row = BodyMeasurement(
                clinic_id=self.actor.clinic_id,
                patient_id=who,
                recorded_by=self.actor.user_id,
                recorded_at=self.now,
                **values,
            )
            self.db.add(row)
        else:
            outcome = _apply(row, values, None)
        self.db.flush()
        self.remember(item, rec, "body_measurements", row)
        return _Placed(outcome, "body_measurements", row.id, who)

    def condition(self, item: ConditionItem) -> _Placed:
        who = self.attach(item)
        if isinstance(who, _Placed):
            return who
        rec = self.record(item)
        row: PatientCondition | None = self.local(rec, "patient_conditions")
        if row is not None and rec is not None and rec.content_hash == item.content_hash:
            return _Placed("unchanged", "patient_conditions", row.id, who)
        values = {
            "code_system": (item.coding.system or "")[:255] or None,
            "code": (item.coding.code or "")[:64] or None,
            "display": (item.coding.display or "")[:500] or None,
            "codings": [c.to_json_dict() for c in item.codings],
            "clinical_status": item.clinical_status,
            "onset": item.onset,
        }
        outcome: Outcome = "created"
        if row is None:
            row = PatientCondition(
                clinic_id=self.actor.clinic_id,
                patient_id=who,
                source="import",
                recorded_by=self.actor.user_id,
                recorded_at=self.now,
                **values,
            )
            self.db.add(row)
        else:
            outcome = _apply(row, values, None)
        self.db.flush()
        self.remember(item, rec, "patient_conditions", row)
        return _Placed(outcome, "patient_conditions", row.id, who)

    def kept(
        self,
        item: KeptItem,
        *,
        patient_id: int | None = None,
        disposition: str | None = None,
        kind: str | None = None,
    ) -> _Placed:
        disposition = disposition or item.disposition
        reason = item.reason
        if patient_id is None:
            found = self.patient_id(item.patient)
            patient_id = found if isinstance(found, int) else None
            if isinstance(found, str):
                # Kept resources of a patient who could not be placed are refused with them.
                disposition, reason = "refused", f"{reason} Not attached: {found}"
                self.finding(
                    item, "error", "unresolved_reference", f"entry[{item.index}].resource", found
                )
        outcome: Outcome = "refused" if disposition == "refused" else "kept"
        rec = self.record(item)
        row: ImportedResource | None = self.local(rec, "imported_resources")
        if row is not None and rec is not None and rec.content_hash == item.content_hash:
            return _Placed("unchanged", "imported_resources", row.id, row.patient_id)
        coding = item.coding
        values = {
            "patient_id": patient_id,
            "resource_type": item.resource_type[:40],
            "disposition": disposition,
            "kind": kind,
            "code_system": ((coding.system if coding else None) or "")[:255] or None,
            "code": ((coding.code if coding else None) or "")[:64] or None,
            "display": ((coding.display if coding else None) or "")[:500] or None,
            "effective_at": item.effective_at,
            "readings": dict(item.readings) if item.readings else None,
            "unit": (item.unit or "")[:64] or None,
            "reason": reason or None,
            "resource": dict(item.resource),
        }
        if row is None:
            row = ImportedResource(
                clinic_id=self.actor.clinic_id, imported_by=self.actor.user_id, **values
            )
            self.db.add(row)
            if disposition == "stored":
                outcome = "created"
        else:
            changed = _apply(row, values, None)
            if disposition == "stored":
                outcome = changed
        self.db.flush()
        self.remember(item, rec, "imported_resources", row)
        return _Placed(outcome, "imported_resources", row.id, patient_id)

    # -- the bundle

    def run(self) -> ImportReport:
        placed: dict[int, _Placed] = {}
        items = self.parsed.items
        for item in items:
            if isinstance(item, PatientItem):
                placed[item.index] = self.patient(item)
                self.patients[item.index] = (
                    placed[item.index].patient_id
                    if placed[item.index].table == "patients"
                    else None
                )
            elif isinstance(item, KeptItem) and item.resource_type == "Patient":
                placed[item.index] = self.kept(item)
                self.patients[item.index] = None
        for item in items:
            if item.index in placed:
                continue
            if isinstance(item, MedicationItem):
                placed[item.index] = self.medication(item)
            elif isinstance(item, ObservationItem):
                placed[item.index] = self.observation(item)
            elif isinstance(item, ConditionItem):
                placed[item.index] = self.condition(item)
            elif isinstance(item, KeptItem):
                placed[item.index] = self.kept(item)
        entries = [
            EntryResult(
                index=item.index,
                resource_type=item.resource_type,
                external_id=item.external_id,
                outcome=placed[item.index].outcome,
                local_table=placed[item.index].table,
                local_id=placed[item.index].row_id,
                patient_id=placed[item.index].patient_id,
            )
            for item in items
        ]
        for med_index, statement_index in self.parsed.merged.items():
            entries.append(
                EntryResult(
                    index=med_index,
                    resource_type="Medication",
                    external_id=None,
                    outcome="merged",
                    local_table=placed[statement_index].table,
                    local_id=placed[statement_index].row_id,
                    patient_id=placed[statement_index].patient_id,
                )
            )
        entries.sort(key=lambda e: e.index)
        counts: dict[str, TypeCounts] = {}
        for entry in entries:
            tally = counts.setdefault(entry.resource_type, TypeCounts())
            setattr(tally, entry.outcome, getattr(tally, entry.outcome) + 1)
        patient_ids = sorted({e.patient_id for e in entries if e.patient_id is not None})
        findings = sorted(self.findings, key=lambda f: f.index if f.index is not None else -1)
        return ImportReport(
            bundle_type=self.parsed.bundle_type,
            source=self.parsed.source,
            counts=dict(sorted(counts.items())),
            entries=entries,
            findings=[FindingOut(**f.to_json_dict()) for f in findings],
            patient_ids=patient_ids,
        )


def _refused(item: ImportItem, reason: str) -> KeptItem:
    return KeptItem(
        item.index,
        item.resource_type,
        item.external_id,
        item.content_hash,
        item.resource,
        patient=None,
        disposition="refused",
        reason=reason,
    )


def _apply(row: Any, values: dict[str, Any], now: datetime | None) -> Outcome:
    changed = [k for k, v in values.items() if getattr(row, k) != v]
    for key in changed:
        setattr(row, key, values[key])
    if changed and now is not None and hasattr(row, "updated_at"):
        row.updated_at = now
    return "updated" if changed else "unchanged"


def _pydantic_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])


def import_bundle(db: Session, actor: Actor, bundle: Any) -> ImportReport:
    """Import one Bundle (as parsed from JSON) into the actor's clinic, in one transaction.

    Needs the permissions to register patients and to record medicines and measurements.
    Raises :class:`InvalidBundle` (422) when the bundle is not valid FHIR; every entry of a
    valid bundle is reported, none is dropped.
    """
    return _import(db, actor, lambda: bundle)


def import_json(db: Session, actor: Actor, text: bytes | str) -> ImportReport:
    """:func:`import_bundle` for JSON text as received (a file, a request body)."""

    def load() -> Any:
        try:
            return json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            where = f"line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else "$"
            raise BundleError([BundleIssue(where, f"not valid JSON ({_reason(exc)}).")]) from None
        except RecursionError:
            raise BundleError([BundleIssue("$", "the JSON is nested too deeply.")]) from None

    return _import(db, actor, load)


def _reason(exc: Exception) -> str:
    return getattr(exc, "msg", None) or str(exc).split(":")[0]


def _import(db: Session, actor: Actor, load: Callable[[], Any]) -> ImportReport:
    with audited(db, actor, "fhir.import") as note:
        for permission in (
            Permission.PATIENT_WRITE,
            Permission.MEDICATION_WRITE,
            Permission.MEASUREMENT_WRITE,
        ):
            require(actor, permission)
        try:
            parsed = parse_bundle(load(), now=utcnow())
        except BundleError as exc:
            note.detail = {"issues": len(exc.issues)}
            raise InvalidBundle(exc.issues) from None
        report = _Importer(db, actor, parsed).run()
        outcomes = Counter(e.outcome for e in report.entries)
        note.detail = {
            "source": report.source,
            "bundle_type": report.bundle_type,
            "entries": len(report.entries),
            **{k: outcomes[k] for k in sorted(outcomes)},
            "findings": len(report.findings),
        }
        if len(report.patient_ids) == 1:
            note.patient_id = report.patient_ids[0]
        else:
            # One event per patient as well, so each patient's trail shows the import.
            for pid in report.patient_ids:
                mine = Counter(e.outcome for e in report.entries if e.patient_id == pid)
                db.add(
                    event(
                        actor,
                        "fhir.import",
                        "success",
                        AuditNote(patient_id=pid, detail={"source": report.source, **mine}),
                    )
                )
        return report


def list_imported(db: Session, actor: Actor, patient_id: int) -> ImportedRecords:
    """The patient's imported conditions and kept resources (blood pressures, unknown codes),
    newest first."""
    with audited(db, actor, "fhir.imported_list", patient_id=patient_id):
        require(actor, Permission.PATIENT_READ)
        patient = _scoped_patient(db, actor, patient_id)
        conditions = db.scalars(
            select(PatientCondition)
            .where(PatientCondition.patient_id == patient.id)
            .order_by(PatientCondition.recorded_at.desc(), PatientCondition.id.desc())
        ).all()
        resources = db.scalars(
            select(ImportedResource)
            .where(
                ImportedResource.patient_id == patient.id,
                ImportedResource.disposition != "superseded",
            )
            .order_by(ImportedResource.effective_at.desc(), ImportedResource.id.desc())
        ).all()
        return ImportedRecords(
            conditions=[ConditionOut.model_validate(c) for c in conditions],
            resources=[ImportedOut.model_validate(r) for r in resources],
        )


__all__ = [
    "EntryResult",
    "FindingOut",
    "ImportReport",
    "ImportedRecords",
    "InvalidBundle",
    "TypeCounts",
    "import_bundle",
    "import_json",
    "list_imported",
]
