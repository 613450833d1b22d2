"""Stimulant doses over time: the daily dose in mg per stimulant ingredient per ISO week,
read from the medication list as entered ("Concerta 54 mg ER tab", "1 tab every morning").

Pure: names are resolved with ``ketacare.clinical.drugs``; the stimulant drug classes come
from ``knowledge/outcomes.yaml``; dates are arguments. Nothing here reads a clock or a database.

Two rules keep the chart honest:
- a dose that cannot be read is *unknown* for that week, never 0 (0 means "not taking it");
- doses are reported per ingredient as entered: converting between ingredients
  (methylphenidate vs amphetamine "equivalents") is not validated, so it is not done.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from functools import cache
from typing import Any, Literal

from ketacare.clinical.drugs import resolve
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.outcome_defs import load_outcomes

__all__ = [
    "MAX_RANGE_DAYS",
    "DoseReading",
    "EntryDose",
    "IngredientWeeks",
    "StimulantDoses",
    "Strength",
    "WeekDose",
    "parse_dose",
    "stimulant_doses",
    "stimulant_ingredients",
    "strength_from_name",
]

# About three years of weeks: enough for any course, small enough for one chart.
MAX_RANGE_DAYS = 3 * 366

DoseStatus = Literal["read", "unknown"]
WeekStatus = Literal["dose", "not_taken", "unknown"]


# --- reading a dose text ---------------------------------------------------------------------


@dataclass(frozen=True)
class Strength:
    """What one unit of the product holds, read from its name."""

    mg_per_unit: Fraction | None = None  # tablet, capsule, chewable
    mg_per_ml: Fraction | None = None  # oral solution or suspension

    def to_json_dict(self) -> dict[str, float | None]:
        return {
            "mg_per_unit": float(self.mg_per_unit) if self.mg_per_unit is not None else None,
            "mg_per_ml": float(self.mg_per_ml) if self.mg_per_ml is not None else None,
        }


@dataclass(frozen=True)
class DoseReading:
    """The daily dose read from a dose text, or why it could not be read."""

    text: str | None
    status: DoseStatus
    mg_per_day: float | None = None
    reason: str | None = None
    # (mg per administration, administrations per day), as read.
    administrations: tuple[tuple[float, float], ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "status": self.status,
            "mg_per_day": self.mg_per_day,
            "reason": self.reason,
            "administrations": [list(a) for a in self.administrations],
        }


def _unknown(text: str | None, reason: str) -> DoseReading:
    return DoseReading(text=text, status="unknown", reason=reason)


_FRACTIONS = {"½": " 1/2", "¼": " 1/4", "¾": " 3/4", "⅓": " 1/3", "⅔": " 2/3"}
_ABBREVIATION = re.compile(
    r"\b(?:b\.?i\.?d|t\.?i\.?d|q\.?i\.?d|q\.?o\.?d|q\.?a\.?m|q\.?p\.?m|q\.?h\.?s|q\.?d|o\.?d"
    r"|h\.?s|a\.?m|p\.?m)\.?(?![a-z])"
)


def _normalise(text: str) -> str:
    for char, plain in _FRACTIONS.items():
        text = text.replace(char, plain)
    t = unicodedata.normalize("NFKC", text).casefold()
    t = t.replace("⁄", "/").replace("×", " x ").replace("–", "-").replace("—", "-")
    t = t.replace("µ", "u").replace("μ", "u")
    t = re.sub(r"(?<=\d),(?=\d)", ".", t)  # a decimal comma: 2,5 mg
    t = _ABBREVIATION.sub(lambda m: m.group(0).replace(".", ""), t)
    t = re.sub(r"\.(?!\d)", " ", t)  # a full stop not before a digit is punctuation (.5 stays)
    t = re.sub(r"(\d)\s+and a half\b", lambda m: f"{m.group(1)}.5", t)
    t = re.sub(r"\bone and a half\b", "1.5", t)
    t = re.sub(r"\btwo and a half\b", "2.5", t)
    t = re.sub(r"\s*/\s*(?:day|d)\b", " per day", t)
    # "am/pm", "morning/evening": two administrations, like "am and pm".
    t = re.sub(
        r"\b(am|pm|morning|noon|lunch|afternoon|evening|night|bedtime)\s*/\s*"
        r"(?=am\b|pm\b|morning|noon|lunch|afternoon|evening|night|bedtime)",
        r"\1 and ",
        t,
    )
    return " ".join(t.split())


# Anything that makes "mg per day" a guess: as needed, ranges, tapers, weekly schedules,
# hourly intervals. Such a dose is unknown, never estimated.
_AMBIGUOUS = (
    (
        re.compile(
            r"\bprn\b|\bas (?:needed|required|directed)\b|\b(?:if|when) (?:needed|required)\b"
        ),
        "an as-needed dose has no fixed daily amount",
    ),
    (re.compile(r"\d\s*(?:-|to)\s*\.?\d"), "a range of doses"),
    (re.compile(r"\bup to\b|\bmax(?:imum)?\b|\bno more than\b"), "only a maximum is given"),
    (re.compile(r"\bor\b"), "alternative doses"),
    (
        re.compile(r"\bthen\b|\btaper|\btitrat|\bincreas|\bdecreas|\breduc|\bwean"),
        "a changing dose",
    ),
    (
        re.compile(r"\bweek|\bmonth|\bweekend|\bweekday|\bschool days?\b|\bwork days?\b"),
        "not the same dose every day",
    ),
    (re.compile(r"\bsome days\b|\bsometimes\b|\boccasional|\bskip"), "not taken every day"),
    (
        re.compile(r"\bhours?\b|\bhrs?\b|\bq\s?\d+\s?h\b|\bevery \d+\s?h\b"),
        "a dose by the hour, not by the day",
    ),
    (re.compile(r"mg\s*/\s*kg"), "a dose per kg"),
    (re.compile(r"\?|\bunknown\b|\bunsure\b|\bnot sure\b|\bunclear\b"), "the dose is uncertain"),
    (
        re.compile(r"\bstop|\bon hold\b|\bholding\b|\bpaused?\b|\bnot taking\b"),
        "the text says the medicine is not being taken",
    ),
)

_NUM = (
    r"(?:\d+\s+\d+/\d+|\d+/\d+|\d+(?:\.\d+)?|\.\d+|one|two|three|four|five|six"
    r"|half(?:\s+(?:a|an))?|a|an)"
)
_MASS_UNIT = r"(?:mg|mgs|milligrams?|mcg|ug|micrograms?)"
_FORM = r"(?:tabs?|tablets?|caps?|capsules?|pills?|chews?|chewables?|ml|mls|millilit(?:re|er)s?)"
_DEVICE = r"(?:patch(?:es)?|sprays?|puffs?|drops?|films?|lozenges?)"
_COMPOUND = re.compile(
    rf"(?<![\w.])(?P<count>{_NUM})\s*(?:x|times)\s*(?P<mg>{_NUM})\s*(?P<unit>{_MASS_UNIT})\b"
    rf"|(?<![\w.])(?P<count2>{_NUM})\s*{_FORM}\s*(?:of|x|@)\s*(?P<mg2>{_NUM})\s*"
    rf"(?P<unit2>{_MASS_UNIT})\b"
)
_MASS = re.compile(rf"(?<![\w.])(?P<mg>{_NUM})\s*(?P<unit>{_MASS_UNIT})\b")
_UNITS = re.compile(rf"(?<![\w.])(?P<count>{_NUM})\s*(?P<form>{_FORM})\b")
_DEVICES = re.compile(rf"(?<![\w.])(?:{_NUM})\s*{_DEVICE}\b|\b{_DEVICE}\b")
_CLOCK = re.compile(
    r"(?:\bat\s+|@\s*)?\b\d{1,2}(?::\d{2})?\s*(?:am|pm)\b"
    r"|(?:\bat|@)\s*\d{1,2}(?::\d{2})?(?![\d.])"
    r"|\b\d{1,2}:\d{2}\b"
)
_TIME_WORD = re.compile(
    r"\b(?:mornings?|am|qam|breakfast|noon|midday|lunch(?:time)?|afternoons?|evenings?|pm|qpm"
    r"|supper|dinner|night|nightly|bedtime|hs|qhs)\b"
)
_SLOTS = {
    "morning": ("morning", "am", "qam", "breakfast"),
    "noon": ("noon", "midday", "lunch"),
    "afternoon": ("afternoon",),
    "evening": ("evening", "pm", "qpm", "supper", "dinner"),
    "night": ("night", "nightly", "bedtime", "hs", "qhs"),
}


def _slot(word: str) -> str:
    """The moment of the day a time word names."""
    for slot, words in _SLOTS.items():
        if word.startswith(words):
            return slot
    return word


def _slot_of_clock(text: str) -> str:
    """The moment of the day of a clock time ("7am", "at 14:00", "2 pm")."""
    m = re.search(r"(\d{1,2})(?::\d{2})?\s*(am|pm)?", text)
    if m is None:
        return text
    hour = int(m.group(1)) % 24
    if m.group(2) == "pm" and hour < 12:
        hour += 12
    elif m.group(2) == "am" and hour == 12:
        hour = 0
    if 4 <= hour < 11:
        return "morning"
    if hour < 4 or hour >= 21:
        return "night"
    if hour < 13:
        return "noon"
    return "afternoon" if hour < 17 else "evening"


_PER_DAY = r"\s*(?:a|per|each|every|/)?\s*(?:day|daily)\b"
_EXPLICIT: tuple[tuple[re.Pattern[str], Fraction | None], ...] = (
    (re.compile(r"\b(?:every other day|qod|(?:on )?alternate days)\b"), Fraction(1, 2)),
    (re.compile(rf"\b(?P<n>\d+)\s*(?:times|x)\s*{_PER_DAY}"), None),
    (re.compile(rf"\bx\s?(?P<n>\d+)\s*{_PER_DAY}"), None),
    (re.compile(rf"\b(?:once|one time){_PER_DAY}"), Fraction(1)),
    (re.compile(rf"\b(?:twice|two times){_PER_DAY}"), Fraction(2)),
    (re.compile(rf"\b(?:three times|thrice){_PER_DAY}"), Fraction(3)),
    (re.compile(rf"\bfour times{_PER_DAY}"), Fraction(4)),
    (re.compile(r"\bbid\b"), Fraction(2)),
    (re.compile(r"\btid\b"), Fraction(3)),
    (re.compile(r"\bqid\b"), Fraction(4)),
    (re.compile(r"\b(?:daily|qd|od|every ?day|each day|per day|a day)\b"), Fraction(1)),
    (re.compile(r"\bonce\b"), Fraction(1)),
    (re.compile(r"\btwice\b"), Fraction(2)),
    (re.compile(r"\bthrice\b|\bthree times\b"), Fraction(3)),
)
_SEPARATOR = re.compile(r"\s*(?:,|;|&|\+|\band\b|\bplus\b)\s*")
_WORD_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "a": 1,
    "an": 1,
}


def _number(text: str) -> Fraction:
    text = text.strip()
    if text.startswith("half"):
        return Fraction(1, 2)
    if text in _WORD_NUMBERS:
        return Fraction(_WORD_NUMBERS[text])
    if " " in text:  # "1 1/2"
        whole, part = text.split(None, 1)
        return Fraction(whole) + _number(part)
    if "/" in text:
        top, bottom = text.split("/", 1)
        if Fraction(bottom) == 0:
            raise ValueError("division by zero")
        return Fraction(top) / Fraction(bottom)
    return Fraction(text)


def _mg(amount: Fraction, unit: str) -> Fraction:
    return amount / 1000 if unit.startswith(("mcg", "ug", "micro")) else amount


@dataclass
class _Amount:
    mg: Fraction | None = None  # a mass, or a count times a mass
    units: Fraction | None = None  # tablets or mL, converted with the product's strength
    form: str | None = None


@dataclass
class _Group:
    amount: _Amount
    explicit: list[Fraction] = field(default_factory=list)
    time_parts: int = 0


def _take(pattern: re.Pattern[str], text: str) -> tuple[list[re.Match[str]], str]:
    """Every match, and the text with the matches blanked out (positions kept)."""
    found = list(pattern.finditer(text))
    for m in reversed(found):
        text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
    return found, text


def _part_amounts(part: str, previous: _Amount | None) -> tuple[list[_Amount], str]:
    amounts: list[_Amount] = []
    found, rest = _take(_COMPOUND, part)
    for m in found:
        count = _number(m.group("count") or m.group("count2"))
        mass = _number(m.group("mg") or m.group("mg2"))
        amounts.append(_Amount(mg=count * _mg(mass, m.group("unit") or m.group("unit2"))))
    found, rest = _take(_MASS, rest)
    for m in found:
        amounts.append(_Amount(mg=_mg(_number(m.group("mg")), m.group("unit"))))
    found, rest = _take(_UNITS, rest)
    for m in found:
        form = "ml" if m.group("form").startswith(("ml", "mil")) else "unit"
        amounts.append(_Amount(units=_number(m.group("count")), form=form))
    # A bare number ("1 tab in the morning and 1 at lunch") repeats the previous unit.
    bare = list(re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?|\d+/\d+)(?![\w.:/])", rest))
    if bare and previous is not None and not amounts and len(bare) == 1:
        value = _number(bare[0].group(1))
        if previous.form is not None:
            amounts.append(_Amount(units=value, form=previous.form))
        else:
            amounts.append(_Amount(mg=value))
        _, rest = _take(re.compile(re.escape(bare[0].group(0))), rest)
    return amounts, rest


def parse_dose(text: str | None, *, strength: Strength | None = None) -> DoseReading:
    """The daily dose in mg of a dose text: "50 mg every morning" -> 50, "20 mg twice daily"
    -> 40, "10 mg am and 5 mg pm" -> 15, "1 tab every morning" with a 54 mg tablet -> 54.

    Unknown (with the reason) when the text has no amount or no schedule, when tablets have
    no strength, for as-needed, ranges, tapers, weekly or hourly schedules, patches and
    sprays, and for anything left over that looks like a number.
    """
    if text is None or not text.strip():
        return _unknown(text, "No dose recorded.")
    t = _normalise(text)
    for pattern, reason in _AMBIGUOUS:
        if pattern.search(t):
            return _unknown(text, f"Cannot count a daily dose: {reason}.")
    if _DEVICES.search(t):
        return _unknown(
            text, "Patch, spray and similar doses are not read: the delivered dose varies."
        )
    try:
        return _parse(text, t, strength)
    except (ValueError, ZeroDivisionError):
        return _unknown(text, "The numbers in the dose text could not be read.")


def _parse(text: str, t: str, strength: Strength | None) -> DoseReading:
    groups: list[_Group] = []
    pending_explicit: list[Fraction] = []
    pending_times = 0
    previous: _Amount | None = None
    for raw_part in _SEPARATOR.split(t):
        part = raw_part.strip()
        if not part:
            continue
        # Clock times and "2 times daily" first, so their numbers are not read as amounts.
        clocks, rest = _take(_CLOCK, part)
        explicit: list[Fraction] = []
        for pattern, per_day in _EXPLICIT:
            found, rest = _take(pattern, rest)
            for m in found:
                explicit.append(per_day if per_day is not None else Fraction(int(m.group("n"))))
        amounts, rest = _part_amounts(rest, previous)
        times, rest = _take(_TIME_WORD, rest)
        # Words naming one moment count once ("every morning with breakfast", "at 7am").
        slots = len(
            {_slot_of_clock(m.group(0)) for m in clocks} | {_slot(m.group(0)) for m in times}
        )
        if re.search(r"\d", rest):
            leftover = " ".join(rest.split())
            return _unknown(text, f"Could not read “{leftover}” in the dose text.")
        if len(amounts) > 1:
            return _unknown(text, "Several amounts in one part of the dose text.")
        if amounts:
            group = _Group(
                amount=amounts[0],
                explicit=[*pending_explicit, *explicit],
                time_parts=pending_times + slots,
            )
            pending_explicit, pending_times = [], 0
            groups.append(group)
            previous = amounts[0]
        elif groups:
            groups[-1].explicit.extend(explicit)
            groups[-1].time_parts += slots
        else:
            # Schedule words before the first amount ("every morning, 20 mg").
            pending_explicit.extend(explicit)
            pending_times += slots
    if not groups:
        return _unknown(text, "No amount (mg, tablets or mL) in the dose text.")
    if pending_explicit or pending_times:
        return _unknown(text, "Schedule words without an amount.")
    total = Fraction(0)
    administrations: list[tuple[float, float]] = []
    for group in groups:
        per_day = _per_day(group)
        if per_day is None:
            return _unknown(text, "No schedule (how many times a day) in the dose text.")
        if per_day == -1:
            return _unknown(text, "The schedule words disagree on how many times a day.")
        mg = _amount_mg(group.amount, strength)
        if isinstance(mg, str):
            return _unknown(text, mg)
        total += mg * per_day
        administrations.append((float(mg), float(per_day)))
    if total <= 0:
        return _unknown(text, "A dose of 0 is not a dose: record the medicine as stopped.")
    return DoseReading(
        text=text,
        status="read",
        mg_per_day=round(float(total), 3),
        administrations=tuple(administrations),
    )


def _per_day(group: _Group) -> Fraction | None:
    """Times a day; None without a schedule, -1 when the schedule words disagree."""
    distinct = set(group.explicit)
    if len(distinct) > 1:
        return Fraction(-1)
    if distinct:
        value = distinct.pop()
        if group.time_parts > 1 and group.time_parts != value:
            return Fraction(-1)
        return value
    if group.time_parts:
        return Fraction(group.time_parts)
    return None


def _amount_mg(amount: _Amount, strength: Strength | None) -> Fraction | str:
    if amount.mg is not None:
        return amount.mg
    assert amount.units is not None
    if amount.form == "ml":
        if strength is None or strength.mg_per_ml is None:
            return "A volume without a concentration: the name gives no mg per mL."
        return amount.units * strength.mg_per_ml
    if strength is None or strength.mg_per_unit is None:
        return "Tablets or capsules without a strength: the name gives no mg per tablet."
    return amount.units * strength.mg_per_unit


_NAME_CONCENTRATION = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*mg\s*/\s*(\d+(?:\.\d+)?)?\s*(?:ml|millilit)"
)
_NAME_RATE = re.compile(
    r"(?<![\w.])\d+(?:\.\d+)?\s*(?:mg|mcg|ug)\s*/\s*\d*\s*(?:h|hr|hour|day|d)\b"
)
_NAME_MASS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(mg|mcg|ug)\b(?!\s*/)")


def strength_from_name(name: str) -> Strength | None:
    """The strength written in a product name: "Concerta 54 mg ER tab" -> 54 mg per unit,
    "Quillivant XR 25 mg/5 mL" -> 5 mg per mL. None when there is none, when the name gives a
    rate (a patch's mg per 9 h) or several different strengths."""
    t = _normalise(name)
    if _NAME_RATE.search(t):
        return None
    concentrations, rest = _take(_NAME_CONCENTRATION, t)
    per_ml = {Fraction(m.group(1)) / Fraction(m.group(2) or "1") for m in concentrations}
    masses = {_mg(Fraction(m.group(1)), m.group(2)) for m in _NAME_MASS.finditer(rest)}
    if len(per_ml) > 1 or len(masses) > 1 or (per_ml and masses):
        return None
    if per_ml:
        return Strength(mg_per_ml=per_ml.pop())
    if masses:
        return Strength(mg_per_unit=masses.pop())
    return None


# --- doses per ISO week ----------------------------------------------------------------------


@cache
def stimulant_ingredients() -> frozenset[str]:
    """Ingredients of the stimulant drug classes named in outcomes.yaml."""
    catalog = load_catalog()
    members: set[str] = set()
    for class_id in load_outcomes().stimulants.classes:
        members |= catalog.class_members[class_id]
    return frozenset(members)


@dataclass(frozen=True)
class EntryDose:
    """One medication entry that contains a stimulant, with its dose as read."""

    entry_id: int | None
    name: str
    ingredient: str
    dose_text: str | None
    reading: DoseReading
    start_date: date | None
    stop_date: date | None
    status: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "name": self.name,
            "ingredient": self.ingredient,
            "dose_text": self.dose_text,
            "reading": self.reading.to_json_dict(),
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "stop_date": self.stop_date.isoformat() if self.stop_date else None,
            "status": self.status,
        }


