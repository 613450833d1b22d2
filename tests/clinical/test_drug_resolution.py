"""Medication name resolution: generics, brands (US and Canadian), abbreviations, free text,
combination products, typos, the optional broad vocabulary, and what stays unrecognised."""

from __future__ import annotations

import time

import pytest

from ketacare.clinical.drugs import (
    MAX_SUGGESTIONS,
    BroadVocabulary,
    DrugResolver,
    broad_vocabulary,
    resolve,
)
from ketacare.knowledge.catalog import load_catalog


@pytest.mark.parametrize(
    ("text", "ingredients", "kind"),
    [
        ("sertraline", {"sertraline"}, "generic"),
        ("Vyvanse", {"lisdexamfetamine"}, "brand"),
        ("Biphentin", {"methylphenidate"}, "brand"),
        ("Foquest", {"methylphenidate"}, "brand"),
        ("Cipralex", {"escitalopram"}, "brand"),
        ("Rivotril", {"clonazepam"}, "brand"),
        ("Alertec", {"modafinil"}, "brand"),
        ("Manerix", {"moclobemide"}, "brand"),
        ("Imovane", {"zopiclone"}, "brand"),
        ("Reactine", {"cetirizine"}, "brand"),
        ("paracetamol", {"acetaminophen"}, "synonym"),
        ("salbutamol", {"albuterol"}, "synonym"),
        ("rifampicin", {"rifampin"}, "synonym"),
        ("dexamfetamine", {"dextroamphetamine"}, "synonym"),
        ("MPH", {"methylphenidate"}, "abbreviation"),
        ("LDX", {"lisdexamfetamine"}, "abbreviation"),
        ("dex", {"dextroamphetamine"}, "abbreviation"),
        ("MAS XR", {"mixed amphetamine salts"}, "abbreviation"),
        ("ASA 81 mg", {"aspirin"}, "abbreviation"),
        ("adderall xr", {"mixed amphetamine salts"}, "brand"),
        ("Adderall", {"mixed amphetamine salts"}, "brand"),
        ("Concerta 54 mg ER tab", {"methylphenidate"}, "brand"),
        ("adderall xr 20mg", {"mixed amphetamine salts"}, "brand"),
        ("sertraline 50mg po daily", {"sertraline"}, "generic"),
        ("Xanax 0.5 mg prn", {"alprazolam"}, "brand"),
        ("Emsam 6 mg/24 h patch", {"selegiline"}, "brand"),
        ("St. John's Wort 300 mg", {"st john's wort"}, "generic"),
        ("Vicodin", {"hydrocodone", "acetaminophen"}, "brand"),
        ("Tylenol #3", {"codeine", "acetaminophen"}, "brand"),
        ("Tylenol No. 3", {"codeine", "acetaminophen"}, "brand"),
        ("Contrave", {"naltrexone", "bupropion"}, "brand"),
        ("Bupropion/naltrexone (Contrave)", {"naltrexone", "bupropion"}, "synonym"),
        ("NyQuil", {"acetaminophen", "dextromethorphan", "doxylamine"}, "brand"),
        ("Advil Cold & Sinus", {"ibuprofen", "pseudoephedrine"}, "brand"),
        ("hydrocodone-acetaminophen 5-325", {"hydrocodone", "acetaminophen"}, "generic"),
    ],
)
def test_it_resolves_names(text: str, ingredients: set[str], kind: str) -> None:
    result = resolve(text)
    assert result.status == "resolved"
    assert set(result.ingredients) == ingredients
    assert {m.match_kind for m in result.matches} == {kind}
    assert all(m.curated for m in result.matches)


def test_free_text_with_two_drugs_resolves_both() -> None:
    result = resolve("Tylenol 3 with codeine and Gravol")
    assert set(result.ingredients) == {"acetaminophen", "codeine", "dimenhydrinate"}
    assert result.status == "resolved"


def test_a_combination_names_its_product() -> None:
    [hydrocodone, _] = resolve("Norco 10/325").matches
    assert hydrocodone.product == "hydrocodone/acetaminophen"
    assert hydrocodone.matched == "Norco"


