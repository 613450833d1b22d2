"""The demo clinic's treatment: a planned course per treated patient, past infusions recorded
as a clinic records them (pre-dose checks, order and second check, vitals every 10 minutes and
their alerts, sedation and dissociation ratings, adverse events, discharge, sign-off), a signed
CBT note after each, and today's sessions: one running, one waiting for sign-off, one due, one
whose patient reported thoughts of self-harm (a risk flag the prescriber decides on before the
dose), and a second booking of a patient dosed this morning whose order was refused (too soon
after that dose). No patient is dosed inside the protocol's minimum interval.

Everything here is invented; the clinical decisions are made by the same functions the clinic
uses, so the stored records look exactly like real ones."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.app.assessments import assessment_row
from ketacare.app.clinic_settings import EffectiveSettings
from ketacare.app.courses import CourseCreate, _new_plan, store_plan
from ketacare.app.permissions import Actor, Role
from ketacare.app.session_record import apply_interval, post_dose_readings
from ketacare.app.sessions import alert_row
from ketacare.app.therapy import TherapyNote, window_status
from ketacare.clinical.dosing import calculate_order
from ketacare.clinical.eligibility import age_on
from ketacare.clinical.instruments import score
from ketacare.clinical.interactions import screen
from ketacare.clinical.monitoring import DischargeInputs, alerts, bp_gate, discharge_check
from ketacare.clinical.prechecks import (
    InteractionSummary,
    assess_prechecks,
    dose_interval,
    worst,
)
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.protocol_defs import get_protocol
from ketacare.store.models import (
    AdverseEvent,
    BodyMeasurement,
    DoseOrder,
    DoseVerification,
    MedicationEntry,
    Patient,
    SessionAlert,
    SessionEvent,
    TherapySession,
    TreatmentSession,
    User,
    VitalSample,
)

PROTOCOL = "iv-ketamine"
DOSE_MINUTES = 40
OBSERVE_MINUTES = 70
# mg/kg per infusion: the standard dose, one escalation step after three.
STEPS = (0.5, 0.5, 0.5, 0.75, 0.75, 0.75)


@dataclass
class Staff:
    nurse: int
    prescriber: int
    therapist: int


@dataclass
class Today:
    """Which of today's demo situations a patient gets (None: none)."""

    kind: str | None = None


def staff_of(users: dict[Role, User]) -> Staff:
    return Staff(users[Role.NURSE].id, users[Role.PRESCRIBER].id, users[Role.THERAPIST].id)


def _event(
    row: TreatmentSession, kind: str, at: datetime, by: int, text: str | None = None, **detail: Any
) -> SessionEvent:
    return SessionEvent(
        clinic_id=row.clinic_id,
        session_id=row.id,
        at=at,
        kind=kind,
        text=text,
        detail=detail or None,
        recorded_by=by,
    )


def _scale(
    db: Session,
    patient: Patient,
    row: TreatmentSession,
    name: str,
    answers: list[int],
    at: datetime,
    by: int,
) -> int:
    result = score(name, answers)
    stored = assessment_row(
        patient, result, source="staff", at=at, recorded_by=by, session_id=row.id
    )
    db.add(stored)
    return stored.total


def _cadss(rng: random.Random, level: float) -> list[int]:
    return [max(0, min(4, round(rng.gauss(level, 0.5)))) for _ in range(23)]


def _cadss_resolved(rng: random.Random) -> list[int]:
    """Dissociation resolved, as the demo's recovered patients are an hour after dosing: a few
    items scored 1 (a total of 0-3, at or below the discharge criterion's 4), the rest 0.
    Drawn item by item, a low mean still gave totals above 4 on some days' data."""
    items = [0] * 23
    for index in rng.sample(range(23), rng.randint(0, 3)):
        items[index] = 1
    return items


class _Patient:
    """What every session of one patient needs: baseline readings, medicines screened."""

    def __init__(
        self, db: Session, rng: random.Random, patient: Patient, settings: EffectiveSettings
    ):
        self.patient = patient
        self.rng = rng
        self.settings = settings
        names = list(
            db.scalars(
                select(MedicationEntry.name_entered).where(
                    MedicationEntry.patient_id == patient.id, MedicationEntry.status == "active"
                )
            )
        )
        result = screen(names, "ketamine", "iv")
        unknown = [u.input for u in result.unrecognized]
        unknown += [f"{n.input} (not reviewed)" for n in result.not_reviewed]
        self.interactions = InteractionSummary.of_findings(
            len(names), [f.to_json_dict() for f in result.findings], unknown
        )
        self.weight = (
            db.scalar(
                select(BodyMeasurement.weight_kg)
                .where(
                    BodyMeasurement.patient_id == patient.id, BodyMeasurement.weight_kg.is_not(None)
                )
                .order_by(BodyMeasurement.measured_at.desc())
                .limit(1)
            )
            or 70.0
        )
        self.base_s, self.base_d = rng.randint(112, 134), rng.randint(68, 84)
        self.base_hr = rng.randint(62, 84)
        self.previous: float | None = None


