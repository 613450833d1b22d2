"""insert_new: one statement that stores the rows not already there and says which it stored,
on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.store.db import insert_new
from ketacare.store.models import Clinic

TABLE = Clinic.__table__
WHEN = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _rows(*slugs: str) -> list[dict[str, object]]:
    return [
        {
            "slug": slug,
            "name": f"Clinic {slug}",
            "timezone": "Europe/Paris",
            "settings_version": 3,
            "created_at": WHEN + timedelta(minutes=i),
        }
        for i, slug in enumerate(slugs)
    ]


def test_returns_what_it_stored_and_skips_what_was_there(db: Session) -> None:
    first = insert_new(db, TABLE, _rows("north", "south"), returning=("id", "slug"))  # type: ignore[arg-type]
    assert sorted(slug for _, slug in first) == ["north", "south"]
    again = insert_new(db, TABLE, _rows("south", "east", "north"), returning=("id", "slug"))  # type: ignore[arg-type]
    assert [slug for _, slug in again] == ["east"]
    db.commit()
    stored = {c.slug: c for c in db.scalars(select(Clinic))}
    assert set(stored) == {"north", "south", "east"}
    # Each id returned is the id of the row with that slug.
    assert all(stored[slug].id == row_id for row_id, slug in first + again)


def test_values_arrive_unchanged(db: Session) -> None:
    insert_new(db, TABLE, _rows("west"), returning=("id",))  # type: ignore[arg-type]
    db.commit()
    clinic = db.scalars(select(Clinic).where(Clinic.slug == "west")).one()
    assert (clinic.name, clinic.timezone, clinic.settings_version) == (
        "Clinic west",
        "Europe/Paris",
        3,
    )
    assert clinic.created_at.replace(tzinfo=UTC) == WHEN


def test_nothing_new_returns_nothing(db: Session) -> None:
    insert_new(db, TABLE, _rows("only"), returning=("id", "slug"))  # type: ignore[arg-type]
    assert insert_new(db, TABLE, _rows("only"), returning=("id", "slug")) == []  # type: ignore[arg-type]
    assert insert_new(db, TABLE, [], returning=("id",)) == []  # type: ignore[arg-type]


def test_shared_values_complete_every_row(db: Session) -> None:
    rows = [{"slug": "a", "name": "Clinic a"}, {"slug": "b", "name": "Clinic b"}]
    same = {"timezone": "Asia/Tokyo", "settings_version": 7, "created_at": WHEN}
    stored = insert_new(db, TABLE, rows, returning=("slug",), same=same)  # type: ignore[arg-type]
    assert sorted(stored) == [("a",), ("b",)]
    db.commit()
    clinics = db.scalars(select(Clinic).order_by(Clinic.slug)).all()
    assert [(c.slug, c.timezone, c.settings_version) for c in clinics] == [
        ("a", "Asia/Tokyo", 7),
        ("b", "Asia/Tokyo", 7),
    ]
    assert all(c.created_at.replace(tzinfo=UTC) == WHEN for c in clinics)
