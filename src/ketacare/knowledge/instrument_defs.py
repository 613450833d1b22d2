"""Rating-scale definitions (``instruments/*.yaml``), validated when they are loaded.

A definition error (an item missing, answer values with a gap, severity bands that overlap or
leave a total without a band, a flag on an item that does not exist, a source id that is not in
``references.yaml``) stops the load: a scale that scores wrongly must never reach a clinician.
"""

from __future__ import annotations

from functools import cache
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketacare.knowledge import KNOWLEDGE_DIR, load_yaml

INSTRUMENTS_DIR = KNOWLEDGE_DIR / "instruments"

Severity = Literal["info", "caution", "urgent"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerOption(_Model):
    value: int = Field(ge=0)
    label: str = Field(min_length=1)
    loinc_answer: str | None = None


class Item(_Model):
    number: int = Field(ge=1)
    short_label: str = Field(min_length=1)
    text: str | None = None
    part: str | None = None
    loinc: str | None = None


class UnscoredItem(_Model):
    """A question printed on the form that does not count towards the total."""

    key: str
    text: str
    options: list[AnswerOption]
    note: str | None = None


class Scoring(_Model):
    # sum: total = sum of answers, band from total ranges.
    # triage: total = sum of answers (count of "yes"), band from the first triage level matched.
    method: Literal["sum", "triage"]
    max: int = Field(ge=1)
    total_label: str
    note: str | None = None
    default_band: str | None = None


class Band(_Model):
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    label: str = Field(min_length=1)


class TriageLevel(_Model):
    label: str
    items: list[int] = Field(min_length=1)
    at_least: int = 1
    sources: list[str] = Field(min_length=1)


class FlagRule(_Model):
    """Raise ``code`` when an answer to one of ``items`` (or the total) is within the bounds."""

    code: str = Field(pattern=r"^[a-z0-9_]+$")
    severity: Severity
    applies_to: Literal["items", "total"]
    items: list[int] = Field(default_factory=list)
    at_least: int | None = None
    at_most: int | None = None
    text: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1)

    def matches(self, value: int) -> bool:
        if self.at_least is not None and value < self.at_least:
            return False
        return not (self.at_most is not None and value > self.at_most)


class Subscale(_Model):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    method: Literal["sum", "count_at_threshold"]
    items: list[int] = Field(min_length=1)
    # count_at_threshold: item number -> lowest answer that counts.
    thresholds: dict[int, int] | None = None
    sources: list[str] = Field(min_length=1)
    note: str | None = None


class Screen(_Model):
    """A screening rule: count items answered at or above their threshold."""

    id: str
    label: str
    thresholds: dict[int, int] = Field(min_length=1)
    positive_at: int = Field(ge=1)
    text_positive: str
    text_negative: str
    sources: list[str] = Field(min_length=1)


class Loinc(_Model):
    status: Literal["coded", "partial", "none_found"]
    panel: str | None = None
    total: str | None = None
    note: str
    sources: list[str] = Field(default_factory=list)


class Note(_Model):
    topic: str
    text: str
    sources: list[str] = Field(min_length=1)


