"""Vega-Lite chart specs, built with Altair, shared by the web pages and the PDF reports.

Pure: readings, settings and a time zone in, a JSON-ready dict out (no database, no clock).
Data stays inline so the same spec renders in a browser (vega-embed) and in vl-convert.

Each chart is its data (top-level ``datasets``, which the layers name) and a layout built with
Altair. Building the layout costs far more than the data, and it depends on a few parameters
only (the zone, the size, which panels have rules or alerts), so layouts are built once per
such key and cached as JSON text; each call gets a fresh copy with its own data.

Times are drawn as the clinic's wall clock: each time is converted to the clinic's zone in
Python, written with a Z and drawn on a UTC scale, so neither the viewer's browser zone nor
the converter's machine zone can shift an axis label.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import altair as alt

from ketacare.clinical.monitoring import MonitoringSettings
from ketacare.knowledge.instrument_defs import Band, InstrumentDef
from ketacare.knowledge.protocol_defs import load_monitoring

__all__ = ["scores_chart", "spec_json", "stimulant_chart", "vitals_chart"]

Width = int | Literal["container"]

_ALERT_RED = "#c62828"
_RULE_COLOUR = {"critical": "#b71c1c", "warning": "#b26a00"}
_SYMBOL = {"at_least": "≥", "above": ">", "below": "<"}
# A fixed y-axis gutter keeps the four plot areas aligned on the shared time axis.
_Y_AXIS = {"minExtent": 32, "maxExtent": 32, "titlePadding": 6}
# Layouts kept per chart kind: a clinic's zones, sizes and dosing windows of the day.
_LAYOUTS = 256


@dataclass(frozen=True)
class _Panel:
    title: str
    unit: str
    fields: tuple[tuple[str, str, str], ...]  # (field, legend label, colour)
    # Values derived from the plotted ones, drawn here only as alert thresholds and alerts:
    # (field, label).
    derived: tuple[tuple[str, str], ...] = ()

    @property
    def marked(self) -> list[str]:
        """The fields whose thresholds and alerts this panel draws."""
        return [f for f, _label, _colour in self.fields] + [f for f, _label in self.derived]


_PANELS = (
    _Panel(
        "Blood pressure (mmHg)",
        "mmHg",
        (("systolic", "Systolic", "#1f4e9c"), ("diastolic", "Diastolic", "#5b9bd5")),
        (("mean_arterial_pressure", "MAP"),),
    ),
    _Panel("Heart rate (beats/min)", "beats/min", (("heart_rate", "Heart rate", "#6a3d9a"),)),
    _Panel("SpO2 (%)", "%", (("spo2", "SpO2", "#00796b"),)),
    _Panel(
        "Respiratory rate (breaths/min)",
        "breaths/min",
        (("respiratory_rate", "Respiratory rate", "#5d4037"),),
    ),
)
_PLOTTED = tuple(f for p in _PANELS for f, _label, _colour in p.fields)
_FIELD_LABEL = {
    **{f: label for p in _PANELS for f, label, _ in p.fields},
    **{f: label for p in _PANELS for f, label in p.derived},
}


def _get(obj: Any, name: str) -> Any:
    """Samples and alerts may be dicts (API JSON) or objects (models, dataclasses)."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _clock(value: datetime | None, zone: ZoneInfo, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{field}: a time is needed, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field}: {value.isoformat()} has no time zone; pass an aware time")
    return value.astimezone(zone).replace(tzinfo=None)


def _wall(local: datetime) -> str:
    """A clinic wall-clock time as Vega reads it: Vega has no time zones, so the wall clock is
    written with a Z and drawn on a UTC scale, which shows it unchanged."""
    return local.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_x(field: str, zone_name: str, *, bottom: bool) -> alt.X:
    """The same time scale and axis on every layer, so the layers merge without conflict;
    only the bottom panel labels the shared axis."""
    axis = (
        alt.Axis(
            format="%H:%M",
            title=f"Time ({zone_name})",
            labelOverlap="greedy",
            labelFlush=False,
            # At least five minutes between ticks, however short the session so far.
            tickMinStep=5 * 60 * 1000,
        )
        if bottom
        else alt.Axis(format="%H:%M", title=None, labels=False, ticks=False)
    )
    return alt.X(f"{field}:T", scale=alt.Scale(type="utc"), axis=axis)


