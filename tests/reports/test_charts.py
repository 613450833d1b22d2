"""Vega-Lite specs for the vitals and scores charts: valid, faithful to the readings and the
clinic's settings, in the clinic's zone, and renderable to SVG for the PDF reports."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import altair as alt
import pytest
import vl_convert as vlc
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema import load_schema

from ketacare.clinical.monitoring import MonitoringSettings
from ketacare.knowledge.instrument_defs import get_instrument
from ketacare.reports.charts import scores_chart, spec_json, vitals_chart
from ketacare.web.state import WEB_DIR

T0 = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (CET, UTC+1)
VL_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
SYSTOLIC_COLOUR = "#1f4e9c"


def _samples() -> list[dict[str, Any]]:
    return [
        {
            "id": 11,
            "measured_at": T0,
            "systolic": 122,
            "diastolic": 81,
            "heart_rate": 72,
            "spo2": 98,
            "respiratory_rate": 14,
        },
        {
            "id": 12,
            "measured_at": T0 + timedelta(minutes=5),
            "systolic": None,  # cuff failed: a gap, not a zero
            "diastolic": None,
            "heart_rate": 75,
            "spo2": 97.5,
            "respiratory_rate": None,
        },
        {
            "id": 13,
            "measured_at": T0 + timedelta(minutes=10),
            "systolic": 163,
            "diastolic": 99,
            "heart_rate": 88,
            "spo2": None,
            "respiratory_rate": 12,
        },
        {
            "id": 14,
            "measured_at": T0 + timedelta(minutes=15),
            "systolic": 150,
            "diastolic": 94,
            "heart_rate": 84,
            "spo2": 96,
            "respiratory_rate": 13,
        },
    ]


ALERT_TEXT = "Systolic 163 mmHg is 43 above the baseline of 120 mmHg (rise of 40 or more)."


def _alerts() -> list[dict[str, Any]]:
    return [
        {
            "vital_sample_id": 13,
            "field": "systolic",
            "value": 163,
            "severity": "warning",
            "text": ALERT_TEXT,
        }
    ]


def _chart(**kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "baseline": {"systolic": 120, "diastolic": 80},
        "alerts": _alerts(),
        "tz": "Europe/Berlin",
        "dose_window": (T0 + timedelta(minutes=2), T0 + timedelta(minutes=12)),
        **kwargs,
    }
    return vitals_chart(_samples(), **args)


def _svg(spec: dict[str, Any], width: int = 640) -> str:
    # vl-convert has no container to fill: give the panels a width, as a PDF report does.
    fixed = json.loads(json.dumps(spec).replace('"width": "container"', f'"width": {width}'))
    return vlc.vegalite_to_svg(fixed, vl_version=VL_VERSION)


def _texts(svg: str) -> set[str]:
    return {html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}


def _thresholds(spec: dict[str, Any], field: str) -> dict[str, float]:
    return {r["code"]: r["value"] for r in spec["datasets"]["thresholds"] if r["field"] == field}


def test_the_spec_is_valid_vega_lite_of_altairs_schema() -> None:
    spec = _chart()
    assert spec["$schema"].endswith(f"/{alt.SCHEMA_VERSION}.json")
    assert validate_jsonschema(spec, load_schema()) is None
    assert [p["title"]["text"] for p in spec["vconcat"]] == [
        "Blood pressure (mmHg)",
        "Heart rate (beats/min)",
        "SpO2 (%)",
        "Respiratory rate (breaths/min)",
    ]
    assert all(p["width"] == "container" for p in spec["vconcat"])
    assert spec["resolve"]["scale"]["x"] == "shared"


def test_the_data_are_the_readings_with_missing_ones_left_missing() -> None:
    spec = _chart()
    rows = spec["datasets"]["samples"]
    fields = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")
    assert [{f: r[f] for f in fields} for r in rows] == [
        {f: s[f] for f in fields} for s in _samples()
    ]
    assert rows[1]["systolic"] is None and rows[2]["spo2"] is None


def test_a_missing_reading_breaks_the_line() -> None:
    svg = _svg(_chart())
    systolic = re.search(
        rf'<path [^>]*aria-roledescription="line mark" d="([^"]+)"[^>]*stroke="{SYSTOLIC_COLOUR}"',
        svg,
    )
    assert systolic is not None
    # 122, gap, 163, 150: two pieces, each starting with a move, none drawn at zero.
    assert systolic.group(1).count("M") == 2


def test_threshold_rules_carry_the_settings_values() -> None:
    spec = _chart(baseline=None)
    low = {"systolic_low": 90, "systolic_low_critical": 80}
    assert _thresholds(spec, "systolic") == {"systolic_high": 180, **low}
    assert _thresholds(spec, "diastolic") == {"diastolic_high": 110}
    # The mean pressure is not drawn as a line, so neither is its limit: only its alerts.
    assert _thresholds(spec, "mean_arterial_pressure") == {}
    assert _thresholds(spec, "heart_rate") == {
        "heart_rate_high": 110,
        "heart_rate_low": 50,
        "heart_rate_high_critical": 130,
        "heart_rate_low_critical": 40,
    }
    assert _thresholds(spec, "spo2") == {"spo2_low": 92, "spo2_critical": 88}
    assert _thresholds(spec, "respiratory_rate") == {"respiratory_rate_low": 10}

    clinic = MonitoringSettings.model_validate(
        {**MonitoringSettings.defaults().model_dump(), "alert_systolic_at_least": 170}
    )
    assert _thresholds(_chart(baseline=None, settings=clinic), "systolic") == {
        "systolic_high": 170,
        **low,
    }


def test_with_a_baseline_the_rise_rules_are_drawn_above_it() -> None:
    spec = _chart(baseline={"systolic": 120, "diastolic": 80})
    assert _thresholds(spec, "systolic") == {
        "systolic_high": 180,
        "systolic_rise": 160,
        "systolic_low": 90,
        "systolic_low_critical": 80,
    }
    assert _thresholds(spec, "diastolic") == {"diastolic_high": 110, "diastolic_rise": 105}
    labels = _texts(_svg(spec))
    assert "Systolic ≥ 160 (baseline 120 + 40)" in labels
    assert "Diastolic ≥ 105 (baseline 80 + 25)" in labels
    assert "Systolic ≥ 180" in labels
    assert "SpO2 < 88" in labels


def test_alert_points_sit_on_their_reading_and_carry_the_text() -> None:
    spec = _chart()
    assert spec["datasets"]["alerts"] == [
        {
            "time": "2025-01-14T10:10:00Z",
            "time_label": "10:10",
            "field": "systolic",
            "value": 163,
            "severity": "warning",
            "text": ALERT_TEXT,
        }
    ]
    bp_layers = spec["vconcat"][0]["layer"]
    markers = [layer for layer in bp_layers if layer["data"] == {"name": "alerts"}]
    assert len(markers) == 1
    assert markers[0]["mark"]["color"] == "#c62828"
    assert {"field": "text", "type": "nominal", "title": "Alert"} in markers[0]["encoding"][
        "tooltip"
    ]
    # Only the blood-pressure panel has a systolic alert to show.
    for panel in spec["vconcat"][1:]:
        assert all(layer["data"] != {"name": "alerts"} for layer in panel["layer"])
    svg = _svg(spec)
    assert svg.count('fill="#c62828"') == 1


def test_a_low_mean_arterial_pressure_is_drawn_on_the_blood_pressure_panel() -> None:
    spec = vitals_chart(
        _samples(),
        alerts=[
            {
                "measured_at": datetime(2025, 1, 14, 9, 30, tzinfo=UTC),
                "field": "mean_arterial_pressure",
                "value": 61.3,
                "severity": "warning",
                "text": "Mean arterial pressure 61.3 mmHg (84/50) is below 65",
            }
        ],
        tz="UTC",
    )
    assert spec["datasets"]["alerts"][0]["field"] == "mean_arterial_pressure"
    bp_panel, *others = spec["vconcat"]
    assert any(layer["data"] == {"name": "alerts"} for layer in bp_panel["layer"])
    for panel in others:
        assert all(layer["data"] != {"name": "alerts"} for layer in panel["layer"])
    assert "MAP < 65" not in _texts(_svg(spec))
    # The samples carry the readings only: the mean pressure is not drawn as a line.
    assert "mean_arterial_pressure" not in spec["datasets"]["samples"][0]


def test_an_alert_may_give_its_own_time_and_must_match_a_reading_otherwise() -> None:
    spec = vitals_chart(
        _samples(),
        alerts=[
            {
                "measured_at": T0 + timedelta(minutes=15),
                "field": "heart_rate",
                "value": 130,
                "severity": "warning",
                "text": "Heart rate 130/min is above 110/min.",
            }
        ],
    )
    assert spec["datasets"]["alerts"][0]["time"] == "2025-01-14T09:15:00Z"
    with pytest.raises(ValueError, match=r"alerts\[0\]: no measured_at and no sample with id 99"):
        vitals_chart(_samples(), alerts=[{**_alerts()[0], "vital_sample_id": 99}])


def test_times_are_the_clinic_wall_clock() -> None:
    winter = _chart()
    assert [r["time_label"] for r in winter["datasets"]["samples"]] == [
        "10:00",
        "10:05",
        "10:10",
        "10:15",
    ]
    assert winter["datasets"]["samples"][0]["time"] == "2025-01-14T10:00:00Z"
    assert winter["datasets"]["dosing"] == [
        {
            "start": "2025-01-14T10:02:00Z",
            "end": "2025-01-14T10:12:00Z",
            "label": "Dosing 10:02-10:12",
        }
    ]
    labels = _texts(_svg(winter))
    assert {"Time (Europe/Berlin)", "10:00", "10:10"} <= labels
    assert "09:00" not in labels

    summer = vitals_chart([{**_samples()[0], "measured_at": datetime(2025, 7, 1, 9, tzinfo=UTC)}])
    assert summer["datasets"]["samples"][0]["time_label"] == "09:00"  # UTC by default
    berlin = vitals_chart(
        [{**_samples()[0], "measured_at": datetime(2025, 7, 1, 9, tzinfo=UTC)}],
        tz="Europe/Berlin",
    )
    assert berlin["datasets"]["samples"][0]["time_label"] == "11:00"  # CEST


def test_a_time_without_a_zone_or_no_time_is_refused() -> None:
    with pytest.raises(ValueError, match=r"samples\[0\]\.measured_at: .* has no time zone"):
        vitals_chart([{**_samples()[0], "measured_at": datetime(2025, 1, 14, 9)}])
    with pytest.raises(ValueError, match=r"samples\[1\]\.measured_at: a time is needed"):
        vitals_chart([_samples()[0], {**_samples()[1], "measured_at": None}])


def test_an_open_dosing_window_runs_to_the_last_reading() -> None:
    spec = _chart(dose_window=(T0 + timedelta(minutes=2), None))
    assert spec["datasets"]["dosing"][0]["end"] == "2025-01-14T10:15:00Z"
    assert spec["vconcat"][0]["title"]["subtitle"] == "Shaded: dosing from 10:02"
    assert "dosing" not in _chart(dose_window=None)["datasets"]


def test_the_spec_renders_to_svg_with_its_titles() -> None:
    svg = _svg(_chart())
    assert svg.startswith("<svg")
    labels = _texts(svg)
    for title in (
        "Blood pressure (mmHg)",
        "Heart rate (beats/min)",
        "SpO2 (%)",
        "Respiratory rate (breaths/min)",
        "mmHg",
        "beats/min",
        "%",
        "breaths/min",
        "Time (Europe/Berlin)",
        "Systolic",
        "Diastolic",
    ):
        assert title in labels, title


def test_an_empty_session_still_renders() -> None:
    spec = vitals_chart([], tz="Europe/Berlin")
    assert spec["datasets"]["samples"] == []
    assert "Blood pressure (mmHg)" in _texts(_svg(spec))


def test_scores_chart_shades_the_bands_on_the_instruments_range() -> None:
    phq9 = get_instrument("phq9")
    points = [
        {"administered_at": T0 + timedelta(days=7 * i), "total": total}
        for i, total in enumerate([21, 16, 11, 6])
    ]
    spec = scores_chart(points, instrument=phq9, bands=phq9.bands, tz="Europe/Berlin")
    assert validate_jsonschema(spec, load_schema()) is None
    rect = spec["layer"][0]
    assert rect["mark"]["type"] == "rect"
    assert rect["encoding"]["y"]["scale"]["domain"] == [0, 27]
    assert spec["layer"][-1]["encoding"]["y"]["scale"]["domain"] == [0, 27]
    assert [(b["min"], b["max"], b["label"]) for b in spec["datasets"]["bands"]] == [
        (b.min, b.max, b.label) for b in phq9.bands
    ]
    # Whole-score bands meet half-way between scores and stay inside the range.
    assert [(b["y"], b["y2"]) for b in spec["datasets"]["bands"]] == [
        (0, 4.5),
        (4.5, 9.5),
        (9.5, 14.5),
        (14.5, 19.5),
        (19.5, 27),
    ]
    assert [(p["total"], p["band"]) for p in spec["datasets"]["scores"]] == [
        (21, "severe"),
        (16, "moderately severe"),
        (11, "moderate"),
        (6, "mild"),
    ]
    assert spec["datasets"]["scores"][0]["time_label"] == "2025-01-14 10:00"
    labels = _texts(_svg(spec))
    assert {"PHQ-9 over time", "PHQ-9 total", "moderately severe", "Date (Europe/Berlin)"} <= labels


def test_scores_chart_takes_plain_bands_and_needs_a_range() -> None:
    bands = [{"min": 0, "max": 4, "label": "minimal"}, {"min": 5, "max": 21, "label": "severe"}]
    spec = scores_chart([{"administered_at": T0, "total": 7}], instrument="GAD-7", bands=bands)
    assert spec["layer"][-1]["encoding"]["y"]["scale"]["domain"] == [0, 21]
    assert spec["datasets"]["scores"][0]["band"] == "severe"
    with pytest.raises(ValueError, match="bands"):
        scores_chart([], instrument="C-SSRS", bands=[])


def test_spec_json_is_safe_inside_a_script_element() -> None:
    spec = vitals_chart(
        _samples(),
        alerts=[{**_alerts()[0], "text": "</script><script>alert(1)</script> & <!-- x"}],
    )
    text = spec_json(spec)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\\u003c/script\\u003e" in text
    assert json.loads(text) == spec


def test_vendored_vega_lite_matches_altairs_schema() -> None:
    vendor = WEB_DIR / "static" / "vendor" / "vega"
    versions = dict(
        line.split()[:2]
        for line in (vendor / "VERSIONS.txt").read_text().splitlines()
        if re.match(r"^vega[-a-z]* \d", line)
    )
    assert versions["vega-lite"] == alt.SCHEMA_VERSION.lstrip("v")
    assert versions["vega"].split(".")[0] == versions["vega-lite"].split(".")[0]
    for name in ("vega", "vega-lite", "vega-embed", "vega-interpreter"):
        assert (vendor / f"{name}.min.js").stat().st_size > 1000
        assert (vendor / f"LICENSE.{name}").exists()
    assert 'version="' + versions["vega"] + '"' in (vendor / "vega.min.js").read_text()[-2000:]
    assert Path(vendor / "vega-embed.css").exists()
