"""The drug knowledge base: schema, cross-references, coverage."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from ketacare.knowledge import load_yaml
from ketacare.knowledge.catalog import CatalogError, build_catalog, load_catalog, normalise_name

REQUIRED = {
    "adhd stimulants": [
        "mixed amphetamine salts",
        "amphetamine",
        "dextroamphetamine",
        "lisdexamfetamine",
        "methylphenidate",
        "dexmethylphenidate",
        "serdexmethylphenidate",
        "methamphetamine",
    ],
    "adhd non-stimulants": [
        "atomoxetine",
        "viloxazine",
        "guanfacine",
        "clonidine",
        "modafinil",
        "armodafinil",
    ],
    "maois": [
        "phenelzine",
        "tranylcypromine",
        "isocarboxazid",
        "selegiline",
        "moclobemide",
        "rasagiline",
        "linezolid",
        "methylene blue",
    ],
    "ssris": [
        "fluoxetine",
        "sertraline",
        "paroxetine",
        "citalopram",
        "escitalopram",
        "fluvoxamine",
    ],
    "snris": ["venlafaxine", "desvenlafaxine", "duloxetine", "levomilnacipran"],
    "tcas": ["amitriptyline", "nortriptyline", "imipramine", "clomipramine", "doxepin"],
    "other antidepressants": [
        "bupropion",
        "mirtazapine",
        "trazodone",
        "vortioxetine",
        "vilazodone",
    ],
    "ketamine": ["ketamine", "esketamine"],
    "benzodiazepines and z-drugs": [
        "alprazolam",
        "lorazepam",
        "clonazepam",
        "diazepam",
        "temazepam",
        "zolpidem",
        "zopiclone",
        "eszopiclone",
    ],
    "opioids": [
        "morphine",
        "oxycodone",
        "hydrocodone",
        "codeine",
        "fentanyl",
        "buprenorphine",
        "methadone",
        "tramadol",
        "tapentadol",
    ],
    "antipsychotics and phenothiazines": [
        "quetiapine",
        "olanzapine",
        "aripiprazole",
        "risperidone",
        "chlorpromazine",
        "prochlorperazine",
        "haloperidol",
    ],
    "anticonvulsants and mood stabilisers": [
        "lamotrigine",
        "valproate",
        "carbamazepine",
        "oxcarbazepine",
        "topiramate",
        "gabapentin",
        "pregabalin",
        "lithium",
    ],
    "sedating antihistamines": [
        "diphenhydramine",
        "hydroxyzine",
        "promethazine",
        "doxylamine",
        "meclizine",
    ],
    "antihypertensives and cardiac": [
        "propranolol",
        "metoprolol",
        "lisinopril",
        "losartan",
        "amlodipine",
        "hydrochlorothiazide",
        "furosemide",
        "prazosin",
        "amiodarone",
        "digoxin",
    ],
    "macrolides, azoles, rifamycins": [
        "clarithromycin",
        "erythromycin",
        "azithromycin",
        "ketoconazole",
        "itraconazole",
        "fluconazole",
        "rifampin",
        "rifabutin",
    ],
    "methylxanthines": ["theophylline", "aminophylline"],
    "nmda antagonists": ["memantine", "amantadine", "dextromethorphan"],
    "opioid antagonists": ["naltrexone"],
    "antiplatelets": ["ticlopidine", "clopidogrel"],
    "thyroid": ["levothyroxine", "liothyronine"],
    "herbal and food": ["st john's wort", "grapefruit"],
    "decongestants": ["pseudoephedrine", "phenylephrine", "ephedrine", "oxymetazoline"],
    "analgesics": ["ibuprofen", "naproxen", "acetaminophen", "aspirin", "celecoxib"],
    "common others": [
        "hormonal contraceptive (unspecified)",
        "levonorgestrel",
        "metformin",
        "atorvastatin",
        "omeprazole",
        "albuterol",
        "montelukast",
        "cetirizine",
        "loratadine",
        "sumatriptan",
        "ritonavir",
    ],
    "substances": ["alcohol", "cannabis", "nicotine", "caffeine"],
}


@cache
def raw() -> tuple[Any, Any, Any, Any]:
    return (
        load_yaml("references.yaml"),
        load_yaml("drug_classes.yaml"),
        load_yaml("drugs.yaml"),
        load_yaml("interactions.yaml"),
    )


def test_the_knowledge_base_loads_and_is_big_enough() -> None:
    catalog = load_catalog()
    assert len(catalog.ingredients) >= 200
    assert catalog.brand_count() >= 500
    assert len(catalog.rules) >= 40


@pytest.mark.parametrize("category", sorted(REQUIRED))
def test_every_required_category_is_covered(category: str) -> None:
    missing = [name for name in REQUIRED[category] if name not in load_catalog().ingredients]
    assert not missing, f"{category}: {missing}"


def test_every_rule_source_exists() -> None:
    catalog = load_catalog()
    for rule in catalog.rules:
        for source in rule.sources:
            assert source in catalog.references, (rule.id, source)


def test_every_class_used_exists_and_every_rule_class_has_members() -> None:
    catalog = load_catalog()
    for ingredient in catalog.ingredients.values():
        assert set(ingredient.classes) <= set(catalog.classes), ingredient.name
    for rule in catalog.rules:
        targets = [rule.applies_to] + ([rule.requires_also] if rule.requires_also else [])
        for target in targets:
            for class_id in target.classes:
                assert catalog.class_members[class_id], (rule.id, class_id)
            for name in target.ingredients:
                assert name in catalog.ingredients, (rule.id, name)


def test_reference_ids_are_unique_in_the_file() -> None:
    ids = [entry["id"] for entry in load_yaml("references.yaml")["references"]]
    assert len(ids) == len(set(ids))


def test_canadian_brands_are_marked() -> None:
    catalog = load_catalog()
    for ingredient, brand in [
        ("methylphenidate", "Biphentin"),
        ("methylphenidate", "Foquest"),
        ("clonazepam", "Rivotril"),
        ("escitalopram", "Cipralex"),
        ("modafinil", "Alertec"),
    ]:
        assert "CA" in catalog.ingredients[ingredient].brands[brand]


def test_required_rules_exist_with_their_proposed_severity() -> None:
    catalog = load_catalog()
    expected = {
        # Ketalar 7.1 says "consider using an alternative", for both agents alike.
        "ketamine-theophylline": "major",
        "adhd-stimulant-with-maoi": "contraindicated",
        "nri-with-maoi": "contraindicated",
        "bupropion-with-maoi": "contraindicated",
        "serotonergic-antidepressant-with-maoi": "contraindicated",
        "antidepressant-with-mao-b-inhibitor": "major",
        "safinamide-with-snri-or-cyclic-antidepressant": "contraindicated",
        "viloxazine-theophylline": "contraindicated",
        "ketamine-illicit-stimulants": "contraindicated",
        "ketamine-psychostimulants": "moderate",
        "ketamine-noradrenergic-adhd": "moderate",
        "ketamine-maoi": "moderate",
        # Ketalar 7.3 groups benzodiazepines, opioids and other CNS depressants: graded alike,
        # and two or more of them together escalate.
        "ketamine-benzodiazepines": "major",
        "ketamine-hypnotics": "major",
        "ketamine-gabapentinoids": "major",
        "ketamine-alcohol": "major",
        "ketamine-opioids": "major",
        "ketamine-barbiturates-oxybate": "major",
        "several-sedatives-with-ketamine": "contraindicated",
        "ketamine-naltrexone": "moderate",
        "ketamine-lamotrigine": "minor",
        "ketamine-nmda-antagonists": "moderate",
        "ketamine-thyroid-hormone": "minor",
        "ketamine-antihypertensives": "minor",
        "ketamine-ssri": "minor",
        "ketamine-cyp3a4-inhibitors": "minor",
        "ketamine-cyp2b6-inhibitors": "minor",
        "ketamine-cyp-inducers": "minor",
        "ketamine-st-johns-wort": "minor",
    }
    for rule_id, severity in expected.items():
        assert catalog.rule(rule_id).severity == severity, rule_id
    for rule_id in ("ketamine-cyp3a4-inhibitors", "ketamine-st-johns-wort"):
        assert catalog.rule(rule_id).route_severity["oral"] == "moderate"
    # One theophylline rule for both agents (no weaker esketamine variant).
    assert catalog.rule("ketamine-theophylline").agents == ("ketamine", "esketamine")
    with pytest.raises(KeyError):
        catalog.rule("esketamine-theophylline")


@pytest.mark.parametrize(
    ("ingredient", "classes"),
    [
        ("phenelzine", {"maoi", "maoi_antidepressant_contraindicated"}),
        ("selegiline", {"maoi", "maoi_antidepressant_contraindicated", "maoi_b_selective"}),
        ("linezolid", {"maoi", "maoi_antidepressant_contraindicated"}),
        ("methylene blue", {"maoi", "maoi_antidepressant_contraindicated"}),
        ("rasagiline", {"maoi", "maoi_b_selective"}),
        ("safinamide", {"maoi", "maoi_b_selective"}),
    ],
)
def test_mao_inhibitors_are_classed_by_what_the_labels_say(
    ingredient: str, classes: set[str]
) -> None:
    catalog = load_catalog()
    assert classes <= catalog.ingredient_classes[ingredient]
    if "maoi_antidepressant_contraindicated" not in classes:
        assert "maoi_antidepressant_contraindicated" not in catalog.ingredient_classes[ingredient]
    # Every MAOI keeps screening for 14 days after it is stopped, with cited sources.
    assert catalog.ingredient_washout[ingredient] == (14, "maoi")
    assert catalog.classes["maoi"].washout_sources


def test_selegiline_in_every_form_is_one_screened_ingredient() -> None:
    catalog = load_catalog()
    for brand in ("Emsam", "Zelapar", "Eldepryl"):
        assert brand in catalog.ingredients["selegiline"].brands


def test_prescribed_and_street_methamphetamine_are_told_apart() -> None:
    catalog = load_catalog()
    assert "Desoxyn" in catalog.ingredients["methamphetamine"].brands
    assert "illicit_stimulant" in catalog.ingredient_classes["illicit methamphetamine"]
    assert "illicit_stimulant" not in catalog.ingredient_classes["methamphetamine"]
    assert "psychostimulant" not in catalog.ingredient_classes["cocaine"]


def test_identifiers_have_valid_shapes() -> None:
    catalog = load_catalog()
    for ingredient in catalog.ingredients.values():
        for code in ingredient.atc:
            assert len(code) == 7
        if ingredient.rxcui:
            assert ingredient.rxcui.isdigit()


def test_normalise_name() -> None:
    assert normalise_name("St. John's Wort®") == "st johns wort"
    assert normalise_name("Adzenys XR-ODT") == "adzenys xr odt"
    assert normalise_name("  Tylenol  #3 ") == "tylenol 3"


# --- Validation refuses inconsistent data -------------------------------------------------------


def _build(mutate: Any) -> None:
    refs, classes, drugs, rules = (copy.deepcopy(x) for x in raw())
    mutate(refs, classes, drugs, rules)
    build_catalog(refs, classes, drugs, rules, "test")


def test_the_unmodified_files_build() -> None:
    _build(lambda *_: None)


def test_an_unknown_source_is_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        rules["rules"][0]["sources"].append("no-such-reference")

    with pytest.raises(CatalogError, match="no-such-reference"):
        _build(mutate)


def test_an_unknown_class_is_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        drugs["ingredients"][0]["classes"].append("no_such_class")

    with pytest.raises(CatalogError, match="no_such_class"):
        _build(mutate)


def test_a_brand_mapping_to_two_ingredients_is_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        sertraline = next(i for i in drugs["ingredients"] if i["name"] == "sertraline")
        sertraline["brands"]["Xanax"] = ["US"]

    with pytest.raises(CatalogError, match="Xanax"):
        _build(mutate)


def test_a_combination_brand_is_allowed_as_a_product() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        drugs["products"].append(
            {
                "name": "sertraline/alprazolam",
                "ingredients": ["sertraline", "alprazolam"],
                "brands": {"Testcombo": ["US"]},
            }
        )

    _build(mutate)


def test_unknown_fields_are_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        rules["rules"][0]["severty"] = "minor"

    with pytest.raises(CatalogError, match="severty"):
        _build(mutate)


def test_a_class_cycle_is_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        by_id = {c["id"]: c for c in classes["classes"]}
        by_id["psychostimulant"]["parents"] = ["amphetamine_type_stimulant"]

    with pytest.raises(CatalogError, match="cycle"):
        _build(mutate)


def test_a_co_medication_rule_needs_its_partner() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        rule = next(r for r in rules["rules"] if r["id"] == "nri-with-maoi")
        del rule["requires_also"]

    with pytest.raises(CatalogError, match="requires_also"):
        _build(mutate)


def test_a_rule_superseded_by_an_unknown_rule_is_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        rule = next(r for r in rules["rules"] if r["id"] == "ketamine-ssri")
        rule["superseded_by"] = ["no-such-rule"]

    with pytest.raises(CatalogError, match="no-such-rule"):
        _build(mutate)


def test_a_rule_superseded_by_one_that_never_fires_on_its_drugs_is_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        rule = next(r for r in rules["rules"] if r["id"] == "ketamine-ssri")
        rule["superseded_by"] = ["bupropion-with-maoi"]

    with pytest.raises(CatalogError, match="never fires"):
        _build(mutate)


def test_a_washout_without_a_source_is_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        maoi = next(c for c in classes["classes"] if c["id"] == "maoi")
        maoi["washout_sources"] = []

    with pytest.raises(CatalogError, match="washout"):
        _build(mutate)


def test_a_screen_text_with_an_unknown_placeholder_is_refused() -> None:
    def mutate(refs: Any, classes: Any, drugs: Any, rules: Any) -> None:
        rules["screening"]["washout"] += " {no_such_field}"

    with pytest.raises(CatalogError, match="no_such_field"):
        _build(mutate)
