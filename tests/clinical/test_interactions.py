"""Interaction screening: a table of real medication lists, properties, and the rules document."""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ketacare.clinical.drugs import BroadVocabulary, DrugResolver
from ketacare.clinical.interactions import ScreenResult, StoppedMedication, screen
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.catalog import (
    SEVERITY_RANK,
    abbreviation_index,
    load_catalog,
    normalise_name,
)
from ketacare.reports.rules_doc import render_rules_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "clinical-rules.md"

CTR, MAJ, MOD, MIN = "contraindicated", "major", "moderate", "minor"


@dataclass(frozen=True)
class Case:
    meds: tuple[str, ...]
    findings: frozenset[tuple[str, str, str]]
    agent: str = "ketamine"
    route: str | None = None
    no_known: frozenset[str] = field(default_factory=frozenset)
    unrecognized: frozenset[str] = field(default_factory=frozenset)

    @property
    def id(self) -> str:
        route = self.route or "default"
        return f"{self.agent}-{route}-{'+'.join(self.meds)}"


def case(
    meds: str | tuple[str, ...],
    *findings: tuple[str, str, str],
    agent: str = "ketamine",
    route: str | None = None,
    no_known: tuple[str, ...] = (),
    unrecognized: tuple[str, ...] = (),
) -> Case:
    return Case(
        meds=(meds,) if isinstance(meds, str) else meds,
        findings=frozenset(findings),
        agent=agent,
        route=route,
        no_known=frozenset(no_known),
        unrecognized=frozenset(unrecognized),
    )


PSY = "ketamine-psychostimulants"
NRI = "ketamine-noradrenergic-adhd"
A2 = "ketamine-alpha2-agonists"
MAOI = "ketamine-maoi"
BZD = "ketamine-benzodiazepines"
OPI = "ketamine-opioids"
NMDA = "ketamine-nmda-antagonists"
SYM = "ketamine-sympathomimetics"
AHT = "ketamine-antihypertensives"
SSRI = "ketamine-ssri"
SAH = "ketamine-sedating-antihistamines"
CYP3 = "ketamine-cyp3a4-inhibitors"
CARD = "ketamine-cardiac-disease-therapy"
THEO = "ketamine-theophylline"
BUP_MAOI = "bupropion-with-maoi"
AD_MAOI = "serotonergic-antidepressant-with-maoi"
AD_MAOB = "antidepressant-with-mao-b-inhibitor"
SAFI = "safinamide-with-snri-or-cyclic-antidepressant"
SEDS = "several-sedatives-with-ketamine"
ILLICIT = "ketamine-illicit-stimulants"

