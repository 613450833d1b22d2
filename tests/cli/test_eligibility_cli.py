"""`ketacare eligibility`: decision JSON, readable table, schema, and exit 2 on bad files."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ketacare.cli import eligibility
from ketacare.clinical.eligibility import HistoryCode

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs/examples/intake-example.json"


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test entry point with sub-commands."""

    eligibility.register(app)
    return app


APP = make_app()


def invoke(*args: str, stdin: str | None = None):
    return runner.invoke(APP, ["eligibility", *args], input=stdin)


def write(tmp_path: Path, data: Any, name: str = "intake.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_example_json_decision() -> None:
    result = invoke(str(EXAMPLE), "--json", "--as-of", "2025-06-01", "--no-interactions")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"] == "eligible"
    assert [r["code"] for r in data["reasons"]] == [
        "adhd_diagnosis_confirmed",
        "prior_treatment_failed",
        "asrs_positive_screen",
        "phq9_comorbid_depression",
        "bp_normal",
        "gad7_below_threshold",
        "off_label",
    ]
    assert all(set(r) == {"code", "severity", "text", "sources"} for r in data["reasons"])
    assert len(data["knowledge_version"]) == 16
    assert data["settings"]["min_age"] == 18


def test_as_of_changes_the_age_from_the_birth_date(tmp_path: Path) -> None:
    data = example() | {"date_of_birth": "2007-06-02"}
    path = write(tmp_path, data)
    day_before = invoke(path, "--json", "--as-of", "2025-06-01", "--no-interactions")
    birthday = invoke(path, "--json", "--as-of", "2025-06-02", "--no-interactions")
    assert json.loads(day_before.stdout)["decision"] == "ineligible"
    assert json.loads(birthday.stdout)["decision"] == "eligible"


def test_readable_output(tmp_path: Path) -> None:
    data = example() | {
        "history": ["pregnancy"],
        "blood_pressure": {"systolic": 182, "diastolic": 90},
    }
    result = invoke(write(tmp_path, data), "--as-of", "2025-06-01", "--no-interactions")
    assert result.exit_code == 0, result.output
    assert "INELIGIBLE" in result.stdout
    assert "bp_refuse" in result.stdout
    assert "pregnancy" in result.stdout
    assert "knowledge" in result.stdout


def test_stdin_is_read_with_a_dash() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    result = invoke("-", "--json", "--as-of", "2025-06-01", "--no-interactions", stdin=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decision"] == "eligible"


def test_schema() -> None:
    result = invoke("--schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert set(schema["$defs"]["HistoryCode"]["enum"]) == {c.value for c in HistoryCode}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"history": ["psychosis", "hypertensive_crisis"]}, "history code 'hypertensive_crisis'"),
        ({"smoker": True}, "smoker: unknown field"),
        ({"scores": {"phq9": [0] * 8 + [4]}}, "scores.phq9: item 9: 4 is outside 0-3"),
        ({"blood_pressure": {"systolic": 80, "diastolic": 120}}, "diastolic 120 must be below"),
    ],
)
def test_invalid_intake_exits_2_naming_the_field(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    result = invoke(write(tmp_path, example() | changes), "--no-interactions")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_invalid_json_exits_2(tmp_path: Path) -> None:
    result = invoke(write(tmp_path, '{"age": 34,'))
    assert result.exit_code == 2
    assert "is not valid JSON" in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_no_file_exits_2() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert "FILE.json" in result.stderr


def test_bad_as_of_exits_2() -> None:
    result = invoke(str(EXAMPLE), "--as-of", "01/06/2025")
    assert result.exit_code == 2
    assert "--as-of" in result.stderr


def test_interaction_findings_from_the_engine_are_included(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []

    def screen(medications: list[str], agent: str = "", route: str = "") -> list[dict[str, Any]]:
        calls.append((medications, {"agent": agent, "route": route}))
        return [
            {
                "rule_id": "theophylline-ketamine",
                "severity": "contraindicated",
                "ingredient": "theophylline",
                "effect": "May lower the seizure threshold.",
                "sources": ["ketalar-us-pi-s7-seizure-threshold"],
            }
        ]

    fake = types.ModuleType("ketacare.clinical.interactions")
    fake.screen = screen  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ketacare.clinical.interactions", fake)
    path = write(tmp_path, example() | {"medications": ["theophylline 300 mg"]})
    result = invoke(path, "--json", "--as-of", "2025-06-01")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"] == "ineligible"
    assert data["reasons"][0]["code"] == "interaction:theophylline-ketamine"
    assert calls == [(["theophylline 300 mg"], {"agent": "ketamine", "route": "iv"})]
    # --no-interactions skips the engine.
    skipped = invoke(path, "--json", "--as-of", "2025-06-01", "--no-interactions")
    assert json.loads(skipped.stdout)["decision"] == "eligible"
