"""Pre-dose checks: every answer's band, unanswered checks, pregnancy applicability, the
interaction re-screen, and the worst band deciding."""

from __future__ import annotations

import pytest

from ketacare.clinical.prechecks import InteractionSummary, assess_prechecks, worst
from ketacare.knowledge.protocol_defs import get_protocol

IV = get_protocol("iv-ketamine")
NASAL = get_protocol("intranasal-esketamine")
CLEAN = InteractionSummary(medicines=1, highest_severity=None)
BASE = {
    "fasting": "yes",
    "escort": "yes",
    "pregnancy": "not_pregnant",
    "sex": "female",
    "age_years": 34,
    "interactions": CLEAN,
}


def run(**changes: object):  # type: ignore[no-untyped-def]
    return assess_prechecks(IV, **{**BASE, **changes})  # type: ignore[arg-type]


def test_everything_answered_well_proceeds() -> None:
    result = run()
    assert result.band == "proceed"
    assert [c.id for c in result.checks] == ["fasting", "escort", "pregnancy", "interactions"]
    assert all(c.sources for c in result.checks)


@pytest.mark.parametrize(
    ("changes", "check", "band"),
    [
        ({"fasting": "no"}, "fasting", "caution"),
        ({"fasting": None}, "fasting", "caution"),
        ({"escort": "no"}, "escort", "hold"),
        ({"escort": None}, "escort", "hold"),
        ({"pregnancy": "pregnant"}, "pregnancy", "hold"),
        ({"pregnancy": "unknown"}, "pregnancy", "hold"),
        ({"pregnancy": None}, "pregnancy", "hold"),
        ({"interactions": None}, "interactions", "hold"),
        ({"interactions": InteractionSummary(0, None)}, "interactions", "caution"),
        ({"interactions": InteractionSummary(2, "contraindicated")}, "interactions", "hold"),
        ({"interactions": InteractionSummary(2, "major")}, "interactions", "caution"),
        ({"interactions": InteractionSummary(2, "moderate")}, "interactions", "proceed"),
        ({"interactions": InteractionSummary(2, "minor")}, "interactions", "proceed"),
        (
            {"interactions": InteractionSummary(2, "minor", ("Zyxoprin 5 mg",))},
            "interactions",
            "caution",
        ),
    ],
)
def test_each_answer_lands_in_its_band_and_the_worst_decides(
    changes: dict[str, object], check: str, band: str
) -> None:
    result = run(**changes)
    assert result.check(check).band == band
    assert result.band == band


def test_an_unrecognised_medicine_is_named_in_the_text() -> None:
    result = run(interactions=InteractionSummary(1, None, ("Zyxoprin 5 mg",)))
    assert "Zyxoprin 5 mg" in result.check("interactions").text


@pytest.mark.parametrize(
    ("sex", "age", "asked"),
    [
        ("female", 18, True),
        ("female", 55, True),
        ("female", 56, False),
        ("male", 30, False),
        ("other", 30, True),
        ("unknown", 60, False),
        ("female", None, True),
    ],
)
def test_pregnancy_is_asked_of_female_patients_of_childbearing_age(
    sex: str, age: int | None, asked: bool
) -> None:
    result = run(sex=sex, age_years=age, pregnancy=None)
    assert ("pregnancy" in [c.id for c in result.checks]) is asked
    assert result.band == ("hold" if asked else "proceed")


def test_a_stated_pregnancy_is_never_ignored_even_outside_the_age_range() -> None:
    result = run(age_years=58, pregnancy="pregnant")
    assert result.check("pregnancy").band == "hold"


def test_fasting_instructions_follow_the_administration() -> None:
    iv = assess_prechecks(IV, **{**BASE, "fasting": None}).check("fasting").text  # type: ignore[arg-type]
    nasal = assess_prechecks(NASAL, **{**BASE, "fasting": None}).check("fasting").text  # type: ignore[arg-type]
    assert "6 hours" in iv and "2 hours" in iv
    assert "30 minutes" in nasal


def test_an_answer_outside_the_vocabulary_is_an_error() -> None:
    with pytest.raises(ValueError, match="escort"):
        run(escort="maybe")


@pytest.mark.parametrize(
    ("bands", "expected"),
    [
        (("proceed", "proceed"), "proceed"),
        (("proceed", "caution"), "caution"),
        (("hold", "caution"), "hold"),
        (("refuse", "hold", "proceed"), "refuse"),
    ],
)
def test_worst_band(bands: tuple[str, ...], expected: str) -> None:
    assert worst(*bands) == expected
