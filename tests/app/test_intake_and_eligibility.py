"""Intake revisions, eligibility from the chart, the signed review, consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import assessments as sc
from ketacare.app import intake as uc
from ketacare.app import patients as pt
from ketacare.app.errors import Conflict, Forbidden, InvalidInput
from ketacare.app.permissions import Role
from ketacare.store.models import Patient

GOOD_INTAKE = uc.IntakeForm.model_validate(
    {
        "adhd_diagnosis": True,
        "diagnosis_by": "Dr A. Referrer",
        "diagnosis_when": "2019",
        "prior_adhd_treatments": [
            {"drug": "methylphenidate", "response": "inadequate", "duration_weeks": 12},
        ],
        "history": [],
        "blood_pressure": {"systolic": 124, "diastolic": 78},
        "heart_rate": 72,
    }
)


def ready_patient(db: Session, world: ClinicWorld) -> int:
    """A patient whose chart holds everything the rules ask for."""
    nurse = world.actor(Role.NURSE)
    pid = world.patients[0].id
    pt.add_measurement(db, nurse, pid, pt.MeasurementCreate(weight_kg=72))
    uc.save_intake(db, nurse, pid, GOOD_INTAKE)
    for name, answers in {
        "asrs": [3, 3, 3, 3, 2, 2, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2],
        "phq9": [2, 2, 1, 1, 1, 1, 1, 1, 0],
        "gad7": [1, 1, 1, 1, 1, 1, 1],
    }.items():
        sc.record_assessment(db, nurse, pid, sc.AssessmentCreate(instrument=name, answers=answers))
    return pid


def test_an_empty_chart_needs_review_for_missing_data(db: Session, world_a: ClinicWorld) -> None:
    view = uc.eligibility(db, world_a.actor(Role.PRESCRIBER), world_a.patients[0].id)
    assert view.decision == "needs_review"
    codes = {r.code for r in view.reasons}
    assert "adhd_diagnosis_missing" in codes
    assert "off_label" in codes


def test_a_complete_chart_is_eligible_and_the_inputs_come_from_the_chart(
    db: Session, world_a: ClinicWorld
) -> None:
    pid = ready_patient(db, world_a)
    view = uc.eligibility(db, world_a.actor(Role.PRESCRIBER), pid)
    assert view.decision == "eligible", [r.code for r in view.reasons]
    assert view.inputs["intake"]["weight_kg"] == 72
    assert view.inputs["intake"]["date_of_birth"] == "1985-01-01"
    assert view.inputs["intake"]["scores"]["phq9"] == [2, 2, 1, 1, 1, 1, 1, 1, 0]


def test_a_contraindicated_medicine_on_the_list_excludes(db: Session, world_a: ClinicWorld) -> None:
    pid = ready_patient(db, world_a)
    nurse = world_a.actor(Role.NURSE)
    for name in ("Wellbutrin SR 150 mg", "Nardil 15 mg"):
        pt.add_medication(db, nurse, pid, pt.MedicationCreate(name=name))
    view = uc.eligibility(db, world_a.actor(Role.PRESCRIBER), pid)
    assert view.decision == "ineligible"
    first = view.inputs["interaction_findings"][0]
    assert (first["rule_id"], first["severity"]) == ("bupropion-with-maoi", "contraindicated")
    assert view.inputs["interaction_screen"]["protocol"] == "iv-ketamine"


def test_intake_revisions_keep_the_earlier_one(db: Session, world_a: ClinicWorld) -> None:
    nurse = world_a.actor(Role.NURSE)
    pid = world_a.patients[0].id
    first = uc.save_intake(db, nurse, pid, GOOD_INTAKE)
    changed = GOOD_INTAKE.model_copy(update={"heart_rate": 90})
    second = uc.save_intake(db, nurse, pid, changed)
    assert second.id != first.id
    assert uc.get_intake(db, nurse, pid).form.heart_rate == 90  # type: ignore[union-attr]


def test_a_therapist_cannot_write_the_intake(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(Forbidden):
        uc.save_intake(db, world_a.actor(Role.THERAPIST), world_a.patients[0].id, GOOD_INTAKE)


def test_signing_needs_review_requires_a_written_reason(db: Session, world_a: ClinicWorld) -> None:
    prescriber = world_a.actor(Role.PRESCRIBER)
    pid = world_a.patients[0].id
    with pytest.raises(InvalidInput) as err:
        uc.sign_review(
            db,
            prescriber,
            pid,
            uc.SignRequest(computed_decision="needs_review", final_decision="eligible"),
        )
    assert err.value.field == "override_reason"
    review = uc.sign_review(
        db,
        prescriber,
        pid,
        uc.SignRequest(
            computed_decision="needs_review",
            final_decision="eligible",
            override_reason="Diagnosis confirmed by letter from Dr A., seen today.",
        ),
    )
    assert (review.computed_decision, review.final_decision) == ("needs_review", "eligible")
    assert db.get(Patient, pid).stage == "eligible"  # type: ignore[union-attr]


def test_only_prescribers_sign(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(Forbidden):
        uc.sign_review(
            db,
            world_a.actor(Role.NURSE),
            world_a.patients[0].id,
            uc.SignRequest(
                computed_decision="needs_review",
                final_decision="ineligible",
                override_reason="not for the programme",
            ),
        )


def test_an_exclusion_cannot_be_signed_as_eligible(db: Session, world_a: ClinicWorld) -> None:
    pid = ready_patient(db, world_a)
    uc.save_intake(
        db,
        world_a.actor(Role.NURSE),
        pid,
        uc.IntakeForm.model_validate(
            {**GOOD_INTAKE.model_dump(), "history": ["intracerebral_hemorrhage"]}
        ),
    )
    with pytest.raises(InvalidInput) as err:
        uc.sign_review(
            db,
            world_a.actor(Role.PRESCRIBER),
            pid,
            uc.SignRequest(
                computed_decision="ineligible",
                final_decision="eligible",
                override_reason="I disagree with the rule",
            ),
        )
    assert err.value.field == "final_decision"


def test_a_decision_that_changed_since_review_is_a_conflict(
    db: Session, world_a: ClinicWorld
) -> None:
    pid = ready_patient(db, world_a)
    pt.add_medication(db, world_a.actor(Role.NURSE), pid, pt.MedicationCreate(name="aminophylline"))
    with pytest.raises(Conflict):
        uc.sign_review(
            db,
            world_a.actor(Role.PRESCRIBER),
            pid,
            uc.SignRequest(computed_decision="eligible", final_decision="eligible"),
        )


def test_a_signed_review_stores_inputs_and_is_immutable(
    db: Session, engine: Engine, world_a: ClinicWorld
) -> None:
    pid = ready_patient(db, world_a)
    prescriber = world_a.actor(Role.PRESCRIBER)
    first = uc.sign_review(
        db, prescriber, pid, uc.SignRequest(computed_decision="eligible", final_decision="eligible")
    )
    assert first.output["decision"] == "eligible"
    assert first.knowledge_version == first.output["knowledge_version"]
    for statement in (
        "UPDATE eligibility_reviews SET final_decision = 'ineligible'",
        "DELETE FROM eligibility_reviews",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    second = uc.sign_review(
        db, prescriber, pid, uc.SignRequest(computed_decision="eligible", final_decision="eligible")
    )
    assert second.amends_id == first.id
    assert [r.id for r in uc.list_reviews(db, prescriber, pid)] == [second.id, first.id]


def test_consent_is_recorded_for_the_current_text_only(db: Session, world_a: ClinicWorld) -> None:
    nurse = world_a.actor(Role.NURSE)
    pid = world_a.patients[0].id
    current = uc.consent_text()["version"]
    with pytest.raises(InvalidInput) as err:
        uc.record_consent(db, nurse, pid, uc.ConsentCreate(consent_version="consent-1999-01"))
    assert err.value.field == "consent_version"
    given = uc.record_consent(db, nurse, pid, uc.ConsentCreate(consent_version=current))
    withdrawn = uc.record_consent(
        db, nurse, pid, uc.ConsentCreate(consent_version=current, status="withdrawn")
    )
    assert [c.status for c in uc.list_consents(db, nurse, pid)] == ["withdrawn", "given"]
    assert given.id < withdrawn.id


# --- rating scales and self-report -----------------------------------------------------------

NOW = datetime.now(UTC)


def test_a_staff_entered_phq9_with_item_9_raises_an_open_urgent_flag(
    db: Session, world_a: ClinicWorld
) -> None:
    nurse = world_a.actor(Role.NURSE)
    pid = world_a.patients[0].id
    out = sc.record_assessment(
        db, nurse, pid, sc.AssessmentCreate(instrument="phq9", answers=[0, 0, 0, 0, 0, 0, 0, 0, 1])
    )
    assert out.total == 1
    assert out.urgent is True
    flags = sc.open_urgent_flags(db, pid)
    assert [f.assessment_id for f in flags] == [out.id]
    sc.acknowledge_flag(db, nurse, pid, out.id, "C-SSRS screen: no intent, safety plan given")
    assert sc.open_urgent_flags(db, pid) == []


def test_a_wrong_answer_count_names_the_field(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(InvalidInput) as err:
        sc.record_assessment(
            db,
            world_a.actor(Role.NURSE),
            world_a.patients[0].id,
            sc.AssessmentCreate(instrument="gad7", answers=[1, 2]),
        )
    assert err.value.field == "answers"


def invite(db: Session, world: ClinicWorld, hours: int = 72) -> sc.SelfReportCreated:
    return sc.create_self_report_link(
        db,
        world.actor(Role.THERAPIST),
        world.patients[0].id,
        sc.SelfReportInvite(instruments=["phq9", "gad7"], valid_hours=hours),
    )


def test_a_self_report_link_answers_once(db: Session, world_a: ClinicWorld) -> None:
    created = invite(db, world_a)
    opened = sc.open_self_report(db, created.token, now=NOW)
    assert opened.instruments == ["phq9", "gad7"]
    answers = {"phq9": [1, 1, 1, 1, 1, 1, 1, 1, 2], "gad7": [0] * 7}
    stored = sc.submit_self_report(db, created.token, answers, now=NOW)
    assert [a.source for a in stored] == ["self_report", "self_report"]
    assert stored[0].urgent is True
    with pytest.raises(Exception, match="expired or was already used"):
        sc.submit_self_report(db, created.token, answers, now=NOW)
    with pytest.raises(Exception, match="expired or was already used"):
        sc.open_self_report(db, created.token, now=NOW)
    assert [f.source for f in sc.open_urgent_flags(db, world_a.patients[0].id)] == ["self_report"]


def test_an_expired_or_forged_link_is_refused(db: Session, world_a: ClinicWorld) -> None:
    created = invite(db, world_a, hours=1)
    with pytest.raises(Exception, match="expired"):
        sc.open_self_report(db, created.token, now=NOW + timedelta(hours=2))
    with pytest.raises(Exception, match="expired"):
        sc.open_self_report(db, created.token[:-2] + "xx", now=NOW)


def test_clinician_scales_cannot_be_self_reported(db: Session, world_a: ClinicWorld) -> None:
    with pytest.raises(InvalidInput) as err:
        sc.create_self_report_link(
            db,
            world_a.actor(Role.NURSE),
            world_a.patients[0].id,
            sc.SelfReportInvite(instruments=["cadss"]),
        )
    assert err.value.field == "instruments"


def test_a_clinic_relaxation_reaches_the_decision_and_is_stored_with_it(
    db: Session, world_a: ClinicWorld
) -> None:
    from ketacare.app.clinic_settings import ClinicSettingsIn, update_clinic_settings

    pid = ready_patient(db, world_a)
    nurse, prescriber = world_a.actor(Role.NURSE), world_a.actor(Role.PRESCRIBER)
    with_history = GOOD_INTAKE.model_dump(mode="json")
    uc.save_intake(
        db, nurse, pid, uc.IntakeForm.model_validate(with_history | {"history": ["schizophrenia"]})
    )
    before = uc.eligibility(db, prescriber, pid)
    assert before.decision == "ineligible"
    assert before.settings["relaxed_exclusions"] == {}
    reason = "Medical director 2026-12-01: co-managed with the patient's psychiatrist."
    update_clinic_settings(
        db,
        world_a.actor(Role.ADMIN),
        ClinicSettingsIn.model_validate(
            {"eligibility_relaxations": {"schizophrenia": reason}, "change_note": "Protocol v4."}
        ),
        1,
    )
    after = uc.eligibility(db, prescriber, pid)
    assert after.decision == "needs_review"
    text = next(r.text for r in after.reasons if r.code == "schizophrenia")
    assert f"relaxed by clinic setting: {reason}" in text
    review = uc.sign_review(
        db,
        prescriber,
        pid,
        uc.SignRequest(
            computed_decision="needs_review",
            final_decision="ineligible",
            override_reason="Not now: psychiatrist to review stability first.",
        ),
    )
    assert review.output["settings"]["relaxed_exclusions"] == {"schizophrenia": reason}
    # The relaxation touches only its own code.
    uc.save_intake(
        db,
        nurse,
        pid,
        uc.IntakeForm.model_validate(with_history | {"history": ["current_psychosis"]}),
    )
    assert uc.eligibility(db, prescriber, pid).decision == "ineligible"
