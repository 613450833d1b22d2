"""Typed loader of ``outcomes.yaml``: baseline, change, response, remission, non-response,
worsening and new PHQ-9 item 9 definitions per outcome scale, with their thresholds.

Validated at load: every threshold is within its scale, every text placeholder names a known
value, every instrument exists and is not one of the excluded (in-session) scales, every drug
class of the stimulant chart exists, and every source id is in ``references.yaml``. A
definition that would flag wrongly must never reach a clinician, so any inconsistency stops
the load.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import get_instrument, load_instruments, reference_ids

__all__ = [
    "DEFINITION_IDS",
    "DefinitionDef",
    "Evidence",
    "NoRemissionDef",
    "OutcomeInstrumentDef",
    "OutcomeSettings",
    "OutcomesDef",
    "SettingDef",
    "StimulantsDef",
    "load_outcomes",
    "parse_outcomes",
    "weakest",
]

Evidence = Literal["V", "S", "M"]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
DefinitionId = Literal[
    "baseline", "percent_change", "response", "remission", "non_response", "worsening", "item9_new"
]
DEFINITION_IDS: tuple[str, ...] = (
    "baseline",
    "percent_change",
    "response",
    "remission",
    "non_response",
    "worsening",
    "item9_new",
)
# What a definition text may refer to: the thresholds of the scale, and its short name.
PLACEHOLDERS = frozenset(
    {
        "instrument",
        "response_fall_percent",
        "remission_below",
        "min_baseline",
        "non_response_after_sessions",
        "worsening_rise_percent",
        "worsening_consecutive_measurements",
    }
)
_EVIDENCE_RANK = {"V": 0, "S": 1, "M": 2}
# An overridden value is the clinic's own choice, whatever the default's evidence was.
OVERRIDE_SOURCES = ("ketacare-clinic-convention",)


def weakest(*levels: str) -> Evidence:
    """The weakest of several evidence levels (M < S < V): a claim is as strong as its
    weakest part."""
    return max(levels, key=lambda e: _EVIDENCE_RANK[e])  # type: ignore[return-value]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SettingDef(_Model):
    value: int | float
    evidence: Evidence
    sources: tuple[Slug, ...] = Field(min_length=1)
    note: str | None = None
    overridden: bool = False
    # Where the value comes from when it is not this file's (e.g. the protocol dosed).
    origin: str | None = None


class OutcomeSettings(_Model):
    """The thresholds in force, typed and bounded. Defaults are the cited values of
    ``outcomes.yaml``; a clinic's overrides are checked against the same bounds."""

    phq9_response_fall_percent: float = Field(gt=0, le=100)
    phq9_remission_below: int = Field(ge=1, le=27)
    phq9_min_baseline: int = Field(ge=1, le=27)
    gad7_response_fall_percent: float = Field(gt=0, le=100)
    gad7_remission_below: int = Field(ge=1, le=21)
    gad7_min_baseline: int = Field(ge=1, le=21)
    asrs_response_fall_percent: float = Field(gt=0, le=100)
    asrs_min_baseline: int = Field(ge=1, le=72)
    non_response_after_sessions: int = Field(ge=1, le=30)
    worsening_rise_percent: float = Field(gt=0, le=200)
    worsening_consecutive_measurements: int = Field(ge=1, le=10)

    @model_validator(mode="after")
    def _remission_within_baseline(self) -> Self:
        # A baseline below the remission cut-off would "remit" without changing.
        for scale in ("phq9", "gad7"):
            if getattr(self, f"{scale}_remission_below") > getattr(self, f"{scale}_min_baseline"):
                raise ValueError(f"{scale}_remission_below must not exceed {scale}_min_baseline")
        return self


SETTING_NAMES: tuple[str, ...] = tuple(OutcomeSettings.model_fields)


class NoRemissionDef(_Model):
    text: str = Field(min_length=1)
    evidence: Evidence
    sources: tuple[Slug, ...] = Field(min_length=1)


