"""Screening a patient's medicines: stored with the knowledge version, reused when unchanged,
re-screened when the list changes, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import interactions as uc
from ketacare.app import patients as pt
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
    assert {(f["ingredient"], f["severity"]) for f in out.findings} >= {("alprazolam", "moderate")}
    assert any(f["rule_id"] == "ketamine-psychostimulants" for f in out.findings)
    # A stopped medicine is not screened.
    assert all("Ritalin" not in f["input"] for f in out.findings)
    row = db.get(InteractionScreen, out.screen_id)
    assert row is not None
    assert row.knowledge_version == knowledge_version()
    assert row.inputs == {"medications": ["Adderall XR 20mg", "Xanax 0.5 mg prn"]}
    assert row.highest_severity == "moderate"
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
    add(db, world_a, "theophylline 300 mg")
    changed = uc.screen_patient(db, actor, pid)
    assert changed.screen_id != first.screen_id
    assert changed.findings[0]["severity"] == "contraindicated"
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
