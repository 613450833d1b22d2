"""A dosing session from order to sign-off: the dose order, second-person check, dose start and
end, scores, adverse events, alerts, discharge, sign-off sealing the record, amendments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tests.app.test_sessions import PASSING, scheduled
from tests.conftest import ClinicWorld

from ketacare.app import session_record as rec
from ketacare.app import sessions as uc
from ketacare.app.errors import Conflict, Forbidden, InvalidInput, NotFound
from ketacare.app.permissions import Role
from ketacare.store.models import (
    AuditEvent,
    BodyMeasurement,
    Clinic,
    MedicationEntry,
    SessionEvent,
    TreatmentSession,
)
from ketacare.store.types import utcnow

ORDER = rec.OrderRequest(mg_per_kg=0.5, minutes=40, bag_volume_ml=100)


def weigh(db: Session, world: ClinicWorld, kg: float = 70.0, days_ago: int = 1) -> None:
    patient = world.patients[0]
    db.add(
        BodyMeasurement(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            measured_at=utcnow() - timedelta(days=days_ago),
            weight_kg=kg,
            height_cm=170.0,
        )
    )
    db.commit()


def running(db: Session, world: ClinicWorld) -> int:
    sid = scheduled(db, world)
    uc.start_session(
        db,
        world.actor(Role.NURSE),
        sid,
        uc.PreCheck(systolic=122, diastolic=76, **PASSING),  # type: ignore[arg-type]
    )
    return sid


def test_the_order_is_calculated_from_the_latest_weight(db: Session, world_a: ClinicWorld) -> None:
    weigh(db, world_a, 80.0, days_ago=20)
    weigh(db, world_a, 70.0, days_ago=2)
    sid = running(db, world_a)
    order = rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    assert order.status == "ordered"
    assert order.dose_mg == 35.0
    # The whole 100 mL bag over 40 minutes: 150 mL/h.
    assert order.output["rate_ml_per_h"] == 150.0
    assert order.inputs["weight_kg"] == 70.0
    assert order.output["steps"], "the calculation is shown step by step"
    assert order.output["settings"]["max_mg_per_kg"] == 1.0


def test_no_weight_refuses_the_order_and_the_refusal_is_recorded(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = running(db, world_a)
    order = rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    assert order.status == "refused"
    assert order.dose_mg is None
    assert [r["field"] for r in order.output["refusals"]] == ["weight_kg"]
    assert rec.session_record(db, world_a.actor(Role.NURSE), sid).orders[0].status == "refused"
    with pytest.raises(InvalidInput) as err:
        rec.start_dose(db, world_a.actor(Role.NURSE), sid)
    assert err.value.field == "order"


def test_a_stale_weight_refuses_the_order(db: Session, world_a: ClinicWorld) -> None:
    weigh(db, world_a, 70.0, days_ago=45)
    sid = running(db, world_a)
    order = rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    assert order.status == "refused"
    assert order.output["refusals"][0]["field"] == "weight_measured_on"


def test_escalation_is_measured_from_the_last_dosed_session(
    db: Session, world_a: ClinicWorld
) -> None:
    weigh(db, world_a)
    first = running(db, world_a)
    rec.order_dose(db, world_a.actor(Role.PRESCRIBER), first, ORDER)
    rec.start_dose(db, world_a.actor(Role.NURSE), first)
    _dose_started_ago(db, first, 72 * 60)  # the previous infusion, three days ago
    second = running(db, world_a)
    jump = rec.OrderRequest(mg_per_kg=1.0, minutes=40, bag_volume_ml=100)
    order = rec.order_dose(db, world_a.actor(Role.PRESCRIBER), second, jump)
    assert order.status == "refused"
    assert order.inputs["previous_mg_per_kg"] == 0.5
    assert any(r["field"] == "mg_per_kg" for r in order.output["refusals"])
    step = rec.OrderRequest(mg_per_kg=0.75, minutes=40, bag_volume_ml=100)
    assert rec.order_dose(db, world_a.actor(Role.PRESCRIBER), second, step).status == "ordered"


def test_only_a_prescriber_orders_and_a_second_person_verifies(
    db: Session, world_a: ClinicWorld
) -> None:
    weigh(db, world_a)
    sid = running(db, world_a)
    with pytest.raises(Forbidden):
        rec.order_dose(db, world_a.actor(Role.NURSE), sid, ORDER)
    order = rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    with pytest.raises(InvalidInput) as err:
        rec.verify_order(db, world_a.actor(Role.PRESCRIBER), sid, order.id)
    assert err.value.field == "verified_by"
    checked = rec.verify_order(db, world_a.actor(Role.NURSE), sid, order.id)
    assert checked.verified_by == world_a.users[Role.NURSE].id
    assert checked.verified_by_name == world_a.users[Role.NURSE].display_name


def test_a_clinic_requiring_a_second_check_refuses_an_unverified_dose(
    db: Session, world_a: ClinicWorld
) -> None:
    clinic = db.get(Clinic, world_a.clinic.id)
    assert clinic is not None
    clinic.settings = {"require_second_check": True}
    db.commit()
    weigh(db, world_a)
    sid = running(db, world_a)
    order = rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    with pytest.raises(InvalidInput) as err:
        rec.start_dose(db, world_a.actor(Role.NURSE), sid)
    assert "second person" in err.value.message
    rec.verify_order(db, world_a.actor(Role.NURSE), sid, order.id)
    assert rec.start_dose(db, world_a.actor(Role.NURSE), sid)["order_id"] == order.id


def test_pause_resume_and_stop_need_reasons_and_keep_their_order(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = running(db, world_a)
    nurse = world_a.actor(Role.NURSE)
    with pytest.raises(InvalidInput) as err:
        uc.pause_session(db, nurse, sid, uc.ReasonIn(reason=""))
    assert err.value.field == "reason"
    assert uc.pause_session(db, nurse, sid, uc.ReasonIn(reason="BP 170/100")).status == "paused"
    assert uc.resume_session(db, nurse, sid, uc.ReasonIn()).status == "in_progress"
    stopped = uc.stop_session(db, nurse, sid, uc.ReasonIn(reason="Patient asked to stop"))
    assert stopped.status == "stopped" and stopped.end_reason == "Patient asked to stop"
    kinds = [e.kind for e in uc.get_session(db, nurse, sid).events]
    assert kinds == ["started", "paused", "resumed", "stopped"]
    # Monitoring goes on after an early stop.
    batch = uc.VitalsBatch(samples=[{"measured_at": utcnow(), "heart_rate": 80}])  # type: ignore[list-item]
    assert len(uc.ingest_vitals(db, nurse, sid, batch).stored) == 1


def test_adverse_events_come_from_the_vocabulary(db: Session, world_a: ClinicWorld) -> None:
    sid = running(db, world_a)
    nurse = world_a.actor(Role.NURSE)
    event = rec.record_adverse_event(
        db,
        nurse,
        sid,
        rec.AdverseEventIn(code="nausea", severity="mild", action="Ondansetron 4 mg IV"),
    )
    assert event.code == "nausea" and event.outcome == "ongoing"
    with pytest.raises(ValueError, match="unknown adverse event"):
        rec.AdverseEventIn(code="sneezing", severity="mild")
    with pytest.raises(ValueError, match="note"):
        rec.AdverseEventIn(code="other", severity="mild")


def test_an_alert_is_acknowledged_once(db: Session, world_a: ClinicWorld) -> None:
    sid = running(db, world_a)
    nurse = world_a.actor(Role.NURSE)
    batch = uc.VitalsBatch(samples=[{"measured_at": utcnow(), "systolic": 185, "diastolic": 90}])  # type: ignore[list-item]
    alert = uc.ingest_vitals(db, nurse, sid, batch).alerts[0]
    rec.acknowledge_alert(db, nurse, sid, alert.id, rec.AlertAckIn(action="Paused, rechecked"))
    assert rec.session_record(db, nurse, sid).acknowledged_alert_ids == [alert.id]
    with pytest.raises(InvalidInput):
        rec.acknowledge_alert(db, nurse, sid, alert.id, rec.AlertAckIn(action="again"))


def _dose_given(db: Session, world: ClinicWorld) -> int:
    weigh(db, world)
    sid = running(db, world)
    rec.order_dose(db, world.actor(Role.PRESCRIBER), sid, ORDER)
    rec.start_dose(db, world.actor(Role.NURSE), sid)
    _dose_started_ago(db, sid, 40)  # the whole infusion ran
    rec.end_dose(db, world.actor(Role.NURSE), sid)
    return sid


def _dose_started_ago(db: Session, sid: int, minutes: float) -> None:
    db.execute(
        update(TreatmentSession)
        .where(TreatmentSession.id == sid)
        .values(
            dose_started_at=utcnow() - timedelta(minutes=minutes),
            version=TreatmentSession.version + 1,
        )
    )
    db.commit()


def _age_the_dose(db: Session, sid: int, minutes: int) -> None:
    """Move dosing into the past, as if ``minutes`` of observation had passed."""
    ended = utcnow() - timedelta(minutes=minutes)
    db.execute(
        update(TreatmentSession)
        .where(TreatmentSession.id == sid)
        .values(
            dose_started_at=ended - timedelta(minutes=40),
            dose_ended_at=ended,
            version=TreatmentSession.version + 1,
        )
    )
    db.commit()


GOOD = {
    "on_room_air": True,
    "oriented": True,
    "ambulating": True,
    "escort_confirmed": True,
    "driving_counselling_documented": True,
}


def _readings(db: Session, world: ClinicWorld, sid: int, *samples: dict[str, Any]) -> None:
    """Readings ``minutes`` after the dose started (``ago``: minutes before now instead)."""
    start = db.scalar(select(TreatmentSession.dose_started_at).where(TreatmentSession.id == sid))
    assert start is not None
    batch = uc.VitalsBatch(
        samples=[
            {
                "measured_at": utcnow() - timedelta(minutes=sample.pop("ago"))
                if "ago" in sample
                else start + timedelta(minutes=sample.pop("minutes")),
                **sample,
            }
            for sample in (dict(s) for s in samples)
        ]  # type: ignore[misc]
    )
    uc.ingest_vitals(db, world.actor(Role.NURSE), sid, batch)


def _recovered(
    db: Session,
    world: ClinicWorld,
    sid: int,
    peak: tuple[float, float] = (138, 84),
    latest: tuple[float, float] = (120, 76),
) -> None:
    """The reading at the 40-minute peak, the latest a minute ago (at or below the pre-dose
    122/76), and the patient alert and no longer dissociated."""
    nurse = world.actor(Role.NURSE)
    _readings(
        db,
        world,
        sid,
        {"minutes": 40, "systolic": peak[0], "diastolic": peak[1], "heart_rate": 80, "spo2": 97},
        {"ago": 1, "systolic": latest[0], "diastolic": latest[1], "heart_rate": 74, "spo2": 98},
    )
    rec.record_score(db, nurse, sid, rec.SessionScoreIn(instrument="moaas", answers=[5]))
    rec.record_score(db, nurse, sid, rec.SessionScoreIn(instrument="cadss", answers=[0] * 23))


def test_discharge_waits_for_the_observation_time(db: Session, world_a: ClinicWorld) -> None:
    sid = _dose_given(db, world_a)
    _age_the_dose(db, sid, 30)
    _recovered(db, world_a, sid)
    check = rec.discharge_preview(db, world_a.actor(Role.NURSE), sid, rec.DischargeForm(**GOOD))
    statuses = {c["id"]: c["status"] for c in check["criteria"]}
    assert statuses["observation_time"] == "not_met"
    assert check["allowed"] is False
    version = uc.get_session(db, world_a.actor(Role.NURSE), sid).version
    with pytest.raises(InvalidInput) as err:
        rec.sign_session(
            db, world_a.actor(Role.NURSE), sid, rec.SignRequest(**GOOD, version=version)
        )
    assert err.value.field == "observation_time"


def test_an_unanswered_criterion_is_unknown_never_met(db: Session, world_a: ClinicWorld) -> None:
    sid = _dose_given(db, world_a)
    _age_the_dose(db, sid, 90)
    _recovered(db, world_a, sid)
    form = {**GOOD, "escort_confirmed": None}
    check = rec.discharge_preview(db, world_a.actor(Role.NURSE), sid, rec.DischargeForm(**form))
    assert {c["id"]: c["status"] for c in check["criteria"]}["escort"] == "unknown"
    assert check["allowed"] is False


def test_sign_off_seals_the_session_and_amendments_follow(
    db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    nurse = world_a.actor(Role.NURSE)
    sid = _dose_given(db, world_a)
    _age_the_dose(db, sid, 90)
    _recovered(db, world_a, sid)
    version = uc.get_session(db, nurse, sid).version
    with pytest.raises(Conflict):
        rec.sign_session(db, nurse, sid, rec.SignRequest(**GOOD, version=version - 1))
    signed = rec.sign_session(db, nurse, sid, rec.SignRequest(**GOOD, version=version))
    assert signed["discharge"]["allowed"] is True
    detail = uc.get_session(db, nurse, sid)
    assert detail.status == "completed" and detail.signed_at is not None
    assert detail.discharge is not None and detail.discharge["inputs"]["moaas"] == 5

    batch = uc.VitalsBatch(samples=[{"measured_at": utcnow(), "heart_rate": 80}])  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        uc.ingest_vitals(db, nurse, sid, batch)
    with pytest.raises(InvalidInput):
        rec.record_adverse_event(db, nurse, sid, rec.AdverseEventIn(code="nausea", severity="mild"))
    # The database itself refuses, whoever connects.
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("UPDATE treatment_sessions SET status = 'x' WHERE id = :i"), {"i": sid})
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vital_samples (clinic_id, session_id, measured_at, received_at, "
                "heart_rate, source) VALUES (:c, :s, :t, :t, 70, 'manual')"
            ),
            {"c": world_a.clinic.id, "s": sid, "t": utcnow().replace(tzinfo=None)},
        )
    amendment = rec.amend_session(
        db, nurse, sid, rec.AmendmentIn(text="Late entry: escort was the patient's sister.")
    )
    assert rec.session_record(db, nurse, sid).amendments[0].id == amendment.id


def test_a_prescriber_may_sign_with_criteria_open_only_with_a_reason(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = _dose_given(db, world_a)
    version = uc.get_session(db, world_a.actor(Role.NURSE), sid).version
    transfer = rec.SignRequest(
        **GOOD, version=version, override_reason="Transferred to the emergency department"
    )
    with pytest.raises(Forbidden):
        rec.sign_session(db, world_a.actor(Role.NURSE), sid, transfer)
    out = rec.sign_session(db, world_a.actor(Role.PRESCRIBER), sid, transfer)
    assert out["discharge"]["allowed"] is False
    assert out["discharge"]["override_reason"] == "Transferred to the emergency department"


# --- discharge blood pressure from the session's own readings ----------------------------------


def _dose_given_at(db: Session, world: ClinicWorld, systolic: int, diastolic: int) -> int:
    """A dose given after a pre-dose reading of ``systolic``/``diastolic`` (a prescriber
    acknowledges a caution and overrides a hold, as the clinic would)."""
    weigh(db, world)
    sid = scheduled(db, world)
    check = uc.PreCheck(
        systolic=systolic,
        diastolic=diastolic,
        acknowledge_caution=True,
        override_reason="Repeated at rest after 10 minutes; known treated hypertension.",
        **PASSING,  # type: ignore[arg-type]
    )
    uc.start_session(db, world.actor(Role.PRESCRIBER), sid, check)
    rec.order_dose(db, world.actor(Role.PRESCRIBER), sid, ORDER)
    rec.start_dose(db, world.actor(Role.NURSE), sid)
    _dose_started_ago(db, sid, 40)  # the whole infusion ran
    rec.end_dose(db, world.actor(Role.NURSE), sid)
    _age_the_dose(db, sid, 90)
    return sid


@pytest.mark.parametrize(
    ("baseline", "peak", "latest", "failed"),
    [
        ((165, 105), (196, 126), (195, 125), {"bp_no_alert_band"}),
        ((150, 95), (176, 110), (178, 112), {"bp_no_alert_band", "bp_at_baseline_or_falling"}),
        (
            (120, 80),
            (110, 70),
            (72, 40),
            {"bp_no_alert_band", "bp_hypotension_floor", "bp_within_baseline_band"},
        ),
    ],
)
def test_blood_pressure_within_20_percent_or_below_140_90_no_longer_discharges(
    db: Session,
    world_a: ClinicWorld,
    baseline: tuple[int, int],
    peak: tuple[int, int],
    latest: tuple[int, int],
    failed: set[str],
) -> None:
    # Every other criterion is met: the blood pressure alone keeps the patient.
    sid = _dose_given_at(db, world_a, *baseline)
    _recovered(db, world_a, sid, peak=peak, latest=latest)
    check = rec.discharge_preview(db, world_a.actor(Role.NURSE), sid, rec.DischargeForm(**GOOD))
    assert check["allowed"] is False
    statuses = {c["id"]: c["status"] for c in check["criteria"]}
    assert {k for k, v in statuses.items() if v != "met"} == failed
    assert {k for k, v in statuses.items() if v == "not_met"} == failed


def test_the_discharge_check_reads_every_blood_pressure_since_the_dose_started(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = _dose_given(db, world_a)
    _age_the_dose(db, sid, 90)  # started 130 minutes ago, ended 90 minutes ago
    _readings(
        db,
        world_a,
        sid,
        {"minutes": -5, "systolic": 124, "diastolic": 78},  # before the dose: not post-dose
        {"minutes": 10, "systolic": 130, "diastolic": 80, "heart_rate": 88},
        {"minutes": 41, "systolic": 150, "diastolic": 92, "heart_rate": 84},
        {"minutes": 80, "systolic": 132, "diastolic": 80, "heart_rate": 76},
        {"minutes": 120, "spo2": 97},  # a later sample without blood pressure or heart rate
    )
    check = rec.discharge_preview(db, world_a.actor(Role.NURSE), sid, rec.DischargeForm(**GOOD))
    inputs = check["inputs"]
    assert [(round(r["minutes_after_start"]), r["after_end"]) for r in inputs["bp_readings"]] == [
        (10, False),
        (41, True),
        (80, True),
    ]
    # The latest heart rate and SpO2 since dosing ended, each from its own latest sample.
    assert (inputs["heart_rate"], inputs["spo2"]) == (76, 97)
    assert round(inputs["minutes_since_start"]) == 130
    statuses = {c["id"]: c for c in check["criteria"]}
    assert statuses["bp_reassessment"]["status"] == "met"
    # 132/80 after 150/92, above the pre-dose 122/76 but falling.
    assert statuses["bp_at_baseline_or_falling"]["status"] == "met"
    assert (
        "but falling: systolic 132 after 150; diastolic 80 after 92"
        in (statuses["bp_at_baseline_or_falling"]["reason"])
    )


def test_readings_during_dosing_only_are_not_a_discharge_blood_pressure(
    db: Session, world_a: ClinicWorld
) -> None:
    sid = _dose_given(db, world_a)
    _age_the_dose(db, sid, 90)
    _readings(db, world_a, sid, {"minutes": 20, "systolic": 140, "diastolic": 86})
    check = rec.discharge_preview(db, world_a.actor(Role.NURSE), sid, rec.DischargeForm(**GOOD))
    criteria = {c["id"]: c for c in check["criteria"]}
    assert criteria["bp_hypotension_floor"]["status"] == "unknown"
    assert criteria["bp_hypotension_floor"]["reason"].startswith(
        "No blood-pressure reading since dosing ended (the latest, 140/86 mmHg 20 min after "
        "the dose started, was during dosing)"
    )
    # The 30-50 minute window has passed without a reading: a missed step.
    assert criteria["bp_reassessment"]["status"] == "not_met"
    assert criteria["heart_rate"]["reason"] == "No heart-rate reading since dosing ended."


# --- acknowledging the alerts of one reading together -----------------------------------------


def _surge(db: Session, world: ClinicWorld) -> tuple[int, list[int]]:
    """A running session and the alerts one reading of 186/104 raised (after 122/76)."""
    sid = running(db, world)
    batch = uc.VitalsBatch(
        samples=[{"measured_at": utcnow(), "systolic": 186, "diastolic": 104, "heart_rate": 135}]  # type: ignore[list-item]
    )
    raised = uc.ingest_vitals(db, world.actor(Role.NURSE), sid, batch).alerts
    return sid, [a.id for a in raised]


def test_the_alerts_of_one_reading_are_acknowledged_together(
    db: Session, world_a: ClinicWorld
) -> None:
    nurse = world_a.actor(Role.NURSE)
    sid, ids = _surge(db, world_a)
    assert len(ids) == 4  # systolic >= 180, heart rate > 130, both rises
    action = "Infusion paused; repeat 160/92 after 5 minutes; prescriber informed"
    out = rec.acknowledge_alerts(db, nurse, sid, rec.AlertsAckIn(alert_ids=ids, action=action))
    db.commit()
    assert out["alert_ids"] == sorted(ids)
    assert rec.session_record(db, nurse, sid).acknowledged_alert_ids == sorted(ids)
    events = db.scalars(
        select(SessionEvent).where(SessionEvent.session_id == sid, SessionEvent.kind == "alert_ack")
    ).all()
    assert sorted(e.detail["alert_id"] for e in events) == sorted(ids)  # type: ignore[index]
    assert {(e.text, e.at) for e in events} == {(action, out["acknowledged_at"])}
    (audit,) = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "session.alert.ack", AuditEvent.outcome == "success"
        )
    ).all()
    assert audit.detail == {"session_id": sid, "alert_ids": sorted(ids)}


def test_acknowledging_together_is_all_or_none(db: Session, world_a: ClinicWorld) -> None:
    nurse = world_a.actor(Role.NURSE)
    sid, ids = _surge(db, world_a)
    other, other_ids = _surge(db, world_a)
    rec.acknowledge_alert(db, nurse, sid, ids[0], rec.AlertAckIn(action="Paused, rechecked"))
    db.commit()
    with pytest.raises(InvalidInput) as err:
        rec.acknowledge_alerts(db, nurse, sid, rec.AlertsAckIn(alert_ids=ids, action="again"))
    assert err.value.field == "alert_ids" and str(ids[0]) in err.value.message
    db.rollback()
    with pytest.raises(NotFound):
        rec.acknowledge_alerts(
            db, nurse, sid, rec.AlertsAckIn(alert_ids=[ids[1], other_ids[0]], action="both")
        )
    db.rollback()
    assert rec.session_record(db, nurse, sid).acknowledged_alert_ids == [ids[0]]
    assert rec.session_record(db, nurse, other).acknowledged_alert_ids == []
    with pytest.raises(Forbidden):
        rec.acknowledge_alerts(
            db,
            world_a.actor(Role.THERAPIST),
            sid,
            rec.AlertsAckIn(alert_ids=ids[1:], action="Seen"),
        )


# --- the minimum interval between doses, at the point of care ---------------------------------


def _previous_dose(db: Session, world: ClinicWorld, hours_ago: float, protocol: str) -> int:
    """Infusion #5 of the patient, dosed ``hours_ago`` (signed, as a finished one is)."""
    patient = world.patients[0]
    started = utcnow() - timedelta(hours=hours_ago)
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id=protocol,
        number=5,
        scheduled_at=started - timedelta(minutes=15),
        status="completed",
        started_at=started - timedelta(minutes=15),
        dose_started_at=started,
        dose_ended_at=started + timedelta(minutes=40),
        signed_at=started + timedelta(hours=2),
    )
    db.add(row)
    db.commit()
    return row.id


