"""The resources of one patient's record (FHIR R4B), built from rows already loaded.

Pure: reads only the rows' attributes and the knowledge files. Ids are derived from row ids,
references are relative (``Type/id``); ``interop.fhir`` assembles them into Bundles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ketacare.clinical.drugs import resolve
from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.fhir_code_defs import Coding, FhirCodes
from ketacare.knowledge.instrument_defs import InstrumentDef, get_instrument
from ketacare.knowledge.protocol_defs import load_protocols

if TYPE_CHECKING:
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

__all__ = ["JSON", "PatientRecord", "RecordBuilder", "instant", "mrn_system", "questionnaire_url"]

JSON = dict[str, Any]
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def mrn_system(clinic_slug: str) -> str:
    """The identifier system of a clinic's medical record numbers."""
    return f"urn:ketacare:clinic:{clinic_slug}:mrn"


def questionnaire_url(instrument_id: str) -> str:
    return f"urn:ketacare:questionnaire:{instrument_id}"


@dataclass
class PatientRecord:
    """Everything exported for one patient, as loaded by the use-case (rows of this patient
    only). ``users`` holds the staff named anywhere in the record."""

    clinic: Clinic
    patient: Patient
    users: Mapping[int, User] = field(default_factory=dict)
    measurements: Sequence[BodyMeasurement] = ()
    medications: Sequence[MedicationEntry] = ()
    intakes: Sequence[IntakeRecord] = ()
    assessments: Sequence[Assessment] = ()
    reviews: Sequence[EligibilityReview] = ()
    consents: Sequence[ConsentRecord] = ()
    courses: Sequence[TreatmentCourse] = ()
    sessions: Sequence[TreatmentSession] = ()
    dose_orders: Sequence[DoseOrder] = ()
    vitals: Sequence[VitalSample] = ()
    therapy: Sequence[TherapySession] = ()
    latest_screen: InteractionScreen | None = None
    # Received from another system: coded diagnoses, and blood pressures taken outside a session.
    diagnoses: Sequence[PatientCondition] = ()
    imported_vitals: Sequence[ImportedResource] = ()


# --- small helpers -------------------------------------------------------------------------


def instant(value: datetime) -> str:
    """UTC with an explicit offset, as FHIR dateTime and instant require."""
    if value.tzinfo is None:  # stored times are UTC; SQLite may hand them back naive
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ref(resource_type: str, resource_id: str, display: str | None = None) -> JSON:
    ref: JSON = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        ref["display"] = display
    return ref


def _concept(codings: Iterable[Coding], text: str | None = None) -> JSON:
    out: JSON = {"coding": [c.as_fhir() for c in codings]}
    if text:
        out["text"] = text
    return out


def _quantity(codes: FhirCodes, value: float, unit: str) -> JSON:
    return {"value": value, "unit": unit, "system": codes.system("ucum"), "code": unit}


def _drop_empty(resource: JSON) -> JSON:
    return {k: v for k, v in resource.items() if v not in (None, [], {}, "")}


