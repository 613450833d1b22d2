"""The Evidence page: every reference of the knowledge base, its evidence level, and every
rule, setting, text and definition that cites it (or that nothing does).

The knowledge files are validated by their own loaders first, so the page shows only
knowledge that loads; the citations are then collected from every knowledge file, so a rule
added to any file appears here without a change to this page.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ketacare.app.reports import load_faq
from ketacare.knowledge import KNOWLEDGE_DIR, knowledge_files, knowledge_version, load_yaml
from ketacare.knowledge.catalog import Reference, load_catalog
from ketacare.knowledge.eligibility_defs import load_contraindications, load_eligibility
from ketacare.knowledge.hazard_defs import load_hazards
from ketacare.knowledge.instrument_defs import load_instruments
from ketacare.knowledge.protocol_defs import load_monitoring, load_protocols_file
from ketacare.knowledge.session_defs import load_session_checks
from ketacare.knowledge.therapy_defs import load_therapy
from ketacare.web.auth import CurrentPrincipal
from ketacare.web.ui.render import render

router = APIRouter()

EVIDENCE_TEXT = {
    "V": "read in the primary source",
    "S": "read in a secondary source",
    "M": "not verified",
}
# What cites a reference, by knowledge file and (for some files) its top-level section.
CATEGORY: dict[tuple[str, str | None], str] = {
    ("interactions.yaml", None): "Interaction rules",
    ("protocols.yaml", "protocols"): "Protocols",
    ("protocols.yaml", "order_settings"): "Dose-order settings",
    ("monitoring.yaml", "settings"): "Monitoring settings",
    ("monitoring.yaml", "plausibility"): "Monitoring settings",
    ("monitoring.yaml", "bp_gate"): "Blood-pressure gate",
    ("monitoring.yaml", "alerts"): "Alert rules",
    ("monitoring.yaml", "discharge"): "Discharge criteria",
    ("monitoring.yaml", "vital_sign_codes"): "Vital-sign codes",
    ("session_checks.yaml", "prechecks"): "Pre-dose checks",
    ("session_checks.yaml", None): "Adverse events",
    ("contraindications.yaml", None): "Contraindications",
    ("eligibility.yaml", None): "Eligibility rules",
    ("therapy.yaml", None): "Therapy vocabulary",
    ("outcomes.yaml", None): "Outcome definitions",
    ("consent.yaml", None): "Consent text",
    ("faq.yaml", None): "Patient information sheet and FAQ",
    ("fhir_codes.yaml", None): "FHIR export codes",
    ("instruments", None): "Instruments",
    ("hazards.yaml", None): "Safety case (hazard log)",
}
CATEGORY_ORDER = tuple(dict.fromkeys(CATEGORY.values()))
# Keys that name an entry of a list, best first.
_NAME_KEYS = ("id", "code", "key", "band", "topic", "name", "label", "question")
_TITLE_KEYS = ("title", "short_name", "label", "name", "question")
# Loaders of knowledge that may or may not be installed (module, function).
_OPTIONAL_LOADERS = (
    ("ketacare.knowledge.outcome_defs", "load_outcomes"),
    ("ketacare.knowledge.fhir_code_defs", "load_fhir_codes"),
)


@dataclass(frozen=True, order=True)
class Citation:
    category: str
    label: str


@dataclass(frozen=True)
class EvidenceEntry:
    reference: Reference
    evidence_text: str
    summary: str
    cited_by: dict[str, list[str]]

    @property
    def cited(self) -> bool:
        return bool(self.cited_by)

    @property
    def pubmed_url(self) -> str | None:
        return (
            f"https://pubmed.ncbi.nlm.nih.gov/{self.reference.pmid}/"
            if self.reference.pmid
            else None
        )

    @property
    def doi_url(self) -> str | None:
        return f"https://doi.org/{self.reference.doi}" if self.reference.doi else None


def _validate_knowledge() -> None:
    """Every loader checks its file (and that its sources exist) before the page lists them."""
    load_catalog()
    load_protocols_file()
    load_monitoring()
    load_session_checks()
    load_instruments()
    load_therapy()
    load_contraindications()
    load_eligibility()
    load_hazards()
    load_faq()
    for module_name, function in _OPTIONAL_LOADERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        loader = getattr(module, function, None)
        if loader is not None:
            loader()


def _entry_name(node: dict[str, Any]) -> str | None:
    for key in _NAME_KEYS:
        value = node.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def _pretty(segment: str) -> str:
    return segment.replace("_", " ")


def _walk(node: Any, trail: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """(where, source id) for every ``sources`` (or ``*_sources``) list under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            key = str(key)
            if key == "sources" or key.endswith("_sources"):
                if isinstance(value, list):
                    where = trail if key == "sources" else (*trail, key.removesuffix("_sources"))
                    for source in value:
                        yield where, str(source)
                continue
            yield from _walk(value, (*trail, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            name = _entry_name(item) if isinstance(item, dict) else None
            yield from _walk(item, (*trail, name or str(index + 1)))


def _titles(raw: Any) -> dict[tuple[str, ...], str]:
    """Readable titles of the named entries of lists (a rule's title, a scale's name)."""
    out: dict[tuple[str, ...], str] = {}

    def visit(node: Any, trail: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                visit(value, (*trail, str(key)))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if not isinstance(item, dict):
                    continue
                name = _entry_name(item) or str(index + 1)
                title = next(
                    (str(item[k]) for k in _TITLE_KEYS if isinstance(item.get(k), str)), None
                )
                if title and title != name:
                    out[(*trail, name)] = title
                visit(item, (*trail, name))

    visit(raw, ())
    return out


def _citations(relative: str, raw: Any) -> Iterator[tuple[str, Citation]]:
    parts = relative.split("/")
    titles = _titles(raw)
    if parts[0] == "instruments":
        name = (raw.get("short_name") or raw.get("name")) if isinstance(raw, dict) else None
        file_key, prefix = "instruments", (str(name or parts[-1]),)
    else:
        file_key, prefix = relative, ()
    for where, source in _walk(raw, ()):
        top = where[0] if where else None
        category = CATEGORY.get((file_key, top)) or CATEGORY.get((file_key, None))
        if category is None:
            category = f"Other knowledge ({relative})"
        # The section name repeats the category ("alerts", "rules"); the entry is what matters.
        steps = where[1:] if len(where) > 1 and isinstance(raw.get(where[0]), list) else where
        label_parts = [*prefix, *(_pretty(s) for s in steps)]
        if len(where) == 2 and where in titles:
            # The entry itself cites: name it by its title too ("ketamine-opioids (Opioids)").
            label_parts[-1] += f" ({titles[where]})"
        label = " › ".join(p for p in label_parts if p) or relative
        yield source, Citation(category, label)


@cache
def _index(version: str) -> tuple[EvidenceEntry, ...]:
    """Cached per knowledge version (the version changes whenever any file does)."""
    _validate_knowledge()
    references = load_catalog().references
    cited: dict[str, set[Citation]] = defaultdict(set)
    for path in knowledge_files():
        relative = path.relative_to(KNOWLEDGE_DIR).as_posix()
        if relative in ("references.yaml", "drugs.yaml", "drug_classes.yaml"):
            continue
        for source, citation in _citations(relative, load_yaml(relative)):
            cited[source].add(citation)
    entries = []
    for ref_id, ref in references.items():
        groups: dict[str, list[str]] = defaultdict(list)
        for c in sorted(cited.get(ref_id, ())):
            groups[c.category].append(c.label)
        ordered = {k: groups[k] for k in sorted(groups, key=_category_rank)}
        entries.append(
            EvidenceEntry(
                reference=ref,
                evidence_text=EVIDENCE_TEXT[ref.evidence],
                summary=ref.note or ref.title,
                cited_by=ordered,
            )
        )
    return tuple(entries)


def _category_rank(category: str) -> tuple[int, str]:
    if category in CATEGORY_ORDER:
        return CATEGORY_ORDER.index(category), category
    return len(CATEGORY_ORDER), category


def evidence_index() -> tuple[EvidenceEntry, ...]:
    """Every reference, in the order of references.yaml, with what cites it."""
    return _index(knowledge_version())


@router.get("/evidence")
def evidence_page(
    request: Request,
    principal: CurrentPrincipal,
    level: Annotated[str, Query(pattern="^(|V|S|M)$")] = "",
    uncited: Annotated[bool, Query()] = False,
) -> Response:
    entries = evidence_index()
    shown = [
        e
        for e in entries
        if (not level or e.reference.evidence == level) and (not uncited or not e.cited)
    ]
    counts = {lvl: sum(e.reference.evidence == lvl for e in entries) for lvl in EVIDENCE_TEXT}
    return render(
        request,
        "evidence/page.html",
        principal,
        entries=shown,
        total=len(entries),
        counts=counts,
        uncited_count=sum(not e.cited for e in entries),
        level=level,
        uncited=uncited,
        evidence_text=EVIDENCE_TEXT,
        knowledge_version=knowledge_version(),
    )