CASES = [
    # --- ADHD medicines: US and Canadian brands, free text with strength and release -----------
    case("Concerta 54 mg ER tab", ("methylphenidate", PSY, MOD)),
    case("adderall xr 20mg", ("mixed amphetamine salts", PSY, MOD)),
    case("Adderall", ("mixed amphetamine salts", PSY, MOD)),
    case("Vyvanse 30 mg", ("lisdexamfetamine", PSY, MOD)),
    case("Biphentin 20mg", ("methylphenidate", PSY, MOD)),
    case("Foquest 45 mg cap", ("methylphenidate", PSY, MOD)),
    case("Dexedrine Spansule 10 mg", ("dextroamphetamine", PSY, MOD)),
    case("Focalin XR 10mg", ("dexmethylphenidate", PSY, MOD)),
    case("Azstarys", ("serdexmethylphenidate", PSY, MOD), ("dexmethylphenidate", PSY, MOD)),
    case("Desoxyn", ("methamphetamine", PSY, MOD)),
    case("Evekeo 5 mg", ("amphetamine", PSY, MOD)),
    case("Provigil 200 mg", ("modafinil", PSY, MOD)),
    case("Alertec", ("modafinil", PSY, MOD)),
    case("Nuvigil", ("armodafinil", PSY, MOD)),
    case("Strattera 40 mg", ("atomoxetine", NRI, MOD)),
    case("Qelbree 200mg", ("viloxazine", NRI, MOD)),
    case("Intuniv XR 2mg", ("guanfacine", A2, MOD)),
    case("clonidine 0.1 mg qhs", ("clonidine", A2, MOD)),
    case("Kapvay", ("clonidine", A2, MOD)),
    case("MPH 10 mg", ("methylphenidate", PSY, MOD)),
    case("LDX", ("lisdexamfetamine", PSY, MOD)),
    # --- ADHD co-medication checks (independent of ketamine) ----------------------------------
    case(
        ("Concerta", "Nardil"),
        ("methylphenidate", PSY, MOD),
        ("methylphenidate", "adhd-stimulant-with-maoi", CTR),
        ("phenelzine", MAOI, MOD),
    ),
    case(
        ("Strattera", "Emsam patch"),
        ("atomoxetine", NRI, MOD),
        ("atomoxetine", "nri-with-maoi", CTR),
        ("selegiline", MAOI, MOD),
    ),
    case(
        ("Adderall", "linezolid 600 mg"),
        ("mixed amphetamine salts", PSY, MOD),
        ("mixed amphetamine salts", "adhd-stimulant-with-maoi", CTR),
        ("linezolid", MAOI, MOD),
    ),
    case(
        ("Provigil", "Parnate"),
        ("modafinil", PSY, MOD),
        ("tranylcypromine", MAOI, MOD),
    ),
    case(
        ("Qelbree", "theophylline"),
        ("viloxazine", NRI, MOD),
        ("viloxazine", "viloxazine-theophylline", CTR),
        ("theophylline", THEO, MAJ),
    ),
    case(
        ("Qelbree", "Zanaflex"),
        ("viloxazine", NRI, MOD),
        ("viloxazine", "viloxazine-cyp1a2-substrates", CTR),
        ("tizanidine", A2, MOD),
        ("tizanidine", "ketamine-muscle-relaxants", MOD),
    ),
    case(
        ("Strattera", "Paxil 20 mg"),
        ("atomoxetine", NRI, MOD),
        ("atomoxetine", "atomoxetine-cyp2d6-inhibitors", MOD),
        ("paroxetine", SSRI, MIN),
    ),
    case(
        ("Strattera", "Wellbutrin XL 150"),
        ("atomoxetine", NRI, MOD),
        ("atomoxetine", "atomoxetine-cyp2d6-inhibitors", MOD),
        ("bupropion", "ketamine-bupropion", MIN),
    ),
    # --- Bupropion or an antidepressant with an MAO inhibitor (their labels, section 4) ---------
    case(
        ("Wellbutrin SR 150 mg", "Nardil 15 mg"),
        ("bupropion", BUP_MAOI, CTR),
        ("phenelzine", MAOI, MOD),
    ),
    case(
        ("Wellbutrin XL 300 mg", "Zyvox 600 mg bid"),
        ("bupropion", BUP_MAOI, CTR),
        ("linezolid", MAOI, MOD),
    ),
    case(
        ("bupropion", "methylene blue"), ("bupropion", BUP_MAOI, CTR), ("methylene blue", MAOI, MOD)
    ),
    case(("Zyban", "Zelapar 1.25 mg"), ("bupropion", BUP_MAOI, CTR), ("selegiline", MAOI, MOD)),
    case(("Wellbutrin", "Emsam patch"), ("bupropion", BUP_MAOI, CTR), ("selegiline", MAOI, MOD)),
    case(("Wellbutrin", "Azilect"), ("bupropion", BUP_MAOI, CTR), ("rasagiline", MAOI, MOD)),
    case(
        ("Wellbutrin XL", "Nardil"),
        ("bupropion", BUP_MAOI, CTR),
        ("phenelzine", MAOI, MOD),
        agent="esketamine",
    ),
    case(("sertraline", "phenelzine"), ("sertraline", AD_MAOI, CTR), ("phenelzine", MAOI, MOD)),
    case(("Lexapro 10 mg", "Emsam"), ("escitalopram", AD_MAOI, CTR), ("selegiline", MAOI, MOD)),
    case(("Effexor XR 150", "linezolid"), ("venlafaxine", AD_MAOI, CTR), ("linezolid", MAOI, MOD)),
    case(("Anafranil", "Parnate"), ("clomipramine", AD_MAOI, CTR), ("tranylcypromine", MAOI, MOD)),
    case(
        ("trazodone 50 mg qhs", "Manerix"), ("trazodone", AD_MAOI, CTR), ("moclobemide", MAOI, MOD)
    ),
    case(("Trintellix", "Marplan"), ("vortioxetine", AD_MAOI, CTR), ("isocarboxazid", MAOI, MOD)),
    case(("Zoloft 50 mg", "Azilect 1 mg"), ("sertraline", AD_MAOB, MAJ), ("rasagiline", MAOI, MOD)),
    case(("Zoloft", "Xadago"), ("sertraline", AD_MAOB, MAJ), ("safinamide", MAOI, MOD)),
    case(("Cymbalta", "Xadago 50 mg"), ("duloxetine", SAFI, CTR), ("safinamide", MAOI, MOD)),
    case(("Remeron 15", "Xadago"), ("mirtazapine", SAFI, CTR), ("safinamide", MAOI, MOD)),
    case(("Cymbalta", "Azilect"), ("duloxetine", AD_MAOB, MAJ), ("rasagiline", MAOI, MOD)),
    # --- Theophylline (Ketalar 7.1: "consider using an alternative"; both agents alike) ------
    case("theophylline 300 mg ER", ("theophylline", THEO, MAJ)),
    case("aminophylline", ("aminophylline", THEO, MAJ)),
    case("Uniphyl", ("theophylline", THEO, MAJ), agent="esketamine"),
    # --- CNS depressants (Ketalar 7.3: graded alike; two or more escalate) --------------------
    case("Xanax 0.5 mg prn", ("alprazolam", BZD, MAJ)),
    case("Rivotril 0.5 mg", ("clonazepam", BZD, MAJ)),
    case("Ativan 1mg SL", ("lorazepam", BZD, MAJ)),
    case("Ambien 10mg qhs", ("zolpidem", "ketamine-hypnotics", MAJ)),
    case("Imovane 7.5", ("zopiclone", "ketamine-hypnotics", MAJ)),
    case(
        ("Xanax 0.5 mg prn", "Percocet"),
        ("alprazolam", BZD, MAJ),
        ("alprazolam", SEDS, CTR),
        ("oxycodone", OPI, MAJ),
        ("oxycodone", SEDS, CTR),
        no_known=("acetaminophen",),
    ),
    case(
        ("Lyrica 75mg bid", "methadone 80mg daily"),
        ("pregabalin", "ketamine-gabapentinoids", MAJ),
        ("pregabalin", SEDS, CTR),
        ("methadone", OPI, MAJ),
        ("methadone", SEDS, CTR),
    ),
    case(
        ("Ambien", "Klonopin"),
        ("zolpidem", "ketamine-hypnotics", MAJ),
        ("zolpidem", SEDS, CTR),
        ("clonazepam", BZD, MAJ),
        ("clonazepam", SEDS, CTR),
        agent="esketamine",
    ),
    case(("Xanax", "wine"), ("alprazolam", BZD, MAJ), ("alcohol", "ketamine-alcohol", MAJ)),
    case("Percocet", ("oxycodone", OPI, MAJ), no_known=("acetaminophen",)),
    case("Vicodin", ("hydrocodone", OPI, MAJ), no_known=("acetaminophen",)),
    case("Tylenol #3", ("codeine", OPI, MAJ), no_known=("acetaminophen",)),
    case("Suboxone 8/2 mg", ("buprenorphine", OPI, MAJ), no_known=("naloxone",)),
    case("tramadol 50 mg q6h prn", ("tramadol", OPI, MAJ)),
    case("methadone 80mg daily", ("methadone", OPI, MAJ)),
    case(
        "Phenobarbital 30 mg",
        ("phenobarbital", "ketamine-barbiturates-oxybate", MAJ),
        ("phenobarbital", "ketamine-cyp-inducers", MIN),
    ),
    case(
        "Fioricet",
        ("butalbital", "ketamine-barbiturates-oxybate", MAJ),
        ("caffeine", "ketamine-caffeine-nicotine", MIN),
        no_known=("acetaminophen",),
    ),
    case("Xyrem", ("sodium oxybate", "ketamine-barbiturates-oxybate", MAJ)),
    case("Lyrica 75mg bid", ("pregabalin", "ketamine-gabapentinoids", MAJ)),
    case("Flexeril", ("cyclobenzaprine", "ketamine-muscle-relaxants", MOD)),
    case("Seroquel 25 mg", ("quetiapine", "ketamine-antipsychotics-sedating", MOD)),
    case("Abilify 5mg", ("aripiprazole", "ketamine-antipsychotics-less-sedating", MIN)),
    case("Phenergan", ("promethazine", SAH, MOD)),
    case("Benadryl", ("diphenhydramine", SAH, MOD)),
    case("Atarax 25mg", ("hydroxyzine", SAH, MOD)),
    case("Bonine", ("meclizine", SAH, MOD)),
    case("Gravol", ("dimenhydrinate", SAH, MOD)),
    case("beer", ("alcohol", "ketamine-alcohol", MAJ)),
    case("marijuana", ("cannabis", "ketamine-cannabis", MOD)),
    # --- Antidepressants: informational, no serotonin-syndrome claim ---------------------------
    case("Lexapro 10mg", ("escitalopram", SSRI, MIN)),
    case("Cipralex", ("escitalopram", SSRI, MIN)),
    case("sertraline 50mg po daily", ("sertraline", SSRI, MIN)),
    case("Effexor XR 150", ("venlafaxine", "ketamine-snri", MIN)),
    case("amitriptyline 25 mg qhs", ("amitriptyline", "ketamine-tca", MIN)),
    case("Remeron 15", ("mirtazapine", "ketamine-sedating-antidepressants", MIN)),
    case("Trintellix", ("vortioxetine", SSRI, MIN)),
    case(
        "Symbyax",
        ("olanzapine", "ketamine-antipsychotics-sedating", MOD),
        ("fluoxetine", SSRI, MIN),
    ),
    # --- Naltrexone, lamotrigine, NMDA antagonists, combinations ------------------------------
    case(
        "Contrave",
        ("naltrexone", "ketamine-naltrexone", MOD),
        ("bupropion", "ketamine-bupropion", MIN),
    ),
    case(
        "Bupropion/naltrexone (Contrave)",
        ("naltrexone", "ketamine-naltrexone", MOD),
        ("bupropion", "ketamine-bupropion", MIN),
    ),
    case("Vivitrol", ("naltrexone", "ketamine-naltrexone", MOD)),
    case(
        "Lybalvi",
        ("olanzapine", "ketamine-antipsychotics-sedating", MOD),
        ("samidorphan", "ketamine-naltrexone", MOD),
    ),
    case("Lamictal 200 mg", ("lamotrigine", "ketamine-lamotrigine", MIN)),
    case("Namenda", ("memantine", NMDA, MOD)),
    case("Ebixa 10 mg", ("memantine", NMDA, MOD)),
    case("amantadine", ("amantadine", NMDA, MOD)),
    case(
        "NyQuil",
        ("dextromethorphan", NMDA, MOD),
        ("doxylamine", SAH, MOD),
        no_known=("acetaminophen",),
    ),
    case(
        "DayQuil",
        ("dextromethorphan", NMDA, MOD),
        ("phenylephrine", SYM, MOD),
        no_known=("acetaminophen",),
    ),
    case(
        "Auvelity",
        ("dextromethorphan", NMDA, MOD),
        ("bupropion", "ketamine-bupropion", MIN),
    ),
    case("Nuedexta", ("dextromethorphan", NMDA, MOD), ("quinidine", CARD, MIN)),
    # --- Sympathomimetics and nasal products --------------------------------------------------
    case("Sudafed 60 mg", ("pseudoephedrine", SYM, MOD)),
    case("Claritin-D", ("pseudoephedrine", SYM, MOD), no_known=("loratadine",)),
    case("phenylephrine 10mg", ("phenylephrine", SYM, MOD)),
    case("EpiPen", ("epinephrine", SYM, MOD)),
    case("Afrin nasal spray", ("oxymetazoline", "ketamine-nasal-decongestants", MIN)),
    case(
        ("Flonase", "Afrin"),
        ("fluticasone", "esketamine-nasal-products-timing", MIN),
        ("oxymetazoline", "esketamine-nasal-products-timing", MIN),
        agent="esketamine",
    ),
    case("Flonase", no_known=("fluticasone",)),
    case("Sudafed", ("pseudoephedrine", "esketamine-sympathomimetics", MOD), agent="esketamine"),
    # --- Illicit stimulants: their own rule, not the prescribed-stimulant one -----------------
    case("cocaine", ("cocaine", ILLICIT, CTR)),
    case("crack cocaine", ("cocaine", ILLICIT, CTR)),
    case("crystal meth", ("illicit methamphetamine", ILLICIT, CTR)),
    case("meth", ("illicit methamphetamine", ILLICIT, CTR)),
    case("ecstasy", ("mdma", ILLICIT, CTR)),
    case("MDMA", ("mdma", ILLICIT, CTR), agent="esketamine"),
    case(("cocaine", "Nardil"), ("cocaine", ILLICIT, CTR), ("phenelzine", MAOI, MOD)),
    # --- Thyroid, cardiovascular --------------------------------------------------------------
    case("Synthroid 100 mcg", ("levothyroxine", "ketamine-thyroid-hormone", MIN)),
    case("Cytomel", ("liothyronine", "ketamine-thyroid-hormone", MIN)),
    case("lisinopril 10mg", ("lisinopril", AHT, MIN)),
    case("metoprolol succinate 50", ("metoprolol", AHT, MIN)),
    case("Hyzaar", ("losartan", AHT, MIN), ("hydrochlorothiazide", AHT, MIN)),
    case("prazosin 1 mg qhs", ("prazosin", AHT, MIN)),
    case("diltiazem", ("diltiazem", AHT, MIN), ("diltiazem", CYP3, MIN)),
    case("Aldomet", ("methyldopa", A2, MOD)),
    case("Cordarone", ("amiodarone", CARD, MIN)),
    case("Lanoxin", ("digoxin", CARD, MIN)),
    # --- Route-dependent pharmacokinetics -----------------------------------------------------
    case("clarithromycin 500 mg bid", ("clarithromycin", CYP3, MIN)),
    case("clarithromycin 500 mg bid", ("clarithromycin", CYP3, MOD), route="oral"),
    case("Biaxin", ("clarithromycin", CYP3, MOD), route="sublingual"),
    case("Biaxin", ("clarithromycin", CYP3, MOD), route="intranasal"),
    case("Biaxin", ("clarithromycin", "esketamine-cyp3a4-inhibitors", MIN), agent="esketamine"),
    case(
        "Biaxin",
        ("clarithromycin", "esketamine-cyp3a4-inhibitors", MOD),
        agent="esketamine",
        route="oral",
    ),
    case("grapefruit juice", ("grapefruit", CYP3, MOD), route="oral"),
    case("Paxlovid", ("ritonavir", CYP3, MIN), no_known=("nirmatrelvir",)),
    case("rifampin 600 mg", ("rifampin", "ketamine-cyp-inducers", MIN), route="im"),
    case("Rifadin", ("rifampin", "ketamine-cyp-inducers", MOD), route="oral"),
    case("St John's wort", ("st john's wort", "ketamine-st-johns-wort", MIN)),
    case("hypericum", ("st john's wort", "ketamine-st-johns-wort", MOD), route="oral"),
    case("Tegretol CR", ("carbamazepine", "ketamine-cyp-inducers", MIN)),
    case("Plavix 75 mg", ("clopidogrel", "ketamine-cyp2b6-inhibitors", MIN)),
    case("Plavix 75 mg", ("clopidogrel", "ketamine-cyp2b6-inhibitors", MOD), route="oral"),
    case(
        "ticlopidine",
        ("ticlopidine", "esketamine-cyp2b6-inhibitors", MIN),
        agent="esketamine",
    ),
    # --- Ketamine itself ----------------------------------------------------------------------
    case("Ketalar", ("ketamine", "ketamine-duplicate-therapy", MAJ)),
    case("Spravato 56 mg", ("esketamine", "ketamine-duplicate-therapy", MAJ)),
    # --- Reviewed, no known interaction (seed errors corrected) --------------------------------
    case("ibuprofen 400 mg", no_known=("ibuprofen",)),
    case("Advil", no_known=("ibuprofen",)),
    case("azithromycin", no_known=("azithromycin",)),
    case("amoxicillin 500mg tid", no_known=("amoxicillin",)),
    case("Augmentin", no_known=("amoxicillin", "clavulanic acid")),
    case("Tylenol Extra Strength", no_known=("acetaminophen",)),
    case("metformin 500mg bid", no_known=("metformin",)),
    case("Lipitor", no_known=("atorvastatin",)),
    case("Losec", no_known=("omeprazole",)),
    case("Ventolin", no_known=("albuterol",)),
    case("Reactine", no_known=("cetirizine",)),
    case("Yaz", no_known=("drospirenone", "ethinylestradiol")),
    case("ondansetron 4mg", no_known=("ondansetron",)),
    case("lithium carbonate 300 mg", no_known=("lithium",)),
    # --- Typos and unrecognised entries -------------------------------------------------------
    case("sertralin", ("sertraline", SSRI, MIN)),
    case("vyvance", ("lisdexamfetamine", PSY, MOD)),
    case("klonopine", ("clonazepam", BZD, MAJ)),
    case("qwzxv", unrecognized=("qwzxv",)),
    # --- A whole clinic list ------------------------------------------------------------------
    case(
        ("Vyvanse 40mg", "Xanax 0.5 mg prn", "Percocet", "ibuprofen", "Synthroid"),
        ("lisdexamfetamine", PSY, MOD),
        ("alprazolam", BZD, MAJ),
        ("alprazolam", SEDS, CTR),
        ("oxycodone", OPI, MAJ),
        ("oxycodone", SEDS, CTR),
        ("levothyroxine", "ketamine-thyroid-hormone", MIN),
        no_known=("acetaminophen", "ibuprofen"),
    ),
]