def _start(
    db: Session, p: _Patient, row: TreatmentSession, at: datetime, staff: Staff
) -> dict[str, Any]:
    """Weigh, check and start: the gate and pre-dose checks as the clinic would decide them."""
    rng, patient = p.rng, p.patient
    weight = round(p.weight + rng.uniform(-0.6, 0.6), 1)
    db.add(
        BodyMeasurement(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            measured_at=at - timedelta(minutes=20),
            weight_kg=weight,
            recorded_by=staff.nurse,
            recorded_at=at - timedelta(minutes=20),
        )
    )
    baseline = {
        "systolic": p.base_s + rng.randint(-4, 4),
        "diastolic": p.base_d + rng.randint(-3, 3),
        "heart_rate": p.base_hr + rng.randint(-4, 4),
        "spo2": rng.choice([97, 98, 99]),
        "respiratory_rate": rng.randint(12, 16),
    }
    monitoring = p.settings.monitoring
    gate = bp_gate(baseline["systolic"], baseline["diastolic"], monitoring)
    checks = assess_prechecks(
        get_protocol(PROTOCOL),
        fasting="yes",
        escort="yes",
        pregnancy="not_pregnant",
        sex=patient.sex,
        age_years=age_on(patient.date_of_birth, at.date()),
        interactions=p.interactions,
        readings=baseline,
        monitoring=monitoring,
    )
    overall = worst(gate.band, checks.band)
    row.baseline = baseline
    row.gate = gate.to_json_dict()
    named = checks.needs("monitoring_plan")
    row.prechecks = {
        **checks.to_json_dict(),
        "overall": overall,
        "screen_id": None,
        "acknowledged": overall != "proceed",
        "settings_version": p.settings.version,
        # What the nurse writes for an interaction the Spravato label names.
        "monitoring_plan": "BP every 5 min for the first 40 min; SpO2 and MOAA/S every 10 min."
        if named
        else None,
    }
    row.status = "in_progress"
    row.started_at = at
    db.flush()
    db.add(_event(row, "started", at, staff.nurse, band=overall))
    return {"weight": weight, "baseline": baseline}


def _clinic_day(p: _Patient, at: datetime) -> date:
    """The clinic's calendar day of a moment (orders date weights in the clinic's zone)."""
    return at.astimezone(ZoneInfo(p.settings.timezone)).date()


def _order(
    db: Session,
    p: _Patient,
    row: TreatmentSession,
    at: datetime,
    weight: float,
    mg_per_kg: float,
    staff: Staff,
) -> DoseOrder:
    order = calculate_order(
        PROTOCOL,
        weight,
        mg_per_kg,
        DOSE_MINUTES,
        bag_volume_ml=100,
        weight_measured_on=_clinic_day(p, at),
        today=_clinic_day(p, at),
        previous_mg_per_kg=p.previous,
        settings=p.settings.dosing(PROTOCOL),
    )
    output = order.to_json_dict()
    stored = DoseOrder(
        clinic_id=row.clinic_id,
        session_id=row.id,
        status=order.status,
        dose_mg=output["dose_mg"],
        mg_per_kg=output["mg_per_kg"],
        inputs={
            "mg_per_kg": mg_per_kg,
            "minutes": DOSE_MINUTES,
            "bag_volume_ml": 100,
            "weight_kg": weight,
            "weight_measured_on": _clinic_day(p, at).isoformat(),
            "previous_mg_per_kg": p.previous,
            "today": _clinic_day(p, at).isoformat(),
        },
        output=output,
        knowledge_version=order.knowledge_version,
        ordered_by=staff.prescriber,
        ordered_at=at + timedelta(minutes=2),
    )
    db.add(stored)
    db.flush()
    db.add(
        DoseVerification(
            clinic_id=row.clinic_id,
            order_id=stored.id,
            verified_by=staff.nurse,
            verified_at=at + timedelta(minutes=4),
        )
    )
    if order.status == "ordered":
        p.previous = mg_per_kg
    return stored


