"""Screen a medication list against ketamine or esketamine.

``screen(medications, agent, route)`` resolves every entry (see ``clinical.drugs``), applies the
rules of ``knowledge/interactions.yaml`` and returns findings sorted by severity, plus the entries
with no known interaction, those recognised but never reviewed, and those not recognised at all.
Only a curated, reviewed ingredient can land in ``no_known_interaction``: an unrecognised or
unreviewed name is never reported as safe.

Recently stopped medicines (``stopped``, with the date ``as_of``) are screened while the washout
of their class lasts (MAO inhibitors: 14 days): each of their findings says when the medicine was
stopped and when the washout ends. A co-medication rule can supersede another rule's finding for
the same ingredient (an SSRI's "continue" advice is never shown beside an MAO inhibitor).

This is not a general drug-drug interaction checker: apart from the co-medication
contraindications of the knowledge base (ADHD medicines and antidepressants with MAO inhibitors,
several sedatives together) it checks interactions with ketamine/esketamine only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
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
# The protocol screened against when nothing else is planned: the clinic's IV ketamine protocol.
DEFAULT_PROTOCOL = "iv-ketamine"


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
    tuple construction is several times cheaper. ``washout``: one text per stopped medicine the
    finding rests on (stopped on, washout until).
    """

    inputs: tuple[str, ...]
    ingredient: str
    outcome: RuleOutcome
    reasons: tuple[str, ...]
    washout: tuple[str, ...] = ()

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
            "washout": list(self.washout),
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


@dataclass(frozen=True, slots=True)
class StoppedMedication:
    """A medicine recorded as stopped; ``stop_date`` None means the date is not known."""

    name: str
    stop_date: date | None


@dataclass(frozen=True, slots=True)
class Washout:
    """A stopped medicine still screened because its class's washout has not ended."""

    input: str
    ingredient: str
    stop_date: date | None
    days: int
    until: date | None  # the last day of the washout (None: stop date unknown)
    class_id: str
    sources: tuple[str, ...]
    text: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "ingredient": self.ingredient,
            "stop_date": self.stop_date.isoformat() if self.stop_date else None,
            "washout_days": self.days,
            "washout_until": self.until.isoformat() if self.until else None,
            "class": self.class_id,
            "sources": list(self.sources),
            "text": self.text,
        }


class ScreenResult(NamedTuple):
    agent: Agent
    route: Route
    knowledge_version: str
    findings: tuple[Finding, ...]
    no_known_interaction: tuple[InputIngredient, ...]
    not_reviewed: tuple[InputIngredient, ...]
    unrecognized: tuple[Unrecognized, ...]
    resolutions: tuple[Resolution, ...]
    stopped_screened: tuple[Washout, ...] = ()

    @property
    def highest_severity(self) -> Severity | None:
        return self.findings[0].severity if self.findings else None

    def unscreened(self) -> tuple[str, ...]:
        """Entries whose interactions are unknown: not recognised, or never reviewed."""
        return unscreened_inputs(self.to_json_dict())

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "route": self.route,
            "knowledge_version": self.knowledge_version,
            "findings": [f.to_json_dict() for f in self.findings],
            "no_known_interaction": [e.to_json_dict() for e in self.no_known_interaction],
            "not_reviewed": [e.to_json_dict() for e in self.not_reviewed],
            "unrecognized": [u.to_json_dict() for u in self.unrecognized],
            "stopped_screened": [w.to_json_dict() for w in self.stopped_screened],
        }


def unscreened_inputs(result: Mapping[str, Any]) -> tuple[str, ...]:
    """The entries of a screen (its JSON form) whose interactions are unknown."""
    names = [f"{u['input']} (not recognised)" for u in result.get("unrecognized", ())]
    names += [f"{n['input']} (not reviewed)" for n in result.get("not_reviewed", ())]
    return tuple(names)


# --- Rule index (built once per catalog, then per agent and route) -------------------------------


@dataclass(frozen=True, slots=True)
class _Hit:
    outcome: RuleOutcome
    reasons: tuple[str, ...]
    rank: int
    superseded_by: frozenset[str]