def _earliest_local(hours_ago: float) -> str:
    earliest = utcnow() - timedelta(hours=hours_ago) + timedelta(hours=48)
    return earliest.astimezone(ZoneInfo("America/Toronto")).strftime("%a %d %b %Y %H:%M")


def test_an_infusion_ordered_9_hours_after_the_last_is_refused_naming_the_earliest_time(
    db: Session, world_a: ClinicWorld
) -> None:
    weigh(db, world_a)
    _previous_dose(db, world_a, 9, "iv-ketamine")
    # Infusion #6, started as the record had it (the start itself is checked below).
    patient = world_a.patients[0]
    row = TreatmentSession(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        protocol_id="iv-ketamine",
        number=6,
        scheduled_at=utcnow(),
        status="in_progress",
        baseline={"systolic": 122, "diastolic": 76},
        started_at=utcnow(),
    )
    db.add(row)
    db.commit()
    sid = row.id
    prescriber = world_a.actor(Role.PRESCRIBER)
    order = rec.order_dose(db, prescriber, sid, ORDER)
    assert order.status == "refused" and order.dose_mg is None
    (refusal,) = order.output["refusals"]
    assert refusal["code"] == "interval_too_short"
    assert "9.0 h before" in refusal["text"] and "minimum interval is 48 h" in refusal["text"]
    assert _earliest_local(9) in refusal["text"], "the earliest time, in the clinic's zone"
    assert order.output["rate_ml_per_h"] is None, "a refused order carries no pump rate"
    with pytest.raises(InvalidInput) as err:
        rec.start_dose(db, world_a.actor(Role.NURSE), sid)
    assert err.value.field == "order"
    # The IV protocol lets a prescriber override, with the reason; it is kept on the order.
    reason = "Last infusion stopped after 5 min (vomiting); dose not given"
    override = ORDER.model_copy(update={"interval_override_reason": reason})
    with pytest.raises(Forbidden):
        rec.order_dose(db, world_a.actor(Role.NURSE), sid, override)
    ordered = rec.order_dose(db, prescriber, sid, override)
    assert ordered.status == "ordered"
    assert any(
        w["code"] == "interval_override" and reason in w["text"] for w in ordered.output["warnings"]
    )
    assert rec.start_dose(db, world_a.actor(Role.NURSE), sid)["order_id"] == ordered.id