def _vitals(
    db: Session,
    p: _Patient,
    row: TreatmentSession,
    dose_at: datetime,
    until: datetime,
    surge: int,
    staff: Staff,
) -> list[tuple[int, datetime]]:
    """Readings every 10 minutes from the start of dosing until ``until``: blood pressure peaks
    near the end of the infusion, then returns towards baseline. Returns the alerts raised
    (id, time)."""
    rng, base = p.rng, row.baseline or {}
    alerted: list[tuple[int, datetime]] = []
    minute = 0
    while dose_at + timedelta(minutes=minute) <= until:
        shape = max(0.0, 1 - abs(minute - DOSE_MINUTES) / 50)
        # Once the rise has passed, blood pressure settles at or just below the pre-dose value.
        top = 3 if shape else 0
        sample = {
            "systolic": round(base["systolic"] + surge * shape + rng.uniform(-3, top)),
            "diastolic": round(base["diastolic"] + surge * 0.6 * shape + rng.uniform(-2, top)),
            "heart_rate": round(base["heart_rate"] + 8 * shape + rng.uniform(-3, 3)),
            "spo2": rng.choice([96, 97, 98, 98, 99]),
            "respiratory_rate": rng.randint(12, 16),
        }
        at = dose_at + timedelta(minutes=minute)
        raised = _reading(db, p, row, at, sample, f"demo-{row.id}-{minute}", "device", staff)
        alerted += [(stored.id, stored.raised_at) for stored in raised]
        minute += 10
    return alerted


def _reading(
    db: Session,
    p: _Patient,
    row: TreatmentSession,
    at: datetime,
    sample: dict[str, Any],
    key: str,
    source: str,
    staff: Staff,
) -> list[SessionAlert]:
    """One set of readings, stored as the device or nurse sent it, with the alerts it raised
    against the pre-dose baseline."""
    vital = VitalSample(
        clinic_id=row.clinic_id,
        session_id=row.id,
        measured_at=at,
        received_at=at + timedelta(seconds=5),
        source=source,
        sample_key=key,
        recorded_by=staff.nurse,
        **sample,
    )
    db.add(vital)
    db.flush()
    raised = [
        alert_row(row.clinic_id, row.id, vital.id, vital.received_at, a)
        for a in alerts(sample, row.baseline or {}, p.settings.monitoring)
    ]
    db.add_all(raised)
    db.flush()
    return raised


def _transient_hypotension(
    db: Session, p: _Patient, row: TreatmentSession, at: datetime, staff: Staff
) -> None:
    """A reading of 84/50 mmHg 15 minutes after the infusion ended (a vasovagal dip on
    standing): the low-blood-pressure warning, acknowledged with what was done, and recorded
    as an adverse event. Fixed values: the demo's random draws stay as they are."""
    sample = {"systolic": 84, "diastolic": 50, "heart_rate": 58, "spo2": 97, "respiratory_rate": 14}
    raised = _reading(db, p, row, at, sample, f"demo-{row.id}-dip", "manual", staff)
    action = "Lay flat with legs raised; 5 minutes later 112/70, no symptoms; prescriber told."
    acked = at + timedelta(minutes=4)
    for stored in raised:
        db.add(_event(row, "alert_ack", acked, staff.nurse, action, alert_id=stored.id))
    db.add(_adverse(row, p.patient, "hypotension_bradycardia", "mild", at, action, staff))


