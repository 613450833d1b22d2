"""The demo clinic: one user per role and synthetic patients at every stage of the programme.

Everything here is invented. Loading is idempotent: a second run finds the clinic and adds
nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app import audit, fhir_import, outcome_summaries
from ketacare.app.assessments import assessment_row
from ketacare.app.clinic_settings import EffectiveSettings, effective_settings
from ketacare.app.demo_treatment import Today, treat
from ketacare.app.patients import Stage
from ketacare.app.permissions import Actor, Role
from ketacare.app.text import fold
from ketacare.app.users import actor_for, hash_password
from ketacare.clinical.instruments import score
from ketacare.store.models import (
    BodyMeasurement,
    Clinic,
    ConsentRecord,
    EligibilityReview,
    IntakeRecord,
    MedicationEntry,
    Patient,
    User,
)

DEMO_SLUG = "demo"
DEMO_CLINIC_NAME = "Demo Ketamine Clinic"

# Demo-only credentials, printed by `make demo`. Never used outside the demo clinic.
DEMO_USERS: dict[Role, tuple[str, str, str]] = {
    Role.ADMIN: ("admin", "Alex Admin", "kc-demo-ledger"),
    Role.PRESCRIBER: ("prescriber", "Dr Priya Shah", "kc-demo-scripts"),
    Role.NURSE: ("nurse", "Noah Kim RN", "kc-demo-vitals"),
    Role.THERAPIST: ("therapist", "Tess Moreau", "kc-demo-insight"),
    Role.RESEARCHER: ("researcher", "Rui Alves", "kc-demo-cohorts"),
}

FAMILY = [
    "Anderson",
    "Baker",
    "Chen",
    "Dubois",
    "Evans",
    "Fischer",
    "García",
    "Hughes",
    "Ibrahim",
    "Jensen",
    "Kowalski",
    "Lefèvre",
    "Martin",
    "Nakamura",
    "O'Brien",
    "Patel",
    "Quinn",
    "Rossi",
    "Santos",
    "Tremblay",
    "Usman",
    "Varga",
    "Walsh",
    "Xu",
    "Young",
    "Zimmermann",
    "Møller",
    "Novak",
    "Okafor",
    "Roy",
]
GIVEN_F = [
    "Amelia",
    "Beatriz",
    "Chloé",
    "Dana",
    "Elif",
    "Fatima",
    "Grace",
    "Hana",
    "Isla",
    "Jade",
    "Keira",
    "Léa",
    "Maya",
    "Nora",
    "Olivia",
]
GIVEN_M = [
    "Aaron",
    "Ben",
    "Carlos",
    "Dev",
    "Emil",
    "Felix",
    "Gabriel",
    "Hugo",
    "Ivan",
    "Jonas",
    "Kai",
    "Liam",
    "Marc",
    "Nikhil",
    "Owen",
]

# (name as entered, dose text, status, started how many days ago, stopped days ago or None)
ADHD_CURRENT = [
    ("Vyvanse", "50 mg every morning"),
    ("Concerta 54 mg ER tab", "1 tab every morning"),
    ("Adderall XR 20mg", "20 mg every morning"),
    ("Biphentin", "40 mg every morning"),
    ("guanfacine ER", "2 mg at night"),
    ("Strattera", "80 mg daily"),
    ("Qelbree", "400 mg daily"),
    ("dexmethylphenidate ER", "20 mg every morning"),
]
ADHD_PAST = [
    ("Ritalin", "10 mg three times daily"),
    ("atomoxetine", "60 mg daily"),
    ("Adderall", "10 mg twice daily"),
    ("clonidine ER", "0.1 mg twice daily"),
]
OTHER = [
    ("sertraline 100mg", "100 mg daily"),
    ("escitalopram", "10 mg daily"),
    ("bupropion XL", "300 mg every morning"),
    ("Xanax 0.5 mg prn", "0.5 mg as needed for panic"),
    ("lamotrigine", "200 mg daily"),
    ("levothyroxine", "75 mcg daily"),
    ("ibuprofen", "400 mg as needed"),
    ("melatonin", "3 mg at night"),
    ("lisinopril", "10 mg daily"),
    ("oral contraceptive", "1 tab daily"),
    ("Sudafed", "60 mg as needed"),
    ("trazodone", "50 mg at night"),
]

# A patient at intake whose MAO inhibitor was stopped within its washout (shown on the chart and
# at eligibility: with a stimulant, contraindicated until the washout ends).
RECENT_MAOI_PATIENT = 2

STAGES = (
    [Stage.INTAKE] * 6
    + [Stage.ELIGIBLE] * 5
    + [Stage.INELIGIBLE] * 3
    + [Stage.IN_COURSE] * 8
    + [Stage.MAINTENANCE] * 5
    + [Stage.DISCHARGED] * 3
)


@dataclass(frozen=True)
class DemoResult:
    clinic_id: int
    created: bool
    patients: int
    credentials: dict[str, str]


def load_demo(db: Session, *, now: datetime, seed: int = 2026) -> DemoResult:
    credentials = {username: password for username, _, password in DEMO_USERS.values()}
    existing = db.scalar(select(Clinic).where(Clinic.slug == DEMO_SLUG))
    if existing is not None:
        count = len(db.scalars(select(Patient.id).where(Patient.clinic_id == existing.id)).all())
        return DemoResult(existing.id, False, count, credentials)

    rng = random.Random(seed)  # noqa: S311 (synthetic data, not security)  # nosec B311
    clinic = Clinic(slug=DEMO_SLUG, name=DEMO_CLINIC_NAME, timezone="America/Toronto")
    db.add(clinic)
    db.flush()
    users: dict[Role, User] = {}
    for role, (username, display, password) in DEMO_USERS.items():
        users[role] = User(
            clinic_id=clinic.id,
            username=username,
            display_name=display,
            role=role.value,
            password_hash=hash_password(password),
        )
        db.add(users[role])
    db.flush()
    nurse = users[Role.NURSE].id
    settings = effective_settings(db, clinic.id)
    in_course = 0

    for i, stage in enumerate(STAGES):
        female = i % 2 == 0
        given = rng.choice(GIVEN_F if female else GIVEN_M)
        family = FAMILY[i]
        age_days = rng.randint(19 * 365, 62 * 365)
        dob = now.date() - timedelta(days=age_days)
        patient = Patient(
            clinic_id=clinic.id,
            mrn=f"KC-{1001 + i:05d}",
            family_name=family,
            given_name=given,
            family_key=fold(family),
            given_key=fold(given),
            name_key=f"{fold(family)} {fold(given)}",
            date_of_birth=date(dob.year, dob.month, min(dob.day, 28)),
            sex="female" if female else "male",
            phone=f"+1 416 555 {rng.randint(1000, 9999)}",
            email=f"{fold(given)}.{fold(family).replace(' ', '').replace(chr(39), '')}@example.org",
            stage=stage.value,
            created_at=now - timedelta(days=rng.randint(20, 200)),
            updated_at=now,
        )
        db.add(patient)
        db.flush()
        height = round(rng.gauss(165 if female else 178, 7), 1)
        weight = round(rng.gauss(68 if female else 84, 12), 1)
        for k in range(rng.randint(2, 4)):
            days_ago = 5 + k * rng.randint(14, 40)
            db.add(
                BodyMeasurement(
                    clinic_id=clinic.id,
                    patient_id=patient.id,
                    measured_at=now - timedelta(days=days_ago, hours=rng.randint(0, 8)),
                    weight_kg=round(weight + rng.uniform(-1.5, 1.5), 1),
                    height_cm=height if k == 0 else None,
                    recorded_by=nurse,
                    recorded_at=now - timedelta(days=days_ago),
                )
            )
        meds = [(*rng.choice(ADHD_CURRENT), "active", rng.randint(60, 900), None)]
        meds.append(
            (*rng.choice(ADHD_PAST), "stopped", rng.randint(400, 1500), rng.randint(90, 390))
        )
        for name, dose in rng.sample(OTHER, rng.randint(0, 3)):
            meds.append((name, dose, "active", rng.randint(30, 700), None))
        if i == RECENT_MAOI_PATIENT:
            # Stopped nine days ago: still inside the 14-day washout, so it is screened.
            meds.append(("Nardil", "15 mg three times daily", "stopped", 300, 9))
        for name, dose, status, started, stopped in meds:
            db.add(
                MedicationEntry(
                    clinic_id=clinic.id,
                    patient_id=patient.id,
                    name_entered=name,
                    dose_text=dose,
                    start_date=now.date() - timedelta(days=started),
                    stop_date=now.date() - timedelta(days=stopped) if stopped else None,
                    status=status,
                    created_by=nurse,
                )
            )
        db.flush()
        today = Today(
            TODAY[in_course] if stage == Stage.IN_COURSE and in_course < len(TODAY) else None
        )
        in_course += stage == Stage.IN_COURSE
        _programme(db, rng, patient, stage, now, users, settings, today)
    # The demo writes its records directly; the dashboard's summaries follow from them.
    outcome_summaries.rebuild(db, clinic.id)
    system = Actor(clinic_id=clinic.id, role=Role.SYSTEM, label="demo-loader")
    db.add(
        audit.event(
            system, "demo.load", "success", audit.AuditNote(detail={"patients": len(STAGES)})
        )
    )
    db.commit()
    first = db.scalar(
        select(Patient).where(Patient.clinic_id == clinic.id).order_by(Patient.id).limit(1)
    )
    if first is not None:
        fhir_import.import_bundle(db, actor_for(users[Role.NURSE]), _referral(first, now))
    return DemoResult(clinic.id, True, len(STAGES), credentials)


def _referral(patient: Patient, now: datetime) -> dict[str, object]:
    """What a family physician's EHR sends with a referral, as a FHIR transaction: the ADHD
    diagnosis and a blood pressure from the office, for a patient in intake."""
    when = (now - timedelta(days=20)).replace(microsecond=0).isoformat()
    subject = {"reference": "urn:uuid:referral-patient"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:referral-patient",
                "resource": {
                    "resourceType": "Patient",
                    "id": "fp-patient",
                    "identifier": [{"system": "urn:demo:family-practice", "value": patient.mrn}],
                    "name": [{"family": patient.family_name, "given": [patient.given_name]}],
                    "birthDate": patient.date_of_birth.isoformat(),
                    "gender": patient.sex if patient.sex in ("male", "female") else "unknown",
                },
                "request": {"method": "PUT", "url": f"Patient?identifier={patient.mrn}"},
            },
            {
                "fullUrl": "urn:uuid:referral-adhd",
                "resource": {
                    "resourceType": "Condition",
                    "id": "fp-adhd",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/sid/icd-10-cm",
                                "code": "F90.0",
                                "display": "Attention-deficit hyperactivity disorder, "
                                "predominantly inattentive type",
                            }
                        ],
                        "text": "ADHD, inattentive presentation",
                    },
                    "subject": subject,
                    "onsetString": "childhood",
                },
                "request": {"method": "POST", "url": "Condition"},
            },
            {
                "fullUrl": "urn:uuid:referral-bp",
                "resource": {
                    "resourceType": "Observation",
                    "id": "fp-bp",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                    "subject": subject,
                    "effectiveDateTime": when,
                    "component": [
                        {
                            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                            "valueQuantity": {
                                "value": value,
                                "unit": "mmHg",
                                "system": "http://unitsofmeasure.org",
                                "code": "mm[Hg]",
                            },
                        }
                        for code, value in (("8480-6", 134), ("8462-4", 86))
                    ],
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }


# Stages whose patients have been through intake, sign-off and consent.
# Today's sessions in the clinic, for the first four patients in their course.
TODAY = ("running", "awaiting_signoff", "due", "risk_flag")
REVIEWED = {Stage.ELIGIBLE, Stage.INELIGIBLE, Stage.IN_COURSE, Stage.MAINTENANCE, Stage.DISCHARGED}
TREATED = {Stage.IN_COURSE, Stage.MAINTENANCE, Stage.DISCHARGED}
EXCLUSIONS = ["intracerebral_hemorrhage", "hypertension_uncontrolled", "ketamine_hypersensitivity"]


def _answers(rng: random.Random, instrument: str, level: float) -> list[int]:
    """Synthetic answers around ``level`` (0 = none, 1 = maximal), never touching PHQ-9 item 9
    (the demo's single urgent flag is placed on purpose)."""
    sizes = {"asrs": (18, 4), "phq9": (9, 3), "gad7": (7, 3)}
    count, top = sizes[instrument]
    out = [max(0, min(top, round(rng.gauss(level * top, 0.6)))) for _ in range(count)]
    if instrument == "phq9":
        out[8] = 0
    return out


def _assess(
    db: Session,
    patient: Patient,
    instrument: str,
    answers: list[int],
    at: datetime,
    source: str,
    by: int | None,
) -> None:
    result = score(instrument, answers)
    db.add(assessment_row(patient, result, source=source, at=at, recorded_by=by))


def _programme(
    db: Session,
    rng: random.Random,
    patient: Patient,
    stage: Stage,
    now: datetime,
    users: dict[Role, User],
    settings: EffectiveSettings,
    today: Today,
) -> None:
    from ketacare.app.intake import _evaluate, consent_text

    nurse, prescriber = users[Role.NURSE].id, users[Role.PRESCRIBER].id
    # Patients in their course started it a week or two ago; the others months ago.
    course_days = rng.randint(8, 12) if stage == Stage.IN_COURSE else rng.randint(40, 120)
    started = now - timedelta(days=course_days)
    course_start = started.astimezone(ZoneInfo(settings.timezone)).date()
    intake_at = started - timedelta(days=14)
    if stage == Stage.INTAKE and patient.id % 3 == 0:
        return  # referred, nothing recorded yet
    history = [rng.choice(EXCLUSIONS)] if stage == Stage.INELIGIBLE else []
    if stage != Stage.INELIGIBLE and rng.random() < 0.3:
        history.append(rng.choice(["hypertension_controlled", "glaucoma", "seizure_disorder"]))
    past = rng.choice(ADHD_PAST)[0]
    data = {
        "adhd_diagnosis": True,
        "diagnosis_by": rng.choice(["Dr L. Moreau (psychiatry)", "Dr S. Okoye", "ADHD clinic"]),
        "diagnosis_when": str(rng.randint(2008, 2023)),
        "prior_adhd_treatments": [
            {
                "drug": past,
                "response": rng.choice(["inadequate", "not_tolerated"]),
                "dose": None,
                "duration_weeks": rng.randint(6, 52),
                "side_effects": [],
            },
        ],
        "history": history,
        "blood_pressure": {"systolic": rng.randint(112, 136), "diastolic": rng.randint(68, 86)},
        "heart_rate": rng.randint(60, 88),
        "notes": None,
    }
    db.add(
        IntakeRecord(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            recorded_at=intake_at,
            recorded_by=nurse,
            diagnosis_by=data["diagnosis_by"],
            diagnosis_when=data["diagnosis_when"],
            data=data,
        )
    )
    # Baseline scales at intake; then a slowly falling trajectory for treated patients.
    severity = rng.uniform(0.45, 0.8)
    for instrument in ("asrs", "phq9", "gad7"):
        _assess(
            db,
            patient,
            instrument,
            _answers(rng, instrument, severity),
            intake_at,
            "self_report" if rng.random() < 0.5 else "staff",
            nurse,
        )
    if stage in TREATED:
        # Patients differ: some improve a lot over the course, some little, a few not at all.
        # Invented numbers for the demo; they show how outcomes are displayed, not what
        # ketamine does.
        gain = rng.choice([0.0, 0.05, 0.1, 0.15, 0.2])
        for week in range(1, rng.randint(4, 8)):
            level = severity * max(0.08, 1 - gain * week * rng.uniform(0.8, 1.2))
            at = started + timedelta(days=7 * week, hours=rng.randint(9, 16))
            if at < now:
                for instrument in ("phq9", "gad7", "asrs") if week % 2 == 0 else ("phq9", "gad7"):
                    _assess(
                        db,
                        patient,
                        instrument,
                        _answers(rng, instrument, level),
                        at,
                        "self_report",
                        None,
                    )
    if stage == Stage.INTAKE and patient.id % 3 == 1:
        # One self-report that needs the care team now (PHQ-9 item 9 above 0).
        answers = _answers(rng, "phq9", 0.6)
        answers[8] = 1
        _assess(db, patient, "phq9", answers, now - timedelta(hours=5), "self_report", None)
    db.flush()
    if stage not in REVIEWED:
        return
    decision, inputs, intake_id = _evaluate(db, patient)
    computed = decision.decision.value
    final = "ineligible" if stage == Stage.INELIGIBLE else "eligible"
    db.add(
        EligibilityReview(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            intake_id=intake_id,
            computed_decision=computed,
            final_decision=final,
            override_reason=None
            if computed == final
            else "Open questions discussed with the patient and the referring psychiatrist.",
            inputs=inputs,
            output=decision.to_json_dict(),
            knowledge_version=decision.knowledge_version,
            signed_by=prescriber,
            signed_at=intake_at + timedelta(days=3),
        )
    )
    if stage in TREATED:
        treat(db, rng, patient, course_start, now, users, settings, today)
    if stage != Stage.INELIGIBLE:
        db.add(
            ConsentRecord(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                consent_version=consent_text()["version"],
                status="given",
                recorded_by=nurse,
                recorded_at=intake_at + timedelta(days=5),
            )
        )
