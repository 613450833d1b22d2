"""The demo clinic: one user per role and synthetic patients at every stage of the programme.

Everything here is invented. Loading is idempotent: a second run finds the clinic and adds
nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app import audit
from ketacare.app.patients import Stage
from ketacare.app.permissions import Actor, Role
from ketacare.app.text import fold
from ketacare.app.users import hash_password
from ketacare.store.models import BodyMeasurement, Clinic, MedicationEntry, Patient, User

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

    rng = random.Random(seed)  # noqa: S311 (synthetic data, not security)
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
    system = Actor(clinic_id=clinic.id, role=Role.SYSTEM, label="demo-loader")
    db.add(
        audit.event(
            system, "demo.load", "success", audit.AuditNote(detail={"patients": len(STAGES)})
        )
    )
    db.commit()
    return DemoResult(clinic.id, True, len(STAGES), credentials)
