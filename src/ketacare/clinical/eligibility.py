"""Programme eligibility: an intake file in, a decision with every reason and its sources out.

Pure: rules, thresholds and texts come from ``knowledge/contraindications.yaml`` and
``knowledge/eligibility.yaml``; the caller supplies the date (``as_of``) and the interaction
findings. Findings not given (None) mean the medicines were not screened: with medicines on the
intake that is the caution ``interactions_not_screened``, never "no interactions". Precedence:
any exclusion -> ineligible; else any caution -> needs_review; else eligible. The decision checks
safety and programme criteria; it never claims efficacy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Any, Protocol, Self, runtime_checkable

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ketacare.clinical.instruments import AnswerError, Score, instrument, score
from ketacare.clinical.monitoring import require_rising_bp_bands
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.catalog import load_catalog
from ketacare.knowledge.eligibility_defs import (
    Condition,
    StandardTreatment,
    load_contraindications,
    load_eligibility,
)
from ketacare.knowledge.protocol_defs import load_protocols

__all__ = [
    "BloodPressure",
    "Decision",
    "DecisionKind",
    "EligibilitySettings",
    "HistoryCode",
    "Intake",
    "IntakeError",
    "InteractionFinding",
    "PriorTreatment",
    "Reason",
    "RelaxationError",
    "Scores",
    "StoppedMedicationEntry",
    "TreatmentResponse",
    "age_on",
    "assess",
    "bp_band",
    "check_relaxation",
    "describe_validation_error",
    "intake_json_schema",
    "plannable_protocol",
    "standard_treatment",
]


class IntakeError(ValueError):
    """An intake that cannot be assessed as given; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class HistoryCode(StrEnum):
    """Codes of the intake's `history` list; each is classified in contraindications.yaml."""

    PSYCHOSIS = "psychosis"
    CURRENT_PSYCHOSIS = "current_psychosis"
    SCHIZOPHRENIA = "schizophrenia"
    BIPOLAR_DISORDER = "bipolar_disorder"
    SUBSTANCE_USE_DISORDER = "substance_use_disorder"
    KETAMINE_MISUSE = "ketamine_misuse"
    SUICIDE_ATTEMPT = "suicide_attempt"
    HYPERTENSION_CONTROLLED = "hypertension_controlled"
    HYPERTENSION_UNCONTROLLED = "hypertension_uncontrolled"
    ANEURYSMAL_VASCULAR_DISEASE = "aneurysmal_vascular_disease"
    ARTERIOVENOUS_MALFORMATION = "arteriovenous_malformation"
    INTRACEREBRAL_HEMORRHAGE = "intracerebral_hemorrhage"
    RECENT_MYOCARDIAL_INFARCTION = "recent_myocardial_infarction"
    RECENT_STROKE = "recent_stroke"
    CORONARY_ARTERY_DISEASE = "coronary_artery_disease"
    SEVERE_CORONARY_DISEASE = "severe_coronary_disease"
    HEART_FAILURE = "heart_failure"
    ARRHYTHMIA = "arrhythmia"
    RAISED_INTRACRANIAL_PRESSURE = "raised_intracranial_pressure"
    CEREBRAL_TRAUMA = "cerebral_trauma"
    PREGNANCY = "pregnancy"
    PREECLAMPSIA_ECLAMPSIA = "preeclampsia_eclampsia"
    BREASTFEEDING = "breastfeeding"
    BLADDER_DISEASE = "bladder_disease"
    HEPATIC_IMPAIRMENT = "hepatic_impairment"
    SEVERE_HEPATIC_IMPAIRMENT = "severe_hepatic_impairment"
    HYPERTHYROIDISM = "hyperthyroidism"
    HYPERTHYROIDISM_UNTREATED = "hyperthyroidism_untreated"
    SEIZURE_DISORDER = "seizure_disorder"
    GLAUCOMA = "glaucoma"
    KETAMINE_HYPERSENSITIVITY = "ketamine_hypersensitivity"


class TreatmentResponse(StrEnum):
    GOOD = "good"
    PARTIAL = "partial"
    INADEQUATE = "inadequate"
    NOT_TOLERATED = "not_tolerated"