def _infusion(
    db: Session,
    p: _Patient,
    row: TreatmentSession,
    at: datetime,
    number: int,
    staff: Staff,
    *,
    until: datetime | None = None,
    sign: bool = True,
    surge: int | None = None,
    dip: bool = False,
) -> None:
    """One infusion from pre-dose checks to sign-off (or up to ``until`` for today's)."""
    rng, patient = p.rng, p.patient
    # Checks and the order in the quarter hour before the appointment; dosing on time, so the
    # infusion ends when the planner expected and the CBT session falls in its window.
    started = _start(db, p, row, at - timedelta(minutes=15), staff)
    _order(
        db,
        p,
        row,
        at - timedelta(minutes=15),
        started["weight"],
        STEPS[min(number, len(STEPS)) - 1],
        staff,
    )
    dose_at = at
    dose_end = dose_at + timedelta(minutes=DOSE_MINUTES)
    last = until or dose_end + timedelta(minutes=OBSERVE_MINUTES)
    row.dose_started_at = dose_at
    db.add(_event(row, "dose_started", dose_at, staff.nurse))
    surge = surge or rng.choice([8, 12, 16, 22, 45])
    alerted = _vitals(db, p, row, dose_at, last, surge, staff)
    for alert_id, raised in alerted:
        if raised + timedelta(minutes=3) > last or until is not None:
            continue  # today's alerts wait for the nurse
        db.add(
            _event(
                row,
                "alert_ack",
                raised + timedelta(minutes=3),
                staff.nurse,
                "Rechecked manually, patient calm; infusion paused 5 minutes, BP falling.",
                alert_id=alert_id,
            )
        )
    if dose_at + timedelta(minutes=20) <= last:
        _scale(
            db,
            patient,
            row,
            "moaas",
            [rng.choice([4, 5, 5])],
            dose_at + timedelta(minutes=20),
            staff.nurse,
        )
        _scale(
            db,
            patient,
            row,
            "cadss",
            _cadss(rng, 0.9),
            dose_at + timedelta(minutes=30),
            staff.nurse,
        )
    if surge >= 45 and alerted:
        db.add(
            _adverse(
                row,
                patient,
                "hypertension",
                "moderate",
                dose_at + timedelta(minutes=35),
                "Infusion paused 5 minutes; BP settled without treatment.",
                staff,
            )
        )
    elif rng.random() < 0.25:
        db.add(
            _adverse(
                row,
                patient,
                "nausea",
                "mild",
                dose_at + timedelta(minutes=25),
                "Ondansetron 4 mg IV.",
                staff,
            )
        )
    if until is not None and until < dose_end:
        return
    row.dose_ended_at = dose_end
    db.add(_event(row, "dose_ended", dose_end, staff.nurse))
    if dip:
        _transient_hypotension(db, p, row, dose_end + timedelta(minutes=15), staff)
    if until is not None and until < dose_end + timedelta(minutes=60):
        return
    moaas = _scale(db, patient, row, "moaas", [5], dose_end + timedelta(minutes=55), staff.nurse)
    cadss = _scale(
        db,
        patient,
        row,
        "cadss",
        _cadss_resolved(rng),
        dose_end + timedelta(minutes=56),
        staff.nurse,
    )
    if not sign:
        return
    samples = db.scalars(
        select(VitalSample)
        .where(VitalSample.session_id == row.id, VitalSample.measured_at >= dose_at)
        .order_by(VitalSample.measured_at, VitalSample.id)
    ).all()
    assert row.baseline is not None
    signed_at = dose_end + timedelta(minutes=OBSERVE_MINUTES + 2)
    inputs = DischargeInputs(
        minutes_since_end=(signed_at - dose_end).total_seconds() / 60,
        minutes_since_start=(signed_at - dose_at).total_seconds() / 60,
        **post_dose_readings(samples, dose_at, dose_end),
        baseline_systolic=row.baseline["systolic"],
        baseline_diastolic=row.baseline["diastolic"],
        baseline_heart_rate=row.baseline["heart_rate"],
        on_room_air=True,
        moaas=moaas,
        oriented=True,
        ambulating=True,
        cadss_total=cadss,
        escort_confirmed=True,
        driving_counselling_documented=True,
    )
    result = discharge_check(inputs, PROTOCOL, p.settings.monitoring)
    row.discharge = {**result.to_json_dict(), "inputs": asdict(inputs), "override_reason": None}
    if not result.allowed:
        row.discharge["override_reason"] = "Reviewed by the prescriber before discharge."
    row.status = "completed"
    row.ended_at = signed_at
    row.signed_by = staff.nurse
    row.signed_at = signed_at


def _adverse(
    row: TreatmentSession,
    patient: Patient,
    code: str,
    severity: str,
    at: datetime,
    action: str,
    staff: Staff,
) -> AdverseEvent:
    return AdverseEvent(
        clinic_id=row.clinic_id,
        session_id=row.id,
        patient_id=patient.id,
        code=code,
        severity=severity,
        serious=False,
        onset_at=at,
        action=action,
        outcome="resolved",
        knowledge_version=knowledge_version(),
        recorded_by=staff.nurse,
        recorded_at=at + timedelta(minutes=3),
    )


