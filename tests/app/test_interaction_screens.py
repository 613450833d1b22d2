"""Screening a patient's medicines: stored with the knowledge version, reused when unchanged,
re-screened when the list changes, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld, ready_for_dosing

from ketacare.app import intake as ik
from ketacare.app import interactions as uc
from ketacare.app import patients as pt
from ketacare.app import sessions as ss
from ketacare.app.errors import Forbidden, InvalidInput, NotFound
from ketacare.app.permissions import Role
from ketacare.knowledge import knowledge_version
from ketacare.store.models import AuditEvent, InteractionScreen


def add(db: Session, world: ClinicWorld, name: str, status: str = "active") -> pt.MedicationOut:
    return pt.add_medication(
        db,
        world.actor(Role.NURSE),
        world.patients[0].id,
        pt.MedicationCreate(name=name, status=status),
    )


def test_a_patients_list_is_screened_and_stored_with_the_knowledge_version(
    db: Session, world_a: ClinicWorld
) -> None:
    add(db, world_a, "Adderall XR 20mg")
    add(db, world_a, "Xanax 0.5 mg prn")
    add(db, world_a, "Ritalin", status="stopped")
    out = uc.screen_patient(db, world_a.actor(Role.PRESCRIBER), world_a.patients[0].id)
    assert {(f["ingredient"], f["severity"]) for f in out.findings} >= {("alprazolam", "major")}
    assert any(f["rule_id"] == "ketamine-psychostimulants" for f in out.findings)
    # A stopped medicine without a washout (a stimulant) is not screened.
    assert all("Ritalin" not in f["input"] for f in out.findings)
    row = db.get(InteractionScreen, out.screen_id)
    assert row is not None
    assert row.knowledge_version == knowledge_version()
    assert row.inputs["medications"] == ["Adderall XR 20mg", "Xanax 0.5 mg prn"]
    assert [m["name"] for m in row.inputs["stopped"]] == ["Ritalin"]
    assert row.inputs["protocol_id"] == "iv-ketamine"
    assert row.highest_severity == "major"
    assert (row.agent, row.route) == ("ketamine", "iv")


def test_an_unchanged_list_reuses_the_stored_screen_and_a_change_rescreens(
    db: Session, world_a: ClinicWorld
) -> None:
    actor = world_a.actor(Role.NURSE)
    pid = world_a.patients[0].id
    add(db, world_a, "sertraline 100mg")
    first = uc.screen_patient(db, actor, pid)
    again = uc.screen_patient(db, actor, pid)
    assert again.screen_id == first.screen_id
    add(db, world_a, "Nardil 15 mg")
    changed = uc.screen_patient(db, actor, pid)
    assert changed.screen_id != first.screen_id
    assert changed.findings[0]["severity"] == "contraindicated"
    assert changed.findings[0]["rule_id"] == "serotonergic-antidepressant-with-maoi"
    assert db.scalar(select(func.count()).select_from(InteractionScreen)) == 2
    audited = db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "interaction.screen")
    )
    assert audited == 3


def test_an_empty_list_is_stored_as_an_empty_screen(db: Session, world_a: ClinicWorld) -> None:
    out = uc.screen_patient(db, world_a.actor(Role.NURSE), world_a.patients[1].id)
    assert out.findings == []
    assert out.unrecognized == []


def test_unrecognised_names_are_reported_never_as_safe(db: Session, world_a: ClinicWorld) -> None:
    add(db, world_a, "blorptex 5 mg")
    out = uc.screen_patient(db, world_a.actor(Role.NURSE), world_a.patients[0].id)
    assert [u["input"] for u in out.unrecognized] == ["blorptex 5 mg"]
    assert out.no_known_interaction == []


def test_another_clinics_patient_cannot_be_screened(
    db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    with pytest.raises(NotFound):
        uc.screen_patient(db, world_a.actor(Role.PRESCRIBER), world_b.patients[0].id)
    with pytest.raises(Forbidden):
        uc.screen_patient(db, world_a.actor(Role.RESEARCHER), world_a.patients[0].id)


def test_the_checker_screens_any_list_and_names_an_empty_entry(world_a: ClinicWorld) -> None:
    actor = world_a.actor(Role.THERAPIST)
    out = uc.screen_list(
        actor, uc.ScreenRequest(medications=["Spravato", "phenelzine"], agent="esketamine")
    )
    assert out.route == "intranasal"
    assert any(f["ingredient"] == "phenelzine" for f in out.findings)
    with pytest.raises(InvalidInput) as err:
        uc.screen_list(actor, uc.ScreenRequest(medications=["ok", "   "]))
    assert err.value.field == "medications[1]"


def test_stored_screens_are_listed_newest_first(db: Session, world_a: ClinicWorld) -> None:
    actor = world_a.actor(Role.NURSE)
    pid = world_a.patients[0].id
    add(db, world_a, "bupropion XL 300 mg")
    uc.screen_patient(db, actor, pid)
    add(db, world_a, "guanfacine ER 2 mg")
    uc.screen_patient(db, actor, pid)
    screens = uc.list_patient_screens(db, actor, pid)
    assert [len(s.inputs["medications"]) for s in screens] == [2, 1]


# --- recently stopped MAO inhibitors --------------------------------------------------------------


@pytest.mark.parametrize(("days_ago", "screened"), [(5, True), (20, False)])
def test_a_stopped_maoi_is_screened_during_its_washout(
    db: Session, world_a: ClinicWorld, days_ago: int, screened: bool
) -> None:
    nurse = world_a.actor(Role.NURSE)
    pid = world_a.patients[0].id
    add(db, world_a, "sertraline 100 mg")
    stop = uc.clinic_today(db, world_a.patients[0]) - timedelta(days=days_ago)
    pt.add_medication(
        db,
        nurse,
        pid,
        pt.MedicationCreate(name="phenelzine 15 mg", status="stopped", stop_date=stop),
    )
    out = uc.screen_patient(db, nurse, pid)
    rules = {f["rule_id"] for f in out.findings}
    if not screened:
        assert rules == {"ketamine-ssri"}
        assert out.stopped_screened == []
        return
    assert out.highest == "contraindicated"
    assert "ketamine-ssri" not in rules  # no "continue" advice beside the MAOI
    co = next(f for f in out.findings if f["rule_id"] == "serotonergic-antidepressant-with-maoi")
    assert f"stopped on {stop.isoformat()}" in co["washout"][0]
    assert f"until {(stop + timedelta(days=14)).isoformat()}" in co["washout"][0]
    assert [w["ingredient"] for w in out.stopped_screened] == ["phenelzine"]


# --- the planned agent and route ------------------------------------------------------------------


def test_the_planned_protocol_decides_the_agent_and_route(
    db: Session, world_a: ClinicWorld
) -> None:
    nurse = world_a.actor(Role.NURSE)
    patient = world_a.patients[0]
    add(db, world_a, "Sudafed 60 mg")
    default = uc.screen_patient(db, nurse, patient.id)
    assert (default.agent, default.route, default.protocol_chosen_by) == (
        "ketamine",
        "iv",
        "default",
    )
    assert [f["rule_id"] for f in default.findings] == ["ketamine-sympathomimetics"]

    form = {"adhd_diagnosis": True, "planned_protocol": "intranasal-esketamine"}
    ik.save_intake(db, nurse, patient.id, ik.IntakeForm.model_validate(form))
    planned = uc.screen_patient(db, nurse, patient.id)
    assert (planned.agent, planned.route) == ("esketamine", "intranasal")
    assert planned.protocol_chosen_by == "intake"
    assert [f["rule_id"] for f in planned.findings] == ["esketamine-sympathomimetics"]
    # The eligibility decision screens the same way.
    view = ik.eligibility(db, world_a.actor(Role.PRESCRIBER), patient.id)
    assert view.inputs["interaction_screen"]["agent"] == "esketamine"
    assert "interaction:esketamine-sympathomimetics" in {r.code for r in view.reasons}

    # A scheduled session wins over the intake (and an active course over both).
    ss.create_session(
        db,
        nurse,
        patient.id,
        ss.SessionCreate(protocol_id="iv-ketamine", scheduled_at=datetime.now(UTC)),
    )
    session = uc.screen_patient(db, nurse, patient.id)
    assert (session.agent, session.protocol_chosen_by) == ("ketamine", "session")


def test_an_unplannable_intake_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="oral-ketamine"):
        ik.IntakeForm.model_validate({"planned_protocol": "oral-ketamine"})


# --- a screen that fails is "not screened", everywhere --------------------------------------------


def _broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("knowledge base unreadable")


def test_a_failing_screen_is_not_screened_and_not_stored(
    db: Session, world_a: ClinicWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(db, world_a, "Adderall 20 mg")
    add(db, world_a, "Nardil")
    monkeypatch.setattr(uc, "screen", _broken)
    out = uc.screen_patient(db, world_a.actor(Role.NURSE), world_a.patients[0].id)
    assert out.screened is False
    assert "knowledge base unreadable" in (out.not_screened_reason or "")
    assert out.screen_id is None
    assert db.scalar(select(func.count()).select_from(InteractionScreen)) == 0


def test_a_failing_screen_is_never_eligible_at_intake(
    db: Session, world_a: ClinicWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(db, world_a, "Adderall 20 mg")
    add(db, world_a, "Nardil")
    monkeypatch.setattr(ik, "screen", _broken)
    view = ik.eligibility(db, world_a.actor(Role.PRESCRIBER), world_a.patients[0].id)
    assert view.decision != "eligible"
    reason = next(r for r in view.reasons if r.code == "interactions_not_screened")
    assert reason.severity == "caution"
    assert "knowledge base unreadable" in reason.text
    assert view.inputs["interaction_findings"] is None


def test_a_failing_screen_holds_the_pre_dose_check_as_not_screened(
    db: Session, world_a: ClinicWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(db, world_a, "ibuprofen 400 mg")
    ready_for_dosing(db, world_a.patients[0])
    nurse = world_a.actor(Role.NURSE)
    session = ss.create_session(
        db, nurse, world_a.patients[0].id, ss.SessionCreate(scheduled_at=datetime.now(UTC))
    )
    monkeypatch.setattr(uc, "screen", _broken)
    check = ss.PreCheck(
        systolic=124, diastolic=78, fasting="yes", escort="yes", pregnancy="not_pregnant"
    )
    with pytest.raises(Forbidden, match="not screened"):
        ss.start_session(db, nurse, session.id, check)
