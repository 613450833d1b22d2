"""PDF reports: Jinja2 templates rendered to HTML, charts drawn to inline SVG, WeasyPrint to PDF.

Pure apart from the drawing: a template name and its context in, PDF bytes out. No database
and no clock (the caller passes the generation time). The templates and the print stylesheet
live beside this module in ``templates/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

__all__ = ["chart_svg", "format_number", "render_html", "render_pdf"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STYLESHEET = TEMPLATES_DIR / "print.css"

# The footer of every page, and of every screen of the app: the clinician decides.
DISCLAIMER = (
    "Decision support: the clinician decides. Psychiatric ketamine use is off-label; "
    "no trial of ketamine for ADHD exists."
)
CHART_FONT = "DejaVu Sans"
# Only the <svg> element of the converter's output is kept (no XML declaration in the page).
_SVG_START = re.compile(r"<svg\b")


def _local(
    value: datetime | date | None, tz: ZoneInfo | None = None, fmt: str = "%Y-%m-%d %H:%M"
) -> str:
    """Times are stored in UTC and printed in the clinic's zone; dates print as they are."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime(fmt) if tz else value.strftime(fmt)
    return value.isoformat()


def format_number(value: float | None, digits: int = 1) -> str:
    """92.0 -> "92", 28.55 -> "28.6"; None -> "" (never a made-up zero)."""
    if value is None:
        return ""
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _label(value: str | None) -> str:
    return (value or "").replace("_", " ")


def chart_svg(spec: Mapping[str, Any]) -> Markup:
    """A Vega-Lite spec (from reports.charts, with a fixed pixel width) drawn as an SVG
    element to place inline in the page. vl-convert escapes every text it writes."""
    # Imported on first use, like WeasyPrint: each takes about a second to load, which the
    # commands and pages that draw no PDF should not pay.
    import vl_convert

    # Vega places and thins out labels by measuring their text: measure with the font the PDF
    # draws them in, so dates on an axis do not overprint.
    themed = dict(spec)
    themed["config"] = {**spec.get("config", {}), "font": CHART_FONT}
    svg = vl_convert.vegalite_to_svg(themed)
    match = _SVG_START.search(svg)
    if match is None:
        raise ValueError("the chart converter returned no SVG")
    return Markup(svg[match.start() :])  # noqa: S704 (the converter's own escaped SVG)  # nosec B704


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local
    env.filters["num"] = format_number
    env.filters["label"] = _label
    env.globals["disclaimer"] = DISCLAIMER
    return env


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Everything a report shows is inline: nothing is fetched, from the network or from disk."""
    raise ValueError(f"reports load no external resources ({url[:60]})")


def render_html(template: str, context: Mapping[str, Any]) -> str:
    return _environment().get_template(template).render(**context)


def render_pdf(template: str, context: Mapping[str, Any], *, title: str) -> bytes:
    """Render ``template`` with ``context`` and print it to PDF (A4, footer on every page)."""
    from weasyprint import CSS, HTML

    html = render_html(template, {**context, "document_title": title})
    document = HTML(string=html, base_url=str(TEMPLATES_DIR), url_fetcher=_no_fetch)
    return document.write_pdf(stylesheets=[CSS(filename=str(STYLESHEET))])
