"""What patients are told: the consent text names the boxed-warning risks, pregnancy and
breastfeeding, and driving per agent; the information sheet does too; consent given for an
earlier text stays on the record."""

from __future__ import annotations

from sqlalchemy.orm import Session
from tests.conftest import ClinicWorld

from ketacare.app import courses as courses_uc
from ketacare.app import intake as uc
from ketacare.app import reports
from ketacare.app.permissions import Role
from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids
from ketacare.store.models import ConsentRecord, EligibilityReview


def _consent() -> str:
    return " ".join(" ".join(str(p).split()) for p in load_yaml("consent.yaml")["points"])


def test_the_consent_names_the_boxed_warnings_pregnancy_and_breastfeeding() -> None:
    text = _consent()
    assert "respiratory depression" in text and "slow or stop your breathing" in text
    assert "suicidal thoughts and behaviours" in text
    assert "pregnancy" in text and "Do not breastfeed during treatment" in text
    assert "for 6 weeks after the last dose" in text
    # The earlier items stay.
    for item in ("off-label", "bladder problems", "misused", "stop treatment at any time"):
        assert item in text


def test_the_consent_states_driving_per_agent() -> None:
    text = _consent()
    assert "After esketamine nasal spray, do not drive" in text
    assert "until the next day after a restful sleep" in text
    assert "after ketamine by infusion or injection, not for at least 24 hours" in text
    assert "avoid alcohol and cannabis, for 24 hours" in text


def test_the_consent_has_a_new_version_and_cites_known_sources() -> None:
    data = load_yaml("consent.yaml")
    assert data["version"] == "consent-2026-12"
    assert [c["version"] for c in data["changes"]][:2] == ["consent-2026-12", "consent-2026-11"]
    assert set(data["sources"]) <= reference_ids()
    for needed in ("spravato-us-pi-boxed-warning", "spravato-us-pi-lactation"):
        assert needed in data["sources"]


def test_the_information_sheet_states_driving_alcohol_and_cannabis_per_agent() -> None:
    faq = reports.load_faq()
    section = next(s for s in faq.sections if s.id == "driving")
    answer = next(q for q in faq.questions if q.id == "driving")
    for text in (section.text, answer.answer):
        assert "After esketamine nasal spray (Spravato)" in text
        assert "until the next day, after a restful night's sleep" in text
        assert "at least 24 hours" in text
    assert "alcohol and cannabis for 24 hours" in section.text
    assert "clinic-practice-aftercare" in section.sources


def test_consent_given_for_the_earlier_text_stays_valid_and_is_shown_as_older(
    db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[0]
    db.add(
        EligibilityReview(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            computed_decision="eligible",
            final_decision="eligible",
            inputs={},
            output={},
            knowledge_version="test",
        )
    )
    db.add(
        ConsentRecord(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            consent_version="consent-2026-11",
            status="given",
        )
    )
    db.commit()
    nurse = world_a.actor(Role.NURSE)
    panel = courses_uc.course_panel(db, nurse, patient.id)
    assert "consent" not in {b.field for b in panel.blockers}
    summary = uc.programme_summary(db, nurse, patient.id)
    assert summary.consents[0].consent_version == "consent-2026-11"
    assert summary.consent_version == "consent-2026-12"
    assert any("respiratory depression" in point for point in summary.consent_points)
