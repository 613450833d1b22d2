"""Cited clinical knowledge kept as data, and the content hash that versions it.

Every clinical rule lives in a YAML file of this package with the ids of its sources
(``references.yaml``). ``KNOWLEDGE_VERSION`` changes whenever any of those files changes, and
every clinical result carries it, so a recorded decision can be traced to the rules in force.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import yaml

KNOWLEDGE_DIR = Path(__file__).resolve().parent


def knowledge_files() -> list[Path]:
    """All data files of the knowledge base, in a stable order."""
    return sorted(p for p in KNOWLEDGE_DIR.rglob("*.yaml") if p.is_file())


@cache
def knowledge_version() -> str:
    """A short content hash over every knowledge file (name and bytes)."""
    digest = hashlib.sha256()
    for path in knowledge_files():
        digest.update(path.relative_to(KNOWLEDGE_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def load_yaml(relative_path: str) -> Any:
    """Parse one knowledge file (path relative to this package)."""
    with (KNOWLEDGE_DIR / relative_path).open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def __getattr__(name: str) -> str:
    # KNOWLEDGE_VERSION is computed on first use, not at import.
    if name == "KNOWLEDGE_VERSION":
        return knowledge_version()
    raise AttributeError(name)
