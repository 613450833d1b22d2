"""`ketacare interactions` and `ketacare knowledge docs` through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ketacare.cli.interactions import register

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer(no_args_is_help=True, add_completion=False)
    register(application)
    return application


def test_json_output_follows_the_contract(app: typer.Typer) -> None:
    result = runner.invoke(
        app, ["interactions", "--json", "Concerta 54 mg ER tab", "Nardil", "ibuprofen", "qwzxv"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {
        "agent",
        "route",
        "knowledge_version",
        "findings",
        "no_known_interaction",
        "not_reviewed",
        "unrecognized",
        "stopped_screened",
    }
    assert (data["agent"], data["route"]) == ("ketamine", "iv")
    first = data["findings"][0]
    assert (first["ingredient"], first["rule_id"], first["severity"]) == (
        "methylphenidate",
        "adhd-stimulant-with-maoi",
        "contraindicated",
    )
    assert first["input"] == "Concerta 54 mg ER tab"
    assert first["sources"] == ["stimulant-labels-maoi", "xadago-us-pi-s7"]
    assert data["no_known_interaction"] == [{"input": "ibuprofen", "ingredient": "ibuprofen"}]
    assert data["unrecognized"][0]["input"] == "qwzxv"


def test_agent_and_route_options(app: typer.Typer) -> None:
    result = runner.invoke(
        app, ["interactions", "--json", "--agent", "esketamine", "--route", "oral", "Biaxin"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["agent"], data["route"]) == ("esketamine", "oral")
    assert [(f["rule_id"], f["severity"]) for f in data["findings"]] == [
        ("esketamine-cyp3a4-inhibitors", "moderate")
    ]


def test_readable_table_shows_severity_and_sources(app: typer.Typer) -> None:
    result = runner.invoke(app, ["interactions", "Xanax 0.5 mg prn", "ibuprofen", "qwzxv"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "MAJOR" in out
    assert "alprazolam" in out
    assert "andrashko-2020" in out
    assert "No known interaction" in out
    assert "Unrecognised" in out and "qwzxv" in out


def test_findings_do_not_change_the_exit_code(app: typer.Typer) -> None:
    result = runner.invoke(app, ["interactions", "Wellbutrin SR 150 mg", "Nardil 15 mg"])
    assert result.exit_code == 0
    assert "CONTRAINDICATED" in result.stdout
    assert "bupropion" in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["interactions", "--agent", "propofol", "Xanax"], "--agent"),
        (["interactions", "--route", "rectal", "Xanax"], "--route"),
        (["interactions"], "DRUG"),
        (["interactions", "  "], "DRUG"),
    ],
)
def test_bad_arguments_exit_2_with_a_message_naming_the_option(
    app: typer.Typer, args: list[str], option: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert option in result.stderr
    assert result.stdout == ""


def test_knowledge_docs_writes_and_checks(app: typer.Typer, tmp_path: Path) -> None:
    target = tmp_path / "docs" / "clinical-rules.md"
    written = runner.invoke(app, ["knowledge", "docs", "--output", str(target)])
    assert written.exit_code == 0, written.output
    text = target.read_text(encoding="utf-8")
    assert "`ketamine-theophylline`" in text
    assert "Ketalar US prescribing information" in text

    fresh = runner.invoke(app, ["knowledge", "docs", "--output", str(target), "--check"])
    assert fresh.exit_code == 0, fresh.output

    target.write_text(text + "edited by hand\n", encoding="utf-8")
    stale = runner.invoke(app, ["knowledge", "docs", "--output", str(target), "--check"])
    assert stale.exit_code == 1
    assert "out of date" in stale.stderr
    assert target.read_text(encoding="utf-8").endswith("edited by hand\n")


def test_knowledge_docs_check_fails_when_the_file_is_missing(
    app: typer.Typer, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["knowledge", "docs", "--output", str(tmp_path / "none.md"), "--check"]
    )
    assert result.exit_code == 1