NOTES = [
    ("organisation_planning", "Weekly planner set up; broke the tax return into three steps."),
    ("psychoeducation", "ADHD and executive function; what the infusions can and cannot do."),
    (
        "cognitive_restructuring",
        "Worked on 'I always fail at deadlines'; evidence for and against.",
    ),
    ("distractibility", "Phone out of the room for 25-minute work blocks; a distraction log."),
    ("infusion_integration", "Talked through the imagery of the last infusion and what it meant."),
    ("procrastination", "Started the dreaded task for five minutes; noticed the relief."),
]


def _therapy_note(
    rng: random.Random,
    number: int,
    row: TherapySession,
    infusion: TreatmentSession,
    settings: EffectiveSettings,
    therapist: int,
) -> None:
    focus, worked = NOTES[(number - 1) % len(NOTES)]
    note = TherapyNote.model_validate(
        {
            "attendance": "attended",
            "minutes": row.minutes or 50,
            "techniques": sorted({focus, "psychoeducation"}),
            "focus": focus,
            "worked_on": worked,
            "homework": rng.choice(
                ["Use the planner daily.", "Two 25-minute blocks a day.", "Note one win a day."]
            ),
            "patient_words": rng.choice(
                [None, "Felt calmer afterwards.", "The day after was foggy, then clearer."]
            ),
            "risk_check": {"asked": True, "result": "none"},
            "plan_next": "Review the homework; continue with the same focus.",
        }
    )
    window = window_status(
        infusion.id,
        row.scheduled_at,
        infusion.dose_ended_at,
        infusion.scheduled_at,
        settings.monitoring.cbt_window_start_hours,
        settings.monitoring.cbt_window_end_hours,
    )
    row.note = {
        **note.model_dump(mode="json"),
        "knowledge_version": knowledge_version(),
        "window": window.model_dump(mode="json"),
    }
    row.status = "completed"
    row.therapist_id = therapist
    row.signed_at = row.scheduled_at + timedelta(minutes=(row.minutes or 50) + 10)


# When each of today's situations is booked, relative to now.
TODAY_AT = {
    "running": timedelta(minutes=-35),
    "awaiting_signoff": timedelta(minutes=-130),
    "due": timedelta(minutes=-5),
    "risk_flag": timedelta(minutes=50),
}


def treat(
    db: Session,
    rng: random.Random,
    patient: Patient,
    course_start: date,
    now: datetime,
    users: dict[Role, User],
    settings: EffectiveSettings,
    today: Today,
) -> None:
    """Plan the patient's course from ``course_start`` and record everything up to ``now``."""
    staff = staff_of(users)
    planner_actor = Actor(patient.clinic_id, Role.PRESCRIBER, "demo", staff.prescriber)
    plan = _new_plan(
        settings, CourseCreate(protocol_id=PROTOCOL, start_date=course_start), course_start
    )
    planned_at = datetime.combine(course_start, datetime.min.time(), tzinfo=now.tzinfo)
    course, rows, therapy = store_plan(
        db, patient, plan, planner_actor, planned_at - timedelta(days=2)
    )
    p = _Patient(db, rng, patient, settings)
    ordered = [row for _number, row in sorted(rows.items())]
    numbers = {row.id: number for number, row in rows.items()}
    at_today = now + TODAY_AT[today.kind] if today.kind in TODAY_AT else None
    if at_today is None:
        past = [r for r in ordered if r.scheduled_at + timedelta(hours=3) <= now]
    else:
        # Today's situation replaces the next planned infusion (the clinic moved it to today);
        # the infusions before it were dosed at least the minimum interval earlier.
        gap = timedelta(hours=get_protocol(PROTOCOL).course.min_gap_hours.value)  # type: ignore[union-attr]
        past = [r for r in ordered if r.scheduled_at <= at_today - gap]
    for row in past:
        # One past infusion shows a transient drop in blood pressure after dosing.
        dip = today.kind == "awaiting_signoff" and numbers[row.id] == 1
        _infusion(db, p, row, row.scheduled_at, numbers[row.id], staff, dip=dip)
    upcoming = ordered[len(past) :]
    if at_today is not None and upcoming:
        row = upcoming[0]
        number = numbers[row.id]
        _move(row, at_today, upcoming[1:], therapy)
        if today.kind == "running":
            # Dosing for 35 minutes; the 30-minute reading rose 40 mmHg over baseline.
            _infusion(db, p, row, row.scheduled_at, number, staff, until=now, surge=56)
        elif today.kind == "awaiting_signoff":
            _infusion(db, p, row, row.scheduled_at, number, staff, until=now, sign=False)
            _booked_too_soon(db, p, row, now, staff)
        elif today.kind in ("due", "risk_flag"):
            _weighed_yesterday(db, p, now, staff)
            if today.kind == "risk_flag":
                _risk_flag(db, patient, now - timedelta(hours=20))
    db.flush()
    for cbt in therapy:
        infusion = next((r for r in rows.values() if r.id == cbt.follows_session_id), None)
        if infusion is not None and infusion.signed_at is not None and cbt.scheduled_at < now:
            _therapy_note(rng, _number(cbt.plan_key), cbt, infusion, settings, staff.therapist)
    if all(r.signed_at is not None for r in rows.values()):
        course.status = "completed"
    db.flush()