def test_the_start_inside_the_interval_needs_a_prescribers_override(
    db: Session, world_a: ClinicWorld
) -> None:
    _previous_dose(db, world_a, 9, "iv-ketamine")
    sid = scheduled(db, world_a)
    check = uc.PreCheck(systolic=122, diastolic=76, **PASSING)  # type: ignore[arg-type]
    with pytest.raises(Forbidden) as forbidden:
        uc.start_session(db, world_a.actor(Role.NURSE), sid, check)
    assert _earliest_local(9) in forbidden.value.message
    reason = "Repeat dose agreed: the last one was stopped after 5 minutes"
    out = uc.start_session(
        db,
        world_a.actor(Role.PRESCRIBER),
        sid,
        check.model_copy(update={"override_reason": reason}),
    )
    assert out.prechecks is not None and out.prechecks["interval_override"] == reason
    interval = next(c for c in out.prechecks["checks"] if c["id"] == "dose_interval")
    assert interval["band"] == "hold" and interval["outcome"] == "too_soon_override"
    # The override at the start carries over to the order.
    weigh(db, world_a)
    order = rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    assert order.status == "ordered"
    assert [w["code"] for w in order.output["warnings"]] == ["interval_override"]


def test_esketamine_inside_the_interval_is_refused_with_no_override(
    db: Session, world_a: ClinicWorld
) -> None:
    _previous_dose(db, world_a, 30, "intranasal-esketamine")
    patient = world_a.patients[0]
    db.add(
        MedicationEntry(
            clinic_id=patient.clinic_id, patient_id=patient.id, name_entered="ibuprofen 400 mg"
        )
    )
    db.commit()
    sid = uc.create_session(
        db,
        world_a.actor(Role.NURSE),
        patient.id,
        uc.SessionCreate(protocol_id="intranasal-esketamine", scheduled_at=utcnow()),
    ).id
    check = uc.PreCheck(
        systolic=122,
        diastolic=76,
        **PASSING,
        override_reason="Patient travels tomorrow, dose today",  # type: ignore[arg-type]
    )
    with pytest.raises(InvalidInput) as err:
        uc.start_session(db, world_a.actor(Role.PRESCRIBER), sid, check)
    assert err.value.field == "dose_interval"
    assert "allows no override" in err.value.message
    (event,) = uc.get_session(db, world_a.actor(Role.NURSE), sid).events
    assert event.detail is not None and event.detail["code"] == "interval_too_short"
    order = rec.order_dose(
        db,
        world_a.actor(Role.PRESCRIBER),
        sid,
        rec.OrderRequest(dose_mg=56, interval_override_reason="Patient travels tomorrow"),
    )
    assert order.status == "refused"
    assert order.output["refusals"][-1]["code"] == "interval_too_short"


