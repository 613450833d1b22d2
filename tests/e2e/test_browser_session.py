"""A prescriber runs a whole dosing session in the browser: pre-dose checks, the order, dosing,
a reading that raises an alert (live on the screen), its acknowledgement, MOAA/S, an adverse
event, the discharge checklist and sign-off; then signs off a recovered patient's session."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()


def open_session(page: Page, base: str, status_text: str) -> None:
    page.goto(f"{base}/sessions")
    row = page.locator("#worklist tbody tr", has_text=status_text).first
    row.get_by_role("link", name="iv-ketamine").click()
    expect(page.get_by_role("heading", name="Pre-dose checks")).to_be_visible()


def test_a_full_session_from_checks_to_sign_off(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server, "prescriber", "kc-demo-scripts")
    open_session(page, live_server, "scheduled")

    checks = page.locator("#prechecks")
    for label, value in (
        ("Systolic (mmHg)", "124"),
        ("Diastolic (mmHg)", "78"),
        ("Heart rate (/min)", "72"),
        ("SpO2 (%)", "98"),
        ("Resp. rate (/min)", "14"),
    ):
        checks.get_by_label(label).fill(value)
    checks.locator("fieldset", has_text="Fasted").get_by_label("yes").check()
    checks.locator("fieldset", has_text="responsible adult").get_by_label("yes").check()
    pregnancy = checks.get_by_label("not pregnant (test negative or excluded)")
    if pregnancy.count():
        pregnancy.check()
    # Demo patients take an ADHD stimulant, which the Spravato label names: the nurse writes
    # down the monitoring change (a list without one leaves the field empty).
    checks.get_by_label("Monitoring change", exact=False).fill(
        "BP every 5 min for the first 40 min"
    )
    checks.get_by_label("I have reviewed the cautions and proceed").check()
    checks.get_by_role("button", name="Check and start the session").click()
    expect(page.locator(".status").first).to_have_text("in progress")
    expect(page.locator("#prechecks")).to_contain_text("Blood pressure 124/78")

    order = page.locator("#order")
    expect(order.get_by_label("Dose (mg/kg)")).to_have_value("0.5")
    order.get_by_role("button", name="Calculate and order").click()
    expect(page.locator("#order")).to_contain_text("150 mL/h")
    expect(page.locator("#order")).to_contain_text("0.5 mg/kg")
    page.locator("#order").get_by_text("Calculation, step by step").click()
    expect(page.locator("#order .steps li").first).to_be_visible()

    page.get_by_role("button", name="Start dosing").click()
    expect(page.locator("#dosing")).to_contain_text("running")

    # A reading entered by hand raises an alert that shows on the monitoring card.
    reading = page.locator("#vitals")
    reading.get_by_label("Systolic").fill("186")
    reading.get_by_label("Diastolic").fill("98")
    reading.get_by_label("Heart rate").fill("96")
    reading.get_by_label("SpO2").fill("97")
    reading.get_by_role("button", name="Record reading").click()
    alerts = page.locator("#open-alerts")
    expect(alerts).to_contain_text("to acknowledge")
    expect(alerts).to_contain_text("186")
    expect(page.locator("#session-vitals svg").first).to_be_visible()
    # The reading raised two alerts (systolic 186, a rise of 62): acknowledged together.
    first = alerts.locator("li").first
    first.get_by_placeholder("What was done").fill("Paused 5 minutes, repeat reading 150/90")
    first.get_by_role("button", name="Acknowledge all 2").click()
    expect(page.locator("#monitoring")).to_contain_text("Acknowledged alerts (2)")

    scores = page.locator("#scores")
    scores.get_by_label("MOAA/S", exact=False).select_option("4")
    scores.get_by_role("button", name="Record MOAA/S").click()
    expect(page.locator("#scores table")).to_contain_text("MOAAS")

    adverse = page.locator("#adverse")
    adverse.get_by_label("Event").select_option("nausea")
    adverse.get_by_label("Severity").select_option("mild")
    adverse.locator("fieldset", has_text="Serious?").get_by_label("no").check()
    adverse.get_by_label("Outcome").select_option("resolved")
    adverse.get_by_label("What was done").fill("Ondansetron 4 mg IV")
    adverse.get_by_role("button", name="Record adverse event").click()
    expect(page.locator("#adverse")).to_contain_text("Ondansetron 4 mg IV")

    # A minute into a 40-minute infusion: ending it needs the reason.
    page.locator("#dosing").get_by_label("reason to end it now", exact=False).fill(
        "Pump occlusion, line resited, bag discarded"
    )
    page.get_by_role("button", name="End dosing early").click()
    expect(page.locator("#dosing")).to_contain_text("observation for at least 60 min")

    discharge = page.locator("#discharge")
    discharge.locator("fieldset", has_text="Escort present").get_by_label("yes").check()
    discharge.get_by_role("button", name="Check discharge criteria").click()
    expect(page.locator("#discharge")).to_contain_text("Not ready for discharge")
    expect(page.locator("#criteria")).to_contain_text("min to go")

    # Criteria still open: only a prescriber, with the reason, may sign.
    page.locator("#discharge").get_by_label("Prescriber: reason", exact=False).fill(
        "Transferred to the emergency department for blood-pressure review"
    )
    page.locator("#discharge").get_by_role("button", name="Sign off and discharge").click()
    expect(page.locator(".signed").first).to_contain_text("Signed")
    expect(page.get_by_role("button", name="Record reading")).to_have_count(0)
    page.get_by_role("textbox", name="Amendment").fill(
        "Late entry: the escort was the patient's partner."
    )
    page.get_by_role("button", name="Add amendment").click()
    expect(page.locator("#amend")).to_contain_text("the escort was the patient's partner")
    page.screenshot(path=str(tmp_path / "session-signed.png"), full_page=True)

    # A recovered patient: every criterion met from the session's own data, then sign-off.
    open_session(page, live_server, "observation since")
    discharge = page.locator("#discharge")
    for legend in (
        "SpO2 measured on room air",
        "Oriented",
        "Walking steadily",
        "Escort present",
        "No driving",  # per agent: next day (esketamine) or 24 hours (ketamine)
    ):
        discharge.locator("fieldset", has_text=legend).get_by_label("yes").check()
    discharge.get_by_role("button", name="Check discharge criteria").click()
    expect(page.locator("#discharge")).to_contain_text("Discharge criteria met")
    page.locator("#discharge").get_by_role("button", name="Sign off and discharge").click()
    expect(page.locator(".signed").first).to_contain_text("Signed")
    expect(page.locator("#criteria")).not_to_contain_text("not met")
    assert errors == [], errors


def test_typing_in_an_acknowledgement_survives_the_live_refresh(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    """A nurse types what was done about an alert while the card refreshes every 5 seconds
    and a device sends a reading that raises new alerts: the text, and the typing, go on."""
    sign_in(page, live_server, "prescriber", "kc-demo-scripts")
    open_session(page, live_server, "dosing since")
    box_id = (
        page.locator("#open-alerts").get_by_placeholder("What was done").first.get_attribute("id")
    )
    box = page.locator(f"#{box_id}")
    box.click()
    page.keyboard.type("Rechecked manually, 150/")
    polls: list[int] = []
    page.on("response", lambda r: polls.append(r.status) if "/live?" in r.url else None)

    # The monitor sends a reading in hypotension with a slow heart rate: two critical alerts.
    session_id = page.url.split("/sessions/", 1)[1].split("#", 1)[0].split("?", 1)[0]
    token = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    sent = page.request.post(
        f"{live_server}/api/v1/sessions/{session_id}/vitals",
        data={
            "source": "device",
            "samples": [
                {
                    "measured_at": datetime.now(UTC).isoformat(),
                    "systolic": 78,
                    "diastolic": 44,
                    "heart_rate": 38,
                }
            ],
        },
        headers={"X-CSRF-Token": token},
    )
    assert sent.ok, sent.text()
    # The next poll brings the new alerts into the card.
    expect(page.locator("#open-alerts")).to_contain_text("Heart rate 38/min", timeout=15_000)
    assert 200 in polls, polls
    # What was typed is still there, and the box still has the focus: typing goes on.
    expect(box).to_have_value("Rechecked manually, 150/")
    page.keyboard.type("90")
    expect(box).to_have_value("Rechecked manually, 150/90")
    expect(box).to_be_focused()
    # The new reading's two critical alerts come first, in one group with one box.
    first = page.locator("#open-alerts li.alert-group").first
    expect(first).to_contain_text("Systolic 78 mmHg")
    expect(first).to_contain_text("Heart rate 38/min")
    expect(first.get_by_role("button", name="Acknowledge all 2")).to_be_visible()
    page.screenshot(path=str(tmp_path / "session-alerts.png"), full_page=True)
    page.locator("#monitoring").screenshot(path=str(tmp_path / "monitoring-card.png"))
