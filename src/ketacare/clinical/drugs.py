"""Medication name resolution: what someone wrote -> the ingredients it contains.

Pure and deterministic: the index is built once from the knowledge base. Order of attempts:

1. the whole entry, then the entry without strength/form/frequency words, against every curated
   generic name, brand (US, Canadian, others), synonym and combination product; abbreviations
   ("MPH", "LDX") only when they are the whole entry;
2. free text is segmented left to right, longest known name first ("adderall xr 20mg",
   "Bupropion/naltrexone (Contrave)", "Tylenol #3 with codeine");
3. leftover words are looked up in the optional broad vocabulary (package
   ``drug-named-entity-recognition``, exact names only), which recognises real medicines that
   the curated table does not review;
4. then typos: a close, unambiguous edit-distance match to a curated name;
5. anything else is UNRECOGNISED, with up to five suggestions. Nothing is silently mapped.
"""

from __future__ import annotations

import bz2
import importlib.metadata
import importlib.util
import pickle  # nosec B403
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from ketacare.knowledge.catalog import (
    AliasTarget,
    Catalog,
    abbreviation_index,
    load_catalog,
    normalise_name,
)

MatchKind = Literal["generic", "synonym", "brand", "abbreviation", "fuzzy", "broad_vocabulary"]
Status = Literal["resolved", "partial", "not_reviewed", "unrecognized"]

MAX_SUGGESTIONS = 5
_SUGGEST_CUTOFF = 55
_MIN_FUZZY_LENGTH = 5
_CONFIDENCE: dict[str, float] = {"generic": 1.0, "brand": 1.0, "synonym": 1.0}
_ABBREVIATION_CONFIDENCE = 0.95
_BROAD_CONFIDENCE = 0.9

# Words that carry strength, form, route, timing or context rather than a drug name. They are
# skipped between names, never matched on their own.
_NOISE_TEXT = """
    mg mcg ug g gm gram grams kg ml l iu unit units meq mmol mgs mcgs percent pct
    h hr hrs hour hours day days week weeks month months min mins minute minutes
    tab tabs tablet tablets cap caps capsule capsules pill pills chewtab
    er xr sr cr la xl ir dr ec od odt ds mr cd xt sa xc
    patch patches spray sprays nasal inhaler inhalers inh puff puffs neb nebulizer nebuliser
    soln solution susp suspension liquid syrup elixir powder sachet vial pen depot drops drop
    film lozenge troche chewable chew cream gel ointment topical transdermal td
    oral po iv im sc subq sq sl sublingual buccal pr inj injection injectable infusion
    extended release delayed immediate sustained controlled modified
    generic brand otc rx strength extra regular max maximum adult adults
    daily qd bid tid qid qhs hs qam qpm am pm qod prn nightly weekly monthly
    once twice thrice times x every each per a an at bedtime night nights morning mornings
    evening noon as needed required when if for with and or then take takes taking took use
    uses using by mouth of to in on the one two three four half quarter dose doses dosing
    hcl hydrochloride sulfate sulphate succinate tartrate maleate mesylate besylate fumarate
    citrate phosphate bromide hydrobromide dihydrochloride acetate bitartrate
    adhd depression anxiety sleep insomnia pain headache migraine bp blood pressure cholesterol
    allergy allergies asthma focus attention mood nausea acne
    started stopped since ago last current currently previously prescribed usual
"""
_NOISE_WORDS = frozenset(_NOISE_TEXT.split())
_NUMERIC = re.compile(r"^(?:\d+[a-z]*|q\d+h|x\d+|\d+x)$")


