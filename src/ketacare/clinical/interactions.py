"""Screen a medication list against ketamine or esketamine.

``screen(medications, agent, route)`` resolves every entry (see ``clinical.drugs``), applies the
rules of ``knowledge/interactions.yaml`` and returns findings sorted by severity, plus the entries
with no known interaction, those recognised but never reviewed, and those not recognised at all.
Only a curated, reviewed ingredient can land in ``no_known_interaction``: an unrecognised or
unreviewed name is never reported as safe.

This is not a general drug-drug interaction checker: apart from the ADHD co-medication
contraindications it checks interactions with ketamine/esketamine only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, NamedTuple

from ketacare.clinical.drugs import DrugResolver, Resolution, resolve
from ketacare.knowledge.catalog import (
    AGENTS,
    DEFAULT_ROUTE,
    ROUTES,
    SEVERITY_RANK,
    Agent,
    Catalog,
    Route,
    Rule,
    Severity,
    load_catalog,
)

INPUT_SEPARATOR = "; "


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What a rule says for one agent and route (shared by every finding of that rule)."""

    rule_id: str
    title: str
    kind: str
    severity: Severity
    mechanism: str
    mechanism_type: str
    enzymes: tuple[str, ...]
    effect: str
    management: str
    sources: tuple[str, ...]
    evidence: str
    conflict: str | None
    route_note: str | None  # set when the route changed the severity


class Finding(NamedTuple):
    """One rule firing for one ingredient (all inputs that resolved to it are kept).

    A named tuple rather than a frozen dataclass: a screen builds dozens of these per call and
    tuple construction is several times cheaper.
    """

    inputs: tuple[str, ...]
    ingredient: str
    outcome: RuleOutcome
    reasons: tuple[str, ...]

    @property
    def input(self) -> str:
        return INPUT_SEPARATOR.join(self.inputs)

    @property
    def rule_id(self) -> str:
        return self.outcome.rule_id

    @property
    def title(self) -> str:
        return self.outcome.title

    @property
    def kind(self) -> str:
        return self.outcome.kind

    @property
    def severity(self) -> Severity:
        return self.outcome.severity

    @property
    def mechanism(self) -> str:
        return self.outcome.mechanism

    @property
    def effect(self) -> str:
        return self.outcome.effect

    @property
    def management(self) -> str:
        return self.outcome.management

    @property
    def sources(self) -> tuple[str, ...]:
        return self.outcome.sources

    @property
    def evidence(self) -> str:
        return self.outcome.evidence

    @property
    def conflict(self) -> str | None:
        return self.outcome.conflict

    def to_json_dict(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "input": self.input,
            "ingredient": self.ingredient,
            "rule_id": o.rule_id,
            "severity": o.severity,
            "mechanism": o.mechanism,
            "effect": o.effect,
            "management": o.management,
            "sources": list(o.sources),
            "title": o.title,
            "kind": o.kind,
            "mechanism_type": o.mechanism_type,
            "enzymes": list(o.enzymes),
            "evidence": o.evidence,
            "conflict": o.conflict,
            "inputs": list(self.inputs),
            "reasons": list(self.reasons),
        }


class InputIngredient(NamedTuple):
    inputs: tuple[str, ...]
    ingredient: str

    @property
    def input(self) -> str:
        return INPUT_SEPARATOR.join(self.inputs)

    def to_json_dict(self) -> dict[str, str]:
        return {"input": self.input, "ingredient": self.ingredient}


class Unrecognized(NamedTuple):
    input: str
    suggestions: tuple[str, ...]
    parts: tuple[str, ...] = ()  # the words that matched nothing (the whole entry if none did)

    def to_json_dict(self) -> dict[str, Any]:
        return {"input": self.input, "suggestions": list(self.suggestions)}


class ScreenResult(NamedTuple):
    agent: Agent
    route: Route
    knowledge_version: str
    findings: tuple[Finding, ...]
    no_known_interaction: tuple[InputIngredient, ...]
    not_reviewed: tuple[InputIngredient, ...]
    unrecognized: tuple[Unrecognized, ...]
    resolutions: tuple[Resolution, ...]

    @property
    def highest_severity(self) -> Severity | None:
        return self.findings[0].severity if self.findings else None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "route": self.route,
            "knowledge_version": self.knowledge_version,
            "findings": [f.to_json_dict() for f in self.findings],
            "no_known_interaction": [e.to_json_dict() for e in self.no_known_interaction],
            "not_reviewed": [e.to_json_dict() for e in self.not_reviewed],
            "unrecognized": [u.to_json_dict() for u in self.unrecognized],
        }