def _found(result: ScreenResult) -> frozenset[tuple[str, str, str]]:
    return frozenset((f.ingredient, f.rule_id, f.severity) for f in result.findings)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_screen_table(c: Case) -> None:
    result = screen(list(c.meds), agent=c.agent, route=c.route)  # type: ignore[arg-type]
    assert _found(result) == c.findings
    assert {e.ingredient for e in result.no_known_interaction} == c.no_known
    assert {u.input for u in result.unrecognized} == c.unrecognized


def test_the_table_has_at_least_sixty_real_cases() -> None:
    assert len(CASES) >= 60


def test_findings_are_sorted_by_severity_then_ingredient() -> None:
    result = screen(["ibuprofen", "Synthroid", "Percocet", "Concerta", "Nardil", "Xanax"])
    keys = [(SEVERITY_RANK[f.severity], f.ingredient, f.rule_id) for f in result.findings]
    assert keys == sorted(keys)
    assert result.highest_severity == "contraindicated"


def test_defaults_and_version() -> None:
    assert screen(["Xanax"]).route == "iv"
    assert screen(["Xanax"], agent="esketamine").route == "intranasal"
    assert screen(["Xanax"]).knowledge_version == knowledge_version()


@pytest.mark.parametrize(("agent", "route"), [("ketamine", "rectal"), ("propofol", None)])
def test_it_refuses_an_unknown_agent_or_route(agent: str, route: str | None) -> None:
    with pytest.raises(ValueError, match="must be one of"):
        screen(["Xanax"], agent=agent, route=route)  # type: ignore[arg-type]