FAILED_RESPONSES = frozenset({TreatmentResponse.INADEQUATE, TreatmentResponse.NOT_TOLERATED})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriorTreatment(_Strict):
    """A previous or current ADHD treatment and how it worked."""

    drug: str = Field(min_length=1, max_length=200, description="Drug name (ingredient or brand)")
    response: TreatmentResponse = Field(description="good | partial | inadequate | not_tolerated")
    dose: str | None = Field(None, max_length=200, description="Dose as prescribed, free text")
    duration_weeks: float | None = Field(None, ge=0, le=5200, description="How long it was tried")
    side_effects: list[str] = Field(default_factory=list, description="Side effects, free text")


class StoppedMedicationEntry(_Strict):
    """A medicine the candidate stopped recently (an MAO inhibitor within 14 days still counts)."""

    name: str = Field(min_length=1, max_length=200, description="Drug name (ingredient or brand)")
    stop_date: date | None = Field(
        None, description="YYYY-MM-DD; null when not known (screened as still in its washout)"
    )


class BloodPressure(_Strict):
    """Screening blood pressure at rest, mmHg."""

    systolic: int = Field(ge=50, le=300, description="mmHg (plausible range 50-300)")
    diastolic: int = Field(ge=20, le=200, description="mmHg (plausible range 20-200)")

    @model_validator(mode="after")
    def _diastolic_below_systolic(self) -> Self:
        if self.diastolic >= self.systolic:
            raise ValueError(
                f"diastolic {self.diastolic} must be below systolic {self.systolic} "
                "(check for swapped values)"
            )
        return self


def _check_answers(instrument_id: str, answers: Any) -> Any:
    if answers is None:
        return None
    try:
        score(instrument_id, answers)
    except AnswerError as exc:
        raise ValueError(f"{exc.field}: {exc.message}") from None
    return answers


class Scores(_Strict):
    """Baseline rating-scale answers, one integer per item in form order."""

    asrs: list[int] | None = Field(None, description="ASRS v1.1: 18 answers, each 0-4")
    phq9: list[int] | None = Field(None, description="PHQ-9: the 9 scored answers, each 0-3")
    gad7: list[int] | None = Field(None, description="GAD-7: 7 answers, each 0-3")

    # Validate before pydantic coerces, so "2" or 2.0 is refused with the item number.
    @field_validator("asrs", "phq9", "gad7", mode="before")
    @classmethod
    def _answers(cls, value: Any, info: ValidationInfo) -> Any:
        return _check_answers(info.field_name, value)


def plannable_protocol(value: str | None) -> str | None:
    """``value`` when it names a plannable protocol (None stays None); else ValueError."""
    if value is None:
        return None
    protocols = load_protocols()
    protocol = protocols.get(value)
    if protocol is None or not protocol.plannable:
        plannable = ", ".join(p.id for p in protocols.values() if p.plannable)
        raise ValueError(f"unknown or not plannable protocol {value!r}; plannable: {plannable}")
    return value


class Intake(_Strict):
    """What the clinic knows about a candidate at intake (the intake file)."""

    model_config = ConfigDict(
        extra="forbid",
        title="KetaCare intake file",
        json_schema_extra={"description": "One candidate's intake for eligibility assessment."},
    )

    age: int | None = Field(None, ge=0, le=130, description="Age in whole years")
    date_of_birth: date | None = Field(
        None, description="YYYY-MM-DD; used instead of age, with the assessment date"
    )
    adhd_diagnosis: bool | None = Field(None, description="Confirmed ADHD diagnosis")
    prior_adhd_treatments: list[PriorTreatment] = Field(default_factory=list)
    history: list[HistoryCode] = Field(
        default_factory=list, description="Medical and psychiatric history codes"
    )
    blood_pressure: BloodPressure | None = None
    heart_rate: int | None = Field(None, ge=20, le=250, description="Beats per minute at rest")
    weight_kg: float | None = Field(None, ge=30, le=300, description="Body weight, kg")
    medications: list[str] = Field(
        default_factory=list, description="Current medications, one name (and dose) per entry"
    )
    stopped_medications: list[StoppedMedicationEntry] = Field(
        default_factory=list,
        description="Medicines stopped recently, with the stop date; those whose class has a "
        "washout (MAO inhibitors: 14 days) are still screened for interactions",
    )
    planned_protocol: str | None = Field(
        None,
        description="Protocol id the candidate would be treated with (e.g. iv-ketamine, "
        "intranasal-esketamine); the interaction screen uses its agent and route",
    )
    scores: Scores | None = None

    @field_validator("planned_protocol")
    @classmethod
    def _plannable(cls, value: str | None) -> str | None:
        return plannable_protocol(value)

    def has_medicines(self) -> bool:
        """Anything for the interaction screen: a current or a stopped medicine."""
        names = [*self.medications, *(m.name for m in self.stopped_medications)]
        return any(name.strip() for name in names)

    @field_validator("history", mode="before")
    @classmethod
    def _known_history(cls, value: Any) -> Any:
        # Name the unknown code itself, not only its position in the list.
        if isinstance(value, list):
            known = {c.value for c in HistoryCode}
            for code in value:
                if isinstance(code, str) and code not in known:
                    raise ValueError(
                        f"unknown history code {code!r}; known codes: {', '.join(sorted(known))}"
                    )
        return value

    @model_validator(mode="after")
    def _one_age(self) -> Self:
        if self.age is not None and self.date_of_birth is not None:
            raise ValueError("give either age or date_of_birth, not both")
        return self


