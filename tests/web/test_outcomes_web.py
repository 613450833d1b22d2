"""Outcomes through the API and the chart fragment: the JSON contract, roles, other clinics,
the fragment's charts (scores with thresholds, stimulant doses) under the strict CSP, and the
chart specs themselves."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import altair as alt
import pytest
import vl_convert as vlc
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema import load_schema
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app.assessments import _store
from ketacare.app.permissions import Role
from ketacare.clinical.stimulants import stimulant_doses
from ketacare.knowledge.instrument_defs import get_instrument
from ketacare.reports.charts import scores_chart, stimulant_chart
from ketacare.store.models import MedicationEntry, Patient, TreatmentSession
from ketacare.store.types import utcnow
from tests.conftest import ROLES, ClinicWorld, bearer, ui_login

VL_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])


def phq9(total: int) -> list[int]:
    values, rest = [0] * 9, total
    for i in range(8):
        values[i] = min(3, rest)
        rest -= values[i]
    return values


def _course(db: Session, patient: Patient) -> None:
    """Baseline 20, four infusions, then 16 and 17: no response after the 4th session."""
    first = utcnow() - timedelta(days=21)
    for n in range(4):
        dose = first + timedelta(days=2 * n)
        db.add(
            TreatmentSession(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                number=n + 1,
                protocol_id="iv-ketamine",
                scheduled_at=dose - timedelta(minutes=30),
                status="completed",
                dose_started_at=dose,
            )
        )
    for days, total in ((-2, 20), (8, 16), (15, 17)):
        _store(
            db,
            patient,
            "phq9",
            phq9(total),
            source="staff",
            at=first + timedelta(days=days),
            recorded_by=None,
        )
    _store(
        db,
        patient,
        "asrs",
        [3] * 18,
        source="staff",
        at=first - timedelta(days=2),
        recorded_by=None,
    )
    db.add(
        MedicationEntry(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            name_entered="Concerta 54 mg ER tab",
            dose_text="1 tab every morning",
            start_date=date(2025, 1, 1),
            status="active",
        )
    )
    db.add(
        MedicationEntry(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            name_entered="Vyvanse",
            dose_text="1 cap every morning",
            start_date=date(2025, 1, 1),
            status="active",
        )
    )
    db.commit()


# --- API ----------------------------------------------------------------------------------------


def test_the_api_returns_the_outcomes_contract(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[0]
    _course(db, patient)
    response = client.get(
        f"/api/v1/patients/{patient.id}/outcomes", headers=bearer(db, world_a.users[Role.NURSE])
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {
        "patient_id",
        "generated_at",
        "timezone",
        "knowledge_version",
        "notice",
        "thresholds",
        "dosed_sessions",
        "first_dose_at",
        "instruments",
        "stimulants",
        "sessions",
        "references",
    }
    phq = next(i for i in body["instruments"] if i["instrument"] == "phq9")
    assert phq["baseline"]["total"] == 20 and phq["latest"]["total"] == 17
    assert phq["percent_change"] == -15.0
    flags = {f["code"]: f for f in phq["flags"]}
    assert flags["non_response"]["status"] == "met"
    assert flags["response"]["status"] == "not_met"
    assert flags["non_response"]["evidence"] == "S" and flags["non_response"]["sources"]
    asrs = next(i for i in body["instruments"] if i["instrument"] == "asrs")
    assert asrs["exploratory"] is True
    weeks = {i["ingredient"]: i["weeks"] for i in body["stimulants"]["ingredients"]}
    assert {w["mg_per_day"] for w in weeks["methylphenidate"]} == {54.0}
    assert {(w["status"], w["mg_per_day"]) for w in weeks["lisdexamfetamine"]} == {
        ("unknown", None)
    }
    assert [s["number"] for s in body["sessions"]] == [1, 2, 3, 4]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_every_role_but_the_researcher_reads_outcomes(
    client: TestClient, db: Session, world_a: ClinicWorld, role: Role
) -> None:
    response = client.get(
        f"/api/v1/patients/{world_a.patients[0].id}/outcomes",
        headers=bearer(db, world_a.users[role]),
    )
    assert response.status_code == (403 if role == Role.RESEARCHER else 200), response.text


def test_another_clinics_patient_is_not_found_through_api_or_ui(
    client: TestClient, db: Session, world_a: ClinicWorld, world_b: ClinicWorld
) -> None:
    victim = world_b.patients[0]
    _course(db, victim)
    response = client.get(
        f"/api/v1/patients/{victim.id}/outcomes",
        headers=bearer(db, world_a.users[Role.PRESCRIBER]),
    )
    assert response.status_code == 404 and victim.family_name not in response.text
    ui_login(client, world_a.users[Role.PRESCRIBER].username)
    page = client.get(f"/patients/{victim.id}/outcomes")
    assert page.status_code == 404 and victim.family_name not in page.text


# --- the chart fragment -------------------------------------------------------------------------


def _specs(html: str) -> dict[str, dict[str, Any]]:
    found = re.findall(
        r'<div class="chart" id="([^"]+)"[^>]*>\s*<script type="application/json">(.*?)</script>',
        html,
        flags=re.S,
    )
    return {chart_id: json.loads(text) for chart_id, text in found}


def test_the_chart_page_loads_the_outcomes_fragment(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[0]
    ui_login(client, world_a.users[Role.THERAPIST].username)
    page = client.get(f"/patients/{patient.id}")
    assert page.status_code == 200
    assert f'hx-get="/patients/{patient.id}/outcomes" hx-trigger="load"' in page.text
    # The placeholder sits just before the intake and programme section.
    assert page.text.index(f"/patients/{patient.id}/outcomes") < page.text.index('id="programme')


def test_the_fragment_shows_charts_flags_definitions_and_the_adhd_reminder(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    patient = world_a.patients[0]
    _course(db, patient)
    ui_login(client, world_a.users[Role.PRESCRIBER].username)
    response = client.get(f"/patients/{patient.id}/outcomes", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.text
    assert 'id="outcomes"' in html
    assert "no trial of ketamine for ADHD exists" in html
    assert "exploratory" in html
    # Flags with their status, definition, evidence and sources (by title).
    assert 'data-flag="non_response" data-status="met"' in html
    assert "No response after 4 dosing sessions" in html
    assert "rarely brings a response after more than 3 infusions" in html
    assert "evidence: S" in html and "Sanacora et al. 2017" in html
    # Per session: both follow-ups came after the 4th (last) dose; the later one counts.
    assert re.findall(r'<tr data-session="(\d+)"><td>\d+</td>', html) == ["4"]
    assert "(last of 2)</small></td><td>17</td><td>-3 (-15.0%)</td>" in html
    # The CSP allows scripts from /static only: the fragment brings them, no inline code.
    for asset in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "charts.js"):
        assert f'src="/static/vendor/vega/{asset}"' in html or f'src="/static/{asset}"' in html
    assert not re.search(r"<script(?![^>]*(?:src=|type=\"application/json\"))", html)
    assert " style=" not in html and "onclick" not in html
    specs = _specs(html)
    assert set(specs) == {
        "outcome-chart-phq9",
        "outcome-chart-asrs",
        "outcome-chart-stimulants",
    }
    phq_rules = {r["label"]: r["value"] for r in specs["outcome-chart-phq9"]["datasets"]["rules"]}
    assert phq_rules == {
        "baseline 20": 20,
        "response ≤ 10 (50% fall)": 10.0,
        "remission below 5": 5,
        "worsening ≥ 24 (20% rise)": 24.0,
    }
    stimulants = specs["outcome-chart-stimulants"]
    assert {u["ingredient"] for u in stimulants["datasets"]["unknown"]} == {"lisdexamfetamine"}
    # The unreadable Vyvanse dose is a gap and a grey week, never a 0.
    assert all(
        r["mg_per_day"] is None
        for r in stimulants["datasets"]["weeks"]
        if r["ingredient"] == "lisdexamfetamine"
    )
    assert "Concerta 54 mg ER tab" in html and "54 mg/day" in html
    assert "without a strength" in html


def test_the_fragment_of_a_patient_without_ratings_has_no_chart_scripts(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    ui_login(client, world_a.users[Role.NURSE].username)
    html = client.get(f"/patients/{world_a.patients[1].id}/outcomes").text
    assert "No PHQ-9 rating outside dosing sessions yet." in html
    assert "No stimulant on the medication list." in html and "No dosing session yet." in html
    assert "vega.min.js" not in html and _specs(html) == {}


def test_a_researcher_cannot_open_the_fragment(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    ui_login(client, world_a.users[Role.RESEARCHER].username)
    assert client.get(f"/patients/{world_a.patients[0].id}/outcomes").status_code == 403


# --- chart specs --------------------------------------------------------------------------------


def _weeks() -> Any:
    monday = date(2026, 1, 5)
    entries = [
        {
            "name": "Ritalin",
            "dose_text": "10 mg twice daily",
            "start_date": date(2025, 1, 1),
            "stop_date": monday + timedelta(days=8),
            "status": "stopped",
        },
        {
            "name": "Concerta 36 mg",
            "dose_text": "1 tab every morning",
            "start_date": monday + timedelta(days=9),
            "status": "active",
        },
        {
            "name": "Vyvanse",
            "dose_text": "50 mg every morning as needed",
            "start_date": monday,
            "status": "active",
        },
    ]
    return stimulant_doses(entries, start=monday, end=monday + timedelta(days=27))


def test_the_stimulant_chart_is_valid_one_panel_per_ingredient_and_renders() -> None:
    spec = stimulant_chart(_weeks(), tz="America/Toronto")
    assert validate_jsonschema(spec, load_schema()) is None
    titles = [p["title"]["text"] for p in spec["vconcat"]]
    assert titles == ["lisdexamfetamine: mg per day", "methylphenidate: mg per day"]
    assert "no conversion between medicines" in spec["vconcat"][0]["title"]["subtitle"]
    assert spec["resolve"]["scale"]["y"] == "independent"
    mph = [r for r in spec["datasets"]["weeks"] if r["ingredient"] == "methylphenidate"]
    assert [(r["week"], r["mg_per_day"], r["range"]) for r in mph] == [
        ("2026-W02", 20.0, "20 mg/day"),
        ("2026-W03", 36.0, "20-36 mg/day"),
        ("2026-W04", 36.0, "36 mg/day"),
        ("2026-W05", 36.0, "36 mg/day"),
    ]
    assert len(spec["datasets"]["unknown"]) == 4
    fixed = json.loads(json.dumps(spec).replace('"width": "container"', '"width": 600'))
    svg = vlc.vegalite_to_svg(fixed, vl_version=VL_VERSION)
    assert "methylphenidate: mg per day" in svg


def test_the_stimulant_chart_takes_the_use_case_output_or_its_ingredients() -> None:
    doses = _weeks()
    assert stimulant_chart(doses) == stimulant_chart(list(doses.ingredients))
    assert stimulant_chart([i.to_json_dict() for i in doses.ingredients]) == stimulant_chart(doses)
    with pytest.raises(ValueError, match="no stimulant"):
        stimulant_chart([])
    with pytest.raises(ValueError, match="week start date"):
        stimulant_chart([{"ingredient": "x", "weeks": [{"week_start": datetime.now(UTC)}]}])


def test_scores_chart_rules_are_optional_and_bounded() -> None:
    points = [{"administered_at": datetime(2026, 1, 5, 15, tzinfo=UTC), "total": 18}]
    phq = get_instrument("phq9")
    plain = scores_chart(points, instrument=phq, bands=phq.bands)
    assert set(plain["datasets"]) == {"scores", "bands"} and len(plain["layer"]) == 3
    ruled = scores_chart(
        points, instrument=phq, bands=phq.bands, rules=[{"value": 9, "label": "response ≤ 9"}]
    )
    assert validate_jsonschema(ruled, load_schema()) is None
    assert ruled["datasets"]["rules"] == [
        {"value": 9, "label": "response ≤ 9", "colour": "#555555"}
    ]
    with pytest.raises(ValueError, match=r"rules\[0\].value"):
        scores_chart(points, instrument=phq, bands=phq.bands, rules=[{"value": 30}])
