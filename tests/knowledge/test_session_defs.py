"""session_checks.yaml loads, cites known references, and bad definitions are refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from ketacare.knowledge import load_yaml
from ketacare.knowledge.instrument_defs import reference_ids
from ketacare.knowledge.session_defs import SessionChecksDef, load_session_checks


def raw() -> dict[str, Any]:
    return copy.deepcopy(load_yaml("session_checks.yaml"))


def test_every_source_is_a_known_reference() -> None:
    checks = load_session_checks()
    assert checks.all_source_ids() <= reference_ids()
    assert {p.id for p in checks.prechecks} == {"fasting", "escort", "pregnancy", "interactions"}


def test_every_answered_check_can_proceed_and_unknown_names_are_not_safe() -> None:
    checks = load_session_checks()
    for check in checks.prechecks:
        if check.id == "interactions":
            assert check.unrecognized_band != "proceed"
            assert check.severity_bands["contraindicated"] == "hold"
        else:
            assert any(a.band == "proceed" for a in check.answers)


def test_only_other_needs_a_note() -> None:
    assert [a.code for a in load_session_checks().adverse_events if a.requires_note] == ["other"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["adverse_events"].append(dict(d["adverse_events"][0])), "duplicate"),
        (lambda d: d["prechecks"][0]["answers"].pop(0), "proceeds"),
        (lambda d: d["prechecks"][3]["severity_bands"].pop("major"), "every severity"),
        (lambda d: d["prechecks"][2].pop("childbearing_age_max"), "childbearing_age_max"),
        (lambda d: d["prechecks"][1]["answers"][0].update(band="maybe"), "band"),
    ],
)
def test_a_broken_definition_is_refused(change: Any, message: str) -> None:
    data = raw()
    change(data)
    with pytest.raises(ValidationError, match=message):
        SessionChecksDef.model_validate(data)
