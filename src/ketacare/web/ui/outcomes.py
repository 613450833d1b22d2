"""The chart's outcomes section (an HTMX fragment): per scale its chart, baseline, latest and
change with the flags, their definitions, evidence and sources; the stimulant dose per week;
the adverse events and alerts of each dosing session."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ketacare.app import outcomes as uc
from ketacare.knowledge.instrument_defs import get_instrument
from ketacare.reports.charts import scores_chart, spec_json, stimulant_chart
from ketacare.web.auth import CurrentPrincipal, DbSession
from ketacare.web.ui.render import render

router = APIRouter()

# Flags that are good news, and those that ask the clinician to act.
_GOOD = frozenset({"response", "remission"})
_LABEL = {"met": "met", "not_met": "not met", "unknown": "unknown", "not_applicable": "n/a"}
_COLOUR = {"baseline": "#555555", "response": "#2e7d32", "remission": "#00796b"}
_WORSE = "#c62828"


def flag_style(flag: uc.OutcomeFlagOut) -> tuple[str, str]:
    """(CSS class, short status label) of a flag: unknown is never shown as good news."""
    if flag.status == "met":
        css = "reason-supporting" if flag.code in _GOOD else "reason-exclusion"
    elif flag.status == "unknown":
        css = "reason-caution"
    else:
        css = "reason-info"
    return css, _LABEL[flag.status]


def _rules(scale: uc.InstrumentOutcomeOut) -> list[dict[str, Any]]:
    """The thresholds drawn on the scale's chart: baseline, response, remission, worsening."""
    base = scale.baseline
    if base is None:
        return []
    t = scale.thresholds
    rules: list[dict[str, Any]] = [
        {"value": base.total, "label": f"baseline {base.total}", "colour": _COLOUR["baseline"]}
    ]
    minimum = t["min_baseline"]
    if base.total >= minimum:
        level = base.total * (1 - t["response_fall_percent"] / 100)
        rules.append(
            {
                "value": level,
                "label": f"response ≤ {level:g} ({t['response_fall_percent']:g}% fall)",
                "colour": _COLOUR["response"],
            }
        )
        if "remission_below" in t:
            rules.append(
                {
                    "value": t["remission_below"],
                    "label": f"remission below {t['remission_below']:g}",
                    "colour": _COLOUR["remission"],
                }
            )
    reference = max(base.total, minimum)
    worse = reference * (1 + t["worsening_rise_percent"] / 100)
    if worse <= scale.max_total:
        rules.append(
            {
                "value": worse,
                "label": f"worsening ≥ {worse:g} ({t['worsening_rise_percent']:g}% rise)",
                "colour": _WORSE,
            }
        )
    return rules


def _specs(out: uc.PatientOutcomesOut) -> tuple[dict[str, str], str | None]:
    charts: dict[str, str] = {}
    for scale in out.instruments:
        if not scale.trajectory:
            continue
        definition = get_instrument(scale.instrument)
        charts[scale.instrument] = spec_json(
            scores_chart(
                scale.trajectory,
                instrument=definition,
                bands=definition.bands,
                tz=out.timezone,
                height=180,
                rules=_rules(scale),
            )
        )
    stimulants = (
        spec_json(stimulant_chart(out.stimulants, tz=out.timezone))
        if out.stimulants.ingredients
        else None
    )
    return charts, stimulants


@router.get("/patients/{patient_id}/outcomes")
def outcomes_fragment(
    request: Request, db: DbSession, principal: CurrentPrincipal, patient_id: int
) -> Response:
    out = uc.patient_outcomes(db, principal.actor, patient_id)
    charts, stimulants = _specs(out)
    return render(
        request,
        "outcomes/_panel.html",
        principal,
        o=out,
        charts=charts,
        stimulant_spec=stimulants,
        flag_style=flag_style,
        refs=out.references,
    )