def intake_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the intake file."""
    schema = Intake.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One clinician-readable line per problem, each naming the field."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "intake"
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown field")
            continue
        message = re.sub(r"^(Value error|Assertion failed), ", "", error["msg"])
        lines.append(f"{where}: {message}")
    return lines


# A relaxed default exclusion is a clinical decision of the clinic: its reason must say who
# decided it and why, not just "ok".
RELAXATION_REASON_MIN = 20


class RelaxationError(ValueError):
    """A default exclusion that cannot be relaxed as asked; ``field`` names the code."""

    def __init__(self, code: str, message: str) -> None:
        self.field = f"relaxed_exclusions.{code}"
        self.code = code
        self.message = message
        super().__init__(f"{self.field}: {message}")


def check_relaxation(code: str, reason: str) -> None:
    """Raise ``RelaxationError`` unless ``code`` is a default exclusion a clinic may relax to a
    caution (never a label contraindication) and ``reason`` says why."""
    condition = _conditions().get(code)
    if condition is None:
        raise RelaxationError(code, f"{code!r} is not a history code.")
    if condition.basis == "label_contraindication":
        raise RelaxationError(
            code,
            f"{condition.label} is a contraindication in a product label "
            f"({', '.join(condition.basis_sources)}): it is always an exclusion and can never "
            "be relaxed.",
        )
    if not condition.relaxable:
        raise RelaxationError(
            code, f"{condition.label} is already a caution: there is no exclusion to relax."
        )
    if len(" ".join(reason.split())) < RELAXATION_REASON_MIN:
        raise RelaxationError(
            code,
            f"Say why the clinic relaxes this default exclusion, who decided it and when (at "
            f"least {RELAXATION_REASON_MIN} characters).",
        )


class EligibilitySettings(BaseModel):
    """Clinic settings in force for a decision; defaults and their sources in eligibility.yaml.
    ``relaxed_exclusions``: default exclusions the clinic grades as a caution, code -> reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_age: int = Field(ge=18, le=130)
    require_failed_standard_treatment: bool
    bp_caution_systolic: int
    bp_caution_diastolic: int
    bp_hold_systolic: int
    bp_hold_diastolic: int
    bp_refuse_systolic: int
    bp_refuse_diastolic: int
    heart_rate_low: int
    heart_rate_high: int
    phq9_comorbid_min: int = Field(ge=0, le=27)
    gad7_comorbid_min: int = Field(ge=0, le=21)
    relaxed_exclusions: dict[str, str] = Field(default_factory=dict)

    @field_validator("relaxed_exclusions")
    @classmethod
    def _relaxable(cls, value: dict[str, str]) -> dict[str, str]:
        for code, reason in value.items():
            check_relaxation(code, reason)
        return {code: " ".join(reason.split()) for code, reason in value.items()}

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        require_rising_bp_bands(self)
        if not self.heart_rate_low < self.heart_rate_high:
            raise ValueError("heart_rate_low must be below heart_rate_high")
        return self

    @classmethod
    def defaults(cls) -> EligibilitySettings:
        return _default_settings()

    def template_values(self) -> dict[str, Any]:
        values: dict[str, Any] = self.model_dump()
        values["bp_hold_systolic_below"] = self.bp_hold_systolic - 1
        values["bp_hold_diastolic_below"] = self.bp_hold_diastolic - 1
        return values