@pytest.mark.parametrize(
    ("typo", "ingredient"),
    [
        ("sertralin", "sertraline"),
        ("vyvance", "lisdexamfetamine"),
        ("atomoxatine 40 mg", "atomoxetine"),
        ("klonopine", "clonazepam"),
        ("wellbutrn xl", "bupropion"),
        ("metforman", "metformin"),
        ("straterra", "atomoxetine"),
        ("adderal", "mixed amphetamine salts"),
    ],
)
def test_close_typos_resolve_with_lower_confidence(typo: str, ingredient: str) -> None:
    result = resolve(typo)
    [match] = result.matches
    assert match.ingredient == ingredient
    assert match.match_kind == "fuzzy"
    assert 0.7 <= match.confidence < 1.0


@pytest.mark.parametrize("text", ["qwzxv", "zzz", "T3", "!!!", "20 mg daily", "0"])
def test_unresolvable_entries_are_unrecognised(text: str) -> None:
    result = resolve(text, use_broad_vocabulary=False)
    assert result.status == "unrecognized"
    assert result.matches == ()
    assert result.unrecognized
    assert len(result.suggestions) <= MAX_SUGGESTIONS


def test_a_near_miss_offers_suggestions_instead_of_guessing() -> None:
    # Too short to map by edit distance, close enough to suggest.
    result = resolve("zlft", use_broad_vocabulary=False)
    assert result.status == "unrecognized"
    assert 1 <= len(result.suggestions) <= MAX_SUGGESTIONS
    assert "Zoloft" in result.suggestions


def test_abbreviations_are_not_matched_inside_free_text() -> None:
    assert resolve("mph clinic visit", use_broad_vocabulary=False).status == "unrecognized"
    assert resolve("MPH 18 mg daily").ingredients == ("methylphenidate",)


def test_an_unknown_word_next_to_a_known_drug_is_reported_not_dropped() -> None:
    result = resolve("sertraline and zorblamab", use_broad_vocabulary=False)
    assert result.status == "partial"
    assert result.ingredients == ("sertraline",)
    assert result.unrecognized == ("zorblamab",)


def test_the_resolver_is_deterministic() -> None:
    catalog = load_catalog()
    first = DrugResolver(catalog=catalog).resolve("zlft and qwzxv 5 mg")
    second = DrugResolver(catalog=catalog).resolve("zlft and qwzxv 5 mg")
    assert first == second


def test_a_cached_resolution_is_fast() -> None:
    resolve("Concerta 54 mg ER tab")
    start = time.perf_counter()
    for _ in range(1000):
        resolve("Concerta 54 mg ER tab")
    assert time.perf_counter() - start < 0.05


def test_an_injected_broad_vocabulary_marks_unknown_medicines_as_not_reviewed() -> None:
    vocabulary = BroadVocabulary(
        names={
            "zorblamab": ("zorblamab",),
            "naltrexone and bupropion": ("naltrexone and bupropion",),
        },
        source="test",
    )
    resolver = DrugResolver(catalog=load_catalog(), broad_loader=lambda: vocabulary)
    result = resolver.resolve("zorblamab 5 mg")
    assert result.status == "not_reviewed"
    [match] = result.matches
    assert (match.ingredient, match.curated, match.match_kind) == (
        "zorblamab",
        False,
        "broad_vocabulary",
    )


def test_the_real_broad_vocabulary_when_installed() -> None:
    pytest.importorskip("drug_named_entity_recognition")
    vocabulary = broad_vocabulary()
    assert vocabulary is not None
    assert len(vocabulary.names) > 50_000
    lamisil = resolve("Lamisil 250 mg")
    assert lamisil.status == "not_reviewed"
    assert lamisil.ingredients == ("terbinafine",)
    assert resolve("Lamisil 250 mg", use_broad_vocabulary=False).status == "unrecognized"
    # Everyday words are not drug names.
    for word in ("water", "hello world", "blue", "daily", "iron"):
        assert resolve(word).status == "unrecognized", word
