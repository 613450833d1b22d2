"""The day's session worklist comes a page at a time, and an alert on a later page is counted
on the first, so paging never takes a risk out of sight."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ketacare.app import sessions as uc
from ketacare.app.errors import InvalidInput
from ketacare.app.permissions import Role
from ketacare.app.users import actor_for
from ketacare.store.types import utcnow
from tests.conftest import ClinicWorld
from tests.web.test_query_counts import (
    _acknowledge,
    _alert,
    _dosed,
    _patient,
    _signed_in,
)

SHOWN = re.compile(r'href="/sessions/(\d+)"')


def _day_of_sessions(db: Session, world: ClinicWorld, count: int) -> tuple[datetime, list[int]]:
    """``count`` completed sessions on one past day, ten minutes apart, in time order."""
    zone = ZoneInfo(world.clinic.timezone)
    day = utcnow().astimezone(zone).date() - timedelta(days=3)
    first = datetime.combine(day, time(8), zone)
    ids = []
    for n in range(count):
        patient = _patient(db, world, n)
        at = first + timedelta(minutes=10 * n)
        ids.append(_dosed(db, patient, 1, at, ended_at=at + timedelta(hours=1)))
    return first, ids


def _pages(db: Session, world: ClinicWorld, day: datetime, limit: int) -> list[uc.WorklistPage]:
    actor = actor_for(world.users[Role.NURSE])
    pages = [uc.worklist(db, actor, day.date(), limit=limit)]
    while pages[-1].next_cursor:
        pages.append(uc.worklist(db, actor, day.date(), cursor=pages[-1].next_cursor, limit=limit))
    return pages


def test_the_pages_hold_every_session_once_in_time_order(db: Session, world_a: ClinicWorld) -> None:
    day, ids = _day_of_sessions(db, world_a, 7)
    db.commit()
    pages = _pages(db, world_a, day, limit=3)
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert [it.session.id for p in pages for it in p.items] == ids
    assert pages[-1].next_cursor is None


def test_an_alert_on_a_later_page_is_counted_on_the_pages_before_it(
    db: Session, world_a: ClinicWorld
) -> None:
    day, ids = _day_of_sessions(db, world_a, 7)
    patient = _patient(db, world_a, 100)  # the helpers take the clinic from a patient
    # Two open alerts on the sixth session, one acknowledged on the seventh, one on the first.
    for _ in range(2):
        _alert(db, patient, ids[5], day + timedelta(minutes=55))
    acked = _alert(db, patient, ids[6], day + timedelta(minutes=65))
    _acknowledge(db, patient, ids[6], acked)
    _alert(db, patient, ids[0], day + timedelta(minutes=5))
    db.commit()
    first, second, third = _pages(db, world_a, day, limit=3)
    assert first.later_alerts == 2
    assert [it.open_alerts for it in first.items] == [1, 0, 0]
    assert second.later_alerts == 0, "the sixth session is on this page"
    assert [it.open_alerts for it in second.items] == [0, 0, 2]
    assert third.later_alerts == 0
    assert [it.open_alerts for it in third.items] == [0], "acknowledged"


def test_a_cursor_that_is_not_one_is_refused_by_name(db: Session, world_a: ClinicWorld) -> None:
    actor = actor_for(world_a.users[Role.NURSE])
    with pytest.raises(InvalidInput) as refused:
        uc.worklist(db, actor, utcnow().date(), cursor="not-a-cursor")
    assert refused.value.field == "cursor"


def test_the_worklist_page_links_the_next_page_and_warns_of_alerts_beyond(
    client: TestClient, db: Session, world_a: ClinicWorld
) -> None:
    day, ids = _day_of_sessions(db, world_a, uc.WORKLIST_PAGE + 2)
    _alert(db, _patient(db, world_a, 999), ids[-1], day + timedelta(hours=9))
    db.commit()
    _signed_in(client, world_a)

    first = client.get(f"/sessions?day={day.date()}")
    assert first.status_code == 200
    shown = [int(i) for i in SHOWN.findall(first.text)]
    assert shown == ids[: uc.WORKLIST_PAGE]
    assert "1 alert to acknowledge on later pages" in first.text
    following = re.search(r'href="(/sessions\?day=[^"]*cursor=[^"]+)"', first.text)
    assert following is not None
    second = client.get(following.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert [int(i) for i in SHOWN.findall(second.text)] == ids[uc.WORKLIST_PAGE :]
    assert "on later pages" not in second.text
    assert "1 to acknowledge" in second.text
    assert "Back to the first page" in second.text

    refused = client.get(f"/sessions?day={day.date()}&cursor=nonsense")
    assert refused.status_code == 422
    assert "cursor" in refused.text