def test_two_inputs_for_one_ingredient_give_one_finding_that_keeps_both_inputs() -> None:
    result = screen(["Concerta 36 mg", "methylphenidate"])
    [finding] = result.findings
    assert finding.inputs == ("Concerta 36 mg", "methylphenidate")
    assert finding.input == "Concerta 36 mg; methylphenidate"


def test_a_finding_explains_why_it_matched() -> None:
    [finding] = screen(["Strattera"]).findings
    assert "atomoxetine is in class noradrenergic_reuptake_inhibitor" in finding.reasons[0]
    co = next(f for f in screen(["Strattera", "Nardil"]).findings if f.kind == "co_medication")
    assert any("phenelzine" in reason for reason in co.reasons)
    routed = screen(["clarithromycin"], route="oral").findings[0]
    assert any("route oral" in reason for reason in routed.reasons)


def test_seed_errors_are_not_reproduced() -> None:
    sertraline = screen(["Zoloft"]).findings[0]
    assert sertraline.severity == "minor"
    # The evidence is stated as what it is (none observed in case series), never as absolute.
    assert "does not cause serotonin syndrome" not in sertraline.effect
    assert "not proof" in sertraline.effect
    assert "monotherapy" in sertraline.effect
    benzo = screen(["Ativan"]).findings[0]
    assert "not CYP3A4 inhibitors" in benzo.effect
    assert screen(["Zithromax"]).findings == ()
    assert [f.rule_id for f in screen(["Sudafed PE"]).findings] == [SYM]
    xanax = screen(["Xanax"]).findings[0]
    assert xanax.ingredient == "alprazolam" and xanax.rule_id == BZD