# --- Rule index (built once per catalog, then per agent and route) -------------------------------


@dataclass(frozen=True, slots=True)
class _Hit:
    outcome: RuleOutcome
    reasons: tuple[str, ...]
    rank: int


@dataclass(frozen=True)
class _CoMedication:
    outcome: RuleOutcome
    rank: int
    triggers: Mapping[str, str]  # ingredient -> why it is in applies_to
    partners: Mapping[str, str]  # ingredient -> why it is in requires_also
    partner_set: frozenset[str]


@dataclass(frozen=True)
class _RouteIndex:
    hits: Mapping[str, tuple[_Hit, ...]]  # ingredient -> agent rules that fire
    co_by_trigger: Mapping[str, tuple[_CoMedication, ...]]  # ingredient -> co-medication rules


def _membership_reason(
    catalog: Catalog,
    ingredient: str,
    rule: Rule,
    target_classes: Sequence[str],
    target_ingredients: Sequence[str],
) -> str | None:
    if ingredient in target_ingredients:
        return f"{rule.id} names {ingredient} directly"
    own = catalog.ingredients[ingredient].classes
    for class_id in target_classes:
        if ingredient not in catalog.class_members.get(class_id, ()):
            continue
        name = catalog.classes[class_id].name
        if class_id in own:
            return f"{ingredient} is in class {class_id} ({name})"
        via = next(c for c in own if class_id in catalog.class_ancestors[c])
        return f"{ingredient} is in class {via}, part of {class_id} ({name})"
    return None


def _reasons(catalog: Catalog, rule: Rule, target: Any) -> dict[str, str]:
    out = {}
    for ingredient in sorted(catalog.target_members(target)):
        reason = _membership_reason(catalog, ingredient, rule, target.classes, target.ingredients)
        if reason is not None:
            out[ingredient] = reason
    return out


def _outcome(rule: Rule, route: str) -> RuleOutcome:
    severity = rule.severity_for(route)
    note = (
        f"route {route}: severity {severity} (route-dependent)"
        if severity != rule.severity
        else None
    )
    return RuleOutcome(
        rule_id=rule.id,
        title=rule.title,
        kind=rule.kind,
        severity=severity,
        mechanism=rule.mechanism.describe(),
        mechanism_type=rule.mechanism.type,
        enzymes=rule.mechanism.enzymes,
        effect=rule.effect,
        management=rule.management,
        sources=rule.sources,
        evidence=rule.evidence,
        conflict=rule.conflict,
        route_note=note,
    )


@cache
def _route_index(agent: str, route: str) -> _RouteIndex:
    catalog = load_catalog()
    hits: dict[str, list[_Hit]] = {}
    co_by_trigger: dict[str, list[_CoMedication]] = {}
    for rule in catalog.rules:
        if not rule.applies(agent, route):
            continue
        outcome = _outcome(rule, route)
        rank = SEVERITY_RANK[outcome.severity]
        extra = (outcome.route_note,) if outcome.route_note else ()
        triggers = _reasons(catalog, rule, rule.applies_to)
        if rule.kind == "co_medication":
            assert rule.requires_also is not None
            partners = _reasons(catalog, rule, rule.requires_also)
            co = _CoMedication(outcome, rank, triggers, partners, frozenset(partners))
            for ingredient in triggers:
                co_by_trigger.setdefault(ingredient, []).append(co)
            continue
        for ingredient, reason in triggers.items():
            hits.setdefault(ingredient, []).append(_Hit(outcome, (reason, *extra), rank))
    return _RouteIndex(
        hits={i: tuple(h) for i, h in hits.items()},
        co_by_trigger={i: tuple(c) for i, c in co_by_trigger.items()},
    )


# --- Screening -----------------------------------------------------------------------------------


def _check_arguments(agent: str, route: str | None) -> Route:
    if agent not in AGENTS:
        raise ValueError(f"agent must be one of {', '.join(AGENTS)}, not {agent!r}")
    chosen = route if route is not None else DEFAULT_ROUTE[agent]
    if chosen not in ROUTES:
        raise ValueError(f"route must be one of {', '.join(ROUTES)}, not {chosen!r}")
    return chosen  # type: ignore[return-value]


