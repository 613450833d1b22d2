"""Score rating scales exactly as their official instructions do.

Pure: the rules come from ``knowledge/instruments/*.yaml``; nothing here reads a clock, a
database or the network. Every ``Score`` carries the knowledge version it was computed with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ketacare.knowledge import knowledge_version
from ketacare.knowledge.instrument_defs import (
    INSTRUMENT_IDS,
    FlagRule,
    InstrumentDef,
    get_instrument,
    load_instruments,
)

__all__ = [
    "INSTRUMENT_IDS",
    "AnswerError",
    "Flag",
    "Score",
    "cadss_dissociation",
    "instrument",
    "score",
]


class AnswerError(ValueError):
    """Answers that cannot be scored. ``field`` names what is wrong ("answers", "item 9")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Flag:
    """Something a clinician must see, whatever the total."""

    code: str
    severity: str  # info | caution | urgent
    text: str
    item: int | None = None
    sources: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "text": self.text, "item": self.item}


@dataclass(frozen=True)
class Score:
    instrument: str
    answers: tuple[int, ...]
    total: int
    max: int
    band: str | None
    flags: tuple[Flag, ...] = ()
    subscales: dict[str, int] = field(default_factory=dict)
    positive_screen: bool | None = None
    knowledge_version: str = ""

    @property
    def urgent(self) -> bool:
        return any(f.severity == "urgent" for f in self.flags)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "total": self.total,
            "max": self.max,
            "band": self.band,
            "flags": [f.to_json_dict() for f in self.flags],
            "subscales": dict(self.subscales),
            "positive_screen": self.positive_screen,
        }


def instrument(instrument_id: str) -> InstrumentDef:
    """The definition of one instrument; ``AnswerError`` (field "instrument") if unknown."""
    try:
        return get_instrument(instrument_id)
    except (KeyError, TypeError):  # TypeError: not a name at all (a list, a dict)
        known = ", ".join(load_instruments())
        raise AnswerError(
            "instrument", f"unknown instrument {instrument_id!r}; known: {known}"
        ) from None


def _validated(definition: InstrumentDef, answers: Sequence[object]) -> tuple[int, ...]:
    if isinstance(answers, str | bytes) or not isinstance(answers, Sequence):
        raise AnswerError("answers", "expected a list of answers, one per item")
    n = definition.item_count
    if len(answers) != n:
        raise AnswerError(
            "answers",
            f"{definition.short_name} has {n} scored item{'s' if n > 1 else ''}; "
            f"got {len(answers)} answer{'s' if len(answers) != 1 else ''}",
        )
    allowed = definition.option_values
    low, high = allowed[0], allowed[-1]
    clean: list[int] = []
    for number, value in enumerate(answers, start=1):
        # bool is an int subclass: a JSON true must not pass as 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnswerError(f"item {number}", f"{value!r} is not a whole number {low}-{high}")
        if value not in allowed:
            raise AnswerError(f"item {number}", f"{value} is outside {low}-{high}")
        clean.append(value)
    return tuple(clean)


def _flag(rule: FlagRule, item: int | None) -> Flag:
    return Flag(rule.code, rule.severity, rule.text.strip(), item, tuple(rule.sources))


def _flags(definition: InstrumentDef, answers: tuple[int, ...], total: int) -> tuple[Flag, ...]:
    raised: list[Flag] = []
    for rule in definition.flags:
        if rule.applies_to == "total":
            if rule.matches(total):
                raised.append(_flag(rule, None))
            continue
        for number in rule.items:
            if rule.matches(answers[number - 1]):
                raised.append(_flag(rule, number))
                break
    order = {"urgent": 0, "caution": 1, "info": 2}
    return tuple(sorted(raised, key=lambda f: order[f.severity]))


def _band(definition: InstrumentDef, answers: tuple[int, ...], total: int) -> str | None:
    if definition.scoring.method == "triage":
        for level in definition.triage_levels:
            if any(answers[i - 1] >= level.at_least for i in level.items):
                return level.label
        return definition.scoring.default_band
    for band in definition.bands:
        if band.min <= total <= band.max:
            return band.label
    return None  # the instrument has no official bands


def _subscales(definition: InstrumentDef, answers: tuple[int, ...]) -> dict[str, int]:
    values: dict[str, int] = {}
    for sub in definition.subscales:
        if sub.method == "sum":
            values[sub.id] = sum(answers[i - 1] for i in sub.items)
        else:
            thresholds = sub.thresholds or {}
            values[sub.id] = sum(1 for i in sub.items if answers[i - 1] >= thresholds[i])
    return values


def _positive_screen(definition: InstrumentDef, answers: tuple[int, ...]) -> bool | None:
    screen = definition.screen
    if screen is None:
        return None
    counted = sum(1 for item, low in screen.thresholds.items() if answers[item - 1] >= low)
    return counted >= screen.positive_at


def score(instrument_id: str, answers: Sequence[int]) -> Score:
    """Score one administration. Raises ``AnswerError`` naming the item for a bad answer."""
    definition = instrument(instrument_id)
    clean = _validated(definition, answers)
    total = sum(clean)
    return Score(
        instrument=definition.id,
        answers=clean,
        total=total,
        max=definition.scoring.max,
        band=_band(definition, clean, total),
        flags=_flags(definition, clean, total),
        subscales=_subscales(definition, clean),
        positive_screen=_positive_screen(definition, clean),
        knowledge_version=knowledge_version(),
    )


def cadss_dissociation(total: int, baseline_total: int) -> bool:
    """Dissociation by the Spravato definition: CADSS total above 4 AND above the baseline.

    The threshold is the one in the CADSS ``cadss_dissociation`` flag rule of ``cadss.yaml``.
    """
    definition = instrument("cadss")
    for value, name in ((total, "total"), (baseline_total, "baseline_total")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnswerError(name, f"{value!r} is not a whole number")
        if not 0 <= value <= definition.scoring.max:
            raise AnswerError(name, f"{value} is outside 0-{definition.scoring.max}")
    rule = next(f for f in definition.flags if f.code == "cadss_dissociation")
    return rule.matches(total) and total > baseline_total