# --- MAO inhibitors: no "continue" advice beside one; a recently stopped one still counts ------

SEROTONERGIC = (
    "ssri",
    "snri",
    "tca",
    "serotonergic_antidepressant_other",
    "sedating_antidepressant",
)
BENIGN = {"ketamine-ssri", "ketamine-snri", "ketamine-tca", "ketamine-sedating-antidepressants"}


def _members(*class_ids: str) -> list[str]:
    catalog = load_catalog()
    return sorted(set().union(*(catalog.class_members[c] for c in class_ids)))


@pytest.mark.parametrize("maoi", _members("maoi"))
def test_no_antidepressant_keeps_its_continue_advice_beside_any_mao_inhibitor(maoi: str) -> None:
    for antidepressant in [*_members(*SEROTONERGIC), "bupropion"]:
        result = screen([antidepressant, maoi])
        own = [f for f in result.findings if f.ingredient == antidepressant]
        assert own, (antidepressant, maoi)
        assert not [f for f in own if f.rule_id in BENIGN | {"ketamine-bupropion"}], (
            antidepressant,
            maoi,
        )
        assert not [f for f in own if f.management.startswith("Continue")], (antidepressant, maoi)
        assert own[0].severity in ("contraindicated", "major"), (antidepressant, maoi)


def test_sertraline_with_phenelzine_never_says_continue() -> None:
    result = screen(["sertraline 100 mg", "phenelzine 15 mg tid"])
    assert result.highest_severity == "contraindicated"
    assert all("Continue" not in f.management for f in result.findings)
    [co] = [f for f in result.findings if f.ingredient == "sertraline"]
    assert co.rule_id == "serotonergic-antidepressant-with-maoi"
    assert any("replaces ketamine-ssri" in reason for reason in co.reasons)
    # Without the MAOI the informational advice is back.
    [alone] = screen(["sertraline 100 mg"]).findings
    assert alone.rule_id == "ketamine-ssri" and alone.management.startswith("Continue")