def _ordered(names: set[str]) -> tuple[str, ...]:
    return (next(iter(names)),) if len(names) == 1 else tuple(sorted(names))


class _View(NamedTuple):
    """A resolution reduced to what screening needs."""

    resolution: Resolution
    curated: tuple[str, ...]  # curated ingredients, however they were reached
    reviewed: tuple[str, ...]  # curated ingredients reached through a curated name
    broad_only: tuple[str, ...]  # names known only to the broad vocabulary


def _view(resolution: Resolution) -> _View:
    matches = resolution.matches
    return _View(
        resolution,
        tuple(m.ingredient for m in matches if m.curated),
        tuple(m.ingredient for m in matches if m.curated and m.match_kind != "broad_vocabulary"),
        tuple(m.ingredient for m in matches if not m.curated),
    )


@lru_cache(maxsize=8192)
def _cached_view(text: str, use_broad_vocabulary: bool) -> _View:
    return _view(resolve(text, use_broad_vocabulary))


def screen(
    medications: Sequence[str],
    agent: Agent = "ketamine",
    route: Route | None = None,
    *,
    use_broad_vocabulary: bool = True,
    resolver: DrugResolver | None = None,
) -> ScreenResult:
    """Screen ``medications`` (free text, brands, generics) against ``agent`` given by ``route``.

    Default route: ``iv`` for ketamine, ``intranasal`` for esketamine. Blank entries are ignored.
    ``resolver`` replaces the default (cached) name resolution, e.g. with another vocabulary.
    Raises ValueError for an unknown agent or route.
    """
    chosen_route = _check_arguments(agent, route)
    index = _route_index(agent, chosen_route)

    # ingredient -> inputs naming it; reviewed = reached through a curated name at least once.
    inputs_of: dict[str, set[str]] = {}
    reviewed: set[str] = set()
    broad_only: dict[str, set[str]] = {}
    unrecognized: dict[str, Resolution] = {}
    resolutions: list[Resolution] = []
    for text in medications:
        if not text or text.isspace():
            continue
        view = (
            _view(resolver.resolve(text))
            if resolver is not None
            else _cached_view(text, use_broad_vocabulary)
        )
        resolutions.append(view.resolution)
        for ingredient in view.curated:
            inputs_of.setdefault(ingredient, set()).add(text)
        reviewed.update(view.reviewed)
        for name in view.broad_only:
            broad_only.setdefault(name, set()).add(text)
        if view.resolution.unrecognized:
            unrecognized[text] = view.resolution

    ranked: list[tuple[int, str, str, Finding]] = []
    no_known: list[InputIngredient] = []
    not_reviewed: list[InputIngredient] = []
    hits_of = index.hits
    co_of = index.co_by_trigger
    present = set(inputs_of)
    for ingredient in sorted(inputs_of):
        inputs = _ordered(inputs_of[ingredient])
        fired = False
        for hit in hits_of.get(ingredient, ()):
            finding = Finding(inputs, ingredient, hit.outcome, hit.reasons)
            ranked.append((hit.rank, ingredient, hit.outcome.rule_id, finding))
            fired = True
        for co in co_of.get(ingredient, ()):
            partners = sorted(co.partner_set & present - {ingredient})
            if not partners:
                continue
            reasons = (
                co.triggers[ingredient],
                *(f"also on the list: {co.partners[p]}" for p in partners),
            )
            finding = Finding(inputs, ingredient, co.outcome, reasons)
            ranked.append((co.rank, ingredient, co.outcome.rule_id, finding))
            fired = True
        if not fired:
            entry = InputIngredient(inputs, ingredient)
            (no_known if ingredient in reviewed else not_reviewed).append(entry)
    ranked.sort()  # (rank, ingredient, rule_id) is unique, so findings are never compared
    for name in broad_only:
        not_reviewed.append(InputIngredient(_ordered(broad_only[name]), name))
    not_reviewed.sort(key=lambda e: (e.ingredient, e.inputs))

    return ScreenResult(
        agent=agent,
        route=chosen_route,
        knowledge_version=load_catalog().version,
        findings=tuple(item[3] for item in ranked),
        no_known_interaction=tuple(no_known),
        not_reviewed=tuple(not_reviewed),
        unrecognized=tuple(
            Unrecognized(t, unrecognized[t].suggestions, unrecognized[t].unrecognized)
            for t in sorted(unrecognized)
        ),
        resolutions=tuple(resolutions),
    )