@dataclass(frozen=True, slots=True)
class IngredientMatch:
    """One ingredient found in an entry, and how it was found."""

    ingredient: str
    curated: bool  # False: known only to the broad vocabulary (not reviewed for interactions)
    match_kind: MatchKind
    matched: str  # the name as written in the knowledge base or vocabulary
    confidence: float
    product: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "ingredient": self.ingredient,
            "curated": self.curated,
            "match_kind": self.match_kind,
            "matched": self.matched,
            "confidence": round(self.confidence, 3),
            "product": self.product,
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    """The result for one written entry."""

    input: str
    matches: tuple[IngredientMatch, ...] = ()
    unrecognized: tuple[str, ...] = ()  # parts of the entry that matched nothing
    suggestions: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        if not self.matches:
            return "unrecognized"
        if self.unrecognized:
            return "partial"
        if not any(m.curated for m in self.matches):
            return "not_reviewed"
        return "resolved"

    @property
    def ingredients(self) -> tuple[str, ...]:
        return tuple(m.ingredient for m in self.matches)

    def to_dict(self) -> dict[str, object]:
        return {
            "input": self.input,
            "status": self.status,
            "matches": [m.to_dict() for m in self.matches],
            "unrecognized": list(self.unrecognized),
            "suggestions": list(self.suggestions),
        }


# --- Optional broad vocabulary -------------------------------------------------------------------

BROAD_PACKAGE = "drug-named-entity-recognition"
_BROAD_MODULE = "drug_named_entity_recognition"
_BROAD_DATA_FILE = "drug_ner_dictionary.pkl.bz2"
_MIN_BROAD_KEY = 4


@dataclass(frozen=True)
class BroadVocabulary:
    """Exact-name lookup into a large drug dictionary: normalised name -> drug names."""

    names: Mapping[str, tuple[str, ...]]
    source: str

    def lookup(self, key: str) -> tuple[str, ...]:
        return self.names.get(key, ())