AS_OF = date(2025, 6, 1)


@pytest.mark.parametrize(
    ("days_ago", "screened"), [(0, True), (5, True), (14, True), (15, False), (20, False)]
)
def test_a_stopped_mao_inhibitor_is_screened_until_its_washout_ends(
    days_ago: int, screened: bool
) -> None:
    stopped = AS_OF - timedelta(days=days_ago)
    result = screen(
        ["Wellbutrin XL 300 mg"],
        stopped=[StoppedMedication("phenelzine 15 mg", stopped)],
        as_of=AS_OF,
    )
    rules = {f.rule_id for f in result.findings}
    if not screened:
        assert rules == {"ketamine-bupropion"}
        assert result.stopped_screened == ()
        return
    assert rules == {"bupropion-with-maoi", MAOI}
    until = (stopped + timedelta(days=14)).isoformat()
    for finding in result.findings:
        assert finding.washout, finding.rule_id
        assert f"stopped on {stopped.isoformat()}" in finding.washout[0]
        assert f"runs until {until}" in finding.washout[0]
    maoi = next(f for f in result.findings if f.rule_id == MAOI)
    assert maoi.input == f"phenelzine 15 mg (stopped {stopped.isoformat()})"
    [washout] = result.stopped_screened
    assert (washout.ingredient, washout.until) == ("phenelzine", stopped + timedelta(days=14))
    assert washout.to_json_dict()["washout_until"] == until