def _g(value: float) -> str:
    return f"{value:g}"


def _place(severity: str, comparison: str) -> str:
    """Where a limit's label goes: critical ones at the right, warnings at the left, a low
    warning under its line; so the labels of neighbouring limits (diastolic 110 and baseline
    + 25; systolic 90 and 80; a diastolic rise near systolic 90) do not overprint."""
    if severity == "critical":
        return "critical"
    return "warning_low" if comparison == "below" else "warning"


def _thresholds(
    settings: MonitoringSettings, baseline: Any | None
) -> dict[str, list[dict[str, Any]]]:
    """Dashed rules per field from the alert rules in force: absolute ones at the setting,
    rises at baseline + setting (only where the baseline has that reading)."""
    values = settings.template_values()
    out: dict[str, list[dict[str, Any]]] = {}
    for rule in load_monitoring().alerts:
        if rule.field not in _PLOTTED:
            continue  # no line for a derived value (the mean pressure): only its alerts
        setting = values[rule.setting]
        symbol = _SYMBOL[rule.comparison]
        name = _FIELD_LABEL[rule.field]
        if rule.kind == "rise":
            start = _get(baseline, rule.field) if baseline is not None else None
            if start is None:
                continue
            at = start + setting
            label = f"{name} {symbol} {_g(at)} (baseline {_g(start)} + {_g(setting)})"
        else:
            at = setting
            label = f"{name} {symbol} {_g(at)}"
        out.setdefault(rule.field, []).append(
            {
                "field": rule.field,
                "code": rule.code,
                "kind": rule.kind,
                "severity": rule.severity,
                "place": _place(rule.severity, rule.comparison),
                "value": at,
                "label": label,
                "colour": _RULE_COLOUR[rule.severity],
            }
        )
    return out