class InstrumentDef(_Model):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    short_name: str
    version: str
    measures: str
    administration: Literal["self_report", "clinician", "observer"]
    instructions: str | None = None
    recall_period: str
    copyright: str
    item_count: int = Field(ge=1)
    options: list[AnswerOption] = Field(min_length=2)
    items: list[Item]
    unscored_items: list[UnscoredItem] = Field(default_factory=list)
    scoring: Scoring
    bands: list[Band] = Field(default_factory=list)
    bands_sources: list[str] = Field(default_factory=list)
    triage_levels: list[TriageLevel] = Field(default_factory=list)
    screen: Screen | None = None
    subscales: list[Subscale] = Field(default_factory=list)
    flags: list[FlagRule] = Field(default_factory=list)
    loinc: Loinc
    sources: list[str] = Field(min_length=1)
    notes: list[Note] = Field(default_factory=list)

    @property
    def min_value(self) -> int:
        return self.options[0].value

    @property
    def max_value(self) -> int:
        return self.options[-1].value

    @property
    def option_values(self) -> tuple[int, ...]:
        return tuple(o.value for o in self.options)

    def all_source_ids(self) -> set[str]:
        ids = set(self.sources) | set(self.bands_sources) | set(self.loinc.sources)
        for group in (self.flags, self.subscales, self.notes, self.triage_levels):
            for entry in group:
                ids |= set(entry.sources)
        if self.screen is not None:
            ids |= set(self.screen.sources)
        return ids

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        n = self.item_count
        numbers = [item.number for item in self.items]
        if numbers != list(range(1, n + 1)):
            raise ValueError(f"items must be numbered 1..{n} in order, got {numbers}")
        values = list(self.option_values)
        if values != list(range(values[0], values[0] + len(values))):
            raise ValueError(f"answer values must be consecutive and ascending, got {values}")
        if values[0] != 0:
            raise ValueError("answer values must start at 0")
        if self.scoring.max != n * self.max_value:
            raise ValueError(
                f"scoring.max {self.scoring.max} != {n} items x highest answer {self.max_value}"
            )
        self._check_bands()
        self._check_items_in_range()
        return self

    def _check_bands(self) -> None:
        if self.scoring.method == "sum":
            if self.triage_levels:
                raise ValueError("triage_levels only apply to scoring.method 'triage'")
            if self.bands:
                if not self.bands_sources:
                    raise ValueError("bands need bands_sources")
                expected = 0
                for band in self.bands:
                    if band.min != expected or band.max < band.min:
                        raise ValueError(
                            f"bands must be contiguous from 0: band {band.label!r} "
                            f"starts at {band.min}, expected {expected}"
                        )
                    expected = band.max + 1
                if expected - 1 != self.scoring.max:
                    raise ValueError(
                        f"bands end at {expected - 1}, must end at max {self.scoring.max}"
                    )
        else:
            if self.bands:
                raise ValueError("triage instruments take triage_levels, not bands")
            if not self.triage_levels or not self.scoring.default_band:
                raise ValueError("triage scoring needs triage_levels and scoring.default_band")
        labels = [b.label for b in self.bands] + [t.label for t in self.triage_levels]
        if len(set(labels)) != len(labels):
            raise ValueError("band labels must be unique")

    def _check_items_in_range(self) -> None:
        n = self.item_count

        def check(where: str, items: list[int] | set[int]) -> None:
            bad = sorted(i for i in items if not 1 <= i <= n)
            if bad:
                raise ValueError(f"{where}: items {bad} outside 1..{n}")
            if isinstance(items, list) and len(set(items)) != len(items):
                raise ValueError(f"{where}: items repeated")

        def check_value(where: str, value: int | None, upper: int) -> None:
            if value is not None and not 0 <= value <= upper:
                raise ValueError(f"{where}: threshold {value} outside 0..{upper}")

        for sub in self.subscales:
            check(f"subscale {sub.id}", sub.items)
            if sub.method == "count_at_threshold":
                if sub.thresholds is None or set(sub.thresholds) != set(sub.items):
                    raise ValueError(f"subscale {sub.id}: thresholds must cover exactly its items")
                for item, threshold in sub.thresholds.items():
                    check_value(f"subscale {sub.id} item {item}", threshold, self.max_value)
            elif sub.thresholds is not None:
                raise ValueError(f"subscale {sub.id}: thresholds only apply to count_at_threshold")
        if len({s.id for s in self.subscales}) != len(self.subscales):
            raise ValueError("subscale ids must be unique")
        if self.screen is not None:
            check(f"screen {self.screen.id}", set(self.screen.thresholds))
            for item, threshold in self.screen.thresholds.items():
                check_value(f"screen item {item}", threshold, self.max_value)
            if self.screen.positive_at > len(self.screen.thresholds):
                raise ValueError("screen.positive_at exceeds the number of screened items")
        for flag in self.flags:
            if flag.at_least is None and flag.at_most is None:
                raise ValueError(f"flag {flag.code}: needs at_least or at_most")
            if flag.applies_to == "items":
                if not flag.items:
                    raise ValueError(f"flag {flag.code}: on items needs items")
                check(f"flag {flag.code}", flag.items)
                upper = self.max_value
            else:
                if flag.items:
                    raise ValueError(f"flag {flag.code}: a total flag takes no items")
                upper = self.scoring.max
            check_value(f"flag {flag.code}", flag.at_least, upper)
            check_value(f"flag {flag.code}", flag.at_most, upper)
        if len({f.code for f in self.flags}) != len(self.flags):
            raise ValueError("flag codes must be unique")
        for level in self.triage_levels:
            check(f"triage level {level.label}", level.items)
            check_value(f"triage level {level.label}", level.at_least, self.max_value)
        for item in self.items:
            if item.loinc is not None and self.loinc.status == "none_found":
                raise ValueError(f"item {item.number} has a LOINC code but loinc.status is none")


INSTRUMENT_IDS: tuple[str, ...] = ("asrs", "phq9", "gad7", "cadss", "moaas", "cssrs")


def reference_ids() -> set[str]:
    """Ids of every entry in references.yaml."""
    data = load_yaml("references.yaml") or {}
    return {entry["id"] for entry in data.get("references") or []}


def _load(instrument_id: str, known_refs: set[str]) -> InstrumentDef:
    raw = load_yaml(f"instruments/{instrument_id}.yaml")
    definition = InstrumentDef.model_validate(raw)
    if definition.id != instrument_id:
        raise ValueError(f"instruments/{instrument_id}.yaml declares id {definition.id!r}")
    missing = sorted(definition.all_source_ids() - known_refs)
    if missing:
        raise ValueError(f"instrument {instrument_id}: sources not in references.yaml: {missing}")
    return definition


@cache
def load_instruments() -> dict[str, InstrumentDef]:
    """Every instrument definition, validated, by id (cached for the process)."""
    known_refs = reference_ids()
    return {instrument_id: _load(instrument_id, known_refs) for instrument_id in INSTRUMENT_IDS}


def get_instrument(instrument_id: str) -> InstrumentDef:
    """One definition; ``KeyError`` for an unknown id."""
    return load_instruments()[instrument_id]