@cache
def _default_settings() -> EligibilitySettings:
    raw = {name: entry.value for name, entry in load_eligibility().settings.items()}
    return EligibilitySettings.model_validate(raw)


class DecisionKind(StrEnum):
    ELIGIBLE = "eligible"
    NEEDS_REVIEW = "needs_review"
    INELIGIBLE = "ineligible"


SEVERITY_ORDER = {"exclusion": 0, "caution": 1, "supporting": 2, "info": 3}
URGENT_CODES = frozenset({"phq9_item9_positive"})


@dataclass(frozen=True)
class Reason:
    code: str
    severity: str  # exclusion | caution | supporting | info
    text: str
    sources: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "text": self.text,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class Decision:
    decision: DecisionKind
    reasons: tuple[Reason, ...]
    knowledge_version: str
    settings: Mapping[str, Any]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def reason(self, code: str) -> Reason:
        return next(r for r in self.reasons if r.code == code)

    @property
    def urgent(self) -> bool:
        """A reason that needs action now, before the review itself (e.g. PHQ-9 item 9)."""
        return any(r.code in URGENT_CODES for r in self.reasons)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reasons": [r.to_json_dict() for r in self.reasons],
            "knowledge_version": self.knowledge_version,
            "settings": dict(self.settings),
        }


@runtime_checkable
class InteractionFinding(Protocol):
    """What eligibility needs from an interaction finding (objects or mappings both accepted)."""

    rule_id: str
    severity: Any
    ingredient: str
    effect: str
    sources: Sequence[str]


def age_on(date_of_birth: date, as_of: date) -> int:
    """Age in completed years on ``as_of``."""
    before_birthday = (as_of.month, as_of.day) < (date_of_birth.month, date_of_birth.day)
    return as_of.year - date_of_birth.year - int(before_birthday)


def bp_band(systolic: int, diastolic: int, settings: EligibilitySettings) -> str:
    """normal | caution | hold | refuse: the worse of the systolic and diastolic bands."""
    for band in ("refuse", "hold", "caution"):
        if systolic >= getattr(settings, f"bp_{band}_systolic") or diastolic >= getattr(
            settings, f"bp_{band}_diastolic"
        ):
            return band
    return "normal"


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def standard_treatment(drug: str) -> StandardTreatment | None:
    """The standard ADHD treatment a drug entry names, matched on whole words, or None."""
    words = _tokens(drug)
    for treatment in load_eligibility().standard_adhd_treatments.drugs:
        for name in treatment.names:
            name_words = _tokens(name)
            k = len(name_words)
            if any(words[i : i + k] == name_words for i in range(len(words) - k + 1)):
                return treatment
    return None


@cache
def _conditions() -> dict[str, Condition]:
    conditions = load_contraindications().by_code()
    # The code's enum and the knowledge file must list the same conditions.
    enum_codes = {c.value for c in HistoryCode}
    if set(conditions) != enum_codes:
        raise RuntimeError(
            "contraindications.yaml and HistoryCode disagree: "
            f"only in file {sorted(set(conditions) - enum_codes)}, "
            f"only in code {sorted(enum_codes - set(conditions))}"
        )
    return conditions


class _Reasons:
    def __init__(self, settings: EligibilitySettings) -> None:
        self.templates = load_eligibility().reasons
        self.values = settings.template_values()
        self.items: list[Reason] = []

    def add(self, key: str, **fields: Any) -> None:
        template = self.templates[key]
        text = " ".join(template.text.format(**self.values, **fields).split())
        self.items.append(Reason(key, template.severity, text, tuple(template.sources)))

    def add_raw(self, reason: Reason) -> None:
        self.items.append(reason)


def _age(intake: Intake, as_of: date | None) -> int | None:
    if intake.date_of_birth is None:
        return intake.age
    if as_of is None:
        raise IntakeError("as_of", "the assessment date is required when date_of_birth is given")
    if intake.date_of_birth > as_of:
        raise IntakeError("date_of_birth", f"{intake.date_of_birth} is after {as_of}")
    return age_on(intake.date_of_birth, as_of)


