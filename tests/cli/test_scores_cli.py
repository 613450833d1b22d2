"""`ketacare score`: JSON per the contract, readable output, exit 2 on bad input."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from ketacare.cli import scores

runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test entry point with sub-commands."""

    scores.register(app)
    return app


APP = make_app()


def invoke(*args: str):
    return runner.invoke(APP, ["score", *args])


def test_phq9_json_with_item9_flag() -> None:
    result = invoke("phq9", "--answers", "0,0,0,0,0,0,0,0,1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == {
        "instrument": "phq9",
        "total": 1,
        "max": 27,
        "band": "minimal",
        "flags": [
            {
                "code": "phq9_item9_positive",
                "severity": "urgent",
                "text": data["flags"][0]["text"],
                "item": 9,
            }
        ],
        "subscales": {},
        "positive_screen": None,
    }
    assert "suicide risk" in data["flags"][0]["text"]


@pytest.mark.parametrize(
    ("instrument_id", "answers", "total", "band", "positive"),
    [
        ("gad7", "3,3,3,3,3,0,0", 15, "severe", None),
        ("gad7", "2,2,2,2,2,0,0", 10, "moderate", None),
        ("asrs", "2,2,2,3,0,0,0,0,0,0,0,0,0,0,0,0,0,0", 9, None, True),
        ("asrs", "2,2,2,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0", 8, None, False),
        ("cadss", ",".join(["1"] * 5 + ["0"] * 18), 5, None, None),
        ("moaas", "0", 0, "loss of consciousness", None),
        ("PHQ-9", "3,3,3,3,3,3,3,3,0", 24, "severe", None),
        ("MOAA/S", "5", 5, "not sedated", None),
    ],
)
def test_json_totals_bands_and_screens(
    instrument_id: str, answers: str, total: int, band: str | None, positive: bool | None
) -> None:
    result = invoke(instrument_id, "--answers", answers, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["total"], data["band"], data["positive_screen"]) == (total, band, positive)


def test_asrs_json_subscales() -> None:
    result = invoke("asrs", "--answers", ",".join(["4"] * 18), "--json")
    data = json.loads(result.stdout)
    assert data["total"] == 72
    assert data["subscales"]["inattentive"] == 36
    assert data["subscales"]["hyperactive_impulsive"] == 36
    assert data["subscales"]["part_a_shaded_count"] == 6


def test_cadss_flags_dissociation_above_four() -> None:
    data = json.loads(
        invoke("cadss", "--answers", ",".join(["1"] * 5 + ["0"] * 18), "--json").stdout
    )
    assert [f["code"] for f in data["flags"]] == ["cadss_dissociation"]


def test_readable_output() -> None:
    result = invoke("phq9", "--answers", "2, 2, 2, 1, 1, 2, 2, 0, 1")
    assert result.exit_code == 0, result.output
    assert "Patient Health Questionnaire-9" in result.stdout
    assert "13 / 27" in result.stdout
    assert "moderate" in result.stdout
    assert "URGENT (item 9)" in result.stdout


def test_readable_asrs_output_shows_the_screen() -> None:
    result = invoke("asrs", "--answers", "2,2,2,3,0,0,0,0,0,0,0,0,0,0,0,0,0,0")
    assert "positive" in result.stdout
    assert "none (no official bands)" in result.stdout


@pytest.mark.parametrize(
    ("instrument_id", "answers", "message"),
    [
        ("phq9", "0,0,0,0,0,0,0,0", "answers: PHQ-9 has 9 scored items; got 8 answers"),
        ("phq9", "0,0,0,0,0,0,0,0,0,0", "got 10 answers"),
        ("phq9", "0,0,0,0,0,0,0,0,4", "item 9: 4 is outside 0-3"),
        ("gad7", "0,0,x,0,0,0,0", "item 3: 'x' is not a whole number"),
        ("gad7", "0,0,1.5,0,0,0,0", "item 3: '1.5' is not a whole number"),
        ("asrs", "0," * 17 + "-1", "item 18: -1 is outside 0-4"),
        ("moaas", "6", "item 1: 6 is outside 0-5"),
        ("gad7", "", "answers: no answers given"),
    ],
)
def test_bad_answers_exit_2_naming_the_item(instrument_id: str, answers: str, message: str) -> None:
    result = invoke(instrument_id, "--answers", answers)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_unknown_instrument_exits_2() -> None:
    result = invoke("hamd17", "--answers", "1,2")
    assert result.exit_code == 2
    assert "unknown instrument 'hamd17'" in result.stderr
    assert "phq9" in result.stderr


def test_answers_are_required() -> None:
    result = invoke("phq9")
    assert result.exit_code == 2