def test_a_dose_start_inside_the_interval_is_refused_and_recorded(
    db: Session, world_a: ClinicWorld
) -> None:
    weigh(db, world_a)
    sid = running(db, world_a)
    order = rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    assert order.status == "ordered"
    # Meanwhile another session of the patient was dosed (entered late, two hours ago).
    _previous_dose(db, world_a, 2, "iv-ketamine")
    with pytest.raises(InvalidInput) as err:
        rec.start_dose(db, world_a.actor(Role.NURSE), sid)
    assert err.value.field == "dose_interval"
    events = uc.get_session(db, world_a.actor(Role.NURSE), sid).events
    assert [e.kind for e in events] == ["started", "dose_refused"]
    assert events[-1].detail is not None and events[-1].detail["code"] == "interval_too_short"


# --- ending a dose at once -------------------------------------------------------------------


def test_ending_dosing_under_the_minimum_time_needs_a_confirmed_reason(
    db: Session, world_a: ClinicWorld
) -> None:
    weigh(db, world_a)
    sid = running(db, world_a)
    rec.order_dose(db, world_a.actor(Role.PRESCRIBER), sid, ORDER)
    nurse = world_a.actor(Role.NURSE)
    rec.start_dose(db, nurse, sid)
    with pytest.raises(InvalidInput) as err:
        rec.end_dose(db, nurse, sid)
    assert err.value.field == "short_reason"
    assert "0 min ago" in err.value.message and "minimum dosing time of 40 min" in err.value.message
    reason = "Pump occlusion alarm, line resited; the rest of the bag was discarded"
    rec.end_dose(db, nurse, sid, rec.DoseEndIn(short_reason=reason))
    ended = uc.get_session(db, nurse, sid).events[-1]
    assert ended.kind == "dose_ended" and ended.detail is not None
    assert ended.detail["short_reason"] == reason and ended.detail["minimum_minutes"] == 40


def test_ending_after_the_minimum_time_needs_no_reason(db: Session, world_a: ClinicWorld) -> None:
    sid = _dose_given(db, world_a)
    ended = uc.get_session(db, world_a.actor(Role.NURSE), sid).events[-1]
    assert ended.kind == "dose_ended" and ended.detail is not None
    assert "short_reason" not in ended.detail and ended.detail["minutes"] >= 40
