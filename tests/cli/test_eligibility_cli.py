"""`ketacare eligibility`: decision JSON, readable table, schema, and exit 2 on bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ketacare.cli import eligibility
from ketacare.clinical import interactions as engine
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
    result = invoke(str(EXAMPLE), "--json", "--as-of", "2025-06-01")
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
        "interaction:ketamine-ssri",
        "off_label",
    ]
    assert data["interaction_screen"] == {
        "protocol": "iv-ketamine",
        "agent": "ketamine",
        "route": "iv",
        "chosen_by": "default",
        "screened": True,
        "error": None,
        "unscreened": [],
    }
    assert all(set(r) == {"code", "severity", "text", "sources"} for r in data["reasons"])
    assert len(data["knowledge_version"]) == 16
    assert data["settings"]["min_age"] == 18


def test_as_of_changes_the_age_from_the_birth_date(tmp_path: Path) -> None:
    data = example() | {"date_of_birth": "2007-06-02"}
    path = write(tmp_path, data)
    day_before = invoke(path, "--json", "--as-of", "2025-06-01")
    birthday = invoke(path, "--json", "--as-of", "2025-06-02")
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
    # Screening turned off is stated, never shown as no interactions.
    assert "Interactions NOT screened for ketamine (iv)" in result.stdout
    assert "interactions_not_screened" in result.stdout


def test_stdin_is_read_with_a_dash() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    result = invoke("-", "--json", "--as-of", "2025-06-01", stdin=text)
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


def decide(tmp_path: Path, changes: dict[str, Any], *args: str) -> dict[str, Any]:
    result = invoke(write(tmp_path, example() | changes), "--json", "--as-of", "2025-06-01", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_wellbutrin_with_nardil_is_ineligible(tmp_path: Path) -> None:
    data = decide(tmp_path, {"medications": ["Wellbutrin SR 150 mg", "Nardil 15 mg"]})
    assert data["decision"] == "ineligible"
    assert data["reasons"][0]["code"] == "interaction:bupropion-with-maoi"
    assert data["reasons"][0]["severity"] == "exclusion"


def test_a_recently_stopped_maoi_in_the_intake_file_is_screened(tmp_path: Path) -> None:
    stopped = [{"name": "Nardil 15 mg", "stop_date": "2025-05-27"}]
    data = decide(tmp_path, {"stopped_medications": stopped})  # sertraline is current
    assert data["decision"] == "ineligible"
    reason = data["reasons"][0]
    assert reason["code"] == "interaction:serotonergic-antidepressant-with-maoi"
    assert "stopped on 2025-05-27" in reason["text"] and "until 2025-06-10" in reason["text"]
    later = invoke(
        write(tmp_path, example() | {"stopped_medications": stopped}),
        "--json",
        "--as-of",
        "2025-06-20",
    )
    assert json.loads(later.stdout)["decision"] == "eligible"


def test_a_failing_engine_leaves_the_medicines_not_screened_never_eligible(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("knowledge base unreadable")

    monkeypatch.setattr(engine, "screen", broken)
    result = invoke(
        write(tmp_path, example() | {"medications": ["Adderall 20 mg", "Nardil"]}),
        "--json",
        "--as-of",
        "2025-06-01",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"] == "needs_review"
    [reason] = [r for r in data["reasons"] if r["code"] == "interactions_not_screened"]
    assert reason["severity"] == "caution"
    assert "knowledge base unreadable" in reason["text"]
    assert "Adderall 20 mg" in reason["text"]
    assert data["interaction_screen"]["screened"] is False
    assert "warning: the interaction screen failed" in result.stderr


def test_no_interactions_is_stated_as_not_screened(tmp_path: Path) -> None:
    data = decide(tmp_path, {}, "--no-interactions")
    assert data["decision"] == "needs_review"
    assert "interactions_not_screened" in [r["code"] for r in data["reasons"]]
    assert data["interaction_screen"]["screened"] is False


@pytest.mark.parametrize(
    ("changes", "args", "protocol", "rule"),
    [
        ({}, (), "iv-ketamine", "ketamine-sympathomimetics"),
        (
            {"planned_protocol": "intranasal-esketamine"},
            (),
            "intranasal-esketamine",
            "esketamine-sympathomimetics",
        ),
        (
            {},
            ("--protocol", "intranasal-esketamine"),
            "intranasal-esketamine",
            "esketamine-sympathomimetics",
        ),
        (
            {"planned_protocol": "intranasal-esketamine"},
            ("--protocol", "iv-ketamine"),
            "iv-ketamine",
            "ketamine-sympathomimetics",
        ),
    ],
)
def test_the_screen_uses_the_planned_agent_and_route(
    tmp_path: Path, changes: dict[str, Any], args: tuple[str, ...], protocol: str, rule: str
) -> None:
    data = decide(tmp_path, {"medications": ["Sudafed 60 mg"], **changes}, *args)
    assert data["interaction_screen"]["protocol"] == protocol
    assert f"interaction:{rule}" in [r["code"] for r in data["reasons"]]


def test_an_unknown_protocol_exits_2(tmp_path: Path) -> None:
    result = invoke(write(tmp_path, example()), "--protocol", "oral-ketamine")
    assert result.exit_code == 2
    assert "--protocol" in result.stderr
