"""A nurse signs in, registers a patient, finds them by search and opens the chart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_sign_in_register_and_find_a_patient(page: Page, live_server: str, tmp_path: Path) -> None:
    page.goto(f"{live_server}/patients")
    expect(page).to_have_url(f"{live_server}/login?next=/patients")

    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill("kc-demo-vitals")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()

    page.get_by_role("link", name="Register patient").click()
    page.get_by_label("MRN (medical record number)").fill("e2e-4242")
    page.get_by_label("Family name").fill("Quist")
    page.get_by_label("Given name").fill("Hélène")
    page.get_by_label("Date of birth").fill("1987-06-15")
    page.get_by_label("Sex").select_option("female")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Quist, Hélène")).to_be_visible()
    expect(page.get_by_text("unknown: no weight recorded")).to_be_visible()

    page.get_by_label("Weight (kg)").fill("64.2")
    page.get_by_role("button", name="Record measurement").click()
    expect(page.get_by_text("64.2 kg").first).to_be_visible()

    page.get_by_role("link", name="Patients").click()
    page.get_by_label("Search by name or MRN").press_sequentially("quis hel", delay=30)
    # HTMX swaps the results in place as the nurse types.
    row_link = page.locator("#results").get_by_role("link", name="Quist, Hélène")
    expect(row_link).to_be_visible()
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/patients\?q=quis(\+|%20)hel$"))

    shot = tmp_path / "patient-search.png"  # kept under the test's tmp dir for review
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    row_link.click()
    expect(page.get_by_text("E2E-4242")).to_be_visible()