@dataclass(frozen=True)
class _CoMedication:
    outcome: RuleOutcome
    rank: int
    triggers: Mapping[str, str]  # ingredient -> why it is in applies_to
    partners: Mapping[str, str]  # ingredient -> why it is in requires_also
    partner_set: frozenset[str]
    superseded_by: frozenset[str]


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
        superseded_by = frozenset(rule.superseded_by)
        if rule.kind == "co_medication":
            assert rule.requires_also is not None
            partners = _reasons(catalog, rule, rule.requires_also)
            co = _CoMedication(
                outcome, rank, triggers, partners, frozenset(partners), superseded_by
            )
            for ingredient in triggers:
                co_by_trigger.setdefault(ingredient, []).append(co)
            continue
        for ingredient, reason in triggers.items():
            hit = _Hit(outcome, (reason, *extra), rank, superseded_by)
            hits.setdefault(ingredient, []).append(hit)
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


def max_washout_days() -> int:
    """The longest washout of any class: stopped medicines older than this never matter."""
    return max((days for days, _ in load_catalog().ingredient_washout.values()), default=0)


def _washout_of(
    catalog: Catalog, entry: StoppedMedication, ingredient: str, as_of: date
) -> Washout | None:
    """The washout still running for ``ingredient`` of a stopped entry on ``as_of``, or None."""
    timed = catalog.ingredient_washout.get(ingredient)
    if timed is None:
        return None
    days, class_id = timed
    texts = catalog.screen_texts
    drug_class = catalog.classes[class_id]
    fields = {
        "input": entry.name,
        "ingredient": ingredient,
        "days": days,
        "class_name": drug_class.name,
    }
    if entry.stop_date is None:
        text = texts.washout_unknown_stop.format(**fields)
        return Washout(
            entry.name,
            ingredient,
            None,
            days,
            None,
            class_id,
            drug_class.washout_sources,
            " ".join(text.split()),
        )
    until = entry.stop_date + timedelta(days=days)
    # A dose taken late on the stop date is not fully washed out until the end of ``until``.
    if as_of > until:
        return None
    text = texts.washout.format(
        **fields, stop_date=entry.stop_date.isoformat(), until=until.isoformat()
    )
    return Washout(
        entry.name,
        ingredient,
        entry.stop_date,
        days,
        until,
        class_id,
        drug_class.washout_sources,
        " ".join(text.split()),
    )


def _ends_later(new: Washout, old: Washout | None) -> bool:
    if old is None or old.until is None:
        return old is None
    return new.until is None or new.until > old.until


def _stopped_label(entry: StoppedMedication) -> str:
    when = entry.stop_date.isoformat() if entry.stop_date else "date not recorded"
    return f"{entry.name} (stopped {when})"


def _fire(
    index: _RouteIndex,
    ingredient: str,
    inputs: tuple[str, ...],
    present: set[str],
    washout_text: Mapping[str, str],
) -> list[tuple[int, str, str, Finding]]:
    """Every finding for one ingredient; a finding whose rule is superseded by a co-medication
    rule that fired for the same ingredient is replaced by it (and the replacement says so)."""
    candidates: list[tuple[int, Finding, frozenset[str]]] = []
    for hit in index.hits.get(ingredient, ()):
        own = (washout_text[ingredient],) if ingredient in washout_text else ()
        finding = Finding(inputs, ingredient, hit.outcome, hit.reasons, own)
        candidates.append((hit.rank, finding, hit.superseded_by))
    for co in index.co_by_trigger.get(ingredient, ()):
        partners = sorted(co.partner_set & present - {ingredient})
        if not partners:
            continue
        reasons = (
            co.triggers[ingredient],
            *(f"also on the list: {co.partners[p]}" for p in partners),
        )
        notes = tuple(washout_text[i] for i in (ingredient, *partners) if i in washout_text)
        finding = Finding(inputs, ingredient, co.outcome, reasons, notes)
        candidates.append((co.rank, finding, co.superseded_by))
    fired = {finding.rule_id for _, finding, _ in candidates}
    replaced: dict[str, list[str]] = {}
    kept: list[tuple[int, Finding]] = []
    for rank, finding, superseded_by in candidates:
        by = sorted(superseded_by & fired)
        if by:
            replaced.setdefault(by[0], []).append(finding.rule_id)
            continue
        kept.append((rank, finding))
    out = []
    for rank, finding in kept:
        if finding.rule_id in replaced:
            note = (
                "replaces " + ", ".join(replaced[finding.rule_id]) + " (its advice does not hold "
            )
            note += "with this combination)"
            finding = finding._replace(reasons=(*finding.reasons, note))
        out.append((rank, ingredient, finding.rule_id, finding))
    return out