def test_a_stopped_mao_inhibitor_without_a_stop_date_is_still_screened() -> None:
    result = screen(["Zoloft"], stopped=[StoppedMedication("Parnate", None)], as_of=AS_OF)
    co = next(f for f in result.findings if f.ingredient == "sertraline")
    assert co.severity == "contraindicated"
    assert "without a stop date" in co.washout[0]


def test_a_stopped_medicine_without_a_washout_is_not_screened() -> None:
    result = screen(["Nardil"], stopped=[StoppedMedication("Zoloft", AS_OF)], as_of=AS_OF)
    assert [f.rule_id for f in result.findings] == [MAOI]


def test_a_current_entry_wins_over_a_stopped_one() -> None:
    result = screen(
        ["Nardil"],
        stopped=[StoppedMedication("phenelzine", AS_OF - timedelta(days=3))],
        as_of=AS_OF,
    )
    [finding] = result.findings
    assert finding.inputs == ("Nardil",) and finding.washout == ()


def test_an_unrecognised_recently_stopped_entry_is_unknown_never_safe() -> None:
    recent = StoppedMedication("zqxvw", AS_OF - timedelta(days=3))
    old = StoppedMedication("qqzzx", AS_OF - timedelta(days=200))
    result = screen([], stopped=[recent, old], as_of=AS_OF)
    assert [u.input for u in result.unrecognized] == [f"zqxvw (stopped {recent.stop_date})"]


def test_stopped_medicines_need_the_screening_date() -> None:
    with pytest.raises(ValueError, match="as_of"):
        screen(["Zoloft"], stopped=[StoppedMedication("Nardil", AS_OF)])


# --- CNS depressants and illicit stimulants ------------------------------------------------------


def test_any_two_sedatives_together_are_worse_than_either_alone() -> None:
    members = _members("sedative_respiratory_depressant")
    for first in members:
        alone = screen([first])
        assert alone.highest_severity == "major", first
    for first, second in itertools.pairwise(members):
        both = screen([first, second])
        assert both.highest_severity == "contraindicated", (first, second)
        rules = {(f.ingredient, f.rule_id) for f in both.findings}
        assert {(first, SEDS), (second, SEDS)} <= rules


def test_illicit_stimulants_never_get_the_prescribed_stimulant_advice() -> None:
    for entry in ("cocaine", "crystal meth", "ecstasy"):
        result = screen([entry])
        assert [f.rule_id for f in result.findings] == [ILLICIT], entry
        assert "Do not dose after recent use" in result.findings[0].management
    [desoxyn] = screen(["Desoxyn 5 mg"]).findings
    assert desoxyn.rule_id == PSY


def test_mao_evidence_is_quoted_with_its_figures() -> None:
    [finding] = screen(["Parnate"]).findings
    assert "509 IV or subcutaneous esketamine sessions in 43 patients" in finding.effect
    assert "14 of them on tranylcypromine" in finding.effect
    assert "no hypertensive crises" in finding.effect


def test_theophylline_quotes_ketalar_and_grades_both_agents_alike() -> None:
    [ketamine] = screen(["theophylline"]).findings
    [esketamine] = screen(["theophylline"], agent="esketamine").findings
    assert ketamine.severity == esketamine.severity == "major"
    assert "Consider using an alternative to KETALAR" in ketamine.effect


def test_rules_with_conflicting_evidence_say_so() -> None:
    catalog = load_catalog()
    for rule_id in (
        "ketamine-benzodiazepines",
        "ketamine-naltrexone",
        "ketamine-lamotrigine",
        "ketamine-alpha2-agonists",
        "ketamine-cyp3a4-inhibitors",
    ):
        assert catalog.rule(rule_id).conflict, rule_id


