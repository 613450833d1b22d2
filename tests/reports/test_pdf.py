"""The PDF layer: the report templates print to PDF with the footer on every page, charts as
inline SVG (their text is in the PDF), a page that is not blank, and text escaped as text."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pypdf
import pypdfium2 as pdfium
import pytest

from ketacare.app.reports import (
    Cited,
    CourseBlock,
    Header,
    InteractionBlock,
    ProgressReport,
    ScoreLine,
    SessionLine,
    render_progress,
)
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.instrument_defs import get_instrument
from ketacare.reports import pdf
from ketacare.reports.charts import scores_chart

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 in Toronto (EST)


def _pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def _session(n: int) -> SessionLine:
    at = T0 + timedelta(days=2 * n)
    return SessionLine(
        id=100 + n,
        number=n,
        scheduled_at=at,
        dosed_at=at,
        status="completed",
        dose_mg=35.0 + n / 10,
        mg_per_kg=0.5,
        order_status="ordered",
        gate_band="proceed",
        gate_override=None,
        precheck_band="proceed",
        alerts=n % 2,
        adverse_events=["Nausea (mild)"] if n == 1 else [],
        discharge="criteria met",
        signed_by="Nurse Nell",
        signed_at=at + timedelta(hours=2),
    )


def _report(family: str = "Lindqvist", sessions: int = 3, scores: int = 4) -> ProgressReport:
    phq9 = get_instrument("phq9")
    return ProgressReport(
        header=Header(
            patient_id=7,
            mrn="KC-777",
            family_name=family,
            given_name="Astrid",
            date_of_birth=date(1990, 5, 17),
            sex="female",
            stage="in_course",
            clinic_name="North Clinic",
            clinic_timezone="America/Toronto",
        ),
        generated_at=T0 + timedelta(days=30),
        knowledge_version=knowledge_version(),
        review=None,
        consent=None,
        courses=[
            CourseBlock(
                id=1,
                protocol_id="iv-ketamine",
                protocol_name="Intravenous racemic ketamine infusion (sub-anaesthetic)",
                start_date=date(2026, 3, 2),
                end_date=date(2026, 3, 16),
                status="active",
                stop_reason=None,
                revision=0,
                sessions=[_session(n) for n in range(1, sessions + 1)],
            )
        ],
        scores=[
            ScoreLine(
                instrument="phq9",
                short_name=phq9.short_name,
                administered_at=T0 + timedelta(days=7 * k),
                total=max(0, 20 - 4 * k),
                max=phq9.scoring.max,
                band=None,
                source="self_report",
            )
            for k in range(scores)
        ],
        medications=[],
        interactions=InteractionBlock(
            screen_id=None,
            screened_at=None,
            agent="ketamine",
            route="iv",
            knowledge_version=knowledge_version(),
            findings=[],
            no_known_interaction=[],
            not_reviewed=[],
            unrecognized=[],
        ),
        adverse_events=[],
        signatures=[],
        references={k: Cited.of(v) for k, v in load_catalog().references.items()},
    )


@pytest.fixture(scope="module")
def progress_pdf() -> bytes:
    return render_progress(_report())


def test_the_progress_report_prints_the_patient_doses_and_chart_text(progress_pdf: bytes) -> None:
    assert progress_pdf.startswith(b"%PDF-")
    text = " ".join(" ".join(_pages(progress_pdf)).split())
    assert "Lindqvist, Astrid" in text
    assert "MRN KC-777" in text
    assert "35.1" in text and "35.3" in text  # the dose of sessions 1 and 3, in mg
    # The chart is inline SVG drawn as text, not a picture: its axis title is in the PDF.
    assert "PHQ-9 total" in text
    assert "Date (America/Toronto)" in text
    # Times in the clinic's zone: the first session at 14:00 UTC is 09:00 in Toronto.
    assert "2026-03-04 09:00" in text


def test_every_page_carries_the_footer_with_its_number(progress_pdf: bytes) -> None:
    long_report = render_progress(_report(sessions=30, scores=40))
    pages = _pages(long_report)
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        flat = " ".join(text.split())
        assert "Decision support: the clinician decides." in flat
        assert (
            "Psychiatric ketamine use is off-label; no trial of ketamine for ADHD exists." in flat
        )
        assert f"Page {number} of {len(pages)}" in flat
        assert f"knowledge {knowledge_version()}" in flat
        # Generated 30 days after T0, printed in Toronto time (EDT by then: 10:00).
        assert "generated 2026-04-01 10:00 (America/Toronto)" in flat


def test_a_page_rendered_to_an_image_is_not_blank(progress_pdf: bytes) -> None:
    document = pdfium.PdfDocument(progress_pdf)
    try:
        image = document[0].render(scale=1).to_pil().convert("L")
    finally:
        document.close()
    width, height = image.size
    assert abs(width - 595) <= 1 and abs(height - 842) <= 1  # A4: 595 x 842 points
    histogram = image.histogram()
    ink = sum(histogram[:200])  # pixels clearly darker than the white page
    assert ink > 0.01 * width * height
    assert len([n for n in histogram if n]) > 20  # text, rules and shading, not one flat colour


def test_text_from_the_record_is_printed_as_text_never_as_markup() -> None:
    data = render_progress(_report(family='<b>Bold</b> <img src="x.png">'))
    text = " ".join(_pages(data)[0].split())
    assert '<b>Bold</b> <img src="x.png">, Astrid' in text


def test_a_chart_becomes_inline_svg_with_its_text() -> None:
    phq9 = get_instrument("phq9")
    spec = scores_chart(
        [{"administered_at": T0, "total": 12}, {"administered_at": T0 + timedelta(7), "total": 6}],
        instrument=phq9,
        bands=phq9.bands,
        tz="America/Toronto",
        width=400,
    )
    svg = str(pdf.chart_svg(spec))
    assert svg.startswith("<svg")
    assert "PHQ-9 total" in svg and "moderate" in svg
    assert 'font-family="DejaVu Sans"' in svg  # measured in the font the PDF draws


def test_numbers_print_without_trailing_zeros_and_none_prints_nothing() -> None:
    assert pdf.format_number(92.0) == "92"
    assert pdf.format_number(28.56, 1) == "28.6"
    assert pdf.format_number(0.75, 2) == "0.75"
    assert pdf.format_number(None) == ""