def _assess_treatments(intake: Intake, settings: EligibilitySettings, out: _Reasons) -> None:
    failed, recorded, unrecognised, not_adult = [], [], [], []
    for treatment in intake.prior_adhd_treatments:
        label = f"{treatment.drug}: {treatment.response.value.replace('_', ' ')}"
        recorded.append(label)
        standard = standard_treatment(treatment.drug)
        if standard is None:
            unrecognised.append(treatment.drug)
        elif not standard.adult_standard:
            # An ADHD medicine licensed only for children: said so, never silently dropped.
            note = " ".join((standard.not_adult_note or "").split())
            not_adult.append(f"{label} ({note})" if note else label)
        elif treatment.response in FAILED_RESPONSES:
            failed.append(label)
    if failed:
        out.add("prior_treatment_failed", drugs="; ".join(failed))
    elif settings.require_failed_standard_treatment:
        if recorded:
            out.add("no_failed_standard_treatment", drugs="; ".join(recorded))
        else:
            out.add("no_prior_adhd_treatment")
    if not_adult:
        out.add("not_standard_adult_treatment", drugs="; ".join(not_adult))
    if unrecognised:
        out.add("unrecognised_adhd_treatment", drugs="; ".join(unrecognised))


def _assess_history(intake: Intake, settings: EligibilitySettings, out: _Reasons) -> None:
    conditions = _conditions()
    for code in dict.fromkeys(intake.history):  # keep order, drop repeats
        condition = conditions[code.value]
        severity: str = condition.classification
        text = " ".join(condition.text.split())
        reason = settings.relaxed_exclusions.get(code.value)
        if reason is not None and condition.relaxable:
            severity = "caution"
            text = (
                f"{text} Default exclusion relaxed by clinic setting: {reason} A prescriber "
                "reviews."
            )
        out.add_raw(Reason(code.value, severity, text, tuple(condition.sources)))


def _assess_vitals(intake: Intake, settings: EligibilitySettings, out: _Reasons) -> None:
    bp = intake.blood_pressure
    if bp is None:
        out.add("bp_missing")
    else:
        band = bp_band(bp.systolic, bp.diastolic, settings)
        out.add(f"bp_{band}", systolic=bp.systolic, diastolic=bp.diastolic)
    if intake.heart_rate is None:
        out.add("heart_rate_missing")
    elif not settings.heart_rate_low <= intake.heart_rate <= settings.heart_rate_high:
        out.add("heart_rate_out_of_range", heart_rate=intake.heart_rate)
    if intake.weight_kg is None:
        out.add("weight_missing")


def _answer_label(instrument_id: str, value: int) -> str:
    options = {o.value: o.label for o in instrument(instrument_id).options}
    return f"{value} ({options[value]})"


def _assess_scores(intake: Intake, settings: EligibilitySettings, out: _Reasons) -> None:
    answers = intake.scores or Scores()
    results: dict[str, Score] = {}
    for instrument_id in ("asrs", "phq9", "gad7"):
        given = getattr(answers, instrument_id)
        if given is None:
            out.add(f"{instrument_id}_missing")
        else:
            results[instrument_id] = score(instrument_id, given)
    if asrs := results.get("asrs"):
        key = "asrs_positive_screen" if asrs.positive_screen else "asrs_negative_screen"
        out.add(key, shaded=asrs.subscales["part_a_shaded_count"], total=asrs.total)
    if phq9 := results.get("phq9"):
        if any(f.code == "phq9_item9_positive" for f in phq9.flags):
            out.add("phq9_item9_positive", answer=_answer_label("phq9", phq9.answers[8]))
        key = (
            "phq9_comorbid_depression"
            if phq9.total >= settings.phq9_comorbid_min
            else "phq9_below_threshold"
        )
        out.add(key, total=phq9.total, band=phq9.band)
    if gad7 := results.get("gad7"):
        key = (
            "gad7_comorbid_anxiety"
            if gad7.total >= settings.gad7_comorbid_min
            else "gad7_below_threshold"
        )
        out.add(key, total=gad7.total, band=gad7.band)


def _field(finding: object, name: str) -> Any:
    if isinstance(finding, Mapping):
        return finding.get(name)
    return getattr(finding, name, None)