def test_json_contract() -> None:
    data = screen(["Concerta", "ibuprofen", "Lamisil", "zzqxv"]).to_json_dict()
    assert set(data) == {
        "agent",
        "route",
        "knowledge_version",
        "findings",
        "no_known_interaction",
        "not_reviewed",
        "unrecognized",
        "stopped_screened",
    }
    finding = data["findings"][0]
    assert {
        "input",
        "ingredient",
        "rule_id",
        "severity",
        "mechanism",
        "effect",
        "management",
        "sources",
    } <= set(finding)
    assert data["no_known_interaction"] == [{"input": "ibuprofen", "ingredient": "ibuprofen"}]
    assert data["unrecognized"][0]["input"] == "zzqxv"
    assert isinstance(data["unrecognized"][0]["suggestions"], list)
    for entry in data["not_reviewed"]:
        assert set(entry) == {"input", "ingredient"}


def _fake_resolver() -> DrugResolver:
    vocabulary = BroadVocabulary(
        names={
            "zorblamab": ("zorblamab",),
            "dilaudidium": ("hydromorphone",),
            "tylox": ("acetaminophen",),
        },
        source="test",
    )
    return DrugResolver(catalog=load_catalog(), broad_loader=lambda: vocabulary)


def test_broad_vocabulary_names_are_not_reviewed_never_safe() -> None:
    result = screen(["zorblamab 10 mg", "tylox"], resolver=_fake_resolver())
    assert {e.ingredient for e in result.not_reviewed} == {"zorblamab", "acetaminophen"}
    assert result.no_known_interaction == ()


def test_a_broad_alias_of_a_curated_drug_still_gets_its_rules() -> None:
    result = screen(["dilaudidium"], resolver=_fake_resolver())
    assert _found(result) == {("hydromorphone", OPI, MAJ)}


def test_rules_document_is_not_stale() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_rules_markdown(load_catalog()), (
        "docs/clinical-rules.md is stale: run `ketacare knowledge docs`"
    )


# --- Properties ----------------------------------------------------------------------------------

POOL = [
    "Concerta 54 mg ER tab",
    "adderall xr 20mg",
    "Nardil",
    "Strattera",
    "Xanax 0.5 mg prn",
    "Percocet",
    "ibuprofen",
    "Synthroid",
    "clarithromycin",
    "Qelbree",
    "theophylline",
    "Lamictal",
    "vyvance",
    "qwzxv",
    "methylphenidate",
    "NyQuil",
    "Claritin-D",
    "Contrave",
    "Intuniv",
    "Paxil",
]


def _canonical(result: ScreenResult) -> dict[str, object]:
    return result.to_json_dict()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_order_never_changes_the_result(meds: list[str], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(meds)
    rnd.shuffle(shuffled)
    for agent, route in (("ketamine", None), ("ketamine", "oral"), ("esketamine", None)):
        assert _canonical(screen(meds, agent=agent, route=route)) == _canonical(  # type: ignore[arg-type]
            screen(shuffled, agent=agent, route=route)  # type: ignore[arg-type]
        )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=8), st.data())
def test_duplicates_never_add_findings(meds: list[str], data: st.DataObject) -> None:
    extra = data.draw(st.lists(st.sampled_from(meds), min_size=1, max_size=5))
    base = screen(meds)
    doubled = screen(meds + extra)
    assert len(doubled.findings) == len(base.findings)
    assert _found(doubled) == _found(base)


_CONSONANTS = "bcdfghjklmnpqrstvwxz"


def _is_known_name(text: str) -> bool:
    """True when the text, or a word in it ("gtn" in "gtn/0"), is a known name or abbreviation:
    such input is not junk."""
    catalog = load_catalog()
    keys = {normalise_name(text), *re.findall(r"[a-z]+", text.lower())}
    return any(k in catalog.aliases or k in abbreviation_index(catalog) for k in keys)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    st.one_of(
        st.text(alphabet=string.digits + string.punctuation + " \t", max_size=30),
        st.text(alphabet=_CONSONANTS + " 0123456789-/", min_size=1, max_size=25),
    )
)
def test_junk_never_raises_and_is_never_called_safe(junk: str) -> None:
    assume(not _is_known_name(junk))
    result = screen([junk])
    assert result.no_known_interaction == ()
    assert result.findings == ()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=6))
def test_arbitrary_text_never_raises_and_no_entry_is_dropped(meds: list[str]) -> None:
    result = screen(meds)
    accounted: set[str] = set()
    for finding in result.findings:
        accounted.update(finding.inputs)
    for entry in (*result.no_known_interaction, *result.not_reviewed):
        accounted.update(entry.inputs)
    accounted.update(u.input for u in result.unrecognized)
    assert {m for m in meds if m.strip()} <= accounted