def _load_broad_vocabulary() -> BroadVocabulary | None:
    # The package's own import builds fuzzy n-gram indexes (about 10 s, over 300 MB) and reads
    # a pickle from the home directory; reading its shipped dictionary directly takes under a
    # second and keeps only the name table.
    try:
        spec = importlib.util.find_spec(_BROAD_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / _BROAD_DATA_FILE
    if not path.is_file():
        return None
    try:
        with bz2.open(path, "rb") as fh:
            # The file ships inside the installed package: as trusted as the package's code.
            data = pickle.load(fh)  # noqa: S301  # nosec B301
        variants: Mapping[str, Sequence[str]] = data["drug_variant_to_canonical"]
        canonical: Mapping[str, Mapping[str, object]] = data["drug_canonical_to_data"]
    except (OSError, EOFError, KeyError, TypeError, pickle.UnpicklingError):
        return None
    names: dict[str, tuple[str, ...]] = {}
    for variant, targets in variants.items():
        key = normalise_name(str(variant))
        if len(key) < _MIN_BROAD_KEY or key in _NOISE_WORDS:
            continue
        found = []
        for target in targets:
            display = canonical.get(target, {}).get("name") or target
            found.append(str(display).lower())
        names[key] = tuple(sorted(set(found)))
    try:
        version = importlib.metadata.version(BROAD_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return BroadVocabulary(names=names, source=f"{BROAD_PACKAGE} {version}")


@cache
def broad_vocabulary() -> BroadVocabulary | None:
    """The broad vocabulary when its package is installed, else None (loaded once, lazily)."""
    return _load_broad_vocabulary()


# --- The resolver --------------------------------------------------------------------------------


def _is_noise(token: str) -> bool:
    return token in _NOISE_WORDS or bool(_NUMERIC.match(token))


def _fuzzy_budget(length: int) -> int:
    if length < _MIN_FUZZY_LENGTH:
        return 0
    if length < 8:
        return 1
    if length < 12:
        return 2
    return 3


_COMBINATION_SPLIT = re.compile(r"\s+(?:and|&)\s+|\s*,\s*")


@dataclass
class DrugResolver:
    """Index over the curated names (built once) plus an optional broad vocabulary."""

    catalog: Catalog
    broad_loader: Callable[[], BroadVocabulary | None] | None = None
    _aliases: Mapping[str, AliasTarget] = field(init=False, repr=False)
    _abbreviations: Mapping[str, AliasTarget] = field(init=False, repr=False)
    _max_tokens: int = field(init=False, repr=False)
    _fuzzy_keys: list[str] = field(init=False, repr=False)
    _curated_by_key: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._aliases = self.catalog.aliases
        self._abbreviations = abbreviation_index(self.catalog)
        self._max_tokens = max(len(key.split()) for key in self._aliases)
        self._fuzzy_keys = sorted(k for k in self._aliases if len(k) >= _MIN_FUZZY_LENGTH - 1)
        # Broad-vocabulary names that are curated ingredients resolve to the curated entry.
        self._curated_by_key = {normalise_name(name): name for name in self.catalog.ingredients}

    # -- public ---------------------------------------------------------------------------------

    def resolve(self, text: str) -> Resolution:
        key = normalise_name(text)
        if not key:
            return Resolution(input=text, unrecognized=(text,) if text.strip() else ())
        whole = self._aliases.get(key)
        if whole is not None:
            return Resolution(input=text, matches=self._from_alias(whole))
        tokens = key.split()
        core = " ".join(t for t in tokens if not _is_noise(t))
        if core:
            target = self._aliases.get(core) or self._abbreviations.get(core)
            if target is not None:
                return Resolution(input=text, matches=self._from_alias(target))
        else:
            # Only strength/form words (or e.g. "magnesium"-like words in the noise list).
            tokens = [key]
        return self._segment(text, tokens)

    def suggest(self, fragment: str, limit: int = MAX_SUGGESTIONS) -> tuple[str, ...]:
        """Up to ``limit`` curated names that look like ``fragment``, best first."""
        query = normalise_name(fragment)
        if len(query) < 2:
            return ()
        # Plain edit-distance similarity: partial-match scorers propose nonsense for short input.
        candidates = process.extract(
            query, self._fuzzy_keys, scorer=fuzz.ratio, limit=40, score_cutoff=_SUGGEST_CUTOFF
        )
        # Stable order: score, then name, so ties never depend on dictionary order.
        candidates.sort(key=lambda c: (-c[1], c[0]))
        out: list[str] = []
        seen: set[tuple[str, ...]] = set()
        for candidate, _score, _index in candidates:
            target = self._aliases[candidate]
            ident = (target.product or "", *target.ingredients)
            if ident in seen:
                continue
            seen.add(ident)
            out.append(target.label)
            if len(out) == limit:
                break
        return tuple(out)

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _from_alias(
        target: AliasTarget, kind: MatchKind | None = None
    ) -> tuple[IngredientMatch, ...]:
        match_kind = kind or target.kind
        confidence = (
            _ABBREVIATION_CONFIDENCE
            if match_kind == "abbreviation"
            else _CONFIDENCE.get(match_kind, 1.0)
        )
        return tuple(
            IngredientMatch(
                ingredient=name,
                curated=True,
                match_kind=match_kind,
                matched=target.label,
                confidence=confidence,
                product=target.product,
            )
            for name in target.ingredients
        )

    def _segment(self, text: str, tokens: list[str]) -> Resolution:
        matches: list[IngredientMatch] = []
        unknown_runs: list[list[str]] = []
        run: list[str] = []
        i, n = 0, len(tokens)
        while i < n:
            for j in range(min(n, i + self._max_tokens), i, -1):
                target = self._aliases.get(" ".join(tokens[i:j]))
                if target is not None:
                    matches.extend(self._from_alias(target))
                    if run:
                        unknown_runs.append(run)
                        run = []
                    i = j
                    break
            else:
                if _is_noise(tokens[i]):
                    if run:
                        unknown_runs.append(run)
                        run = []
                else:
                    run.append(tokens[i])
                i += 1
        if run:
            unknown_runs.append(run)

        leftovers: list[str] = []
        for words in unknown_runs:
            found, rest = self._resolve_run(words)
            matches.extend(found)
            leftovers.extend(rest)

        if not matches and not leftovers:
            # Nothing but strength/form words ("0", "20 mg daily"): not a medicine name.
            leftovers = [text.strip()]
        suggestions: tuple[str, ...] = ()
        if leftovers:
            suggestions = self.suggest(" ".join(leftovers))
            if not suggestions and not matches:
                suggestions = self.suggest(text)
        return Resolution(
            input=text,
            matches=_dedupe(matches),
            unrecognized=tuple(leftovers),
            suggestions=suggestions,
        )

    def _resolve_run(self, words: list[str]) -> tuple[list[IngredientMatch], list[str]]:
        """Broad vocabulary (longest span first), then typo matching, for unmatched words."""
        matches: list[IngredientMatch] = []
        leftovers: list[str] = []
        broad = self.broad_loader() if self.broad_loader is not None else None
        i, n = 0, len(words)
        while i < n:
            hit = False
            if broad is not None:
                for j in range(n, i, -1):
                    span = " ".join(words[i:j])
                    names = broad.lookup(span)
                    if names:
                        matches.extend(self._from_broad(span, names))
                        i, hit = j, True
                        break
            if hit:
                continue
            # Typos: try the longest remaining span first ("adderal xr", "st jons wort").
            for j in range(n, i, -1):
                span = " ".join(words[i:j])
                fuzzy = self._fuzzy(span)
                if fuzzy:
                    matches.extend(fuzzy)
                    i, hit = j, True
                    break
            if not hit:
                leftovers.append(words[i])
                i += 1
        return matches, leftovers

    def _from_broad(self, span: str, names: Iterable[str]) -> list[IngredientMatch]:
        out: list[IngredientMatch] = []
        for name in names:
            # "naltrexone and bupropion" style names list several ingredients.
            for part in _COMBINATION_SPLIT.split(name):
                key = normalise_name(part)
                if not key:
                    continue
                curated = self._curated_by_key.get(key)
                if curated is None and key in self._aliases:
                    target = self._aliases[key]
                    curated = target.ingredients[0] if len(target.ingredients) == 1 else None
                out.append(
                    IngredientMatch(
                        ingredient=curated or part.strip(),
                        curated=curated is not None,
                        match_kind="broad_vocabulary",
                        matched=span,
                        confidence=_BROAD_CONFIDENCE,
                    )
                )
        return out

    def _fuzzy(self, span: str) -> list[IngredientMatch]:
        budget = _fuzzy_budget(len(span))
        if budget == 0:
            return []
        hits = process.extract(
            span,
            self._fuzzy_keys,
            scorer=DamerauLevenshtein.distance,
            score_cutoff=budget,
            limit=None,
        )
        if not hits:
            return []
        best = min(distance for _key, distance, _i in hits)
        best_targets = {
            (self._aliases[key].product, self._aliases[key].ingredients)
            for key, distance, _i in hits
            if distance == best
        }
        runner_up = {
            (self._aliases[key].product, self._aliases[key].ingredients)
            for key, distance, _i in hits
            if distance == best + 1
        }
        # Accept only an unambiguous match: one target at the best distance and no other target
        # within one more edit.
        if len(best_targets) != 1 or (runner_up - best_targets):
            return []
        key = min(k for k, distance, _i in hits if distance == best)
        target = self._aliases[key]
        confidence = max(0.0, 1.0 - best / max(len(span), len(key)))
        return [
            IngredientMatch(
                ingredient=name,
                curated=True,
                match_kind="fuzzy",
                matched=target.label,
                confidence=confidence,
                product=target.product,
            )
            for name in target.ingredients
        ]


def _dedupe(matches: Iterable[IngredientMatch]) -> tuple[IngredientMatch, ...]:
    """One match per ingredient, keeping the most confident; curated beats broad."""
    best: dict[str, IngredientMatch] = {}
    for match in matches:
        current = best.get(match.ingredient)
        if current is None or (match.curated, match.confidence) > (
            current.curated,
            current.confidence,
        ):
            best[match.ingredient] = match
    return tuple(best.values())


@cache
def default_resolver(use_broad_vocabulary: bool = True) -> DrugResolver:
    """The process-wide resolver over the knowledge base (index built once)."""
    return DrugResolver(
        catalog=load_catalog(), broad_loader=broad_vocabulary if use_broad_vocabulary else None
    )


@lru_cache(maxsize=8192)
def resolve(text: str, use_broad_vocabulary: bool = True) -> Resolution:
    """Resolve one written medication entry (cached: clinic lists repeat the same strings)."""
    return default_resolver(use_broad_vocabulary).resolve(text)


def resolve_many(texts: Iterable[str], use_broad_vocabulary: bool = True) -> list[Resolution]:
    return [resolve(text, use_broad_vocabulary) for text in texts]