class RecordBuilder:
    """Collects a record's resources; ids are derived from row ids, so they are stable."""

    def __init__(self, record: PatientRecord, codes: FhirCodes) -> None:
        self.r = record
        self.codes = codes
        self.resources: list[JSON] = []
        self.pid = str(record.patient.id)
        self.practitioners: set[int] = set()
        self.session_ids: set[int] = set()  # sessions exported as a Procedure
        self.questionnaires: set[str] = set()
        self.careplans: dict[int, JSON] = {}  # course id -> its CarePlan

    # -- references ---------------------------------------------------------------------

    @property
    def subject(self) -> JSON:
        return _ref("Patient", self.pid)

    @property
    def organization(self) -> JSON:
        return _ref("Organization", f"org-{self.r.clinic.id}", self.r.clinic.name)

    def staff(self, user_id: int | None) -> JSON | None:
        """A reference to the member of staff, or ``None`` when unknown."""
        if user_id is None or user_id not in self.r.users:
            return None
        self.practitioners.add(user_id)
        return _ref("Practitioner", f"prac-{user_id}", self.r.users[user_id].display_name)

    def add(self, resource: JSON) -> JSON:
        stored = _drop_empty(resource)
        self.resources.append(stored)
        return stored

    # -- resources ----------------------------------------------------------------------

    def organization_resource(self) -> JSON:
        clinic = self.r.clinic
        return {
            "resourceType": "Organization",
            "id": f"org-{clinic.id}",
            "identifier": [{"system": "urn:ketacare:clinic", "value": clinic.slug}],
            "name": clinic.name,
        }

    def practitioner_resources(self) -> list[JSON]:
        out = []
        for user_id in sorted(self.practitioners):
            user = self.r.users[user_id]
            out.append(
                {
                    "resourceType": "Practitioner",
                    "id": f"prac-{user_id}",
                    "active": bool(user.active),
                    "name": [{"text": user.display_name}],
                }
            )
        return out

    def conditions(self) -> None:
        """The ADHD diagnosis from the latest intake that records one."""
        for intake in sorted(self.r.intakes, key=lambda i: (i.recorded_at, i.id), reverse=True):
            if not (intake.data or {}).get("adhd_diagnosis"):
                continue
            adhd = self.codes.adhd
            codings = [
                Coding(self.codes.system("snomed"), adhd.snomed.code, adhd.snomed.display),
                Coding(self.codes.system("icd10cm"), adhd.icd10cm.code, adhd.icd10cm.display),
            ]
            by = intake.diagnosis_by or (intake.data or {}).get("diagnosis_by")
            when = intake.diagnosis_when or (intake.data or {}).get("diagnosis_when")
            self.add(
                {
                    "resourceType": "Condition",
                    "id": f"cond-adhd-{intake.id}",
                    "clinicalStatus": _concept(
                        [Coding(self.codes.system("condition_clinical"), "active", "Active")]
                    ),
                    "verificationStatus": _concept(
                        [
                            Coding(
                                self.codes.system("condition_verification"),
                                "confirmed",
                                "Confirmed",
                            )
                        ]
                    ),
                    "category": [
                        _concept(
                            [
                                Coding(
                                    self.codes.system("condition_category"),
                                    "problem-list-item",
                                    "Problem List Item",
                                )
                            ]
                        )
                    ],
                    "code": _concept(codings, adhd.text),
                    "subject": self.subject,
                    "onsetString": when,
                    "recordedDate": instant(intake.recorded_at),
                    "recorder": self.staff(intake.recorded_by),
                    "note": [{"text": f"Diagnosed by {by}"}] if by else None,
                }
            )
            return

    def diagnoses(self) -> None:
        """Coded diagnoses received from another system, with every coding as received."""
        for dx in self.r.diagnoses:
            codings = [
                {k: c[k] for k in ("system", "code", "display") if c.get(k)}
                for c in dx.codings or []
                if c.get("code")
            ]
            code: JSON = {"coding": codings}
            if dx.display:
                code["text"] = dx.display
            status = None
            if dx.clinical_status:
                status = {
                    "coding": [
                        {
                            "system": self.codes.system("condition_clinical"),
                            "code": dx.clinical_status,
                        }
                    ]
                }
            self.add(
                {
                    "resourceType": "Condition",
                    "id": f"cond-{dx.id}",
                    "clinicalStatus": status,
                    "code": code,
                    "subject": self.subject,
                    "onsetString": dx.onset,
                    "recordedDate": instant(dx.recorded_at),
                    "recorder": self.staff(dx.recorded_by),
                }
            )

    def imported_blood_pressures(self) -> None:
        """Blood pressures received from another system (outside any KetaCare session)."""
        panel = self.codes.vitals["blood_pressure"]
        for row in self.r.imported_vitals:
            readings = row.readings or {}
            components = []
            for key in ("systolic", "diastolic"):
                value = readings.get(key)
                if isinstance(value, int | float):
                    code = self.codes.vitals[key]
                    components.append(
                        {
                            "code": _concept(code.codings, code.display),
                            "valueQuantity": _quantity(
                                self.codes, float(value), code.unit or "mm[Hg]"
                            ),
                        }
                    )
            if not components or row.effective_at is None:
                continue
            self.add(
                {
                    "resourceType": "Observation",
                    "id": f"obs-bp-imported-{row.id}",
                    "status": "final",
                    "category": [_concept([self.codes.categories["vital_signs"]])],
                    "code": _concept(panel.codings, panel.display),
                    "subject": self.subject,
                    "effectiveDateTime": instant(row.effective_at),
                    "component": components,
                }
            )

    def medication_statements(self) -> dict[str, list[str]]:
        """One MedicationStatement per entry; returns entry name -> resource ids (for the
        interaction findings that implicate them)."""
        status = {
            "active": "active",
            "on_hold": "on-hold",
            "stopped": "stopped",
            "entered_in_error": "entered-in-error",
        }
        catalog = load_catalog()
        by_name: dict[str, list[str]] = {}
        for med in self.r.medications:
            resolution = resolve(med.name_entered, use_broad_vocabulary=False)
            codings: list[Coding] = []
            # A single curated ingredient with a known RxCUI is coded; anything else (a
            # combination, an unknown or partly recognised entry) stays text.
            if resolution.status == "resolved" and len(resolution.ingredients) == 1:
                ingredient = catalog.ingredients.get(resolution.ingredients[0])
                if ingredient is not None and ingredient.rxcui:
                    codings.append(
                        Coding(self.codes.system("rxnorm"), ingredient.rxcui, ingredient.name)
                    )
            period = _drop_empty(
                {
                    "start": med.start_date.isoformat() if med.start_date else None,
                    "end": med.stop_date.isoformat() if med.stop_date else None,
                }
            )
            rid = f"medstmt-{med.id}"
            by_name.setdefault(" ".join(med.name_entered.split()), []).append(rid)
            self.add(
                {
                    "resourceType": "MedicationStatement",
                    "id": rid,
                    "status": status.get(med.status, "unknown"),
                    "medicationCodeableConcept": _drop_empty(_concept(codings, med.name_entered)),
                    "subject": self.subject,
                    "effectivePeriod": period or None,
                    "dateAsserted": instant(med.created_at),
                    "informationSource": self.staff(med.created_by),
                    "dosage": [{"text": med.dose_text}] if med.dose_text else None,
                }
            )
        return by_name

    def _vital(self, rid: str, key: str, at: datetime, value: float, **extra: Any) -> JSON:
        vital = self.codes.vitals[key]
        resource: JSON = {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "category": [_concept([self.codes.categories["vital_signs"]])],
            "code": _concept(vital.codings, vital.display),
            "subject": self.subject,
            "effectiveDateTime": instant(at),
        }
        if vital.unit is not None:
            resource["valueQuantity"] = _quantity(self.codes, value, vital.unit)
        resource.update(extra)
        return resource

    def body_measurements(self) -> None:
        for m in self.r.measurements:
            performer = self.staff(m.recorded_by)
            extra = {"performer": [performer] if performer else None}
            if m.weight_kg is not None:
                self.add(
                    self._vital(
                        f"obs-weight-{m.id}", "weight_kg", m.measured_at, m.weight_kg, **extra
                    )
                )
            if m.height_cm is not None:
                self.add(
                    self._vital(
                        f"obs-height-{m.id}", "height_cm", m.measured_at, m.height_cm, **extra
                    )
                )

    def vital_signs(self) -> None:
        for v in self.r.vitals:
            extra: JSON = {"issued": instant(v.received_at)}
            if v.session_id in self.session_ids:
                extra["partOf"] = [_ref("Procedure", f"proc-session-{v.session_id}")]
            performer = self.staff(v.recorded_by)
            if performer:
                extra["performer"] = [performer]
            if v.systolic is not None or v.diastolic is not None:
                components = []
                for key, value in (("systolic", v.systolic), ("diastolic", v.diastolic)):
                    if value is None:
                        continue
                    code = self.codes.vitals[key]
                    components.append(
                        {
                            "code": _concept(code.codings, code.display),
                            "valueQuantity": _quantity(self.codes, value, code.unit or "mm[Hg]"),
                        }
                    )
                panel = self.codes.vitals["blood_pressure"]
                self.add(
                    {
                        "resourceType": "Observation",
                        "id": f"obs-bp-{v.id}",
                        "status": "final",
                        "category": [_concept([self.codes.categories["vital_signs"]])],
                        "code": _concept(panel.codings, panel.display),
                        "subject": self.subject,
                        "effectiveDateTime": instant(v.measured_at),
                        **extra,
                        "component": components,
                    }
                )
            for key, prefix, value in (
                ("heart_rate", "hr", v.heart_rate),
                ("spo2", "spo2", v.spo2),
                ("respiratory_rate", "rr", v.respiratory_rate),
            ):
                if value is not None:
                    self.add(
                        self._vital(f"obs-{prefix}-{v.id}", key, v.measured_at, value, **extra)
                    )

    def questionnaire(self, definition: InstrumentDef) -> JSON:
        items = []
        for item in definition.items:
            items.append(
                _drop_empty(
                    {
                        "linkId": str(item.number),
                        "prefix": str(item.number),
                        "text": item.text or item.short_label,
                        "type": "choice",
                        "required": True,
                        "code": (
                            [
                                Coding(
                                    self.codes.system("loinc"), item.loinc, item.short_label
                                ).as_fhir()
                            ]
                            if item.loinc
                            else None
                        ),
                        "answerOption": [
                            {"valueCoding": self._answer(definition, o.value)}
                            for o in definition.options
                        ],
                    }
                )
            )
        panel = definition.loinc.panel
        return {
            "resourceType": "Questionnaire",
            "id": f"q-{definition.id}",
            "url": questionnaire_url(definition.id),
            "version": definition.version,
            "name": definition.id.upper(),
            "title": definition.name,
            "status": "active",
            "subjectType": ["Patient"],
            "copyright": definition.copyright,
            "code": (
                [Coding(self.codes.system("loinc"), panel, definition.short_name).as_fhir()]
                if panel
                else None
            ),
            "item": items,
        }

    def _answer(self, definition: InstrumentDef, value: int) -> JSON:
        option = next(o for o in definition.options if o.value == value)
        if option.loinc_answer:
            coding = {
                "system": self.codes.system("loinc"),
                "code": option.loinc_answer,
                "display": option.label,
            }
        else:
            coding = {
                "system": f"{self.codes.system('local')}:answers:{definition.id}",
                "code": str(value),
                "display": option.label,
            }
        coding["extension"] = [{"url": ORDINAL_VALUE, "valueDecimal": value}]
        return coding

    def assessments(self) -> None:
        for a in self.r.assessments:
            definition = get_instrument(a.instrument)
            if a.instrument not in self.questionnaires:
                self.questionnaires.add(a.instrument)
                self.add(self.questionnaire(definition))
            staff = self.staff(a.recorded_by)
            author = staff if a.source == "staff" and staff else self.subject
            qr_id = f"qr-{a.id}"
            answers = []
            for item, value in zip(definition.items, a.answers, strict=False):
                answers.append(
                    {
                        "linkId": str(item.number),
                        "text": item.text or item.short_label,
                        "answer": [{"valueCoding": self._answer(definition, value)}],
                    }
                )
            self.add(
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": qr_id,
                    "questionnaire": questionnaire_url(a.instrument),
                    "status": "completed",
                    "subject": self.subject,
                    "authored": instant(a.administered_at),
                    "author": author,
                    "source": self.subject if a.source == "self_report" else None,
                    "item": answers,
                }
            )
            code = self.codes.scale_totals[a.instrument]
            interpretation = []
            if a.band:
                interpretation.append({"text": a.band})
            if a.positive_screen is not None:
                interpretation.append(
                    {"text": "positive screen" if a.positive_screen else "negative screen"}
                )
            notes = [{"text": "Urgent: a flag on this administration needs the care team."}]
            self.add(
                {
                    "resourceType": "Observation",
                    "id": f"obs-score-{a.id}",
                    "status": "final",
                    "category": [_concept([self.codes.categories["survey"]])],
                    "code": _concept([code], f"{definition.short_name} total"),
                    "subject": self.subject,
                    "effectiveDateTime": instant(a.administered_at),
                    "performer": [author],
                    "valueInteger": a.total,
                    "interpretation": interpretation,
                    "note": notes if a.urgent else None,
                    "derivedFrom": [_ref("QuestionnaireResponse", qr_id)],
                    "partOf": (
                        [_ref("Procedure", f"proc-session-{a.session_id}")]
                        if a.session_id in self.session_ids
                        else None
                    ),
                }
            )

    def courses(self) -> dict[int, str]:
        """CarePlans; returns course id -> CarePlan id."""
        protocols = load_protocols()
        status = {"active": "active", "completed": "completed", "stopped": "revoked"}
        out: dict[int, str] = {}
        for course in self.r.courses:
            protocol = protocols.get(course.protocol_id)
            out[course.id] = f"careplan-{course.id}"
            plan = self.add(
                {
                    "resourceType": "CarePlan",
                    "id": out[course.id],
                    "status": status.get(course.status, "unknown"),
                    "intent": "plan",
                    "title": protocol.name if protocol else course.protocol_id,
                    "description": course.stop_reason and f"Stopped: {course.stop_reason}",
                    "subject": self.subject,
                    "period": {"start": course.start_date.isoformat()},
                    "created": instant(course.created_at),
                    "author": self.staff(course.created_by),
                }
            )
            plan["activity"] = []  # filled once the sessions are known
            self.careplans[course.id] = plan
        return out

    def _careplan(self, course_id: int | None, careplans: Mapping[int, str]) -> JSON | None:
        if course_id is None or course_id not in careplans:
            return None
        return self.careplans[course_id]

    def sessions(self, careplans: Mapping[int, str]) -> None:
        protocols = load_protocols()
        status = {
            "in_progress": "in-progress",
            "paused": "on-hold",
            "completed": "completed",
            "stopped": "stopped",
        }
        appointment = {"scheduled": "booked", "missed": "noshow", "cancelled": "cancelled"}
        for s in self.r.sessions:
            protocol = protocols.get(s.protocol_id)
            label = protocol.session_label if protocol else s.protocol_id
            title = f"{label} {s.number}" if s.number else label
            plan = self._careplan(s.course_id, careplans)
            if s.status in appointment:
                rid = f"appt-session-{s.id}"
                minutes = 120
                if protocol is not None:
                    minutes = (
                        protocol.timing.standard_minutes.value
                        + protocol.monitoring.observation_minutes.value
                    )
                self.add(
                    self._appointment(rid, appointment[s.status], title, s.scheduled_at, minutes)
                )
                if plan is not None:
                    plan["activity"].append({"reference": _ref("Appointment", rid)})
                continue
            rid = f"proc-session-{s.id}"
            self.session_ids.add(s.id)
            code = self.codes.procedures["dosing_session"]
            performer = self.staff(s.signed_by)
            self.add(
                {
                    "resourceType": "Procedure",
                    "id": rid,
                    "status": status.get(s.status, "unknown"),
                    "code": _concept([code], title),
                    "subject": self.subject,
                    "basedOn": [_ref("CarePlan", careplans[s.course_id])] if plan else None,
                    "performedPeriod": _drop_empty(
                        {
                            "start": instant(s.started_at or s.scheduled_at),
                            "end": instant(s.ended_at) if s.ended_at else None,
                        }
                    ),
                    "performer": [{"actor": performer}] if performer else None,
                    "note": [{"text": s.end_reason}] if s.end_reason else None,
                }
            )
            if plan is not None:
                plan["activity"].append({"outcomeReference": [_ref("Procedure", rid)]})

    def _appointment(
        self, rid: str, status: str, title: str, start: datetime, minutes: int
    ) -> JSON:
        return {
            "resourceType": "Appointment",
            "id": rid,
            "status": status,
            "description": title,
            "start": instant(start),
            "end": instant(start + timedelta(minutes=minutes)),
            "minutesDuration": minutes,
            "participant": [{"actor": self.subject, "status": "accepted"}],
        }

    def administrations(self) -> None:
        """A MedicationAdministration per dosed session: its latest order that was ordered."""
        protocols = load_protocols()
        latest: dict[int, DoseOrder] = {}
        for order in sorted(self.r.dose_orders, key=lambda o: (o.ordered_at, o.id)):
            if order.status == "ordered" and order.dose_mg is not None:
                latest[order.session_id] = order
        for s in self.r.sessions:
            order = latest.get(s.id)
            if order is None or s.dose_started_at is None:
                continue
            protocol = protocols.get(s.protocol_id)
            agent = protocol.agent if protocol else "ketamine"
            route = protocol.route if protocol else None
            if s.status == "stopped":
                status = "stopped"
            elif s.dose_ended_at is not None:
                status = "completed"
            elif s.status == "paused":
                status = "on-hold"
            else:
                status = "in-progress"
            output = order.output or {}
            dosage: JSON = {"dose": _quantity(self.codes, order.dose_mg or 0.0, "mg")}
            if order.mg_per_kg is not None:
                weight = output.get("dosing_weight_kg") or output.get("weight_kg")
                text = f"{order.mg_per_kg:g} mg/kg"
                dosage["text"] = f"{text} x {weight:g} kg" if weight else text
            if route in self.codes.routes:
                dosage["route"] = _concept([self.codes.routes[route]])
            if output.get("rate_mg_per_h") is not None:
                dosage["rateQuantity"] = _quantity(self.codes, output["rate_mg_per_h"], "mg/h")
            prescriber = self.staff(order.ordered_by)
            self.add(
                {
                    "resourceType": "MedicationAdministration",
                    "id": f"medadm-{order.id}",
                    "status": status,
                    "medicationCodeableConcept": _concept(self.codes.agents[agent], agent),
                    "subject": self.subject,
                    "partOf": (
                        [_ref("Procedure", f"proc-session-{s.id}")]
                        if s.id in self.session_ids
                        else None
                    ),
                    "effectivePeriod": _drop_empty(
                        {
                            "start": instant(s.dose_started_at),
                            "end": instant(s.dose_ended_at) if s.dose_ended_at else None,
                        }
                    ),
                    "note": (
                        [{"text": f"Ordered by {prescriber['display']}"}] if prescriber else None
                    ),
                    "dosage": dosage,
                }
            )

    def therapy(self, careplans: Mapping[int, str]) -> list[TherapySession]:
        """Procedures (and Appointments) for CBT sessions; returns the signed amendments."""
        code = self.codes.procedures["cbt_session"]
        appointment = {"scheduled": "booked", "missed": "noshow", "cancelled": "cancelled"}
        amendments = []
        for t in self.r.therapy:
            if t.amends_id is not None:
                amendments.append(t)
                continue
            plan = self._careplan(t.course_id, careplans)
            minutes = t.minutes or 50
            if t.status in appointment and t.signed_at is None:
                rid = f"appt-therapy-{t.id}"
                self.add(
                    self._appointment(
                        rid, appointment[t.status], "CBT session", t.scheduled_at, minutes
                    )
                )
                if plan is not None:
                    plan["activity"].append({"reference": _ref("Appointment", rid)})
                continue
            rid = f"proc-therapy-{t.id}"
            note = t.note or {}
            performer = self.staff(t.therapist_id)
            self.add(
                {
                    "resourceType": "Procedure",
                    "id": rid,
                    "status": "completed" if t.status == "completed" else "not-done",
                    "statusReason": ({"text": t.status} if t.status != "completed" else None),
                    "code": _concept([code], "CBT session"),
                    "subject": self.subject,
                    "basedOn": [_ref("CarePlan", careplans[t.course_id])] if plan else None,
                    "performedPeriod": {
                        "start": instant(t.scheduled_at),
                        "end": instant(t.scheduled_at + timedelta(minutes=minutes)),
                    },
                    "performer": [{"actor": performer}] if performer else None,
                    "note": [{"text": note["worked_on"]}] if note.get("worked_on") else None,
                }
            )
            if plan is not None:
                plan["activity"].append({"outcomeReference": [_ref("Procedure", rid)]})
        return amendments

    def detected_issues(self, statements: Mapping[str, list[str]]) -> None:
        screen = self.r.latest_screen
        if screen is None:
            return
        for index, finding in enumerate((screen.result or {}).get("findings", []), start=1):
            implicated = [
                _ref("MedicationStatement", rid)
                for name in finding.get("inputs") or [finding.get("input", "")]
                for rid in statements.get(" ".join(str(name).split()), [])
            ]
            detail = f"{finding.get('title', '')}: {finding.get('effect', '')}".strip(": ")
            self.add(
                {
                    "resourceType": "DetectedIssue",
                    "id": f"issue-{screen.id}-{index}",
                    "status": "final",
                    "code": {
                        "coding": [
                            {"system": ACT_CODE, "code": "DRG", "display": "Drug Interaction Alert"}
                        ],
                        "text": f"{finding.get('severity')} interaction with {screen.agent}",
                    },
                    "severity": self.codes.issue_severity.get(finding.get("severity", ""), "low"),
                    "patient": self.subject,
                    "identifiedDateTime": instant(screen.screened_at),
                    "author": self.staff(screen.screened_by),
                    "implicated": implicated,
                    "detail": detail,
                    "reference": f"urn:ketacare:interaction-rule:{finding.get('rule_id')}",
                    "mitigation": (
                        [{"action": {"text": finding["management"]}}]
                        if finding.get("management")
                        else None
                    ),
                }
            )

    def consents(self) -> None:
        for c in self.r.consents:
            self.add(
                {
                    "resourceType": "Consent",
                    "id": f"consent-{c.id}",
                    "status": "active" if c.status == "given" else "inactive",
                    "scope": _concept(
                        [Coding(self.codes.system("consent_scope"), "treatment", "Treatment")]
                    ),
                    "category": [{"text": "Informed consent to ketamine-assisted treatment"}],
                    "patient": self.subject,
                    "dateTime": instant(c.recorded_at),
                    "performer": [self.subject],
                    "organization": [self.organization],
                    "policyRule": {"text": f"KetaCare consent text, version {c.consent_version}"},
                    "provision": {"type": "permit" if c.status == "given" else "deny"},
                }
            )

    def reviews(self) -> None:
        """Signed eligibility reviews as ClinicalImpressions (the prescriber's assessment)."""
        conditions = [r["id"] for r in self.resources if r["resourceType"] == "Condition"]
        for review in self.r.reviews:
            summary = f"Eligibility: {review.final_decision}"
            if review.final_decision != review.computed_decision:
                summary += f" (computed: {review.computed_decision})"
            if review.override_reason:
                summary += f". Reason: {review.override_reason}"
            self.add(
                {
                    "resourceType": "ClinicalImpression",
                    "id": f"eligibility-{review.id}",
                    "status": "completed",
                    "code": {
                        "coding": [
                            {
                                "system": self.codes.system("local"),
                                "code": "eligibility-review",
                                "display": "Eligibility review for ketamine-assisted treatment",
                            }
                        ]
                    },
                    "subject": self.subject,
                    "effectiveDateTime": instant(review.signed_at),
                    "date": instant(review.signed_at),
                    "assessor": self.staff(review.signed_by),
                    "problem": [_ref("Condition", cid) for cid in conditions],
                    "summary": summary,
                    "previous": (
                        _ref("ClinicalImpression", f"eligibility-{review.amends_id}")
                        if review.amends_id
                        and any(r.id == review.amends_id for r in self.r.reviews)
                        else None
                    ),
                }
            )

    def provenance(self, amendments: Sequence[TherapySession]) -> None:
        signed: list[tuple[str, str, datetime, int | None, str]] = []
        for s in self.r.sessions:
            if s.signed_at is not None and s.id in self.session_ids:
                signed.append(
                    (
                        f"prov-session-{s.id}",
                        f"Procedure/proc-session-{s.id}",
                        s.signed_at,
                        s.signed_by,
                        "Signed",
                    )
                )
        for review in self.r.reviews:
            signed.append(
                (
                    f"prov-eligibility-{review.id}",
                    f"ClinicalImpression/eligibility-{review.id}",
                    review.signed_at,
                    review.signed_by,
                    "Amended" if review.amends_id else "Signed",
                )
            )
        exported = {r["id"] for r in self.resources}
        for t in self.r.therapy:
            if (
                t.amends_id is None
                and t.signed_at is not None
                and f"proc-therapy-{t.id}" in exported
            ):
                signed.append(
                    (
                        f"prov-therapy-{t.id}",
                        f"Procedure/proc-therapy-{t.id}",
                        t.signed_at,
                        t.therapist_id,
                        "Signed",
                    )
                )
        for t in amendments:
            if t.signed_at is not None and f"proc-therapy-{t.amends_id}" in exported:
                signed.append(
                    (
                        f"prov-therapy-{t.id}",
                        f"Procedure/proc-therapy-{t.amends_id}",
                        t.signed_at,
                        t.therapist_id,
                        "Amended",
                    )
                )
        signer_type = _concept(
            [Coding(self.codes.system("provenance_agent_type"), "attester", "Attester")]
        )
        for rid, target, at, user_id, activity in signed:
            who = self.staff(user_id) or self.organization
            self.add(
                {
                    "resourceType": "Provenance",
                    "id": rid,
                    "target": [{"reference": target}],
                    "recorded": instant(at),
                    "activity": (
                        _concept(
                            [Coding(self.codes.system("provenance_activity"), "UPDATE", "revise")],
                            activity,
                        )
                        if activity == "Amended"
                        else {"text": activity}
                    ),
                    "agent": [{"type": signer_type, "who": who}],
                }
            )

    def patient(self) -> JSON:
        p = self.r.patient
        telecom = []
        if p.phone:
            telecom.append({"system": "phone", "value": p.phone})
        if p.email:
            telecom.append({"system": "email", "value": p.email})
        return _drop_empty(
            {
                "resourceType": "Patient",
                "id": self.pid,
                "identifier": [
                    {
                        "use": "usual",
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "code": "MR",
                                    "display": "Medical record number",
                                }
                            ]
                        },
                        "system": mrn_system(self.r.clinic.slug),
                        "value": p.mrn,
                    }
                ],
                "active": True,
                "name": [
                    {
                        "use": "official",
                        "family": p.family_name,
                        "given": [p.given_name],
                        "text": f"{p.given_name} {p.family_name}",
                    }
                ],
                "telecom": telecom,
                "gender": p.sex,
                "birthDate": p.date_of_birth.isoformat(),
                "address": [{"text": p.address}] if p.address else None,
                "managingOrganization": self.organization,
            }
        )

    def build(self) -> list[JSON]:
        careplans = self.courses()
        self.sessions(careplans)
        amendments = self.therapy(careplans)
        self.administrations()
        self.body_measurements()
        self.vital_signs()
        self.imported_blood_pressures()
        self.conditions()
        self.diagnoses()
        statements = self.medication_statements()
        self.assessments()
        self.detected_issues(statements)
        self.consents()
        self.reviews()
        self.provenance(amendments)
        for plan in self.resources:
            if plan["resourceType"] == "CarePlan" and not plan.get("activity"):
                plan.pop("activity", None)
        head = [self.patient(), self.organization_resource(), *self.practitioner_resources()]
        return head + self.resources
