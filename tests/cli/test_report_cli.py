"""``ketacare report``: the PDF of a demo patient to a file or stdout, and clear exits naming
the option when the input is wrong."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest
from typer.testing import CliRunner

from ketacare.cli import app
from ketacare.config import get_settings

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report-cli") / "var"


@pytest.fixture(autouse=True)
def demo_database(demo_var: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETACARE_VAR_DIR", str(demo_var))
    monkeypatch.delenv("KETACARE_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    if not (demo_var / "ketacare.db").exists():
        assert runner.invoke(app, ["demo"]).exit_code == 0
    yield
    get_settings.cache_clear()


def _listed(mrn: str) -> dict[str, object]:
    listed = json.loads(runner.invoke(app, ["patients", "list", "--json"]).output)
    return next(p for p in listed if p["mrn"] == mrn)


def _patient(mrn: str) -> int:
    return int(_listed(mrn)["id"])  # type: ignore[call-overload]


def _text(data: bytes) -> str:
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def test_the_progress_report_of_a_demo_patient_is_written_to_the_file(tmp_path: Path) -> None:
    pid = _patient("KC-01023")  # maintenance: a completed course of six infusions
    target = tmp_path / "walsh.pdf"
    result = runner.invoke(app, ["report", str(pid), "--pdf", str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote the progress report of patient {pid} to {target}" in result.output
    text = _text(target.read_bytes())
    assert str(_listed("KC-01023")["name"]) in text and "MRN KC-01023" in text
    assert "Session 6 signed off" in text
    assert "Psychiatric ketamine use is off-label; no trial of ketamine for ADHD exists." in text


def test_the_sheet_goes_to_stdout_with_a_dash(tmp_path: Path) -> None:
    pid = _patient("KC-01023")
    result = runner.invoke(app, ["report", str(pid), "--sheet", "--pdf", "-", "--clinic", "demo"])
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith(b"%PDF-")
    assert "Questions and answers" in _text(result.stdout_bytes)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["999999", "--pdf", "{tmp}/x.pdf"], "PATIENT_ID"),
        (["0", "--pdf", "{tmp}/x.pdf"], "PATIENT_ID"),
        (["1", "--pdf", "{tmp}/missing/x.pdf"], "--pdf"),
        (["1", "--pdf", "{tmp}"], "--pdf"),
        (["1", "--pdf", "{tmp}/x.pdf", "--clinic", "nowhere"], "--clinic"),
        (["1"], "--pdf"),
        (["abc", "--pdf", "{tmp}/x.pdf"], "PATIENT_ID"),
    ],
)
def test_bad_input_exits_2_naming_the_option(tmp_path: Path, args: list[str], named: str) -> None:
    result = runner.invoke(app, ["report", *(a.format(tmp=tmp_path) for a in args)])
    assert result.exit_code == 2
    assert named in result.output
    assert not (tmp_path / "x.pdf").exists()