@dataclass(frozen=True)
class WeekDose:
    """One ingredient in one ISO week. ``status``: dose | not_taken (mg 0) | unknown (mg
    None, with the reason). ``mg_per_day`` is the highest daily dose of the week and
    ``lowest_mg_per_day`` the lowest, over the week's days inside the range."""

    iso_year: int
    iso_week: int
    week_start: date
    status: WeekStatus
    mg_per_day: float | None
    lowest_mg_per_day: float | None = None
    days_taken: int = 0
    reason: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "iso_year": self.iso_year,
            "iso_week": self.iso_week,
            "week_start": self.week_start.isoformat(),
            "status": self.status,
            "mg_per_day": self.mg_per_day,
            "lowest_mg_per_day": self.lowest_mg_per_day,
            "days_taken": self.days_taken,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class IngredientWeeks:
    ingredient: str
    entries: tuple[EntryDose, ...]
    weeks: tuple[WeekDose, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ingredient": self.ingredient,
            "entries": [e.to_json_dict() for e in self.entries],
            "weeks": [w.to_json_dict() for w in self.weeks],
        }


@dataclass(frozen=True)
class StimulantDoses:
    """Per stimulant ingredient, its entries and its dose per ISO week over [start, end].
    ``unrecognized``: names that matched no medicine (they may be stimulants: check them)."""

    start: date
    end: date
    ingredients: tuple[IngredientWeeks, ...]
    unrecognized: tuple[str, ...]
    text: str
    evidence: str
    sources: tuple[str, ...]
    classes: tuple[str, ...]
    knowledge_version: str

    def ingredient(self, name: str) -> IngredientWeeks:
        return next(i for i in self.ingredients if i.ingredient == name)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "ingredients": [i.to_json_dict() for i in self.ingredients],
            "unrecognized": list(self.unrecognized),
            "text": self.text,
            "evidence": self.evidence,
            "sources": list(self.sources),
            "classes": list(self.classes),
            "knowledge_version": self.knowledge_version,
        }