def screen(
    medications: Sequence[str],
    agent: Agent = "ketamine",
    route: Route | None = None,
    *,
    stopped: Sequence[StoppedMedication] = (),
    as_of: date | None = None,
    use_broad_vocabulary: bool = True,
    resolver: DrugResolver | None = None,
) -> ScreenResult:
    """Screen ``medications`` (free text, brands, generics) against ``agent`` given by ``route``.

    Default route: ``iv`` for ketamine, ``intranasal`` for esketamine. Blank entries are ignored.
    ``stopped``: medicines recorded as stopped; one whose class has a washout still running on
    ``as_of`` (required with ``stopped``) is screened as if taken, unless it is also current.
    ``resolver`` replaces the default (cached) name resolution, e.g. with another vocabulary.
    Raises ValueError for an unknown agent or route, or stopped medicines without ``as_of``.
    """
    chosen_route = _check_arguments(agent, route)
    if stopped and as_of is None:
        raise ValueError("as_of (the screening date) is required to screen stopped medicines")
    index = _route_index(agent, chosen_route)
    catalog = load_catalog()

    def view_of(text: str) -> _View:
        if resolver is not None:
            return _view(resolver.resolve(text))
        return _cached_view(text, use_broad_vocabulary)

    # ingredient -> inputs naming it; reviewed = reached through a curated name at least once.
    inputs_of: dict[str, set[str]] = {}
    reviewed: set[str] = set()
    broad_only: dict[str, set[str]] = {}
    unrecognized: dict[str, Resolution] = {}
    resolutions: list[Resolution] = []
    for text in medications:
        if not text or text.isspace():
            continue
        view = view_of(text)
        resolutions.append(view.resolution)
        for ingredient in view.curated:
            inputs_of.setdefault(ingredient, set()).add(text)
        reviewed.update(view.reviewed)
        for name in view.broad_only:
            broad_only.setdefault(name, set()).add(text)
        if view.resolution.unrecognized:
            unrecognized[text] = view.resolution

    # Stopped medicines still in their washout join the list (a current entry wins). One that
    # cannot be recognised, stopped recently enough to matter or on an unknown date, is unknown.
    washouts: dict[str, Washout] = {}  # ingredient -> the washout that ends last
    horizon = max_washout_days()
    current = set(inputs_of)
    for entry in stopped:
        if not entry.name or entry.name.isspace():
            continue
        assert as_of is not None
        view = view_of(entry.name)
        label = _stopped_label(entry)
        for ingredient in view.curated:
            if ingredient in current:
                continue
            washout = _washout_of(catalog, entry, ingredient, as_of)
            if washout is None:
                continue
            if _ends_later(washout, washouts.get(ingredient)):
                washouts[ingredient] = washout
            inputs_of.setdefault(ingredient, set()).add(label)
            if ingredient in view.reviewed:
                reviewed.add(ingredient)
        recent = entry.stop_date is None or (as_of - entry.stop_date).days <= horizon
        if view.resolution.unrecognized and recent:
            resolutions.append(view.resolution)
            unrecognized[label] = view.resolution
    washout_text = {ingredient: w.text for ingredient, w in washouts.items()}

    ranked: list[tuple[int, str, str, Finding]] = []
    no_known: list[InputIngredient] = []
    not_reviewed: list[InputIngredient] = []
    present = set(inputs_of)
    for ingredient in sorted(inputs_of):
        inputs = _ordered(inputs_of[ingredient])
        found = _fire(index, ingredient, inputs, present, washout_text)
        ranked.extend(found)
        if not found:
            entry = InputIngredient(inputs, ingredient)
            (no_known if ingredient in reviewed else not_reviewed).append(entry)
    ranked.sort(key=lambda item: item[:3])  # (rank, ingredient, rule_id) is unique
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
        stopped_screened=tuple(washouts[i] for i in sorted(washouts)),
    )