class OutcomeInstrumentDef(_Model):
    id: Slug
    label: str = Field(min_length=1)
    exploratory: bool
    exploratory_text: str | None = None
    exploratory_sources: tuple[Slug, ...] = ()
    response_setting: str
    remission_setting: str | None
    # Why a scale has no remission cut-off, when it has none.
    no_remission: NoRemissionDef | None = None
    min_baseline_setting: str
    # The item whose new non-zero answer is flagged (PHQ-9 item 9); None elsewhere.
    item9_item: int | None = Field(None, ge=1)
    sources: tuple[Slug, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.exploratory != (self.exploratory_text is not None):
            raise ValueError(f"{self.id}: exploratory_text goes with exploratory: true")
        if self.exploratory and not self.exploratory_sources:
            raise ValueError(f"{self.id}: an exploratory scale cites why (exploratory_sources)")
        if (self.remission_setting is None) != (self.no_remission is not None):
            raise ValueError(f"{self.id}: without a remission cut-off, say why (no_remission)")
        for name, suffix in (
            (self.response_setting, "_response_fall_percent"),
            (self.remission_setting, "_remission_below"),
            (self.min_baseline_setting, "_min_baseline"),
        ):
            if name is not None and name != f"{self.id}{suffix}":
                raise ValueError(f"{self.id}: setting {name!r} should be {self.id}{suffix}")
        return self


class ExcludedInstrumentDef(_Model):
    id: Slug
    reason: str = Field(min_length=1)


class DefinitionDef(_Model):
    id: DefinitionId
    label: str = Field(min_length=1)
    text: str = Field(min_length=1)
    evidence: Evidence
    sources: tuple[Slug, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _placeholders(self) -> Self:
        names = {name for _, name, _, _ in string.Formatter().parse(self.text) if name}
        unknown = sorted(names - PLACEHOLDERS)
        if unknown:
            raise ValueError(f"definition {self.id}: unknown placeholders {unknown}")
        return self


class NoticeDef(_Model):
    text: str = Field(min_length=1)
    sources: tuple[Slug, ...] = Field(min_length=1)


class StimulantsDef(_Model):
    classes: tuple[Slug, ...] = Field(min_length=1)
    text: str = Field(min_length=1)
    evidence: Evidence
    sources: tuple[Slug, ...] = Field(min_length=1)


class OutcomesDef(_Model):
    note: str = Field(min_length=1)
    settings: dict[str, SettingDef]
    instruments: tuple[OutcomeInstrumentDef, ...] = Field(min_length=1)
    excluded_instruments: tuple[ExcludedInstrumentDef, ...] = ()
    definitions: tuple[DefinitionDef, ...]
    notice: NoticeDef
    stimulants: StimulantsDef

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = set(self.settings)
        if names != set(SETTING_NAMES):
            missing, extra = sorted(set(SETTING_NAMES) - names), sorted(names - set(SETTING_NAMES))
            raise ValueError(f"settings: missing {missing}, unknown {extra}")
        OutcomeSettings.model_validate(self.values())
        ids = [d.id for d in self.definitions]
        if sorted(ids) != sorted(DEFINITION_IDS) or len(ids) != len(set(ids)):
            raise ValueError(f"definitions must be exactly {list(DEFINITION_IDS)}, got {ids}")
        scales = [i.id for i in self.instruments]
        excluded = [e.id for e in self.excluded_instruments]
        if len(set(scales)) != len(scales) or len(set(excluded)) != len(excluded):
            raise ValueError("instrument ids repeated")
        if set(scales) & set(excluded):
            raise ValueError(
                f"instruments both followed and excluded: {set(scales) & set(excluded)}"
            )
        for scale in self.instruments:
            for name in (
                scale.response_setting,
                scale.remission_setting,
                scale.min_baseline_setting,
            ):
                if name is not None and name not in names:
                    raise ValueError(f"{scale.id}: unknown setting {name}")
        return self

    # -- lookups ----------------------------------------------------------------------------

    def values(self) -> dict[str, int | float]:
        """Every threshold in force, by name: what each result stores."""
        return {name: setting.value for name, setting in self.settings.items()}

    def typed_settings(self) -> OutcomeSettings:
        return OutcomeSettings.model_validate(self.values())

    def instrument(self, instrument_id: str) -> OutcomeInstrumentDef:
        """One followed scale; ``KeyError`` for a scale that is not an outcome."""
        for scale in self.instruments:
            if scale.id == instrument_id:
                return scale
        raise KeyError(instrument_id)

    @property
    def instrument_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.instruments)

    @property
    def excluded_ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.excluded_instruments)

    def definition(self, definition_id: str) -> DefinitionDef:
        return next(d for d in self.definitions if d.id == definition_id)

    def setting(self, name: str) -> SettingDef:
        return self.settings[name]

    def with_settings(self, overrides: Mapping[str, Any]) -> OutcomesDef:
        """A copy with some thresholds replaced (a clinic's overrides). Raises ``ValueError``
        naming the setting for an unknown name or a value out of bounds; an overridden value
        is marked as the clinic's own (evidence M), whatever the default cited."""
        unknown = sorted(set(overrides) - set(self.settings))
        if unknown:
            raise ValueError(f"unknown outcome settings: {unknown}")
        merged = {**self.values(), **overrides}
        typed = OutcomeSettings.model_validate(merged)
        settings = dict(self.settings)
        for name in overrides:
            value = getattr(typed, name)
            if value == self.settings[name].value:
                continue
            settings[name] = SettingDef(
                value=value,
                evidence="M",
                sources=OVERRIDE_SOURCES,
                note=f"Clinic override of the default {self.settings[name].value:g}.",
                overridden=True,
            )
        return self.model_copy(update={"settings": settings})

    def all_source_ids(self) -> set[str]:
        ids = set(self.notice.sources) | set(self.stimulants.sources)
        for group in (self.settings.values(), self.definitions, self.instruments):
            for entry in group:
                ids |= set(entry.sources)
        for scale in self.instruments:
            ids |= set(scale.exploratory_sources)
            if scale.no_remission is not None:
                ids |= set(scale.no_remission.sources)
        return ids


