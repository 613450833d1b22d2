"""`ketacare dose` through Typer's runner: exit 0 / 3 / 2, the JSON contract, readable output."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from ketacare.cli import dose
from ketacare.knowledge import knowledge_version

runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test entry point with sub-commands."""

    dose.register(app)
    return app


APP = make_app()
EXAMPLE = ["--weight-kg", "70", "--mg-per-kg", "0.5", "--minutes", "40"]


def invoke(*args: str):
    return runner.invoke(APP, ["dose", *args])


def test_the_70_kg_example_as_json() -> None:
    result = invoke(*EXAMPLE, "--bag-volume-ml", "100", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {
        "dose_mg",
        "volume_ml",
        "rate_ml_per_h",
        "mg_per_kg",
        "minutes",
        "warnings",
        "refusals",
    } <= set(data)
    assert data["dose_mg"] == 35
    assert data["volume_ml"] == 100
    assert data["rate_ml_per_h"] == 150.0
    assert data["mg_per_kg"] == 0.5 and data["minutes"] == 40
    assert data["concentration_mg_per_ml"] == 0.35
    assert data["warnings"] == [] and data["refusals"] == []
    assert data["protocol"] == "iv-ketamine"
    assert data["settings"]["absolute_cap_mg"] == 150
    assert data["knowledge_version"] == knowledge_version()
    assert any("150.0 mL/h" in step for step in data["steps"])


def test_concentration_rounds_the_pump_rate_half_up() -> None:
    result = invoke(*EXAMPLE, "--concentration-mg-per-ml", "10", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["dose_mg"], data["volume_ml"], data["rate_ml_per_h"]) == (35, 3.5, 5.3)


def test_readable_output_shows_the_steps() -> None:
    result = invoke(*EXAMPLE, "--bag-volume-ml", "100")
    assert result.exit_code == 0, result.output
    assert "150.0 mL/h" in result.stdout
    assert "Calculation" in result.stdout
    assert "Dose = 70 kg × 0.5 mg/kg = 35 mg" in result.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--weight-kg", "400", "--mg-per-kg", "0.5", "--minutes", "40"], "weight_implausible"),
        (["--weight-kg", "70", "--mg-per-kg", "1.5", "--minutes", "40"], "mg_per_kg_above_max"),
        (["--weight-kg", "70", "--mg-per-kg", "0.5", "--minutes", "20"], "minutes_below_min"),
        (["--weight-kg", "200", "--mg-per-kg", "1.0", "--minutes", "40"], "dose_above_cap"),
        (
            [*EXAMPLE[:4], "--mg-per-kg", "0.8", "--previous-mg-per-kg", "0.5", "--minutes", "40"],
            "escalation_too_large",
        ),
        (["--weight-kg", "-70", "--mg-per-kg", "0.5", "--minutes", "40"], "not_positive"),
    ],
)
def test_a_hard_stop_exits_3_and_still_prints_json(args: list[str], code: str) -> None:
    result = invoke(*args, "--bag-volume-ml", "100", "--json")
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert code in {r["code"] for r in data["refusals"]}
    assert data["dose_mg"] is None and data["rate_ml_per_h"] is None
    refusal = data["refusals"][0]
    assert {"code", "field", "text", "sources"} <= set(refusal)


def test_a_hard_stop_in_readable_output() -> None:
    result = invoke(
        "--weight-kg", "70", "--mg-per-kg", "1.5", "--minutes", "40", "--bag-volume-ml", "100"
    )
    assert result.exit_code == 3
    assert "REFUSED" in result.stdout


@pytest.mark.parametrize(
    "protocol", ["oral-ketamine", "sublingual-ketamine", "intranasal-esketamine"]
)
def test_protocols_without_a_weight_based_order_are_refused(protocol: str) -> None:
    result = invoke(*EXAMPLE, "--bag-volume-ml", "100", "--protocol", protocol, "--json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["refusals"][0]["field"] == "protocol"


def test_im_protocol_needs_no_minutes() -> None:
    result = invoke(
        "--weight-kg",
        "70",
        "--mg-per-kg",
        "0.5",
        "--concentration-mg-per-ml",
        "50",
        "--protocol",
        "im-ketamine",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["volume_ml"] == 0.7 and data["rate_ml_per_h"] is None


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ([*EXAMPLE], "--concentration-mg-per-ml"),
        (
            [*EXAMPLE, "--bag-volume-ml", "100", "--concentration-mg-per-ml", "10"],
            "--bag-volume-ml",
        ),
        (["--weight-kg", "70", "--mg-per-kg", "0.5", "--bag-volume-ml", "100"], "--minutes"),
        (
            [
                "--weight-kg",
                "abc",
                "--mg-per-kg",
                "0.5",
                "--minutes",
                "40",
                "--bag-volume-ml",
                "100",
            ],
            "--weight-kg",
        ),
        (
            [
                "--weight-kg",
                "nan",
                "--mg-per-kg",
                "0.5",
                "--minutes",
                "40",
                "--bag-volume-ml",
                "100",
            ],
            "--weight-kg",
        ),
        (["--mg-per-kg", "0.5", "--minutes", "40", "--bag-volume-ml", "100"], "--weight-kg"),
        ([*EXAMPLE, "--bag-volume-ml", "100", "--protocol", "iv-fast"], "--protocol"),
    ],
)
def test_malformed_input_exits_2_naming_the_option(args: list[str], names: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert names in result.output
