"""Stimulant doses: the dose-text parser (table and properties), strengths read from product
names, and the daily dose per ingredient per ISO week (unknown is never 0)."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.clinical.stimulants import (
    Strength,
    parse_dose,
    stimulant_doses,
    strength_from_name,
)
from ketacare.knowledge import knowledge_version

# --- the parser, as written in clinics ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "mg"),
    [
        ("50 mg every morning", "Vyvanse", 50),
        ("1 tab every morning", "Concerta 54 mg ER tab", 54),
        ("20 mg twice daily", "Ritalin", 40),
        ("20 mg every morning", "Adderall XR 20mg", 20),
        ("10 mg three times daily", "Ritalin", 30),
        ("10 mg twice daily", "Adderall", 20),
        ("40 mg every morning", "Biphentin", 40),
        ("20 mg bid", None, 40),
        ("20 mg b.i.d.", None, 40),
        ("5 mg TID", None, 15),
        ("20 MG QAM", None, 20),
        ("10 mg am and 5 mg pm", None, 15),
        ("20 mg qam, 10 mg at 2pm", None, 30),
        ("10mg 8am, 5mg 1pm", None, 15),
        ("20 mg am/pm", None, 40),
        ("20 mg 2x/day", None, 40),
        ("20 mg 2 times a day", None, 40),
        ("20 mg x2 daily", None, 40),
        ("2 x 10 mg every morning", None, 20),
        ("2 tabs of 10 mg daily", None, 20),
        ("1 tab in the morning and 1 at lunch", "Ritalin 10 mg", 20),
        ("1/2 tab bid", "Ritalin 10mg", 10),
        ("1½ tabs daily", "Ritalin 10mg", 15),
        ("one and a half tablets daily", "Ritalin 10mg", 15),
        ("half a tab every morning", "Ritalin 10mg", 5),
        ("one tablet every morning", "Adderall XR 20mg", 20),
        ("4 ml every morning", "Quillivant XR 25 mg/5 mL", 20),
        (".5 mg daily", None, 0.5),
        ("2,5 mg daily", None, 2.5),
        ("2500 mcg daily", None, 2.5),
        ("20 mg twice daily (morning and noon)", None, 40),
        ("every morning, 20 mg", None, 20),
        ("20 mg, twice daily", None, 40),
        ("20 mg every morning with breakfast", None, 20),
        ("20 mg every morning at 7:30", None, 20),
        ("10 mg morning and noon and evening", None, 30),
        ("40 mg every other day", None, 20),
        ("70 mg once daily", None, 70),
        ("  30   mg   daily  ", None, 30),
    ],
)
def test_a_readable_dose_text_gives_mg_per_day(text: str, name: str | None, mg: float) -> None:
    reading = parse_dose(text, strength=strength_from_name(name) if name else None)
    assert reading.status == "read", reading.reason
    assert reading.mg_per_day == mg and reading.reason is None


@pytest.mark.parametrize(
    ("text", "name", "why"),
    [
        (None, None, "No dose recorded"),
        ("", None, "No dose recorded"),
        ("20 mg", None, "No schedule"),
        ("every morning", None, "No amount"),
        ("20 mg as needed", None, "as-needed"),
        ("10 mg prn", None, "as-needed"),
        ("1-2 tabs daily", "Ritalin 10 mg", "range"),
        ("10 to 20 mg daily", None, "range"),
        ("up to 40 mg daily", None, "maximum"),
        ("10 mg or 20 mg daily", None, "alternative"),
        ("20 mg daily then 30 mg daily", None, "changing"),
        ("titrating to 50 mg", None, "changing"),
        ("30 mg daily on school days", None, "not the same dose every day"),
        ("20 mg weekly", None, "not the same dose every day"),
        ("5 mg every 4 hours", None, "by the hour"),
        ("5 mg q4h", None, "by the hour"),
        ("1 patch daily", "Daytrana 30 mg/9 h", "Patch"),
        ("1 cap every morning", "Vyvanse", "without a strength"),
        ("1 tab daily", "Concerta 18 mg or 36 mg", "without a strength"),
        ("5 ml daily", "Ritalin", "without a concentration"),
        ("20 mg daily x 30 days", None, "Could not read"),
        ("0 mg daily", None, "A dose of 0"),
        ("20 mg twice daily and 10 mg", None, "No schedule"),
        ("10 mg 20 mg daily", None, "Several amounts"),
        ("20 mg bid tid", None, "disagree"),
        ("20 mg twice daily morning noon and evening", None, "disagree"),
        ("20 mg daily?", None, "uncertain"),
        ("stopped", None, "not being taken"),
        ("1/0 tab daily", "Ritalin 10 mg", "could not be read"),
    ],
)
def test_an_unreadable_dose_is_unknown_with_the_reason(
    text: str | None, name: str | None, why: str
) -> None:
    reading = parse_dose(text, strength=strength_from_name(name) if name else None)
    assert reading.status == "unknown" and reading.mg_per_day is None
    assert why.lower() in (reading.reason or "").lower()


@pytest.mark.parametrize(
    ("name", "strength"),
    [
        ("Concerta 54 mg ER tab", Strength(mg_per_unit=Fraction(54))),
        ("Adderall XR 20mg", Strength(mg_per_unit=Fraction(20))),
        ("Ritalin 7.5 mg", Strength(mg_per_unit=Fraction(15, 2))),
        ("Quillivant XR 25 mg/5 mL", Strength(mg_per_ml=Fraction(5))),
        ("methylphenidate 5 mg/ml solution", Strength(mg_per_ml=Fraction(5))),
        ("Vyvanse", None),
        ("Daytrana 30 mg/9 h", None),
        ("Concerta 18 mg and 36 mg", None),
        ("Concerta 36 mg, 36 mg", Strength(mg_per_unit=Fraction(36))),
    ],
)
def test_the_strength_is_read_from_the_product_name(name: str, strength: Strength | None) -> None:
    assert strength_from_name(name) == strength


# --- parser properties ----------------------------------------------------------------------

FREQUENCIES = {
    "daily": 1,
    "once daily": 1,
    "every morning": 1,
    "in the morning": 1,
    "at night": 1,
    "qam": 1,
    "twice daily": 2,
    "twice a day": 2,
    "bid": 2,
    "2 times a day": 2,
    "three times daily": 3,
    "tid": 3,
    "3x daily": 3,
    "four times daily": 4,
    "qid": 4,
}
amounts = st.one_of(
    st.integers(min_value=1, max_value=200).map(Fraction),
    st.integers(min_value=1, max_value=400).map(lambda n: Fraction(n, 4)),
)


def _text(value: Fraction) -> str:
    return f"{float(value):g}"


@settings(max_examples=300)
@given(amount=amounts, frequency=st.sampled_from(sorted(FREQUENCIES)))
def test_property_mg_times_frequency(amount: Fraction, frequency: str) -> None:
    reading = parse_dose(f"{_text(amount)} mg {frequency}")
    assert reading.status == "read", reading.reason
    assert reading.mg_per_day == round(float(amount * FREQUENCIES[frequency]), 3)


@settings(max_examples=200)
@given(
    morning=amounts,
    afternoon=amounts,
    words=st.sampled_from([("am", "pm"), ("every morning", "at noon"), ("qam", "at 2pm")]),
    joiner=st.sampled_from([" and ", ", ", " & ", "; ", " + "]),
)
def test_property_split_doses_add_up(
    morning: Fraction, afternoon: Fraction, words: tuple[str, str], joiner: str
) -> None:
    text = f"{_text(morning)} mg {words[0]}{joiner}{_text(afternoon)} mg {words[1]}"
    reading = parse_dose(text)
    assert reading.status == "read", (text, reading.reason)
    assert reading.mg_per_day == round(float(morning + afternoon), 3)


@settings(max_examples=200)
@given(
    count=st.sampled_from([("1", 1), ("2", 2), ("one", 1), ("two", 2), ("1/2", 0.5)]),
    form=st.sampled_from(["tab", "tabs", "tablet", "cap", "capsule", "pill"]),
    strength=st.integers(min_value=1, max_value=80),
    frequency=st.sampled_from(sorted(FREQUENCIES)),
)
def test_property_tablets_use_the_strength_in_the_name(
    count: tuple[str, float], form: str, strength: int, frequency: str
) -> None:
    name = f"Brandname {strength} mg ER {form}"
    reading = parse_dose(f"{count[0]} {form} {frequency}", strength=strength_from_name(name))
    assert reading.status == "read", reading.reason
    assert reading.mg_per_day == round(count[1] * strength * FREQUENCIES[frequency], 3)


@settings(max_examples=200)
@given(
    amount=amounts,
    frequency=st.sampled_from(sorted(FREQUENCIES)),
    marker=st.sampled_from(
        ["as needed", "prn", "or 10 mg", "up to", "then 30 mg", "1-2", "weekly", "every 6 hours"]
    ),
)
def test_property_an_ambiguous_word_always_makes_the_dose_unknown(
    amount: Fraction, frequency: str, marker: str
) -> None:
    reading = parse_dose(f"{_text(amount)} mg {frequency} {marker}")
    assert reading.status == "unknown" and reading.mg_per_day is None


@settings(max_examples=200)
@given(amount=amounts, frequency=st.sampled_from(sorted(FREQUENCIES)), data=st.data())
def test_property_case_and_spacing_do_not_change_the_dose(
    amount: Fraction, frequency: str, data: st.DataObject
) -> None:
    text = f"{_text(amount)} mg {frequency}"
    upper = data.draw(st.booleans())
    spaced = "  ".join(text.split(" "))
    variant = (spaced.upper() if upper else spaced) + data.draw(st.sampled_from(["", " ", "."]))
    assert parse_dose(variant) == parse_dose(text).__class__(
        text=variant,
        status="read",
        mg_per_day=parse_dose(text).mg_per_day,
        administrations=parse_dose(text).administrations,
    )


@settings(max_examples=500)
@given(text=st.text(max_size=60), name=st.one_of(st.none(), st.text(max_size=40)))
def test_property_any_text_is_read_or_unknown_never_an_error_or_zero(
    text: str, name: str | None
) -> None:
    reading = parse_dose(text, strength=strength_from_name(name) if name is not None else None)
    if reading.status == "read":
        assert reading.mg_per_day is not None and reading.mg_per_day > 0
        assert reading.reason is None
    else:
        assert reading.mg_per_day is None and reading.reason


# --- doses per ISO week ---------------------------------------------------------------------


def med(name: str, dose: str | None, start: date | None, stop: date | None = None, **kw: object):
    return {
        "id": kw.get("id", 1),
        "name": name,
        "dose_text": dose,
        "start_date": start,
        "stop_date": stop,
        "status": kw.get("status", "active" if stop is None else "stopped"),
        "recorded_on": kw.get("recorded_on"),
    }


MON = date(2026, 1, 5)  # ISO 2026-W02


def test_a_switch_mid_week_shows_both_doses_of_that_week() -> None:
    entries = [
        med("Ritalin", "10 mg three times daily", date(2025, 6, 1), MON + timedelta(days=1)),
        med("Concerta 54 mg ER tab", "1 tab every morning", MON + timedelta(days=2), id=2),
    ]
    out = stimulant_doses(entries, start=MON - timedelta(days=7), end=MON + timedelta(days=13))
    assert [i.ingredient for i in out.ingredients] == ["methylphenidate"]
    weeks = out.ingredient("methylphenidate").weeks
    assert [(w.iso_week, w.status, w.mg_per_day, w.lowest_mg_per_day) for w in weeks] == [
        (1, "dose", 30.0, 30.0),
        (2, "dose", 54.0, 30.0),
        (3, "dose", 54.0, 54.0),
    ]
    assert weeks[0].week_start == date(2025, 12, 29) and weeks[1].days_taken == 7


def test_ingredients_are_reported_apart_never_converted() -> None:
    entries = [
        med("Vyvanse", "50 mg every morning", date(2025, 1, 1)),
        med("Ritalin", "10 mg twice daily", date(2025, 1, 1), id=2),
        med("Adderall XR 20mg", "20 mg every morning", date(2025, 1, 1), id=3),
    ]
    out = stimulant_doses(entries, start=MON, end=MON + timedelta(days=6))
    by_name = {i.ingredient: i.weeks[0].mg_per_day for i in out.ingredients}
    assert by_name == {
        "lisdexamfetamine": 50.0,
        "methylphenidate": 20.0,
        "mixed amphetamine salts": 20.0,
    }
    assert "No conversion" in out.text and out.knowledge_version == knowledge_version()


def test_an_unreadable_dose_is_unknown_for_its_weeks_never_0() -> None:
    entries = [med("Vyvanse", "1 cap every morning", MON + timedelta(days=7))]
    out = stimulant_doses(entries, start=MON, end=MON + timedelta(days=20))
    weeks = out.ingredient("lisdexamfetamine").weeks
    assert [(w.status, w.mg_per_day) for w in weeks] == [
        ("not_taken", 0.0),  # before it started: truly not taken
        ("unknown", None),
        ("unknown", None),
    ]
    assert "without a strength" in (weeks[1].reason or "")


def test_two_entries_of_one_ingredient_add_up() -> None:
    entries = [
        med("Concerta 36 mg", "1 tab every morning", date(2025, 1, 1)),
        med("Ritalin 10 mg", "1 tab at 2pm", date(2025, 1, 1), id=2),
    ]
    week = stimulant_doses(entries, start=MON, end=MON).ingredient("methylphenidate").weeks[0]
    assert (week.status, week.mg_per_day) == ("dose", 46.0)


def test_missing_dates_make_weeks_unknown_not_taken_or_not() -> None:
    no_start = [med("Ritalin", "10 mg twice daily", None)]
    out = stimulant_doses(no_start, start=MON, end=MON + timedelta(days=6))
    assert out.ingredient("methylphenidate").weeks[0].status == "unknown"
    # Known to be taken from the day it was entered as current.
    recorded = [med("Ritalin", "10 mg twice daily", None, recorded_on=MON + timedelta(days=7))]
    weeks = (
        stimulant_doses(recorded, start=MON, end=MON + timedelta(days=13))
        .ingredient("methylphenidate")
        .weeks
    )
    assert [(w.status, w.mg_per_day) for w in weeks] == [("unknown", None), ("dose", 20.0)]
    # Stopped or on hold on a date nobody wrote down.
    for status in ("stopped", "on_hold"):
        held = [med("Ritalin", "10 mg twice daily", MON - timedelta(days=30), status=status)]
        week = stimulant_doses(held, start=MON, end=MON).ingredient("methylphenidate").weeks[0]
        assert week.status == "unknown" and "not recorded" in (week.reason or "")


def test_entries_in_error_and_non_stimulants_are_left_out_unknown_names_listed() -> None:
    entries = [
        med("Strattera", "80 mg daily", date(2025, 1, 1)),
        med("guanfacine ER", "2 mg at night", date(2025, 1, 1), id=2),
        med("Ritalin", "10 mg daily", date(2025, 1, 1), id=3, status="entered_in_error"),
        med("Zorblaxin 20 mg", "20 mg daily", date(2025, 1, 1), id=4),
    ]
    out = stimulant_doses(entries, start=MON, end=MON)
    assert out.ingredients == () and out.unrecognized == ("Zorblaxin 20 mg",)


def test_the_stop_date_is_the_last_day_taken_and_weeks_follow_the_range() -> None:
    entries = [med("Ritalin", "10 mg daily", MON, MON + timedelta(days=2))]
    # The range ends on a Wednesday: the last week counts its first three days only.
    out = stimulant_doses(entries, start=MON, end=MON + timedelta(days=9))
    weeks = out.ingredient("methylphenidate").weeks
    assert [(w.status, w.days_taken) for w in weeks] == [("dose", 3), ("not_taken", 0)]


def test_a_bad_range_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        stimulant_doses([], start=MON, end=MON - timedelta(days=1))
    with pytest.raises(ValueError, match="more than"):
        stimulant_doses([], start=MON - timedelta(days=4000), end=MON)
