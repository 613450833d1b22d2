"""Intake, scales, sign-off, consent and the patient's questionnaire page, through HTTP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.store.models import Assessment, EligibilityReview, IntakeRecord
from tests.conftest import ClinicWorld, ui_login


def test_the_intake_form_saves_a_revision_and_shows_field_errors(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    pid = world_a.patients[0].id
    assert client.get(f"/patients/{pid}/intake").status_code == 200
    bad = client.post(
        f"/patients/{pid}/intake",
        data={
            "csrf_token": csrf,
            "systolic": "80",
            "diastolic": "120",
            "t0_drug": "Concerta",
            "t0_response": "meh",
        },
    )
    assert bad.status_code == 422
    assert "t0_response" in bad.text or "prior_adhd_treatments.0.response" in bad.text
    good = client.post(
        f"/patients/{pid}/intake",
        data={
            "csrf_token": csrf,
            "adhd_diagnosis": "yes",
            "diagnosis_by": "Dr R",
            "t0_drug": "Concerta",
            "t0_response": "inadequate",
            "t0_duration_weeks": "10",
            "history": ["glaucoma"],
            "systolic": "128",
            "diastolic": "82",
            "heart_rate": "70",
        },
    )
    assert good.status_code == 303
    row = db.scalar(select(IntakeRecord).where(IntakeRecord.patient_id == pid))
    assert row is not None
    assert row.data["history"] == ["glaucoma"]
    chart = client.get(f"/patients/{pid}").text
    assert "Glaucoma" in chart or "glaucoma" in chart


def test_a_prescriber_signs_with_a_reason_from_the_chart(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-prescriber")
    pid = world_a.patients[0].id
    chart = client.get(f"/patients/{pid}").text
    assert "needs review" in chart
    refused = client.post(
        f"/patients/{pid}/eligibility/sign",
        data={
            "csrf_token": csrf,
            "computed_decision": "needs_review",
            "final_decision": "eligible",
        },
    )
    assert refused.status_code == 422
    assert "at least 10 characters" in refused.text
    signed = client.post(
        f"/patients/{pid}/eligibility/sign",
        data={
            "csrf_token": csrf,
            "computed_decision": "needs_review",
            "final_decision": "ineligible",
            "override_reason": "Patient prefers to continue stimulant optimisation.",
        },
    )
    assert signed.status_code == 303
    assert db.scalar(select(EligibilityReview.final_decision)) == "ineligible"


def test_a_nurse_sees_no_sign_form(client: TestClient, world_a: ClinicWorld) -> None:
    ui_login(client, "a-nurse")
    chart = client.get(f"/patients/{world_a.patients[0].id}").text
    assert "Sign the eligibility review" not in chart
    assert "Record consent" in chart


def test_entering_a_phq9_with_item_9_shows_the_urgent_banner(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-therapist")
    pid = world_a.patients[0].id
    form = client.get(f"/patients/{pid}/assessments/new", params={"instrument_id": "phq9"})
    assert "Little interest or pleasure in doing things" in form.text
    data = {f"item{i}": "0" for i in range(1, 10)} | {"item9": "2", "csrf_token": csrf}
    saved = client.post(f"/patients/{pid}/assessments/new?instrument_id=phq9", data=data)
    assert saved.status_code == 303
    chart = client.get(f"/patients/{pid}").text
    assert "URGENT: PHQ9" in chart
    aid = db.scalar(select(Assessment.id))
    ack = client.post(
        f"/patients/{pid}/assessments/{aid}/acknowledge",
        data={"csrf_token": csrf, "note": "C-SSRS screen negative, plan agreed"},
    )
    assert ack.status_code == 303
    assert "URGENT: PHQ9" not in client.get(f"/patients/{pid}").text


def test_the_questionnaire_link_works_once_without_signing_in(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    csrf = ui_login(client, "a-nurse")
    pid = world_a.patients[0].id
    created = client.post(
        f"/patients/{pid}/self-report-links", data={"csrf_token": csrf, "instruments": ["gad7"]}
    )
    assert created.status_code == 201
    link = re.search(r'id="invite-link">([^<]+)<', created.text).group(1)  # type: ignore[union-attr]
    path = link.removeprefix("http://testserver")
    client.cookies.clear()
    page = client.get(path)
    assert page.status_code == 200
    assert "Hello Given0" in page.text
    assert "Afamily0" not in page.text  # the page never shows the family name or MRN
    incomplete = client.post(path, data={"gad7-1": "1"})
    assert incomplete.status_code == 422
    done = client.post(path, data={f"gad7-{i}": "2" for i in range(1, 8)})
    assert done.status_code == 200
    assert "Thank you" in done.text
    assert db.scalar(select(Assessment.total).where(Assessment.source == "self_report")) == 14
    again = client.get(path)
    assert again.status_code == 404
    assert "already used" in again.text


def test_a_guessed_link_is_not_found(client: TestClient, world_a: ClinicWorld) -> None:
    assert client.get("/r/" + "A" * 43).status_code == 404
    assert client.get("/r/short").status_code == 422


def test_the_intake_form_offers_every_history_code_by_its_label(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    from ketacare.clinical.eligibility import HistoryCode

    ui_login(client, "a-nurse")
    page = client.get(f"/patients/{world_a.patients[0].id}/intake").text
    for code in HistoryCode:
        assert f'name="history" value="{code.value}"' in page
    assert "Myocardial infarction or other cardiovascular event within 6 weeks" in page
    assert "Current psychosis" in page and "History of psychosis (not current)" in page
    assert "Severe hepatic impairment (Child-Pugh C)" in page
    assert "Cerebral trauma" in page and "Severe coronary or myocardial disease" in page
    label, default, review = (
        page.index("Contraindications in a product label"),
        page.index("Excluded by the clinic&#39;s default"),
        page.index("Reviewed by a prescriber"),
    )
    assert label < page.index('value="recent_myocardial_infarction"') < default
    assert default < page.index('value="current_psychosis"') < review
    assert review < page.index('value="psychosis"')


def test_the_chart_shows_the_current_consent_text_to_review(
    client: TestClient, world_a: ClinicWorld
) -> None:
    ui_login(client, "a-nurse")
    chart = client.get(f"/patients/{world_a.patients[0].id}").text
    assert "Consent text <code>consent-2026-12</code>" in chart
    assert "respiratory depression" in chart and "Do not breastfeed during treatment" in chart
