"""The vitals chart draws in chromium under the app's strict CSP, from the vendored scripts.

The page is served by the real app (create_app: SecurityHeaders, /static, the Jinja
environment) with one extra route that renders the chart macro; no database is touched.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from playwright.sync_api import ConsoleMessage, Page, expect

from ketacare.config import Settings
from ketacare.reports.charts import spec_json, vitals_chart
from ketacare.store.db import make_engine
from ketacare.web.main import create_app
from ketacare.web.security import CSP

pytestmark = pytest.mark.e2e

PAGE = """{% extends "base.html" %}
{% from "_charts.html" import chart, chart_assets %}
{% block scripts %}{{ chart_assets() }}{% endblock %}
{% block content %}
<h1>Session vitals</h1>
{{ chart(spec, "session-vitals", "Vital signs during the session") }}
<div id="poll" hx-get="/e2e/fragment" hx-trigger="click from:#refresh" hx-swap="innerHTML"></div>
<button id="refresh" type="button">Refresh</button>
{% endblock %}
"""
# The same chart embedded with Vega's default expression compiler (new Function): the CSP must
# refuse it, which shows the listener below would catch a regression.
UNSAFE_PAGE = """<!doctype html><html><head>
<script src="/static/vendor/vega/vega.min.js" defer></script>
<script src="/static/vendor/vega/vega-lite.min.js" defer></script>
<script src="/static/vendor/vega/vega-embed.min.js" defer></script>
<script src="/e2e/unsafe.js" defer></script>
</head><body><div id="unsafe"></div>
<script type="application/json" id="unsafe-spec">{{ spec|safe }}</script></body></html>"""
UNSAFE_JS = """document.addEventListener("DOMContentLoaded", () => {
  const spec = JSON.parse(document.getElementById("unsafe-spec").textContent);
  vegaEmbed("#unsafe", spec, {actions: false, defaultStyle: false, tooltip: false})
    .then(() => { document.body.dataset.done = "drawn"; })
    .catch((e) => { document.body.dataset.done = "refused: " + e; });
});"""
FRAGMENT = """{% from "_charts.html" import chart %}
{{ chart(spec, "polled-vitals", "Vital signs, refreshed") }}"""

T0 = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)


def _spec(n: int) -> dict[str, Any]:
    samples = [
        {
            "id": i + 1,
            "measured_at": T0 + timedelta(minutes=5 * i),
            "systolic": 124 + 5 * i,
            "diastolic": 80 + 3 * i,
            "heart_rate": None if i == 2 else 72 + 2 * i,
            "spo2": 97,
            "respiratory_rate": 14,
        }
        for i in range(n)
    ]
    alerts = [
        {
            "vital_sample_id": n,
            "field": "systolic",
            "value": samples[-1]["systolic"],
            "severity": "warning",
            "text": "Systolic rose </script> by 40 mmHg from baseline",
        }
    ]
    return vitals_chart(
        samples,
        baseline={"systolic": 120, "diastolic": 80},
        alerts=alerts,
        tz="Europe/Berlin",
        dose_window=(T0 + timedelta(minutes=5), T0 + timedelta(minutes=25)),
    )


def _app(tmp: Path) -> FastAPI:
    settings = Settings(
        environment="test",
        var_dir=tmp,
        secret_key="e2e-secret-key-with-more-than-32-characters",
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, make_engine(f"sqlite:///{tmp / 'unused.db'}"))
    templates = app.state.web.templates

    @app.get("/e2e/chart", response_class=HTMLResponse)
    def chart_page(request: Request) -> HTMLResponse:
        html = templates.env.from_string(PAGE).render(
            principal=None, can=lambda _p: False, spec=spec_json(_spec(8))
        )
        return HTMLResponse(html)

    @app.get("/e2e/fragment", response_class=HTMLResponse)
    def fragment(request: Request) -> HTMLResponse:
        return HTMLResponse(templates.env.from_string(FRAGMENT).render(spec=spec_json(_spec(12))))

    @app.get("/e2e/unsafe", response_class=HTMLResponse)
    def unsafe_page(request: Request) -> HTMLResponse:
        return HTMLResponse(templates.env.from_string(UNSAFE_PAGE).render(spec=spec_json(_spec(4))))

    @app.get("/e2e/unsafe.js")
    def unsafe_js() -> Response:
        return Response(UNSAFE_JS, media_type="text/javascript")

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chart_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            _app(tmp_path_factory.mktemp("charts")),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, name="chart-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("the chart test server did not start")
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# Recorded from the first script on: a violation during start-up would be missed otherwise.
CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_vitals_chart_draws_under_the_strict_csp(
    page: Page, chart_server: str, tmp_path: Path
) -> None:
    console: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.add_init_script(CSP_LISTENER)

    response = page.goto(f"{chart_server}/e2e/chart")
    assert response is not None and response.ok
    # The page is served with the app's CSP, unchanged: no 'unsafe-eval', no inline script.
    assert response.headers["content-security-policy"] == CSP
    assert "unsafe-eval" not in CSP

    chart = page.locator("#session-vitals")
    expect(chart).to_have_attribute("role", "img")
    expect(chart).to_have_attribute("aria-label", "Vital signs during the session")
    expect(chart).to_have_attribute("data-chart-ready", "true", timeout=15_000)
    svg = chart.locator("svg.marks")
    expect(svg).to_have_count(1)
    for title in (
        "Blood pressure (mmHg)",
        "Heart rate (beats/min)",
        "SpO2 (%)",
        "Respiratory rate (breaths/min)",
        "Time (Europe/Berlin)",
    ):
        expect(svg.locator("text", has_text=title).first).to_be_attached()
    # The threshold rules' labels and the clinic-zone clock (09:00 UTC is 10:00 in Berlin).
    expect(svg.locator("text", has_text="Systolic ≥ 180").first).to_be_attached()
    expect(
        svg.locator("text", has_text="Systolic ≥ 160 (baseline 120 + 40)").first
    ).to_be_attached()
    expect(svg.locator("text", has_text="10:00").first).to_be_attached()

    # The chart fills its card, axes included, instead of the default 300 px or overflowing.
    box, card = svg.bounding_box(), chart.bounding_box()
    assert box is not None and card is not None
    assert card["width"] - 2 <= box["width"] <= card["width"] + 1

    # Hovering the alert marker shows its text in vega-tooltip's element.
    marker = svg.locator("g.mark-symbol path[fill='#c62828']").first
    marker.hover(force=True)
    tooltip = page.locator("#vg-tooltip-element")
    expect(tooltip).to_contain_text("Systolic rose </script> by 40 mmHg from baseline")
    expect(tooltip).to_be_visible()

    # An HTMX swap brings a new chart in, and charts.js draws it.
    page.locator("#refresh").click()
    polled = page.locator("#polled-vitals")
    expect(polled).to_have_attribute("data-chart-ready", "true", timeout=15_000)
    expect(polled.locator("svg.marks text", has_text="SpO2 (%)").first).to_be_attached()
    polled_box, polled_card = polled.locator("svg.marks").bounding_box(), polled.bounding_box()
    assert polled_box is not None and polled_card is not None
    assert polled_box["width"] <= polled_card["width"] + 1

    page.screenshot(path=str(tmp_path / "vitals-chart.png"), full_page=True)
    assert page.evaluate("window.__csp") == []
    assert console == []


def test_the_csp_refuses_vegas_default_expression_compiler(page: Page, chart_server: str) -> None:
    page.add_init_script(CSP_LISTENER)
    page.goto(f"{chart_server}/e2e/unsafe")
    expect(page.locator("body")).to_have_attribute("data-done", re.compile(r"^refused: "))
    violations = page.evaluate("window.__csp")
    assert any(v.startswith("script-src") and " eval " in v for v in violations), violations
