"""Properties of every parser of free or structured input: drug names, rating-scale answers,
the intake file, stimulant dose text and vital signs. Whatever comes in, each either gives a
result within its documented range or refuses with its own error naming the field; never a
crash, and never a missing value read as zero or safe."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ketacare.clinical.drugs import default_resolver, resolve
from ketacare.clinical.eligibility import (
    DecisionKind,
    HistoryCode,
    Intake,
    IntakeError,
    TreatmentResponse,
    assess,
    describe_validation_error,
)
from ketacare.clinical.instruments import INSTRUMENT_IDS, AnswerError, Score, instrument, score
from ketacare.clinical.monitoring import VitalSignError, VitalSigns, validate_vitals
from ketacare.clinical.stimulants import parse_dose, strength_from_name
from ketacare.knowledge.protocol_defs import load_monitoring

# A few hundred examples each keeps the file well under a minute; the parsers are pure.
# Derandomized: the same cases every run, so the suite cannot turn red by chance.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# JSON-like junk: what a form, a file or an API body can carry.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


# --- drug names ------------------------------------------------------------------------------

_STATUSES = {"resolved", "partial", "not_reviewed", "unrecognized"}
_CURATED = sorted(default_resolver().catalog.aliases)


def _respace(text: str, data: st.DataObject) -> str:
    """The same words with other spacing (runs of spaces and tabs, around and between)."""
    gap = st.sampled_from([" ", "  ", "\t", " \t "])
    words = text.split()
    joined = "".join(w + data.draw(gap) for w in words)
    return data.draw(gap) + joined


def _recase(text: str, data: st.DataObject) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True))


def _essence(text: str) -> tuple[Any, ...]:
    r = resolve(text)
    return r.status, r.ingredients, tuple(m.match_kind for m in r.matches)


@PROPERTY
@given(st.text(max_size=80))
def test_any_text_resolves_to_a_status_and_never_raises(text: str) -> None:
    result = resolve(text)
    assert result.status in _STATUSES
    assert result.input == text
    if result.status == "unrecognized":
        assert result.ingredients == ()
    else:
        assert result.ingredients and all(m.ingredient for m in result.matches)
    assert all(0 < m.confidence <= 1 for m in result.matches)


@PROPERTY
@given(st.sampled_from(_CURATED), st.data())
def test_a_known_name_resolves_whatever_its_case_and_spacing(
    name: str, data: st.DataObject
) -> None:
    written = _respace(_recase(name, data), data)
    assert _essence(written) == _essence(name)
    assert resolve(written).status in {"resolved", "not_reviewed"}


_ascii_entry = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -/"),
    max_size=40,
)


@PROPERTY
@given(
    st.one_of(_ascii_entry, st.sampled_from(_CURATED).map(lambda n: n + " 20 mg bid")), st.data()
)
def test_resolution_does_not_depend_on_case_or_spacing(text: str, data: st.DataObject) -> None:
    assert _essence(_respace(_recase(text, data), data)) == _essence(text)


# --- rating-scale answers --------------------------------------------------------------------

_answer = st.one_of(
    st.integers(-3, 8),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.none(),
)


@PROPERTY
@given(st.sampled_from(sorted(INSTRUMENT_IDS)), st.lists(_answer, max_size=30))
def test_any_answers_score_within_range_or_are_refused_naming_the_item(
    instrument_id: str, answers: list[Any]
) -> None:
    definition = instrument(instrument_id)
    outcome = _score_or_error(instrument_id, answers)
    if isinstance(outcome, AnswerError):
        assert outcome.field == "answers" or re.fullmatch(r"item [0-9]+", outcome.field)
        assert outcome.message
        if outcome.field == "answers":
            assert len(answers) != definition.item_count
        else:
            number = int(outcome.field.removeprefix("item "))
            assert 1 <= number <= len(answers)
            bad = answers[number - 1]
            # Only whole numbers among the options are answers (0.0 equals 0 but is refused).
            assert type(bad) is not int or bad not in definition.option_values
        return
    assert len(answers) == definition.item_count
    low, high = definition.option_values[0], definition.option_values[-1]
    assert low * definition.item_count <= outcome.total <= definition.scoring.max
    assert outcome.total <= high * definition.item_count
    assert outcome.answers == tuple(answers)


def _score_or_error(instrument_id: str, answers: list[Any]) -> Score | AnswerError:
    try:
        return score(instrument_id, answers)
    except AnswerError as exc:
        return exc


@PROPERTY
@given(st.one_of(st.text(max_size=10), _json), st.lists(st.integers(0, 3), max_size=9))
def test_an_unknown_instrument_or_a_non_list_is_refused_by_name(
    instrument_id: Any, answers: list[int]
) -> None:
    assume(instrument_id not in INSTRUMENT_IDS)
    with pytest.raises(AnswerError) as info:
        score(instrument_id, answers)
    assert info.value.field == "instrument"


@PROPERTY
@given(
    st.sampled_from(sorted(INSTRUMENT_IDS)),
    st.one_of(
        st.text(max_size=20),
        st.integers(),
        st.none(),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    ),
)
def test_answers_that_are_not_a_list_are_refused(instrument_id: str, answers: Any) -> None:
    with pytest.raises(AnswerError) as info:
        score(instrument_id, answers)
    assert info.value.field == "answers"


# --- the intake file -------------------------------------------------------------------------

_FIELDS = sorted(Intake.model_fields)
_good_values: dict[str, st.SearchStrategy[Any]] = {
    "age": st.integers(0, 130),
    "date_of_birth": st.dates(date(1900, 1, 1), date(2026, 1, 1)).map(date.isoformat),
    "adhd_diagnosis": st.booleans(),
    "prior_adhd_treatments": st.lists(
        st.fixed_dictionaries(
            {
                "drug": st.sampled_from(["methylphenidate", "Vyvanse", "atomoxetine", "xyz"]),
                "response": st.sampled_from([r.value for r in TreatmentResponse]),
            },
            optional={"duration_weeks": st.floats(0, 5200), "dose": st.text(max_size=20)},
        ),
        max_size=3,
    ),
    "history": st.lists(st.sampled_from([c.value for c in HistoryCode]), max_size=4),
    "blood_pressure": st.fixed_dictionaries(
        {"systolic": st.integers(50, 300), "diastolic": st.integers(20, 200)}
    ),
    "heart_rate": st.integers(20, 250),
    "weight_kg": st.floats(30, 300),
    "medications": st.lists(
        st.sampled_from(["sertraline 50 mg", "Adderall XR", "tea"]), max_size=3
    ),
    "stopped_medications": st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["Nardil", "phenelzine 15 mg", "tea"])},
            optional={
                "stop_date": st.one_of(
                    st.none(), st.dates(date(2025, 1, 1), date(2026, 1, 1)).map(date.isoformat)
                )
            },
        ),
        max_size=2,
    ),
    "planned_protocol": st.sampled_from(["iv-ketamine", "intranasal-esketamine", "oral-ketamine"]),
    "scores": st.fixed_dictionaries(
        {},
        optional={
            "phq9": st.lists(st.integers(0, 3), min_size=9, max_size=9),
            "gad7": st.lists(st.integers(0, 3), min_size=7, max_size=7),
            "asrs": st.lists(st.integers(0, 4), min_size=18, max_size=18),
        },
    ),
}
assert set(_good_values) == set(_FIELDS), "a new intake field needs a strategy here"

# Each field: a plausible value or junk; sometimes an unknown field too.
_intake_dicts = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.one_of(strategy, _json) for name, strategy in _good_values.items()},
        "unexpected": _json,
    },
)


@PROPERTY
@given(_intake_dicts, st.dates(date(2020, 1, 1), date(2030, 12, 31)))
def test_any_intake_is_assessed_or_refused_naming_the_field(
    raw: dict[str, Any], as_of: date
) -> None:
    try:
        intake = Intake.model_validate(raw)
    except ValidationError as exc:
        lines = describe_validation_error(exc)
        assert lines
        for line in lines:
            where = line.split(":", 1)[0]
            assert where == "intake" or where.split(".")[0] in raw, line
        return
    if intake.date_of_birth is not None and intake.date_of_birth > as_of:
        # Valid alone but not together (born after the assessment date): named, not a crash.
        with pytest.raises(IntakeError) as refused:
            assess(intake, as_of=as_of)
        assert refused.value.field == "date_of_birth"
        return
    decision = assess(intake, as_of=as_of)
    assert decision.decision in set(DecisionKind)
    assert decision.reasons
    for reason in decision.reasons:
        assert reason.code and reason.text and reason.sources, reason.code
    if any(r.severity == "exclusion" for r in decision.reasons):
        assert decision.decision == DecisionKind.INELIGIBLE


@PROPERTY
@given(st.fixed_dictionaries({"date_of_birth": _good_values["date_of_birth"]}))
def test_a_date_of_birth_without_an_assessment_date_names_as_of(raw: dict[str, Any]) -> None:
    with pytest.raises(IntakeError) as info:
        assess(Intake.model_validate(raw))
    assert info.value.field == "as_of"


# --- stimulant dose text ---------------------------------------------------------------------

# Fragments of the way doses are written, so that most generated texts come close to readable.
_DOSE_WORDS = [
    "10",
    "20",
    "0",
    "0.5",
    "1/2",
    "½",
    "1",
    "2",
    "18",
    "36",
    "mg",
    "mcg",
    "g",
    "ml",
    "tab",
    "tabs",
    "tablet",
    "capsule",
    "cap",
    "x",
    "times",
    "bid",
    "tid",
    "qd",
    "qam",
    "daily",
    "twice",
    "once",
    "a",
    "day",
    "per",
    "week",
    "weekly",
    "morning",
    "noon",
    "at",
    "8am",
    "2pm",
    "and",
    "+",
    ",",
    "then",
    "prn",
    "as",
    "needed",
    "or",
    "-",
    "to",
    "XR",
    "ER",
    "IR",
    "unknown",
]
_dose_text = st.lists(st.sampled_from(_DOSE_WORDS), max_size=8).map(" ".join)
_names = st.one_of(
    st.none(),
    st.sampled_from(["Ritalin 10 mg", "Concerta 36 mg", "Vyvanse", "Adderall XR 20mg", "x 5 mg"]),
)


@settings(max_examples=500, deadline=None)
@given(_dose_text, _names)
def test_dose_like_text_is_read_above_zero_or_unknown_with_a_reason(
    text: str, name: str | None
) -> None:
    reading = parse_dose(text, strength=strength_from_name(name) if name else None)
    if reading.status == "read":
        assert reading.mg_per_day is not None and reading.mg_per_day > 0
        assert math.isfinite(float(reading.mg_per_day))
        assert reading.reason is None
    else:
        assert reading.mg_per_day is None  # unknown is never a dose of 0
        assert reading.reason


@PROPERTY
@given(_dose_text)
def test_dose_text_reads_the_same_whatever_its_case_and_spacing(text: str) -> None:
    variant = "  " + "   ".join(text.upper().split()) + " "
    a, b = parse_dose(text), parse_dose(variant)
    assert (a.status, a.mg_per_day) == (b.status, b.mg_per_day)


# --- vital signs -----------------------------------------------------------------------------

_VITALS = [f for f in VitalSigns.__dataclass_fields__ if f in load_monitoring().plausibility.ranges]
_any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)


@PROPERTY
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(_VITALS, _any_value)))
def test_any_readings_are_checked_field_by_field_and_never_raise(sample: dict[str, Any]) -> None:
    problems = validate_vitals(sample)
    ranges = load_monitoring().plausibility.ranges
    flagged = {p.field for p in problems}
    assert flagged <= {k for k, v in sample.items() if v is not None}
    for name, value in sample.items():
        if value is None:
            continue
        limits = ranges[name]
        plausible = (
            not isinstance(value, bool)
            and isinstance(value, int | float)
            and (isinstance(value, int) or math.isfinite(value))
            and limits.min <= value <= limits.max
        )
        if not plausible:
            assert name in flagged, (name, value)
    for problem in problems:
        assert problem.text and problem.sources
        assert problem.code in {"not_a_number", "out_of_range", "diastolic_not_below_systolic"}


@PROPERTY
@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: st.floats(limits.min, limits.max)
            for name, limits in load_monitoring().plausibility.ranges.items()
            if name in _VITALS
        },
    )
)
def test_plausible_readings_raise_no_problem_unless_the_pressures_are_swapped(
    sample: dict[str, float],
) -> None:
    problems = validate_vitals(sample)
    swapped = (
        "systolic" in sample and "diastolic" in sample and sample["diastolic"] >= sample["systolic"]
    )
    assert [p.code for p in problems] == (["diastolic_not_below_systolic"] if swapped else [])


@PROPERTY
@given(st.text(min_size=1, max_size=15))
def test_an_unknown_vital_sign_is_refused_by_name(name: str) -> None:
    assume(name not in VitalSigns.__dataclass_fields__)
    with pytest.raises(VitalSignError) as info:
        validate_vitals({name: 80})
    assert info.value.field == name