def _alert_rows(
    alerts: Iterable[Any], samples: Sequence[Any], zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Alert markers on the reading they belong to: the alert's own measured_at, else the
    sample whose id is the alert's vital_sample_id."""
    by_id = {_get(s, "id"): s for s in samples if _get(s, "id") is not None}
    out: list[dict[str, Any]] = []
    for n, alert in enumerate(alerts):
        at = _get(alert, "measured_at")
        if at is None:
            sample = by_id.get(_get(alert, "vital_sample_id"))
            if sample is None:
                raise ValueError(
                    f"alerts[{n}]: no measured_at and no sample with id "
                    f"{_get(alert, 'vital_sample_id')!r}; pass the reading's time"
                )
            at = _get(sample, "measured_at")
        field = _get(alert, "field")
        if field not in _FIELD_LABEL:
            raise ValueError(f"alerts[{n}].field: {field!r} is not a charted vital sign")
        local = _clock(at, zone, f"alerts[{n}].measured_at")
        out.append(
            {
                "time": _wall(local),
                "time_label": f"{local:%H:%M}",
                "field": field,
                "value": _get(alert, "value"),
                "severity": _get(alert, "severity"),
                "text": _get(alert, "text"),
            }
        )
    return out


def vitals_chart(
    samples: Sequence[Any],
    *,
    baseline: Any | None = None,
    alerts: Iterable[Any] = (),
    settings: MonitoringSettings | None = None,
    tz: str = "UTC",
    dose_window: tuple[datetime, datetime | None] | None = None,
    width: Width = "container",
    panel_height: int = 110,
) -> dict[str, Any]:
    """In-session vital signs as four stacked panels on one time axis, with the clinic's alert
    thresholds as dashed rules, raised alerts as red points and the dosing window shaded.

    ``samples``: readings with ``measured_at`` (aware) and any of systolic, diastolic,
    heart_rate, spo2, respiratory_rate (None is a gap in the line, never a zero).
    ``baseline``: the pre-dose readings the rise alerts are measured against.
    ``alerts``: with field, value, text, severity and either measured_at or the
    vital_sample_id of a sample that has an ``id``. ``dose_window``: (start, end); an end of
    None (dosing still running) is drawn up to the last reading. ``width``: "container" fills
    the page's card; a number of pixels for PDF reports.
    """
    settings = settings or MonitoringSettings.defaults()
    zone = ZoneInfo(tz)
    # Checked in the caller's order (errors name the right index), drawn in time order.
    timed = [
        (_clock(_get(s, "measured_at"), zone, f"samples[{n}].measured_at"), s)
        for n, s in enumerate(samples)
    ]
    timed.sort(key=lambda pair: _get(pair[1], "measured_at"))
    ordered = [sample for _local, sample in timed]
    rows: list[dict[str, Any]] = []
    for local, sample in timed:
        row: dict[str, Any] = {"time": _wall(local), "time_label": f"{local:%H:%M}"}
        for field in _PLOTTED:
            row[field] = _get(sample, field)
        rows.append(row)

    datasets: dict[str, list[dict[str, Any]]] = {
        "samples": rows,
        "thresholds": [r for rules in _thresholds(settings, baseline).values() for r in rules],
        "alerts": _alert_rows(alerts, ordered, zone),
    }
    if dose_window is not None:
        start, end = dose_window
        start_local = _clock(start, zone, "dose_window.start")
        if end is None:
            last = max([r["time"] for r in rows], default=_wall(start_local))
            end_text = max(last, _wall(start_local))
            label = f"Dosing from {start_local:%H:%M}"
        else:
            end_local = _clock(end, zone, "dose_window.end")
            if end_local < start_local:
                raise ValueError("dose_window: the end is before the start")
            end_text = _wall(end_local)
            label = f"Dosing {start_local:%H:%M}-{end_local:%H:%M}"
        datasets["dosing"] = [{"start": _wall(start_local), "end": end_text, "label": label}]

    layout = _vitals_layout(
        tz,
        width,
        panel_height,
        datasets["dosing"][0]["label"] if "dosing" in datasets else None,
        tuple(sorted({(r["field"], r["place"]) for r in datasets["thresholds"]})),
        tuple(sorted({a["field"] for a in datasets["alerts"]})),
    )
    return _with_datasets(layout, datasets)


@lru_cache(maxsize=_LAYOUTS, typed=True)
def _vitals_layout(
    tz: str,
    width: Width,
    panel_height: int,
    dosing: str | None,
    thresholds: tuple[tuple[str, str], ...],
    alert_fields: tuple[str, ...],
) -> str:
    """The vitals chart without its data. ``dosing``: the dosing window's label, None when
    there is none; ``thresholds``: the (field, place) of the rules drawn; ``alert_fields``: the
    fields that have an alert."""
    panels: list[alt.LayerChart] = []
    for index, panel in enumerate(_PANELS):
        bottom = index == len(_PANELS) - 1
        fields = panel.marked
        layers: list[alt.Chart] = []
        if dosing is not None:
            layers.append(
                alt.Chart(alt.NamedData("dosing"))
                .mark_rect(color="#f2c14e", opacity=0.25)
                .encode(
                    x=_time_x("start", tz, bottom=bottom),
                    x2="end:T",
                    tooltip=[alt.Tooltip("label:N", title="Dosing")],
                )
            )
        if any(field in fields for field, _place in thresholds):
            rules = alt.Chart(alt.NamedData("thresholds")).transform_filter(
                alt.FieldOneOfPredicate(field="field", oneOf=fields)
            )
            layers.append(
                rules.mark_rule(strokeDash=[5, 4], strokeWidth=1.2).encode(
                    y=alt.Y("value:Q"),
                    color=alt.Color("colour:N", scale=None),
                    tooltip=[alt.Tooltip("label:N", title="Alert threshold")],
                )
            )
            # Labels placed as _place says.
            for place, align, x, dx, edge, dy in (
                ("critical", "right", "width", -4, "bottom", -2),
                ("warning", "left", 0, 4, "bottom", -2),
                ("warning_low", "left", 0, 4, "top", 2),
            ):
                if not any(f in fields and p == place for f, p in thresholds):
                    continue  # an empty layer would warn of an infinite extent
                layers.append(
                    rules.transform_filter(alt.FieldEqualPredicate(field="place", equal=place))
                    .mark_text(align=align, baseline=edge, dx=dx, dy=dy, fontSize=10)
                    .encode(
                        x=alt.value(x),
                        y=alt.Y("value:Q"),
                        text="label:N",
                        color=alt.Color("colour:N", scale=None),
                    )
                )
        for field, label, _colour in panel.fields:
            layers.append(
                alt.Chart(alt.NamedData("samples"))
                .transform_calculate(series=json.dumps(label))
                .mark_line(
                    point=alt.OverlayMarkDef(filled=True, size=28),
                    strokeWidth=1.8,
                    # Null readings break the line; they are never drawn as zeros.
                    invalid="break-paths-filter-domains",
                )
                .encode(
                    x=_time_x("time", tz, bottom=bottom),
                    y=alt.Y(
                        f"{field}:Q",
                        title=panel.unit,
                        scale=alt.Scale(zero=False),
                        axis=alt.Axis(**_Y_AXIS),
                    ),
                    color=alt.Color(
                        "series:N",
                        title=None,
                        scale=alt.Scale(
                            domain=[f[1] for f in panel.fields],
                            range=[f[2] for f in panel.fields],
                        ),
                        legend=alt.Legend(orient="top", direction="horizontal")
                        if len(panel.fields) > 1
                        else None,
                    ),
                    tooltip=[
                        alt.Tooltip("time_label:N", title="Time"),
                        alt.Tooltip(f"{field}:Q", title=f"{label} ({panel.unit})"),
                    ],
                )
            )
        if any(field in fields for field in alert_fields):
            layers.append(
                alt.Chart(alt.NamedData("alerts"))
                .transform_filter(alt.FieldOneOfPredicate(field="field", oneOf=fields))
                .mark_point(shape="circle", filled=True, size=90, color=_ALERT_RED, opacity=1)
                .encode(
                    x=_time_x("time", tz, bottom=bottom),
                    y=alt.Y("value:Q"),
                    tooltip=[
                        alt.Tooltip("time_label:N", title="Time"),
                        alt.Tooltip("severity:N", title="Severity"),
                        alt.Tooltip("text:N", title="Alert"),
                    ],
                )
            )
        panels.append(
            alt.layer(*layers).properties(
                title=alt.TitleParams(
                    panel.title,
                    # The shading is explained once, above the first panel.
                    subtitle=f"Shaded: {dosing.lower()}"
                    if index == 0 and dosing is not None
                    else "",
                    anchor="start",
                    fontSize=12,
                    subtitleFontSize=10,
                ),
                width=width,
                height=panel_height,
            )
        )

    chart = (
        alt.vconcat(*panels, spacing=14)
        .resolve_scale(x="shared", color="independent")
        .properties(datasets={}, usermeta={"ketacare": {"chart": "vitals", "tz": tz}})
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=10, titleFontSize=10)
    )
    return _layout_json(chart)