def _medicine_list(intake: Intake) -> str:
    names = [m.strip() for m in intake.medications if m.strip()]
    for entry in intake.stopped_medications:
        when = entry.stop_date.isoformat() if entry.stop_date else "date not recorded"
        names.append(f"{entry.name.strip()} (stopped {when})")
    return "; ".join(names)


def _assess_not_screened(medicines: str, reason: str, out: _Reasons) -> None:
    texts = load_catalog().screen_texts
    reason = reason.strip()
    if not reason.endswith("."):
        reason += "."
    text = texts.not_screened.format(reason=reason, medicines=medicines)
    out.add_raw(
        Reason(
            "interactions_not_screened",
            "caution",
            " ".join(text.split()),
            tuple(texts.not_screened_sources),
        )
    )


def _assess_interactions(findings: Sequence[object], out: _Reasons) -> None:
    for finding in findings:
        rule_id = _field(finding, "rule_id")
        if not rule_id:
            raise ValueError(f"interaction finding without rule_id: {finding!r}")
        raw_severity = _field(finding, "severity")
        severity = str(getattr(raw_severity, "value", raw_severity) or "").strip().lower()
        key = {
            "contraindicated": "interaction_contraindicated",
            "major": "interaction_major",
        }.get(severity, "interaction_other")
        template = out.templates[key]
        # A stopped medicine still in its washout says so, with the dates.
        washout = " ".join(str(w).strip() for w in (_field(finding, "washout") or ()))
        effect = " ".join(
            part for part in (str(_field(finding, "effect") or "").strip(), washout) if part
        )
        text = template.text.format(
            rule_id=rule_id,
            severity=severity or "unrated",
            ingredient=_field(finding, "ingredient") or "unknown drug",
            effect=effect,
        )
        sources = tuple(str(s) for s in (_field(finding, "sources") or ()))
        out.add_raw(
            Reason(f"interaction:{rule_id}", template.severity, " ".join(text.split()), sources)
        )


def _decide(reasons: Sequence[Reason]) -> DecisionKind:
    severities = {r.severity for r in reasons}
    if "exclusion" in severities:
        return DecisionKind.INELIGIBLE
    if "caution" in severities:
        return DecisionKind.NEEDS_REVIEW
    return DecisionKind.ELIGIBLE


def assess(
    intake: Intake,
    *,
    as_of: date | None = None,
    interaction_findings: Sequence[InteractionFinding | Mapping[str, Any]] | None = None,
    interaction_screen_error: str | None = None,
    interaction_unscreened: Sequence[str] = (),
    settings: EligibilitySettings | None = None,
) -> Decision:
    """Decide eligibility for the programme, with every reason and its sources.

    ``interaction_findings``: the screen of the intake's medicines (an empty list when the
    screen ran and found nothing). None, or an ``interaction_screen_error`` (why the screen did
    not run), means not screened: with medicines on the intake that is a caution, and so are
    ``interaction_unscreened`` entries (not recognised, or recognised but never reviewed)."""
    settings = settings or EligibilitySettings.defaults()
    out = _Reasons(settings)

    age = _age(intake, as_of)
    if age is None:
        out.add("age_missing")
    elif age < settings.min_age:
        out.add("age_under_minimum", age=age)

    if intake.adhd_diagnosis is None:
        out.add("adhd_diagnosis_missing")
    elif intake.adhd_diagnosis:
        out.add("adhd_diagnosis_confirmed")
    else:
        out.add("adhd_diagnosis_absent")

    _assess_treatments(intake, settings, out)

    _assess_history(intake, settings, out)
    _assess_vitals(intake, settings, out)
    _assess_scores(intake, settings, out)
    if interaction_findings is None or interaction_screen_error is not None:
        if intake.has_medicines():
            reason = interaction_screen_error or "the interaction screen did not run."
            _assess_not_screened(_medicine_list(intake), reason, out)
    else:
        _assess_interactions(interaction_findings, out)
        unscreened = [name.strip() for name in interaction_unscreened if name.strip()]
        if unscreened:
            reason = "these entries were not recognised, or are not in the reviewed table."
            _assess_not_screened("; ".join(unscreened), reason, out)
    out.add("off_label")

    reasons = tuple(sorted(out.items, key=lambda r: SEVERITY_ORDER[r.severity]))
    return Decision(
        decision=_decide(reasons),
        reasons=reasons,
        knowledge_version=knowledge_version(),
        settings=settings.model_dump(),
    )