def _field(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return None


def _text(value: Any) -> str:
    # Enum-valued statuses (MedicationStatus) read as their value.
    return str(getattr(value, "value", value) or "")


DayState = tuple[Literal["taking", "not_taking", "unknown"], str | None]


def _day_state(entry: EntryDose, recorded_on: date | None, day: date) -> DayState:
    """Whether the entry was being taken on a day. The stop date is the last day taken."""
    start, stop = entry.start_date, entry.stop_date
    if start is not None and day < start:
        return "not_taking", None
    if stop is not None and day > stop:
        return "not_taking", None
    if start is None:
        if entry.status == "active" and recorded_on is not None and day >= recorded_on:
            return "taking", None
        return "unknown", f"{entry.name}: start date not recorded."
    if entry.status != "active" and stop is None:
        return "unknown", f"{entry.name}: {entry.status.replace('_', ' ')} on a date not recorded."
    return "taking", None


def stimulant_doses(entries: Iterable[Any], *, start: date, end: date) -> StimulantDoses:
    """The daily dose of each stimulant ingredient per ISO week from ``start`` to ``end``
    (inclusive).

    ``entries``: medication entries as objects or mappings with ``name`` (or
    ``name_entered``), ``dose_text``, ``start_date``, ``stop_date``, ``status`` (active |
    on_hold | stopped | entered_in_error) and optionally ``id`` and ``recorded_on`` (the day
    it was entered: an active entry without a start date is known to be taken from then).
    Entries entered in error and non-stimulants are left out. Raises ``ValueError`` for a
    range that ends before it starts or spans more than ``MAX_RANGE_DAYS``.
    """
    if end < start:
        raise ValueError("end: the range ends before it starts")
    if (end - start).days > MAX_RANGE_DAYS:
        raise ValueError(f"start: the range spans more than {MAX_RANGE_DAYS} days")
    defs = load_outcomes().stimulants
    stimulants = stimulant_ingredients()
    by_ingredient: dict[str, list[tuple[EntryDose, date | None]]] = {}
    unrecognized: list[str] = []
    for raw in entries:
        status = _text(_field(raw, "status")) or "active"
        if status == "entered_in_error":
            continue
        name = _text(_field(raw, "name", "name_entered")).strip()
        if not name:
            continue
        resolution = resolve(name)
        if resolution.status == "unrecognized":
            unrecognized.append(name)
            continue
        found = [i for i in dict.fromkeys(resolution.ingredients) if i in stimulants]
        if not found:
            continue
        dose_text = _field(raw, "dose_text")
        reading = parse_dose(dose_text, strength=strength_from_name(name))
        if len(found) > 1:
            # One entry, two stimulants: the dose text cannot be split between them.
            reading = _unknown(
                dose_text, "One entry holds two stimulants: the dose cannot be split."
            )
        entry_id = _field(raw, "id")
        recorded_on = _field(raw, "recorded_on")
        for ingredient in found:
            dose = EntryDose(
                entry_id=entry_id if isinstance(entry_id, int) else None,
                name=name,
                ingredient=ingredient,
                dose_text=dose_text,
                reading=reading,
                start_date=_field(raw, "start_date"),
                stop_date=_field(raw, "stop_date"),
                status=status,
            )
            by_ingredient.setdefault(ingredient, []).append((dose, recorded_on))

    weeks_of_range = _weeks(start, end)
    out = []
    for ingredient in sorted(by_ingredient):
        items = by_ingredient[ingredient]
        weeks = tuple(_week(items, week_start, start, end) for week_start in weeks_of_range)
        out.append(IngredientWeeks(ingredient, tuple(e for e, _ in items), weeks))
    return StimulantDoses(
        start=start,
        end=end,
        ingredients=tuple(out),
        unrecognized=tuple(dict.fromkeys(unrecognized)),
        text=" ".join(defs.text.split()),
        evidence=defs.evidence,
        sources=defs.sources,
        classes=defs.classes,
        knowledge_version=knowledge_version(),
    )


def _weeks(start: date, end: date) -> list[date]:
    first = start - timedelta(days=start.isoweekday() - 1)
    out = []
    while first <= end:
        out.append(first)
        first += timedelta(days=7)
    return out


def _week(
    items: list[tuple[EntryDose, date | None]], week_start: date, start: date, end: date
) -> WeekDose:
    year, week, _ = week_start.isocalendar()
    daily: list[Fraction] = []
    reason: str | None = None
    for offset in range(7):
        day = week_start + timedelta(days=offset)
        if not start <= day <= end:
            continue
        total = Fraction(0)
        for entry, recorded_on in items:
            state, why = _day_state(entry, recorded_on, day)
            if state == "not_taking":
                continue
            if state == "unknown":
                reason = reason or why
                continue
            if entry.reading.mg_per_day is None:
                reason = reason or f"{entry.name}: {entry.reading.reason}"
                continue
            total += Fraction(str(entry.reading.mg_per_day))
        daily.append(total)
    if reason is not None:
        return WeekDose(year, week, week_start, "unknown", None, None, 0, reason)
    highest, lowest = max(daily), min(daily)
    taken = sum(1 for d in daily if d > 0)
    if highest == 0:
        return WeekDose(year, week, week_start, "not_taken", 0.0, 0.0, 0)
    return WeekDose(
        year, week, week_start, "dose", round(float(highest), 3), round(float(lowest), 3), taken
    )