def _band(band: Band | Mapping[str, Any]) -> tuple[int, int, str]:
    if isinstance(band, Band):
        return band.min, band.max, band.label
    return int(band["min"]), int(band["max"]), str(band["label"])


def scores_chart(
    points: Sequence[Any],
    *,
    instrument: InstrumentDef | str,
    bands: Sequence[Band | Mapping[str, Any]],
    tz: str = "UTC",
    width: Width = "container",
    height: int = 200,
    rules: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One instrument's total over time (points: administered_at + total) on the
    instrument's fixed range, its severity bands shaded behind the line.

    ``rules``: optional dashed horizontal lines, each ``{"value", "label"}`` and optionally
    ``"colour"`` (the outcome thresholds: baseline, response, remission)."""
    parsed = sorted(_band(b) for b in bands)
    if isinstance(instrument, InstrumentDef):
        title, low, high = instrument.short_name, 0, instrument.scoring.max
    elif parsed:
        title, low, high = instrument, parsed[0][0], parsed[-1][1]
    else:
        raise ValueError("bands: without bands, pass the instrument definition for its range")
    zone = ZoneInfo(tz)

    def band_of(total: float) -> str | None:
        return next((label for lo, hi, label in parsed if lo <= total <= hi), None)

    rows = []
    timed = [
        (_clock(_get(p, "administered_at"), zone, f"points[{n}].administered_at"), p)
        for n, p in enumerate(points)
    ]
    timed.sort(key=lambda pair: _get(pair[1], "administered_at"))
    for local, point in timed:
        total = _get(point, "total")
        rows.append(
            {
                "time": _wall(local),
                "time_label": f"{local:%Y-%m-%d %H:%M}",
                "total": total,
                "band": band_of(total) if total is not None else None,
            }
        )
    # Bands cover whole scores: each shades from half a point below its min to half above
    # its max, so neighbouring bands meet without a gap.
    band_rows = [
        {
            "min": lo,
            "max": hi,
            "label": label,
            "y": max(low, lo - 0.5),
            "y2": min(high, hi + 0.5),
            "mid": (max(low, lo - 0.5) + min(high, hi + 0.5)) / 2,
        }
        for lo, hi, label in parsed
    ]
    datasets: dict[str, list[dict[str, Any]]] = {"scores": rows, "bands": band_rows}
    if rules:
        datasets["rules"] = _rule_rows(rules, low, high)
    layout = _scores_layout(
        title,
        low,
        high,
        tuple(label for _lo, _hi, label in parsed),
        tz,
        width,
        height,
        bool(rules),
    )
    return _with_datasets(layout, datasets)


@lru_cache(maxsize=_LAYOUTS, typed=True)
def _scores_layout(
    title: str,
    low: float,
    high: float,
    band_labels: tuple[str, ...],
    tz: str,
    width: Width,
    height: int,
    ruled: bool,
) -> str:
    """The scores chart without its data: ``band_labels`` in the bands' order, ``ruled``
    when there are threshold rules."""
    y_scale = alt.Scale(domain=[low, high], nice=False, zero=False)
    layers: list[alt.Chart] = []
    if band_labels:
        band_base = alt.Chart(alt.NamedData("bands"))
        layers.append(
            band_base.mark_rect(opacity=0.35).encode(
                y=alt.Y("y:Q", scale=y_scale, title=f"{title} total"),
                y2="y2:Q",
                color=alt.Color(
                    "label:N",
                    scale=alt.Scale(domain=list(band_labels), scheme="yelloworangered"),
                    legend=None,
                ),
                tooltip=[
                    alt.Tooltip("label:N", title="Band"),
                    alt.Tooltip("min:Q", title="From"),
                    alt.Tooltip("max:Q", title="To"),
                ],
            )
        )
        layers.append(
            band_base.mark_text(
                align="left", baseline="middle", dx=4, fontSize=10, color="#444"
            ).encode(x=alt.value(0), y=alt.Y("mid:Q", scale=y_scale), text="label:N")
        )
    layers.append(
        alt.Chart(alt.NamedData("scores"))
        .mark_line(point=alt.OverlayMarkDef(filled=True, size=40), color="#1f4e9c")
        .encode(
            x=alt.X(
                "time:T",
                scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%Y-%m-%d", title=f"Date ({tz})", labelOverlap=True),
            ),
            y=alt.Y("total:Q", scale=y_scale, title=f"{title} total"),
            tooltip=[
                alt.Tooltip("time_label:N", title="Administered"),
                alt.Tooltip("total:Q", title="Total"),
                alt.Tooltip("band:N", title="Band"),
            ],
        )
    )
    if ruled:
        rule_base = alt.Chart(alt.NamedData("rules"))
        layers.append(
            rule_base.mark_rule(strokeDash=[5, 4], strokeWidth=1.2).encode(
                y=alt.Y("value:Q", scale=y_scale),
                color=alt.Color("colour:N", scale=None),
                tooltip=[alt.Tooltip("label:N", title="Threshold")],
            )
        )
        layers.append(
            rule_base.mark_text(align="right", baseline="bottom", dx=-4, dy=-2, fontSize=10).encode(
                x=alt.value("width"),
                y=alt.Y("value:Q", scale=y_scale),
                text="label:N",
                color=alt.Color("colour:N", scale=None),
            )
        )
    chart = (
        alt.layer(*layers)
        .properties(
            title=alt.TitleParams(f"{title} over time", anchor="start", fontSize=12),
            width=width,
            height=height,
            datasets={},
            usermeta={"ketacare": {"chart": "scores", "tz": tz}},
        )
        .configure_view(stroke=None)
    )
    return _layout_json(chart)


def _rule_rows(rules: Sequence[Mapping[str, Any]], low: float, high: float) -> list[dict[str, Any]]:
    out = []
    for n, rule in enumerate(rules):
        value = rule.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"rules[{n}].value: a number is needed, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"rules[{n}].value: {value:g} is outside {low:g}-{high:g}")
        out.append(
            {
                "value": value,
                "label": str(rule.get("label") or f"{value:g}"),
                "colour": str(rule.get("colour") or "#555555"),
            }
        )
    return out


# Doses that cannot be read are shaded grey across their week: unknown, never drawn as 0.
_UNKNOWN_GREY = "#9e9e9e"
_STIMULANT_COLOURS = ("#6a3d9a", "#00796b", "#b26a00", "#1f4e9c", "#5d4037", "#c2185b")


def _week_of(value: Any, field: str) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"{field}: a week start date is needed, got a time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{field}: a week start date is needed, got {value!r}")


def stimulant_chart(
    doses: Any,
    *,
    tz: str = "UTC",
    width: Width = "container",
    panel_height: int = 110,
) -> dict[str, Any]:
    """Stimulant dose per ISO week: one panel per ingredient (mg per day as entered; doses
    are never converted between ingredients), on one shared week axis.

    ``doses``: the stimulant doses of ``ketacare.clinical.stimulants.stimulant_doses`` (or
    the use-case's ``stimulants``), or their ``ingredients``: each with ``ingredient`` and
    ``weeks`` of ``week_start``, ``iso_year``, ``iso_week``, ``status`` (dose | not_taken |
    unknown), ``mg_per_day``, ``lowest_mg_per_day`` and ``reason``. Unknown weeks are shaded
    grey with their reason, never drawn as 0. ``tz`` names the clinic's zone in the metadata
    (weeks are calendar dates). Raises ``ValueError`` when there is no ingredient to chart.
    """
    ingredients = _get(doses, "ingredients")
    if ingredients is None:
        ingredients = doses
    if isinstance(ingredients, str | bytes | Mapping) or not isinstance(ingredients, Sequence):
        raise ValueError("doses: give the stimulant doses or their ingredients")
    if not ingredients:
        raise ValueError("doses: no stimulant to chart")
    names: list[str] = []
    rows: list[dict[str, Any]] = []
    unknown: list[dict[str, Any]] = []
    for i, item in enumerate(ingredients):
        name = _get(item, "ingredient")
        if not isinstance(name, str) or not name:
            raise ValueError(f"ingredients[{i}].ingredient: a name is needed")
        names.append(name)
        for w, week in enumerate(_get(item, "weeks") or ()):
            start = _week_of(_get(week, "week_start"), f"ingredients[{i}].weeks[{w}].week_start")
            end = start + timedelta(days=7)
            label = f"{_get(week, 'iso_year')}-W{int(_get(week, 'iso_week') or 0):02d}"
            status = _get(week, "status")
            mg = _get(week, "mg_per_day")
            if status == "unknown" or (status == "dose" and mg is None):
                unknown.append(
                    {
                        "ingredient": name,
                        "start": f"{start.isoformat()}T00:00:00Z",
                        "end": f"{end.isoformat()}T00:00:00Z",
                        "week": label,
                        "reason": _get(week, "reason") or "dose unknown",
                    }
                )
                mg = None
            lowest = _get(week, "lowest_mg_per_day")
            rows.append(
                {
                    "ingredient": name,
                    "week_start": f"{start.isoformat()}T00:00:00Z",
                    "week": label,
                    "mg_per_day": mg,
                    "range": (
                        f"{lowest:g}-{mg:g} mg/day"
                        if mg is not None and lowest is not None and lowest != mg
                        else (f"{mg:g} mg/day" if mg is not None else "unknown")
                    ),
                }
            )
    layout = _stimulant_layout(
        tuple(names),
        tuple(any(u["ingredient"] == name for u in unknown) for name in names),
        tz,
        width,
        panel_height,
    )
    return _with_datasets(layout, {"weeks": rows, "unknown": unknown})


@lru_cache(maxsize=_LAYOUTS, typed=True)
def _stimulant_layout(
    names: tuple[str, ...],
    unknown: tuple[bool, ...],
    tz: str,
    width: Width,
    panel_height: int,
) -> str:
    """The stimulant chart without its data: a panel per name, ``unknown`` telling which of
    them have a week of unknown dose."""
    x = alt.X(
        "week_start:T",
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format="%Y-%m-%d", title="Week starting (Monday)", labelOverlap=True),
    )
    panels: list[alt.LayerChart] = []
    for index, (name, shaded) in enumerate(zip(names, unknown, strict=True)):
        only = alt.FieldEqualPredicate(field="ingredient", equal=name)
        layers: list[alt.Chart] = []
        if shaded:
            layers.append(
                alt.Chart(alt.NamedData("unknown"))
                .transform_filter(only)
                .mark_rect(color=_UNKNOWN_GREY, opacity=0.3)
                .encode(
                    x=alt.X("start:T", scale=alt.Scale(type="utc")),
                    x2="end:T",
                    tooltip=[
                        alt.Tooltip("week:N", title="Week"),
                        alt.Tooltip("reason:N", title="Dose unknown"),
                    ],
                )
            )
        layers.append(
            alt.Chart(alt.NamedData("weeks"))
            .transform_filter(only)
            .mark_line(
                point=alt.OverlayMarkDef(filled=True, size=30),
                interpolate="step-after",
                strokeWidth=1.8,
                color=_STIMULANT_COLOURS[index % len(_STIMULANT_COLOURS)],
                # An unknown week breaks the line; it is never drawn as 0.
                invalid="break-paths-filter-domains",
            )
            .encode(
                x=x,
                y=alt.Y(
                    "mg_per_day:Q",
                    title="mg/day",
                    scale=alt.Scale(zero=True),
                    axis=alt.Axis(**_Y_AXIS),
                ),
                tooltip=[
                    alt.Tooltip("week:N", title="Week"),
                    alt.Tooltip("range:N", title=name),
                ],
            )
        )
        panels.append(
            alt.layer(*layers).properties(
                title=alt.TitleParams(
                    f"{name}: mg per day",
                    subtitle="As entered; no conversion between medicines. Grey: dose unknown."
                    if index == 0
                    else "",
                    anchor="start",
                    fontSize=12,
                    subtitleFontSize=10,
                ),
                width=width,
                height=panel_height,
            )
        )
    chart = (
        alt.vconcat(*panels, spacing=14)
        .resolve_scale(x="shared", y="independent")
        .properties(
            datasets={},
            usermeta={"ketacare": {"chart": "stimulants", "tz": tz}},
        )
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=10, titleFontSize=10)
    )
    return _layout_json(chart)


def _layout_json(chart: alt.TopLevelMixin) -> str:
    """A layout (built with an empty ``datasets``, which keeps that key's place) as JSON text:
    immutable in the cache, and json.loads makes a fresh copy faster than deepcopy does."""
    # Altair checks a chart against the Vega-Lite JSON schema on every to_dict(), which costs
    # far more than building it. The shapes are fixed in this module, so the tests validate
    # each chart kind and the pages skip the check.
    return json.dumps(chart.to_dict(validate=False), allow_nan=False)


def _with_datasets(layout: str, datasets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(layout)
    spec["datasets"] = datasets
    return spec


def spec_json(spec: Mapping[str, Any]) -> str:
    """JSON for a ``<script type="application/json">`` element: ``<``, ``>`` and ``&`` are
    written as \\u escapes so no text in the data can close the element or open a comment."""
    text = json.dumps(spec, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