def _check_scales(data: OutcomesDef) -> None:
    known = load_instruments()
    for scale_id in (*data.instrument_ids, *data.excluded_ids):
        if scale_id not in known:
            raise ValueError(f"outcomes.yaml: unknown instrument {scale_id!r}")
    for scale in data.instruments:
        definition = get_instrument(scale.id)
        if definition.scoring.method != "sum":
            raise ValueError(f"outcomes.yaml: {scale.id} is not a summed scale")
        for name in (scale.remission_setting, scale.min_baseline_setting):
            if name is not None and not 1 <= data.settings[name].value <= definition.scoring.max:
                raise ValueError(f"outcomes.yaml: {name} outside 1..{definition.scoring.max}")
        if scale.item9_item is not None and scale.item9_item > definition.item_count:
            raise ValueError(f"outcomes.yaml: {scale.id} has no item {scale.item9_item}")


def _check_classes(data: OutcomesDef) -> None:
    # Imported here: the drug catalogue is larger and only this check needs it.
    from ketacare.knowledge.catalog import load_catalog

    catalog = load_catalog()
    for class_id in data.stimulants.classes:
        if class_id not in catalog.classes:
            raise ValueError(f"outcomes.yaml stimulants: unknown drug class {class_id!r}")
        if not catalog.class_members.get(class_id):
            raise ValueError(f"outcomes.yaml stimulants: class {class_id!r} has no ingredients")


def parse_outcomes(raw: Any) -> OutcomesDef:
    """Validate the content of an outcomes file: its shape, then its references to the
    other knowledge files (sources, scales, drug classes). Raises ``ValueError``."""
    data = OutcomesDef.model_validate(raw)
    missing = sorted(data.all_source_ids() - reference_ids())
    if missing:
        raise ValueError(f"outcomes.yaml: sources not in references.yaml: {missing}")
    _check_scales(data)
    _check_classes(data)
    return data


@cache
def load_outcomes() -> OutcomesDef:
    """outcomes.yaml, validated (cached for the process)."""
    return parse_outcomes(load_yaml("outcomes.yaml"))
