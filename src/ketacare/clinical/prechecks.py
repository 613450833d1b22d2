"""Pre-dose checks beside the blood-pressure gate: fasting, escort home, pregnancy status and
the interaction screen of the current medicines. Pure: the answers and the screen summary are
arguments; bands and texts come from ``knowledge/session_checks.yaml``.

Each check lands in a band of the gate's scale (proceed < caution < hold < refuse); the worst
band of the gate and the checks decides what starting the session needs. A check that is not
answered takes the worst band its answers can have: not knowing is never "proceed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ketacare.knowledge import knowledge_version
from ketacare.knowledge.protocol_defs import ProtocolDef
from ketacare.knowledge.session_defs import PrecheckDef, load_session_checks

Band = Literal["proceed", "caution", "hold", "refuse"]
BAND_RANK: dict[str, int] = {"proceed": 0, "caution": 1, "hold": 2, "refuse": 3}


def worst(*bands: str) -> Band:
    return max(bands, key=BAND_RANK.__getitem__)  # type: ignore[return-value]


@dataclass(frozen=True)
class InteractionSummary:
    """What the interaction screen of the current list found (None: not screened)."""

    medicines: int
    highest_severity: str | None
    unrecognized: tuple[str, ...] = ()
    screen_id: int | None = None


@dataclass(frozen=True)
class CheckResult:
    id: str
    label: str
    answer: str | None
    band: Band
    text: str
    sources: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "answer": self.answer,
            "band": self.band,
            "text": self.text,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class PrecheckResult:
    band: Band
    checks: tuple[CheckResult, ...]
    knowledge_version: str

    def check(self, check_id: str) -> CheckResult:
        return next(c for c in self.checks if c.id == check_id)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "checks": [c.to_json_dict() for c in self.checks],
            "knowledge_version": self.knowledge_version,
        }


def _answered(check: PrecheckDef, answer: str | None, protocol: ProtocolDef) -> CheckResult:
    if answer is None:
        band = worst(*(a.band for a in check.answers))
        instruction = check.instructions.get(protocol.administration)
        text = f"Not answered: {check.question}" + (f" ({instruction})" if instruction else "")
        return CheckResult(check.id, check.label, None, band, text, check.sources)
    chosen = check.answer(answer)
    if chosen is None:
        allowed = ", ".join(a.value for a in check.answers)
        raise ValueError(f"{check.id}: answer {answer!r} is not one of {allowed}")
    return CheckResult(
        check.id, check.label, answer, chosen.band, " ".join(chosen.text.split()), check.sources
    )


def pregnancy_applies(sex: str, age_years: int | None, check: PrecheckDef) -> bool:
    """Female patients up to the configured age; unknown sex or age counts as applicable."""
    if sex == "male":
        return False
    if age_years is None or check.childbearing_age_max is None:
        return True
    return age_years <= check.childbearing_age_max


def _interactions(check: PrecheckDef, summary: InteractionSummary | None) -> CheckResult:
    def result(band: Band, text: str) -> CheckResult:
        return CheckResult(check.id, check.label, None, band, text, check.sources)

    assert check.unrecognized_band is not None
    if summary is None:
        return result("hold", "The current medicines were not screened for interactions.")
    if summary.medicines == 0:
        return result(
            "caution",
            "No medicines recorded: confirm with the patient that they take none, including "
            "over-the-counter medicines and supplements.",
        )
    bands: list[Band] = ["proceed"]
    parts: list[str] = []
    if summary.highest_severity is not None:
        bands.append(check.severity_bands[summary.highest_severity])  # type: ignore[index]
        parts.append(f"Highest interaction severity: {summary.highest_severity}.")
    else:
        parts.append("No known interaction with the recorded medicines.")
    if summary.unrecognized:
        bands.append(check.unrecognized_band)
        parts.append(
            f"Not recognised, so not screened: {', '.join(summary.unrecognized)}. Check them "
            "by hand."
        )
    return result(worst(*bands), " ".join(parts))


def assess_prechecks(
    protocol: ProtocolDef,
    *,
    fasting: str | None,
    escort: str | None,
    pregnancy: str | None,
    sex: str,
    age_years: int | None,
    interactions: InteractionSummary | None,
) -> PrecheckResult:
    """Every pre-dose check with its band and text, and the worst band among them."""
    checks = load_session_checks()
    results = [
        _answered(checks.precheck("fasting"), fasting, protocol),
        _answered(checks.precheck("escort"), escort, protocol),
    ]
    pregnancy_check = checks.precheck("pregnancy")
    if pregnancy_applies(sex, age_years, pregnancy_check):
        results.append(_answered(pregnancy_check, pregnancy, protocol))
    elif pregnancy is not None and pregnancy != "not_pregnant":
        # Recorded anyway: a stated pregnancy is never ignored.
        results.append(_answered(pregnancy_check, pregnancy, protocol))
    results.append(_interactions(checks.precheck("interactions"), interactions))
    return PrecheckResult(
        band=worst(*(r.band for r in results)),
        checks=tuple(results),
        knowledge_version=knowledge_version(),
    )


def answers_of(result: PrecheckResult) -> Mapping[str, str | None]:
    return {c.id: c.answer for c in result.checks}
