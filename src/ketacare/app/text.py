"""Text folding for search keys: case-, accent- and space-insensitive."""

from __future__ import annotations

import unicodedata


def fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def like_prefix(value: str) -> str:
    """A LIKE pattern matching values that start with ``value`` (wildcards escaped)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
