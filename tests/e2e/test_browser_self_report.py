"""A nurse creates a questionnaire link; the patient answers on a phone-sized screen; the
urgent item-9 banner reaches the care team."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.e2e


def test_patient_answers_on_a_phone_and_the_team_sees_the_flag(
    browser: Browser, live_server: str, tmp_path: Path
) -> None:
    staff = browser.new_context()
    page = staff.new_page()
    page.goto(f"{live_server}/login")
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill("kc-demo-vitals")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Search by name or MRN").fill("KC-01002")
    page.get_by_label("Search by name or MRN").press("Enter")
    page.locator("#results").get_by_role("link").first.click()
    page.get_by_role("button", name="Create link").click()
    link = page.locator("#invite-link").inner_text().strip()
    assert re.search(r"/r/[A-Za-z0-9_-]{40,}$", link)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    patient = phone.new_page()
    patient.goto(link)
    expect(patient.get_by_role("heading", name=re.compile("^Hello "))).to_be_visible()
    # Answer every item of every questionnaire: "Several days" style middle-low options,
    # and "More than half the days" on PHQ-9 item 9.
    for fieldset in patient.locator("fieldset.item").all():
        fieldset.locator("input[type=radio]").nth(1).check()
    patient.locator("fieldset#q-phq9-9 input[type=radio]").nth(2).check()
    patient.screenshot(path=str(tmp_path / "self-report-phone.png"), full_page=True)
    patient.get_by_role("button", name="Send my answers").click()
    expect(patient.get_by_role("heading", name="Thank you")).to_be_visible()

    patient.goto(link)
    expect(patient.get_by_text("already used")).to_be_visible()

    page.reload()
    expect(page.get_by_text(re.compile("URGENT: PHQ9 self-report"))).to_be_visible()
    staff.close()
    phone.close()
