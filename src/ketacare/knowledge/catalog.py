"""Typed, validated view of the drug knowledge: references, classes, ingredients, products, rules.

``load_catalog()`` parses ``references.yaml``, ``drug_classes.yaml``, ``drugs.yaml`` and
``interactions.yaml`` once (cached) and refuses to load when anything is inconsistent: an unknown
source id, class or ingredient, a class cycle, a rule aimed at an empty class, a rule superseded
by one that can never fire on its ingredients, or one name that would resolve to two different
things. A wrong table must never reach a clinician.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ketacare.knowledge import knowledge_version, load_yaml

Evidence = Literal["V", "S", "M"]
Severity = Literal["contraindicated", "major", "moderate", "minor"]
Agent = Literal["ketamine", "esketamine"]
Route = Literal["iv", "im", "intranasal", "oral", "sublingual"]
Market = Literal["US", "CA", "UK", "EU", "AU", "INTL"]
Kind = Literal["medicine", "substance", "herbal", "food"]

AGENTS: tuple[Agent, ...] = ("ketamine", "esketamine")
ROUTES: tuple[Route, ...] = ("iv", "im", "intranasal", "oral", "sublingual")
DEFAULT_ROUTE: dict[str, Route] = {"ketamine": "iv", "esketamine": "intranasal"}
SEVERITY_ORDER: tuple[Severity, ...] = ("contraindicated", "major", "moderate", "minor")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITY_ORDER)}

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class CatalogError(ValueError):
    """The knowledge files are inconsistent; the message lists every problem found."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reference(_Strict):
    id: Slug
    title: NonEmpty
    citation: str | None = None
    pmid: str | None = None
    doi: str | None = None
    label_section: str | None = None
    url: str | None = None
    evidence: Evidence
    note: str | None = None

    @field_validator("pmid", "label_section", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        # YAML reads 12345 or 7.1 as numbers; identifiers and section numbers are text.
        return str(value) if isinstance(value, int | float) else value

    @field_validator("pmid")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is not None and not value.isdigit():
            raise ValueError("pmid must be digits")
        return value


class DrugClass(_Strict):
    id: Slug
    name: NonEmpty
    parents: tuple[Slug, ...] = ()
    description: str | None = None
    # A medicine of the class stopped fewer than this many days ago is still screened.
    washout_days: int | None = Field(None, ge=1, le=90)
    washout_sources: tuple[Slug, ...] = ()
    washout_note: str | None = None

    @model_validator(mode="after")
    def _washout_cited(self) -> DrugClass:
        if (self.washout_days is None) != (not self.washout_sources):
            raise ValueError("washout_days and washout_sources go together")
        return self


Brands = dict[NonEmpty, Annotated[tuple[Market, ...], Field(min_length=1)]]


class Ingredient(_Strict):
    name: NonEmpty
    kind: Kind = "medicine"
    classes: tuple[Slug, ...] = Field(min_length=1)
    brands: Brands = Field(default_factory=dict)
    synonyms: tuple[NonEmpty, ...] = ()
    abbreviations: tuple[NonEmpty, ...] = ()
    atc: tuple[Annotated[str, StringConstraints(pattern=r"^[A-Z]\d{2}[A-Z]{2}\d{2}$")], ...] = ()
    rxcui: Annotated[str, StringConstraints(pattern=r"^\d+$")] | None = None
    note: str | None = None

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        if value != value.lower():
            raise ValueError("ingredient names are lower case")
        return value


class Product(_Strict):
    """A combination product: every name here stands for all of its ingredients."""

    name: NonEmpty
    ingredients: tuple[NonEmpty, ...] = Field(min_length=2)
    brands: Brands = Field(default_factory=dict)
    synonyms: tuple[NonEmpty, ...] = ()
    abbreviations: tuple[NonEmpty, ...] = ()
    note: str | None = None


class Mechanism(_Strict):
    type: Literal["pharmacodynamic", "pharmacokinetic"]
    enzymes: tuple[Annotated[str, StringConstraints(pattern=r"^CYP\d[A-Z]\d+$")], ...] = ()
    summary: NonEmpty

    def describe(self) -> str:
        enzymes = f" ({', '.join(self.enzymes)})" if self.enzymes else ""
        return f"{self.type}{enzymes}: {self.summary}"


class Target(_Strict):
    ingredients: tuple[NonEmpty, ...] = ()
    classes: tuple[Slug, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Target:
        if not self.ingredients and not self.classes:
            raise ValueError("name at least one ingredient or class")
        return self


class Rule(_Strict):
    id: Slug
    title: NonEmpty
    kind: Literal["agent", "co_medication"] = "agent"
    agents: tuple[Agent, ...] = Field(min_length=1)
    routes: tuple[Route, ...] | None = None
    applies_to: Target
    requires_also: Target | None = None
    severity: Severity
    route_severity: dict[Route, Severity] = Field(default_factory=dict)
    mechanism: Mechanism
    effect: NonEmpty
    management: NonEmpty
    sources: tuple[Slug, ...] = Field(min_length=1)
    evidence: Evidence
    conflict: str | None = None
    note: str | None = None
    superseded_by: tuple[Slug, ...] = ()

    @model_validator(mode="after")
    def _kind_fields(self) -> Rule:
        if self.kind == "co_medication" and self.requires_also is None:
            raise ValueError("a co_medication rule needs requires_also")
        if self.kind == "agent" and self.requires_also is not None:
            raise ValueError("requires_also is only for co_medication rules")
        return self

    def applies(self, agent: str, route: str) -> bool:
        return agent in self.agents and (self.routes is None or route in self.routes)

    def severity_for(self, route: str) -> Severity:
        return self.route_severity.get(route, self.severity)  # type: ignore[call-overload]


class ScreenTexts(_Strict):
    """Texts of the screen itself (``screening`` in interactions.yaml)."""

    not_screened: NonEmpty
    not_screened_sources: tuple[Slug, ...] = Field(min_length=1)
    washout: NonEmpty
    washout_unknown_stop: NonEmpty

    _FIELDS = {
        "not_screened": ("reason", "medicines"),
        "washout": ("input", "ingredient", "stop_date", "days", "until", "class_name"),
        "washout_unknown_stop": ("input", "ingredient", "days", "class_name"),
    }

    @model_validator(mode="after")
    def _placeholders(self) -> ScreenTexts:
        for name, fields in self._FIELDS.items():
            try:
                getattr(self, name).format(**dict.fromkeys(fields, "x"))
            except (KeyError, IndexError) as exc:
                raise ValueError(f"{name}: unknown placeholder {exc}") from None
        return self


# --- Name normalisation (shared with clinical/drugs.py so index keys and queries agree) ---------

_MARKS = str.maketrans("", "", "®™©'’‘`´")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_name(text: str) -> str:
    """Lower-case, accent-free, punctuation-free form: "St. John's Wort®" -> "st johns wort"."""
    folded = unicodedata.normalize("NFKD", text.casefold()).translate(_MARKS)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    folded = folded.replace(".", "")
    return _NON_ALNUM.sub(" ", folded).strip()


# --- The catalog ---------------------------------------------------------------------------------

AliasKind = Literal["generic", "synonym", "brand", "abbreviation"]


@dataclass(frozen=True, slots=True)
class AliasTarget:
    """What one normalised name stands for."""

    ingredients: tuple[str, ...]
    kind: AliasKind
    label: str  # the name as written in the knowledge file
    product: str | None = None


@dataclass(frozen=True)
class Catalog:
    references: Mapping[str, Reference]
    classes: Mapping[str, DrugClass]
    ingredients: Mapping[str, Ingredient]
    products: Mapping[str, Product]
    rules: tuple[Rule, ...]
    version: str
    screen_texts: ScreenTexts
    # Derived at load:
    class_ancestors: Mapping[str, frozenset[str]] = field(repr=False)
    ingredient_classes: Mapping[str, frozenset[str]] = field(repr=False)
    class_members: Mapping[str, frozenset[str]] = field(repr=False)
    aliases: Mapping[str, AliasTarget] = field(repr=False)
    # ingredient -> (washout days, the class that sets it), for classes with a washout.
    ingredient_washout: Mapping[str, tuple[int, str]] = field(repr=False)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def target_members(self, target: Target) -> frozenset[str]:
        """Every ingredient a rule target reaches (named directly or through a class)."""
        members = set(target.ingredients)
        for class_id in target.classes:
            members |= self.class_members[class_id]
        return frozenset(members)

    def brand_count(self) -> int:
        return sum(len(i.brands) for i in self.ingredients.values()) + sum(
            len(p.brands) for p in self.products.values()
        )


def _unique(items: Iterable[Any], key: str, what: str, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        ident = getattr(item, key)
        if ident in out:
            problems.append(f"duplicate {what}: {ident}")
        out[ident] = item
    return out


def _parse(model: type[BaseModel], raw: Any, where: str, problems: list[str]) -> list[Any]:
    if not isinstance(raw, list):
        problems.append(f"{where}: expected a list")
        return []
    parsed = []
    for index, entry in enumerate(raw):
        try:
            parsed.append(model.model_validate(entry))
        except ValueError as exc:
            label = entry.get("id") or entry.get("name") if isinstance(entry, dict) else index
            problems.append(f"{where}[{label}]: {exc}")
    return parsed


def _ancestors(classes: Mapping[str, DrugClass], problems: list[str]) -> dict[str, frozenset[str]]:
    result: dict[str, frozenset[str]] = {}

    def visit(class_id: str, path: tuple[str, ...]) -> frozenset[str]:
        if class_id in result:
            return result[class_id]
        if class_id in path:
            problems.append(f"class cycle: {' -> '.join((*path, class_id))}")
            return frozenset({class_id})
        found = {class_id}
        for parent in classes[class_id].parents:
            if parent not in classes:
                problems.append(f"class {class_id}: unknown parent {parent}")
                continue
            found |= visit(parent, (*path, class_id))
        result[class_id] = frozenset(found)
        return result[class_id]

    for class_id in classes:
        visit(class_id, ())
    return result


def _build_aliases(
    ingredients: Mapping[str, Ingredient], products: Mapping[str, Product], problems: list[str]
) -> dict[str, AliasTarget]:
    aliases: dict[str, AliasTarget] = {}

    def add(name: str, target: AliasTarget) -> None:
        key = normalise_name(name)
        if not key:
            problems.append(f"name {name!r} is empty once normalised")
            return
        existing = aliases.get(key)
        if existing is None:
            aliases[key] = target
        elif existing.ingredients != target.ingredients or existing.product != target.product:
            # One written name must mean one thing; a brand standing for several ingredients is
            # modelled as a combination product instead.
            problems.append(
                f"name {name!r} maps to both {existing.label!r} ({', '.join(existing.ingredients)})"
                f" and {target.label!r} ({', '.join(target.ingredients)})"
            )
        elif _KIND_PRIORITY[target.kind] < _KIND_PRIORITY[existing.kind]:
            aliases[key] = target

    for ingredient in ingredients.values():
        own = (ingredient.name,)
        add(ingredient.name, AliasTarget(own, "generic", ingredient.name))
        for synonym in ingredient.synonyms:
            add(synonym, AliasTarget(own, "synonym", synonym))
        for brand in ingredient.brands:
            add(brand, AliasTarget(own, "brand", brand))
    for product in products.values():
        parts = tuple(product.ingredients)
        add(product.name, AliasTarget(parts, "generic", product.name, product.name))
        for synonym in product.synonyms:
            add(synonym, AliasTarget(parts, "synonym", synonym, product.name))
        for brand in product.brands:
            add(brand, AliasTarget(parts, "brand", brand, product.name))
    return aliases


_KIND_PRIORITY: dict[str, int] = {"generic": 0, "brand": 1, "synonym": 2, "abbreviation": 3}


def abbreviation_index(catalog: Catalog) -> dict[str, AliasTarget]:
    """Abbreviations, accepted only when they are the whole entry (see drugs.yaml)."""
    index: dict[str, AliasTarget] = {}
    for ingredient in catalog.ingredients.values():
        for abbreviation in ingredient.abbreviations:
            index[normalise_name(abbreviation)] = AliasTarget(
                (ingredient.name,), "abbreviation", abbreviation
            )
    for product in catalog.products.values():
        for abbreviation in product.abbreviations:
            index[normalise_name(abbreviation)] = AliasTarget(
                tuple(product.ingredients), "abbreviation", abbreviation, product.name
            )
    return index


def build_catalog(
    references_raw: Any, classes_raw: Any, drugs_raw: Any, rules_raw: Any, version: str
) -> Catalog:
    """Validate raw YAML data into a Catalog; raise CatalogError listing every problem."""
    problems: list[str] = []
    references = _unique(
        _parse(Reference, (references_raw or {}).get("references"), "references", problems),
        "id",
        "reference id",
        problems,
    )
    classes = _unique(
        _parse(DrugClass, (classes_raw or {}).get("classes"), "classes", problems),
        "id",
        "class id",
        problems,
    )
    ingredients = _unique(
        _parse(Ingredient, (drugs_raw or {}).get("ingredients"), "ingredients", problems),
        "name",
        "ingredient",
        problems,
    )
    products = _unique(
        _parse(Product, (drugs_raw or {}).get("products") or [], "products", problems),
        "name",
        "product",
        problems,
    )
    rules_by_id = _unique(
        _parse(Rule, (rules_raw or {}).get("rules"), "rules", problems), "id", "rule id", problems
    )
    for name in set(ingredients) & set(products):
        problems.append(f"{name!r} is both an ingredient and a product")
    screen_texts: ScreenTexts | None = None
    try:
        screen_texts = ScreenTexts.model_validate((rules_raw or {}).get("screening"))
    except ValueError as exc:
        problems.append(f"screening: {exc}")

    ancestors = _ancestors(classes, problems)
    ingredient_classes: dict[str, frozenset[str]] = {}
    members: dict[str, set[str]] = defaultdict(set)
    for ingredient in ingredients.values():
        expanded: set[str] = set()
        for class_id in ingredient.classes:
            if class_id not in classes:
                problems.append(f"ingredient {ingredient.name}: unknown class {class_id}")
                continue
            expanded |= ancestors[class_id]
        ingredient_classes[ingredient.name] = frozenset(expanded)
        for class_id in expanded:
            members[class_id].add(ingredient.name)
    for product in products.values():
        for part in product.ingredients:
            if part not in ingredients:
                problems.append(f"product {product.name}: unknown ingredient {part}")
    washout = _washouts(classes, ingredient_classes)
    cited = [(f"class {c.id}", c.washout_sources) for c in classes.values()]
    if screen_texts is not None:
        cited.append(("screening", screen_texts.not_screened_sources))
    for where, sources in cited:
        for source in sources:
            if source not in references:
                problems.append(f"{where}: source {source} not in references.yaml")

    for rule in rules_by_id.values():
        targets = [("applies_to", rule.applies_to)]
        if rule.requires_also is not None:
            targets.append(("requires_also", rule.requires_also))
        for label, target in targets:
            for name in target.ingredients:
                if name not in ingredients:
                    problems.append(f"rule {rule.id}: {label} names unknown ingredient {name}")
            for class_id in target.classes:
                if class_id not in classes:
                    problems.append(f"rule {rule.id}: {label} names unknown class {class_id}")
                elif not members.get(class_id):
                    problems.append(f"rule {rule.id}: {label} class {class_id} has no members")
        for source in rule.sources:
            if source not in references:
                problems.append(f"rule {rule.id}: source {source} not in references.yaml")
        for route in rule.route_severity:
            if rule.routes is not None and route not in rule.routes:
                problems.append(f"rule {rule.id}: route_severity for excluded route {route}")
        _check_superseded(rule, rules_by_id, members, problems)

    aliases = _build_aliases(ingredients, products, problems)
    abbreviations: dict[str, str] = {}
    for owner in [*ingredients.values(), *products.values()]:
        for abbreviation in owner.abbreviations:
            key = normalise_name(abbreviation)
            if abbreviations.setdefault(key, owner.name) != owner.name:
                problems.append(
                    f"abbreviation {abbreviation!r} used by {abbreviations[key]} and {owner.name}"
                )
            if key in aliases and owner.name not in (
                aliases[key].product,
                *aliases[key].ingredients,
            ):
                problems.append(f"abbreviation {abbreviation!r} is also a name of another drug")

    if problems:
        raise CatalogError("knowledge base is inconsistent:\n  " + "\n  ".join(problems))
    assert screen_texts is not None
    return Catalog(
        references=references,
        classes=classes,
        ingredients=ingredients,
        products=products,
        rules=tuple(rules_by_id.values()),
        version=version,
        screen_texts=screen_texts,
        class_ancestors=ancestors,
        ingredient_classes=ingredient_classes,
        class_members={k: frozenset(v) for k, v in members.items()},
        aliases=aliases,
        ingredient_washout=washout,
    )


def _washouts(
    classes: Mapping[str, DrugClass], ingredient_classes: Mapping[str, frozenset[str]]
) -> dict[str, tuple[int, str]]:
    """The longest washout among an ingredient's classes (ancestors included)."""
    out: dict[str, tuple[int, str]] = {}
    for ingredient, class_ids in ingredient_classes.items():
        timed = [
            (days, class_id)
            for class_id in sorted(class_ids)
            if class_id in classes and (days := classes[class_id].washout_days) is not None
        ]
        if timed:
            out[ingredient] = max(timed, key=lambda item: item[0])
    return out


def _members_of(target: Target, members: Mapping[str, set[str]]) -> set[str]:
    found = set(target.ingredients)
    for class_id in target.classes:
        found |= members.get(class_id, set())
    return found


def _check_superseded(
    rule: Rule, rules: Mapping[str, Rule], members: Mapping[str, set[str]], problems: list[str]
) -> None:
    """A rule may only be superseded by a co-medication rule for the same agents that can fire on
    at least one of its ingredients: otherwise the "supersedes" promise is empty."""
    own = _members_of(rule.applies_to, members)
    for other_id in rule.superseded_by:
        other = rules.get(other_id)
        if other is None:
            problems.append(f"rule {rule.id}: superseded_by unknown rule {other_id}")
        elif other.kind != "co_medication":
            problems.append(f"rule {rule.id}: superseded_by {other_id} is not a co_medication rule")
        elif not set(rule.agents) <= set(other.agents):
            problems.append(f"rule {rule.id}: superseded_by {other_id} misses some of its agents")
        elif not own & _members_of(other.applies_to, members):
            problems.append(f"rule {rule.id}: superseded_by {other_id} never fires on its drugs")


@cache
def load_catalog() -> Catalog:
    """The validated drug knowledge base (parsed once per process)."""
    return build_catalog(
        load_yaml("references.yaml"),
        load_yaml("drug_classes.yaml"),
        load_yaml("drugs.yaml"),
        load_yaml("interactions.yaml"),
        knowledge_version(),
    )