def _move(
    row: TreatmentSession,
    at: datetime,
    later: list[TreatmentSession],
    therapy: list[TherapySession],
) -> None:
    """Move ``row`` to ``at``; the infusions after it move as much later, if it moved later,
    so the planned intervals stay; each CBT session follows its infusion."""
    delta = at - row.scheduled_at
    moved: dict[int, timedelta] = {}
    row.scheduled_at = at
    if delta > timedelta(0):
        for r in later:
            r.scheduled_at += delta
            moved[r.id] = delta
    for cbt in therapy:
        if cbt.follows_session_id == row.id:
            cbt.scheduled_at = at + timedelta(hours=26)
        elif cbt.follows_session_id in moved:
            cbt.scheduled_at += moved[cbt.follows_session_id]


def _weighed_yesterday(db: Session, p: _Patient, now: datetime, staff: Staff) -> None:
    db.add(
        BodyMeasurement(
            clinic_id=p.patient.clinic_id,
            patient_id=p.patient.id,
            measured_at=now - timedelta(days=1),
            weight_kg=round(p.weight, 1),
            recorded_by=staff.nurse,
            recorded_at=now - timedelta(days=1),
        )
    )


def _risk_flag(db: Session, patient: Patient, at: datetime) -> None:
    """A PHQ-9 self-report the evening before the infusion with item 9 above "Not at all": an
    open risk flag the prescriber decides on before the dose."""
    result = score("phq9", [2, 2, 1, 2, 1, 1, 1, 0, 1])
    db.add(assessment_row(patient, result, source="self_report", at=at, recorded_by=None))


def _booked_too_soon(
    db: Session, p: _Patient, dosed: TreatmentSession, now: datetime, staff: Staff
) -> None:
    """A second infusion booked for later today by mistake: the prescriber's order for it is
    refused, the previous dose having started this morning."""
    patient = p.patient
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id=PROTOCOL,
        scheduled_at=now + timedelta(minutes=90),
        status="scheduled",
        created_by=staff.nurse,
        created_at=now - timedelta(days=1),
    )
    db.add(row)
    db.flush()
    assert dosed.dose_started_at is not None
    ordered_at = now - timedelta(minutes=10)
    interval = dose_interval(
        get_protocol(PROTOCOL), dosed.dose_started_at, row.scheduled_at, p.settings.timezone
    )
    weight = round(p.weight, 1)
    order = calculate_order(
        PROTOCOL,
        weight,
        0.5,
        DOSE_MINUTES,
        bag_volume_ml=100,
        weight_measured_on=_clinic_day(p, ordered_at),
        today=_clinic_day(p, ordered_at),
        previous_mg_per_kg=p.previous,
        settings=p.settings.dosing(PROTOCOL),
    )
    output = apply_interval(order.to_json_dict(), interval, None)
    db.add(
        DoseOrder(
            clinic_id=row.clinic_id,
            session_id=row.id,
            status=output["status"],
            dose_mg=output["dose_mg"],
            mg_per_kg=output["mg_per_kg"],
            inputs={
                "mg_per_kg": 0.5,
                "minutes": DOSE_MINUTES,
                "bag_volume_ml": 100,
                "weight_kg": weight,
                "weight_measured_on": _clinic_day(p, ordered_at).isoformat(),
                "previous_mg_per_kg": p.previous,
                "previous_dose_at": dosed.dose_started_at.isoformat(),
                "today": _clinic_day(p, ordered_at).isoformat(),
            },
            output=output,
            knowledge_version=order.knowledge_version,
            ordered_by=staff.prescriber,
            ordered_at=ordered_at,
        )
    )


def _number(key: str | None) -> int:
    return int((key or "x-1").rsplit("-", 1)[1])
