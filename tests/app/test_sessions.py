"""Dosing sessions: the blood-pressure gate, device batches of vital signs, alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.app.test_courses import consent as consent_record
from tests.app.test_courses import review as signed_review
from tests.conftest import ClinicWorld, ready_for_dosing

from ketacare.app import sessions as uc
from ketacare.app.errors import Forbidden, InvalidInput, NotFound
from ketacare.app.permissions import Role
from ketacare.store.models import (
    MedicationEntry,
    VitalSample,
)
from ketacare.store.types import utcnow

NOW = datetime.now(UTC)


# Answers and readings that pass every pre-dose check but the blood pressure.
PASSING = {
    "fasting": "yes",
    "escort": "yes",
    "pregnancy": "not_pregnant",
    "heart_rate": 72,
    "spo2": 98,
    "respiratory_rate": 14,
}


def scheduled(db: Session, world: ClinicWorld) -> int:
    patient = world.patients[0]
    ready_for_dosing(db, patient)
    if not patient_medicines(db, patient.id):
        # A medicine with no known interaction: the re-screen proceeds.
        db.add(
            MedicationEntry(
                clinic_id=patient.clinic_id, patient_id=patient.id, name_entered="ibuprofen 400 mg"
            )
        )
        db.commit()
    return uc.create_session(
        db, world.actor(Role.NURSE), patient.id, uc.SessionCreate(scheduled_at=NOW)
    ).id


def patient_medicines(db: Session, patient_id: int) -> list[str]:
    return list(
        db.scalars(
            select(MedicationEntry.name_entered).where(MedicationEntry.patient_id == patient_id)
        )
    )


def started(db: Session, world: ClinicWorld, systolic: float = 124, diastolic: float = 78) -> int:
    sid = scheduled(db, world)
    uc.start_session(
        db,
        world.actor(Role.NURSE),
        sid,
        uc.PreCheck(systolic=systolic, diastolic=diastolic, **PASSING),  # type: ignore[arg-type]
    )
    return sid


@pytest.mark.parametrize(
    ("systolic", "diastolic", "role", "extra", "outcome"),
    [
        (139, 89, Role.NURSE, {}, "proceed"),
        (140, 85, Role.NURSE, {}, "acknowledge_caution"),
        (140, 85, Role.NURSE, {"acknowledge_caution": True}, "caution"),
        (150, 100, Role.NURSE, {"override_reason": "Rechecked, anxious, usual BP"}, Forbidden),
        (150, 100, Role.PRESCRIBER, {}, "override_reason"),
        (150, 100, Role.PRESCRIBER, {"override_reason": "Rechecked twice, white-coat"}, "hold"),
        (180, 90, Role.PRESCRIBER, {"override_reason": "no override is possible here"}, "systolic"),
        (
            120,
            110,
            Role.PRESCRIBER,
            {"override_reason": "no override is possible here"},
            "systolic",
        ),
    ],
)
def test_the_blood_pressure_gate_decides_who_may_start(
    db: Session,
    world_a: ClinicWorld,
    systolic: float,
    diastolic: float,
    role: Role,
    extra: dict[str, object],
    outcome: object,
) -> None:
    sid = scheduled(db, world_a)
    check = uc.PreCheck(systolic=systolic, diastolic=diastolic, **PASSING, **extra)  # type: ignore[arg-type]
    if outcome is Forbidden:
        with pytest.raises(Forbidden):
            uc.start_session(db, world_a.actor(role), sid, check)
    elif outcome in ("proceed", "caution", "hold"):
        out = uc.start_session(db, world_a.actor(role), sid, check)
        assert out.status == "in_progress"
        assert out.gate is not None
        assert out.gate["band"] == outcome
    else:
        with pytest.raises(InvalidInput) as err:
            uc.start_session(db, world_a.actor(role), sid, check)
        assert err.value.field == outcome


def test_a_device_batch_stores_the_valid_samples_and_reports_the_impossible_one(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = started(db, world_a)
    batch = uc.VitalsBatch(
        samples=[
            {
                "measured_at": NOW - timedelta(minutes=10),
                "systolic": 130,
                "diastolic": 80,
                "heart_rate": 82,
                "spo2": 98,
                "sample_key": "pump-1",
            },
            {
                "measured_at": NOW - timedelta(minutes=5),
                "systolic": 80,
                "diastolic": 120,
                "sample_key": "pump-2",
            },
            {"measured_at": NOW - timedelta(minutes=4), "heart_rate": 400, "sample_key": "pump-3"},
            {
                "measured_at": NOW,
                "systolic": 168,
                "diastolic": 104,
                "spo2": 90,
                "sample_key": "pump-4",
            },
        ]
    )  # type: ignore[arg-type]
    out = uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, batch)
    assert len(out.stored) == 2
    assert [(r.index, r.field, r.code) for r in out.rejected] == [
        (1, "diastolic", "diastolic_not_below_systolic"),
        (2, "heart_rate", "out_of_range"),
    ]
    codes = {a.code for a in out.alerts}
    # +44 systolic and +26 diastolic over the 124/78 baseline; SpO2 90 below 92.
    assert {a.field for a in out.alerts} >= {"systolic", "diastolic", "spo2"}
    assert all(a.vital_sample_id == out.stored[1] for a in out.alerts), codes
    again = uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, batch)
    assert again.stored == []
    assert again.duplicates == [0, 3]
    assert db.scalar(select(func.count()).select_from(VitalSample)) == 2
    detail = uc.get_session(db, world_a.actor(Role.THERAPIST), sid)
    assert [v.systolic for v in detail.vitals] == [130, 168]
    assert len(detail.alerts) == len(out.alerts)


def test_vitals_are_refused_before_the_session_starts(db: Session, world_a: ClinicWorld) -> None:
    sid = scheduled(db, world_a)
    batch = uc.VitalsBatch(samples=[{"measured_at": NOW, "heart_rate": 70}])  # type: ignore[list-item]
    with pytest.raises(InvalidInput) as err:
        uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, batch)
    assert err.value.field == "status"


def test_a_sample_from_the_future_is_rejected(db: Session, world_a: ClinicWorld) -> None:
    sid = started(db, world_a)
    batch = uc.VitalsBatch(samples=[{"measured_at": NOW + timedelta(hours=1), "heart_rate": 70}])  # type: ignore[list-item]
    out = uc.ingest_vitals(db, world_a.actor(Role.NURSE), sid, batch)
    assert [r.field for r in out.rejected] == ["measured_at"]


def test_another_clinics_session_is_not_found(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    sid = started(db, world_b)
    with pytest.raises(NotFound):
        uc.get_session(db, world_a.actor(Role.PRESCRIBER), sid)


def test_a_plannable_protocol_is_required(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(InvalidInput) as err:
        uc.create_session(
            db,
            world_a.actor(Role.NURSE),
            world_a.patients[0].id,
            uc.SessionCreate(protocol_id="oral-ketamine", scheduled_at=NOW),
        )
    assert err.value.field == "protocol_id"


# --- the point of care: interactions, refusals on the record, risk flags ----------------------


def _with_medicines(db: Session, world: ClinicWorld, *names: str) -> int:
    patient = world.patients[0]
    ready_for_dosing(db, patient)
    for name in names:
        db.add(
            MedicationEntry(clinic_id=patient.clinic_id, patient_id=patient.id, name_entered=name)
        )
    db.commit()
    return uc.create_session(
        db, world.actor(Role.NURSE), patient.id, uc.SessionCreate(scheduled_at=NOW)
    ).id


def _events(db: Session, world: ClinicWorld, sid: int) -> list[uc.EventOut]:
    return uc.get_session(db, world.actor(Role.NURSE), sid).events


def test_a_contraindicated_combination_refuses_the_start_with_no_override(
    db: Session, world_a: ClinicWorld
) -> None:
    # Phenelzine (Nardil) with amphetamine (Adderall): contraindicated, as at intake.
    sid = _with_medicines(db, world_a, "Nardil 15 mg three times daily", "Adderall XR 20 mg")
    check = uc.PreCheck(
        systolic=124,
        diastolic=78,
        **PASSING,  # type: ignore[arg-type]
        acknowledge_caution=True,
        override_reason="Discussed with the patient, BP stable for months",
    )
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, world_a.actor(Role.PRESCRIBER), sid, check)
    assert err.value.field == "interactions"
    assert "Contraindicated" in err.value.message and "no override" in err.value.message
    detail = uc.get_session(db, world_a.actor(Role.NURSE), sid)
    assert detail.status == "scheduled"
    refused = [e for e in detail.events if e.kind == "start_refused"]
    assert len(refused) == 1 and refused[0].detail is not None
    assert refused[0].detail["code"] == "interaction_contraindicated"
    findings = refused[0].detail["prechecks"]["checks"][3]["detail"]["findings"]
    assert "adhd-stimulant-with-maoi" in {f["rule_id"] for f in findings}


@pytest.mark.parametrize(
    "medicine", ["lorazepam 1 mg at night", "Vyvanse 50 mg", "phenelzine 15 mg", "oxycodone 5 mg"]
)
def test_a_label_named_interaction_needs_the_monitoring_change_written_down(
    db: Session, world_a: ClinicWorld, medicine: str
) -> None:
    sid = _with_medicines(db, world_a, medicine)
    nurse = world_a.actor(Role.NURSE)
    base = {"systolic": 124, "diastolic": 78, **PASSING}
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, nurse, sid, uc.PreCheck(**base, acknowledge_caution=True))  # type: ignore[arg-type]
    assert err.value.field == "monitoring_plan"
    assert "Spravato label" in err.value.message
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, nurse, sid, uc.PreCheck(**base, monitoring_plan="BP q5 min x 40 min"))  # type: ignore[arg-type]
    assert err.value.field == "acknowledge_caution"
    plan = "BP every 5 min for the first 40 min; SpO2 continuous"
    out = uc.start_session(
        db,
        nurse,
        sid,
        uc.PreCheck(**base, acknowledge_caution=True, monitoring_plan=plan),  # type: ignore[arg-type]
    )
    assert out.status == "in_progress"
    assert out.prechecks is not None and out.prechecks["monitoring_plan"] == plan
    started = next(e for e in _events(db, world_a, sid) if e.kind == "started")
    assert started.detail is not None and started.detail["monitoring_plan"] == plan


def test_a_medicine_the_label_does_not_name_needs_no_monitoring_plan(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = _with_medicines(db, world_a, "sertraline 100 mg")
    out = uc.start_session(
        db,
        world_a.actor(Role.NURSE),
        sid,
        uc.PreCheck(systolic=124, diastolic=78, **PASSING),  # type: ignore[arg-type]
    )
    assert out.prechecks is not None and out.prechecks["monitoring_plan"] is None


def test_a_blood_pressure_refusal_stays_on_the_record_and_a_later_start_must_own_it(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = scheduled(db, world_a)
    nurse, prescriber = world_a.actor(Role.NURSE), world_a.actor(Role.PRESCRIBER)
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, nurse, sid, uc.PreCheck(systolic=185, diastolic=112, **PASSING))  # type: ignore[arg-type]
    assert err.value.field == "systolic" and "do not dose today" in err.value.message
    # The refused attempt was rolled back, the refusal itself was not.
    refused = [e for e in _events(db, world_a, sid) if e.kind == "start_refused"]
    assert len(refused) == 1 and refused[0].detail is not None
    assert refused[0].detail["readings"]["systolic"] == 185
    assert refused[0].detail["readings"]["diastolic"] == 112
    assert refused[0].detail["gate"]["band"] == "refuse"
    assert refused[0].detail["code"] == "bp_refuse"

    # A minute later 150/92 (a caution reading): the earlier refusal must be acknowledged, and
    # as the gate said "do not dose today", only a prescriber decides, with the reason.
    again = {"systolic": 150, "diastolic": 92, **PASSING, "acknowledge_caution": True}
    with pytest.raises(InvalidInput) as err:
        uc.start_session(
            db,
            prescriber,
            sid,
            uc.PreCheck(**again, override_reason="Rechecked after rest"),  # type: ignore[arg-type]
        )
    assert err.value.field == "acknowledge_refusal"
    assert "185/112" in err.value.message
    with pytest.raises(Forbidden):
        uc.start_session(db, nurse, sid, uc.PreCheck(**again, acknowledge_refusal=True))  # type: ignore[arg-type]
    out = uc.start_session(
        db,
        prescriber,
        sid,
        uc.PreCheck(
            **again,  # type: ignore[arg-type]
            acknowledge_refusal=True,
            override_reason="Repeat after 15 min rest 150/92; known white-coat rise",
        ),
    )
    assert out.status == "in_progress" and out.prechecks is not None
    assert out.prechecks["acknowledged_refusal"] is True
    assert [e.kind for e in _events(db, world_a, sid)] == ["start_refused", "started"]


def test_a_blood_pressure_hold_not_overridden_is_recorded_too(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = scheduled(db, world_a)
    with pytest.raises(Forbidden):
        uc.start_session(
            db,
            world_a.actor(Role.NURSE),
            sid,
            uc.PreCheck(systolic=164, diastolic=96, **PASSING),  # type: ignore[arg-type]
        )
    (event,) = _events(db, world_a, sid)
    assert event.kind == "start_refused" and event.detail is not None
    assert (event.detail["code"], event.detail["gate"]["band"]) == ("bp_hold", "hold")


def _phq9_item9(db: Session, world: ClinicWorld, answer: int = 1) -> int:
    from ketacare.app.assessments import AssessmentCreate, record_assessment

    return record_assessment(
        db,
        world.actor(Role.NURSE),
        world.patients[0].id,
        AssessmentCreate(instrument="phq9", answers=[2, 2, 1, 1, 1, 1, 1, 0, answer]),
    ).id


def test_an_open_phq9_item9_flag_refuses_the_start_until_a_prescriber_decides(
    db: Session, world_a: ClinicWorld
) -> None:
    from ketacare.app.assessments import acknowledge_flag

    sid = scheduled(db, world_a)
    assessment = _phq9_item9(db, world_a)
    nurse, prescriber = world_a.actor(Role.NURSE), world_a.actor(Role.PRESCRIBER)
    # A chart acknowledgement by the nurse does not release the dose: the prescriber decides.
    acknowledge_flag(db, nurse, world_a.patients[0].id, assessment, "Called, safety plan read")
    check = uc.PreCheck(systolic=124, diastolic=78, **PASSING, acknowledge_caution=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, prescriber, sid, check)
    assert err.value.field == "risk_flags"
    assert 'PHQ-9 question 9, "Thoughts that you would be better off dead' in err.value.message
    assert 'answered "Several days"' in err.value.message
    from ketacare.app import point_of_care as poc

    shown = poc.point_of_care(db, nurse, sid).risk_flags
    assert [f.key for f in shown] == [f"assessment:{assessment}"]
    decision = poc.RiskDecisionIn(
        decision="proceed",
        reason="C-SSRS screen: passive ideation only, no plan; safety plan in place",
        flags=[shown[0].key],
    )
    with pytest.raises(Forbidden):
        poc.record_risk_decision(db, nurse, sid, decision)
    out = poc.record_risk_decision(db, prescriber, sid, decision)
    assert out.flags == [f"assessment:{assessment}"]
    assert poc.point_of_care(db, nurse, sid).risk_flags == []
    started = uc.start_session(db, nurse, sid, check)
    assert started.status == "in_progress"
    kinds = [e.kind for e in _events(db, world_a, sid)]
    assert kinds == ["start_refused", "risk_decision", "started"]


def test_a_deferral_keeps_the_dose_refused_and_says_so(db: Session, world_a: ClinicWorld) -> None:
    from ketacare.app import point_of_care as poc

    sid = scheduled(db, world_a)
    _phq9_item9(db, world_a, answer=3)
    prescriber = world_a.actor(Role.PRESCRIBER)
    key = poc.point_of_care(db, prescriber, sid).risk_flags[0].key
    poc.record_risk_decision(
        db,
        prescriber,
        sid,
        poc.RiskDecisionIn(decision="defer", reason="Urgent psychiatric review first", flags=[key]),
    )
    with pytest.raises(InvalidInput) as err:
        uc.start_session(
            db,
            prescriber,
            sid,
            uc.PreCheck(systolic=124, diastolic=78, **PASSING),  # type: ignore[arg-type]
        )
    assert (
        "deferred dosing" in err.value.message and "Urgent psychiatric review" in err.value.message
    )
    refused = [e for e in _events(db, world_a, sid) if e.kind == "start_refused"]
    assert refused[-1].detail is not None
    assert refused[-1].detail["code"] == "risk_decision_deferred"


def test_a_cbt_notes_urgent_risk_reaches_the_next_infusion_critical_first(
    db: Session, world_a: ClinicWorld
) -> None:
    from ketacare.app import point_of_care as poc
    from ketacare.store.models import TherapySession

    sid = scheduled(db, world_a)
    _phq9_item9(db, world_a)
    patient = world_a.patients[0]
    db.add(
        TherapySession(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            scheduled_at=NOW - timedelta(days=2),
            status="completed",
            signed_at=NOW - timedelta(days=2),
            note={
                "attendance": "attended",
                "minutes": 50,
                "risk_check": {
                    "asked": True,
                    "result": "active_ideation",
                    "action": "C-SSRS done, crisis line given",
                },
            },
        )
    )
    db.commit()
    flags = poc.point_of_care(db, world_a.actor(Role.NURSE), sid).risk_flags
    # The older CBT flag is critical, so it comes first.
    assert [(f.kind, f.level) for f in flags] == [("therapy", "critical"), ("assessment", "urgent")]
    assert flags[0].words.startswith("CBT risk check: Active ideation")
    assert "tell the prescriber before any further infusion" in flags[0].instruction
    with pytest.raises(InvalidInput) as err:
        uc.start_session(
            db,
            world_a.actor(Role.NURSE),
            sid,
            uc.PreCheck(systolic=124, diastolic=78, **PASSING),  # type: ignore[arg-type]
        )
    assert err.value.field == "risk_flags"
    assert err.value.message.index("CRITICAL") < err.value.message.index("URGENT")


def test_a_decision_names_only_open_flags_of_the_patient(db: Session, world_a: ClinicWorld) -> None:
    from ketacare.app import point_of_care as poc

    sid = scheduled(db, world_a)
    with pytest.raises(InvalidInput) as err:
        poc.record_risk_decision(
            db,
            world_a.actor(Role.PRESCRIBER),
            sid,
            poc.RiskDecisionIn(
                decision="proceed", reason="Nothing to see here", flags=["assessment:999"]
            ),
        )
    assert err.value.field == "flags"


def test_the_worklist_shows_each_patients_open_risk_flags_in_words(
    db: Session, world_a: ClinicWorld
) -> None:
    scheduled(db, world_a)
    _phq9_item9(db, world_a)
    page = uc.worklist(
        db, world_a.actor(Role.NURSE), NOW.astimezone(ZoneInfo("America/Toronto")).date()
    )
    (item,) = page.items
    assert [f.level for f in item.risk_flags] == ["urgent"]
    assert item.risk_flags[0].words.startswith("PHQ-9 question 9")


def test_the_demo_doses_no_patient_inside_the_interval_and_shows_the_refusal_and_a_flag(
    db: Session,
) -> None:
    from ketacare.app import demo
    from ketacare.app import point_of_care as poc
    from ketacare.app.permissions import Actor
    from ketacare.store.models import DoseOrder, TreatmentSession

    now = datetime.now(UTC)
    clinic_id = demo.load_demo(db, now=now).clinic_id
    doses: dict[int, list[datetime]] = {}
    for patient_id, started in db.execute(
        select(TreatmentSession.patient_id, TreatmentSession.dose_started_at).where(
            TreatmentSession.clinic_id == clinic_id, TreatmentSession.dose_started_at.is_not(None)
        )
    ):
        doses.setdefault(patient_id, []).append(started)
    gaps = [b - a for times in map(sorted, doses.values()) for a, b in pairwise(times)]
    assert gaps and min(gaps) >= timedelta(hours=48)
    # A second infusion booked today for a patient dosed this morning: its order was refused.
    refused = db.scalars(
        select(DoseOrder).where(DoseOrder.clinic_id == clinic_id, DoseOrder.status == "refused")
    ).all()
    assert [r["code"] for o in refused for r in o.output["refusals"]] == ["interval_too_short"]
    # Today's worklist shows a patient's risk flag on the infusion it waits for.
    actor = Actor(clinic_id, Role.SYSTEM, "test")
    day = now.astimezone(ZoneInfo("America/Toronto")).date()
    flagged = [i for i in uc.worklist(db, actor, day).items if i.risk_flags]
    assert [i.session.status for i in flagged] == ["scheduled"]
    assert (
        poc.point_of_care(db, actor, flagged[0].session.id)
        .risk_flags[0]
        .words.startswith("PHQ-9 question 9")
    )


# --- a signed eligible review and consent, at every start ---------------------------------------


def _without_programme(db: Session, world: ClinicWorld) -> int:
    """A scheduled session of a patient with no review and no consent on record."""
    patient = world.patients[1]
    db.add(MedicationEntry(clinic_id=patient.clinic_id, patient_id=patient.id, name_entered="tea"))
    db.commit()
    return uc.create_session(
        db, world.actor(Role.NURSE), patient.id, uc.SessionCreate(scheduled_at=NOW)
    ).id


@pytest.mark.parametrize(
    ("review", "consent", "outcome", "words"),
    [
        (None, None, "no_review", "No signed eligibility review"),
        ("ineligible", "given", "not_eligible", "says ineligible"),
        ("needs_review", "given", "not_eligible", "says needs review"),
        ("eligible", None, "no_consent", "No informed consent"),
        ("eligible", "withdrawn", "consent_withdrawn", "Consent was withdrawn"),
    ],
)
def test_a_dose_needs_a_signed_eligible_review_and_consent_at_the_start(
    db: Session,
    world_a: ClinicWorld,
    review: str | None,
    consent: str | None,
    outcome: str,
    words: str,
) -> None:
    sid = _without_programme(db, world_a)
    patient = world_a.patients[1]
    if review is not None:
        signed_review(db, patient, review)
    if consent is not None:
        consent_record(db, patient, consent)
    check = uc.PreCheck(
        systolic=124,
        diastolic=78,
        **PASSING,  # type: ignore[arg-type]
        acknowledge_caution=True,
        override_reason="Prescriber reviewed the patient in person today",
    )
    # Not even a prescriber's override starts it.
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, world_a.actor(Role.PRESCRIBER), sid, check)
    assert err.value.field == "programme"
    assert words in err.value.message
    detail = uc.get_session(db, world_a.actor(Role.NURSE), sid)
    assert detail.status == "scheduled"
    refused = [e for e in detail.events if e.kind == "start_refused"]
    assert len(refused) == 1 and refused[0].detail is not None
    assert refused[0].detail["code"] == "programme_not_ready"
    programme = next(c for c in refused[0].detail["prechecks"]["checks"] if c["id"] == "programme")
    assert programme["band"] == "refuse"


def test_consent_withdrawn_after_the_course_was_planned_stops_the_next_dose(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = scheduled(db, world_a)  # signed eligible, consent given
    consent_record(db, world_a.patients[0], "withdrawn", utcnow() + timedelta(seconds=1))
    check = uc.PreCheck(systolic=124, diastolic=78, **PASSING)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, world_a.actor(Role.NURSE), sid, check)
    assert err.value.field == "programme"
    assert "Consent was withdrawn" in err.value.message


@pytest.mark.parametrize(
    ("readings", "words"),
    [
        ({"systolic": 78, "diastolic": 46}, "Systolic 78"),  # the gate alone would proceed
        ({"spo2": 86}, "SpO2 86%"),
    ],
)
def test_a_critical_pre_dose_reading_needs_a_prescriber(
    db: Session, world_a: ClinicWorld, readings: dict[str, float], words: str
) -> None:
    sid = scheduled(db, world_a)
    values = {"systolic": 124, "diastolic": 78, **PASSING, **readings}
    with pytest.raises(Forbidden) as err:
        uc.start_session(db, world_a.actor(Role.NURSE), sid, uc.PreCheck(**values))  # type: ignore[arg-type]
    assert words in str(err.value)
    out = uc.start_session(
        db,
        world_a.actor(Role.PRESCRIBER),
        sid,
        uc.PreCheck(
            **values, override_reason="Repeated after 5 minutes at rest; stable, asymptomatic"
        ),  # type: ignore[arg-type]
    )
    assert out.status == "in_progress"
    assert out.prechecks is not None
    check = next(c for c in out.prechecks["checks"] if c["id"] == "readings")
    assert check["band"] == "hold"


def test_pre_dose_readings_not_taken_are_a_caution_never_normal(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = scheduled(db, world_a)
    values = {**PASSING, "spo2": None, "respiratory_rate": None}
    check = uc.PreCheck(systolic=124, diastolic=78, **values)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, world_a.actor(Role.NURSE), sid, check)
    assert err.value.field == "acknowledge_caution"
    assert "Not recorded: SpO2, respiratory rate" in err.value.message
