"""The charts' layouts are built once per layout key and reused: the same key with other data
gives the same layout, every data-dependent branch of a layout is in its key, a cached layout
cannot be changed through a spec handed out, and each variant is valid Vega-Lite."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema import load_schema

from ketacare.clinical.monitoring import MonitoringSettings
from ketacare.knowledge.instrument_defs import get_instrument
from ketacare.reports import charts
from ketacare.reports.charts import scores_chart, stimulant_chart, vitals_chart

T0 = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
PHQ9 = get_instrument("phq9")
LAYOUT_CACHES = (charts._vitals_layout, charts._scores_layout, charts._stimulant_layout)


@pytest.fixture(autouse=True)
def _fresh_layouts() -> None:
    for cache in LAYOUT_CACHES:
        cache.cache_clear()


def _layout(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "datasets"}


def _layers(panel: dict[str, Any]) -> list[str]:
    """A panel's layers as data name and mark, e.g. "alerts:point" (data that all layers share
    is given once, on the panel)."""
    out = []
    for layer in panel["layer"]:
        data, mark = layer.get("data", panel.get("data")), layer["mark"]
        out.append(f"{data['name']}:{mark['type'] if isinstance(mark, dict) else mark}")
    return out


def _readings(n: int, start: datetime = T0, systolic: int = 120) -> list[dict[str, Any]]:
    return [
        {
            "id": 100 + k,
            "measured_at": start + timedelta(minutes=5 * k),
            "systolic": systolic + k,
            "diastolic": 80,
            "heart_rate": 70 + k,
            "spo2": None if k == 1 else 97,
            "respiratory_rate": 14,
        }
        for k in range(n)
    ]


def _alert(sample_id: int, field: str, value: float) -> dict[str, Any]:
    return {
        "vital_sample_id": sample_id,
        "field": field,
        "value": value,
        "severity": "warning",
        "text": f"{field} {value}",
    }


def _weeks(name: str, mg: list[float | None], unknown_reason: str | None = None) -> dict[str, Any]:
    monday = date(2026, 1, 5)
    return {
        "ingredient": name,
        "weeks": [
            {
                "week_start": monday + timedelta(days=7 * w),
                "iso_year": 2026,
                "iso_week": 2 + w,
                "status": "dose" if value is not None else "unknown",
                "mg_per_day": value,
                "lowest_mg_per_day": value,
                "reason": unknown_reason if value is None else None,
            }
            for w, value in enumerate(mg)
        ],
    }


Build = Callable[[], dict[str, Any]]

# Pairs of calls with the same layout key and other data: other readings, times, values,
# settings and alert texts, on the same zone, size, panels with rules or alerts and labels.
SAME_KEY: dict[str, tuple[Build, Build]] = {
    "vitals, empty session": (
        lambda: vitals_chart([], tz="Europe/Berlin"),
        lambda: vitals_chart(_readings(6), tz="Europe/Berlin"),
    ),
    "vitals, baseline, alert, dosing running": (
        lambda: vitals_chart(
            _readings(3),
            baseline={"systolic": 120, "diastolic": 80},
            alerts=[_alert(101, "systolic", 165)],
            tz="Europe/Berlin",
            dose_window=(T0 + timedelta(minutes=2), None),
        ),
        lambda: vitals_chart(
            _readings(9, systolic=130),
            baseline={"systolic": 131, "diastolic": 77},
            alerts=[_alert(104, "systolic", 171), _alert(107, "diastolic", 99)],
            settings=MonitoringSettings.model_validate(
                {**MonitoringSettings.defaults().model_dump(), "alert_systolic_at_least": 170}
            ),
            tz="Europe/Berlin",
            dose_window=(T0 + timedelta(minutes=2), None),
        ),
    ),
    "vitals, dosing ended, PDF width": (
        lambda: vitals_chart(
            _readings(4),
            alerts=[_alert(102, "spo2", 86)],
            tz="America/Toronto",
            dose_window=(T0, T0 + timedelta(minutes=40)),
            width=640,
            panel_height=90,
        ),
        lambda: vitals_chart(
            _readings(2, start=T0 - timedelta(minutes=30)),
            alerts=[{**_alert(101, "spo2", 85), "text": "other"}],
            tz="America/Toronto",
            dose_window=(T0, T0 + timedelta(minutes=40)),
            width=640,
            panel_height=90,
        ),
    ),
    "scores, instrument with rules": (
        lambda: scores_chart(
            [{"administered_at": T0, "total": 21}],
            instrument=PHQ9,
            bands=PHQ9.bands,
            tz="Europe/Berlin",
            rules=[{"value": 10, "label": "response"}],
        ),
        lambda: scores_chart(
            [
                {"administered_at": T0 + timedelta(days=7 * k), "total": 20 - 3 * k}
                for k in range(5)
            ],
            instrument=PHQ9,
            bands=PHQ9.bands,
            tz="Europe/Berlin",
            rules=[{"value": 4, "label": "remission"}, {"value": 12, "colour": "#b71c1c"}],
        ),
    ),
    "scores, plain bands, no points": (
        lambda: scores_chart(
            [], instrument="GAD-7", bands=[{"min": 0, "max": 21, "label": "all"}], height=150
        ),
        lambda: scores_chart(
            [{"administered_at": T0, "total": 9}, {"administered_at": T0, "total": None}],
            instrument="GAD-7",
            bands=[{"min": 0, "max": 21, "label": "all"}],
            height=150,
        ),
    ),
    "stimulants, one ingredient": (
        lambda: stimulant_chart([_weeks("methylphenidate", [20.0])], tz="UTC"),
        lambda: stimulant_chart([_weeks("methylphenidate", [36.0, 54.0, 18.0])], tz="UTC"),
    ),
    "stimulants, several, unknown weeks": (
        lambda: stimulant_chart(
            [_weeks("lisdexamfetamine", [30.0, None]), _weeks("methylphenidate", [20.0])],
            tz="America/Toronto",
            width=600,
        ),
        lambda: stimulant_chart(
            [
                _weeks("lisdexamfetamine", [None, None, 50.0], unknown_reason="label unread"),
                _weeks("methylphenidate", [36.0, 36.0, 27.0, 18.0]),
            ],
            tz="America/Toronto",
            width=600,
        ),
    ),
}


@pytest.mark.parametrize("case", SAME_KEY)
def test_the_same_key_with_other_data_gives_the_same_layout_and_other_data(case: str) -> None:
    first, second = SAME_KEY[case]
    a = first()
    for cache in LAYOUT_CACHES:
        cache.cache_clear()
    b = second()  # built afresh, not served from the first call's cache entry
    assert _layout(a) == _layout(b)
    assert a["datasets"] != b["datasets"]
    assert set(a["datasets"]) == set(b["datasets"])
    # Served from the cache, the layout is the one built afresh, with this call's data.
    again = first()
    assert again == a and _layout(again) == _layout(b)


@pytest.mark.parametrize("case", SAME_KEY)
def test_each_layout_is_valid_vega_lite_of_altairs_schema(case: str) -> None:
    assert validate_jsonschema(SAME_KEY[case][1](), load_schema()) is None


def test_a_live_session_builds_its_layout_once_while_readings_arrive() -> None:
    # The monitoring card is redrawn as readings come in: the layout is built for the first.
    for n in range(1, 7):
        spec = vitals_chart(
            _readings(n),
            baseline={"systolic": 120, "diastolic": 80},
            alerts=[_alert(100, "systolic", 120)],
            tz="Europe/Berlin",
            dose_window=(T0, None),
        )
        assert len(spec["datasets"]["samples"]) == n
    info = charts._vitals_layout.cache_info()
    assert (info.misses, info.hits) == (1, 5)


def test_a_spec_handed_out_cannot_change_the_cached_layout() -> None:
    spec = vitals_chart(_readings(2), tz="Europe/Berlin")
    expected = _layout(vitals_chart(_readings(2), tz="Europe/Berlin"))
    spec["vconcat"][0]["title"]["text"] = "changed"
    spec["vconcat"][0]["layer"].clear()
    spec["config"]["axis"]["labelFontSize"] = 99
    assert _layout(vitals_chart(_readings(3), tz="Europe/Berlin")) == expected
    assert charts._vitals_layout.cache_info().hits == 2


def test_the_vitals_layout_follows_the_rules_alerts_and_dosing_in_the_data() -> None:
    plain = vitals_chart(_readings(2))
    # Critical limits labelled at the right, warnings at the left (a low one under its line):
    # a label layer for each placement a panel has.
    rule, text = "thresholds:rule", "thresholds:text"
    assert [_layers(p) for p in plain["vconcat"]] == [
        [rule, text, text, "samples:line", "samples:line"],  # >= 180, >= 110, < 80; < 90
        [rule, text, text, text, "samples:line"],  # > 130, < 40; > 110; < 50
        [rule, text, text, "samples:line"],  # < 88; < 92
        [rule, text, "samples:line"],  # < 10
    ]
    assert plain["vconcat"][0]["title"]["subtitle"] == ""

    # A baseline adds rise rules (labelled at the left) where it has the reading; an alert
    # adds markers to its own panel; a dosing window shades every panel, explained once.
    full = vitals_chart(
        _readings(3),
        baseline={"diastolic": 80, "heart_rate": 70},  # no rise rule for heart rate
        alerts=[_alert(102, "spo2", 86)],
        dose_window=(T0, T0 + timedelta(minutes=12)),
    )
    assert [_layers(p) for p in full["vconcat"]] == [
        ["dosing:rect", rule, text, text, text, "samples:line", "samples:line"],
        ["dosing:rect", rule, text, text, text, "samples:line"],
        ["dosing:rect", rule, text, text, "samples:line", "alerts:point"],
        ["dosing:rect", rule, text, "samples:line"],
    ]
    critical, warning, low = full["vconcat"][0]["layer"][2:5]
    assert (critical["mark"]["align"], critical["transform"][-1]) == (
        "right",
        {"filter": {"field": "place", "equal": "critical"}},
    )
    assert (warning["mark"]["align"], warning["transform"][-1]) == (
        "left",
        {"filter": {"field": "place", "equal": "warning"}},
    )
    assert (low["mark"]["align"], low["mark"]["baseline"]) == ("left", "top")
    assert full["vconcat"][0]["title"]["subtitle"] == "Shaded: dosing 09:00-09:12"
    assert all(p["title"]["subtitle"] == "" for p in full["vconcat"][1:])
    assert charts._vitals_layout.cache_info().misses == 2


def test_the_scores_layout_follows_the_bands_and_rules() -> None:
    point = [{"administered_at": T0, "total": 5}]
    plain = scores_chart(point, instrument=PHQ9, bands=PHQ9.bands)
    assert _layers(plain) == ["bands:rect", "bands:text", "scores:line"]
    assert plain["layer"][0]["encoding"]["color"]["scale"]["domain"] == [
        b.label for b in PHQ9.bands
    ]
    ruled = scores_chart(point, instrument=PHQ9, bands=PHQ9.bands, rules=[{"value": 9}])
    assert _layers(ruled) == ["bands:rect", "bands:text", "scores:line", "rules:rule", "rules:text"]
    bare = scores_chart(point, instrument=PHQ9, bands=[])
    assert _layers(bare) == ["scores:line"]
    assert bare["title"]["text"] == "PHQ-9 over time"


def test_the_stimulant_layout_shades_only_the_ingredients_with_unknown_weeks() -> None:
    spec = stimulant_chart(
        [_weeks("lisdexamfetamine", [30.0]), _weeks("methylphenidate", [20.0, None])]
    )
    assert [_layers(p) for p in spec["vconcat"]] == [
        ["weeks:line"],
        ["unknown:rect", "weeks:line"],
    ]
    assert [p["title"]["text"] for p in spec["vconcat"]] == [
        "lisdexamfetamine: mg per day",
        "methylphenidate: mg per day",
    ]
    swapped = stimulant_chart(
        [_weeks("lisdexamfetamine", [None]), _weeks("methylphenidate", [20.0, 20.0])]
    )
    assert [_layers(p) for p in swapped["vconcat"]] == [
        ["unknown:rect", "weeks:line"],
        ["weeks:line"],
    ]
