"""Dose orders: the worked example, every hard stop and warning at its boundary, properties."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.clinical.dosing import (
    DosingInputError,
    DosingSettings,
    Order,
    calculate_order,
    esketamine_order,
    ideal_body_weight_kg,
)
from ketacare.knowledge import knowledge_version
from ketacare.knowledge.instrument_defs import reference_ids

TODAY = date(2026, 3, 10)
IV = "iv-ketamine"
# A clean order: every refusal and warning test changes one thing from here.
BASE: dict[str, Any] = {
    "protocol_id": IV,
    "weight_kg": 70,
    "mg_per_kg": 0.5,
    "minutes": 40,
    "bag_volume_ml": 100,
    "weight_measured_on": TODAY,
    "today": TODAY,
}


def order(**changes: Any) -> Order:
    args = {**BASE, **changes}
    protocol = args.pop("protocol_id")
    weight = args.pop("weight_kg")
    mg_per_kg = args.pop("mg_per_kg")
    minutes = args.pop("minutes")
    return calculate_order(protocol, weight, mg_per_kg, minutes, **args)


def codes(items: Any) -> set[str]:
    return {item.code for item in items}


# --- the worked example ------------------------------------------------------------------------


def test_70_kg_example_with_a_100_ml_bag() -> None:
    result = calculate_order(IV, 70, 0.5, 40, bag_volume_ml=100)
    assert result.refusals == ()
    assert result.dose_mg == Decimal("35")
    assert result.volume_ml == Decimal("100")
    assert result.rate_ml_per_h == Decimal("150.0")
    assert str(result.rate_ml_per_h) == "150.0"
    assert result.concentration_mg_per_ml == Decimal("0.35")
    assert result.rate_mg_per_h == Decimal("52.5")
    assert result.mg_per_kg == Decimal("0.5") and result.minutes == 40
    assert any("0.35 mg/mL" in step for step in result.steps)
    assert any("150.0 mL/h" in step for step in result.steps)
    # No date for the weight: allowed, but the clinician is asked to confirm it.
    assert codes(result.warnings) == {"weight_date_unknown"}


def test_70_kg_example_at_10_mg_per_ml_rounds_the_rate_half_up() -> None:
    result = order(bag_volume_ml=None, concentration_mg_per_ml=10)
    assert result.refusals == () and result.warnings == ()
    assert result.dose_mg == Decimal("35")
    assert result.volume_ml == Decimal("3.5")
    assert result.rate_ml_per_h == Decimal("5.3")  # 5.25 rounds half up
    assert any("5.25 mL/h → 5.3 mL/h" in step for step in result.steps)


def test_every_order_carries_its_settings_and_knowledge_version() -> None:
    result = order()
    assert result.settings == DosingSettings.defaults(IV).as_dict()
    assert result.settings["dosing_weight_policy"] == "actual"
    assert result.settings["absolute_cap_mg"] == 150
    assert result.knowledge_version == knowledge_version()
    data = result.to_json_dict()
    assert data["dose_mg"] == 35 and data["rate_ml_per_h"] == 150.0
    assert data["dosing_weight_basis"] == "actual"


def test_a_refused_order_carries_no_numbers_to_give() -> None:
    result = order(mg_per_kg=1.5)
    assert result.refused and result.status == "refused"
    assert (result.dose_mg, result.volume_ml, result.rate_ml_per_h) == (None, None, None)
    data = result.to_json_dict()
    assert data["dose_mg"] is None and data["rate_ml_per_h"] is None


# --- hard stops at their boundaries --------------------------------------------------------


PAST = TODAY - timedelta(days=30)
STALE = TODAY - timedelta(days=31)
FUTURE = TODAY + timedelta(days=1)

REFUSALS = [
    # (changes, refusal code or None for "refuses nothing")
    ({"weight_kg": None}, "weight_unknown"),
    ({"weight_kg": float("nan")}, "not_a_number"),
    ({"weight_kg": 0}, "not_positive"),
    ({"weight_kg": -70}, "not_positive"),
    ({"weight_kg": 29.9}, "weight_implausible"),
    ({"weight_kg": 30}, None),
    ({"weight_kg": 300}, None),
    ({"weight_kg": 300.1}, "weight_implausible"),
    ({"weight_measured_on": PAST}, None),
    ({"weight_measured_on": STALE}, "weight_stale"),
    ({"weight_measured_on": FUTURE}, "weight_date_in_future"),
    ({"height_cm": 119.9}, "height_implausible"),
    ({"height_cm": 120}, None),
    ({"height_cm": 230}, None),
    ({"height_cm": 230.1}, "height_implausible"),
    ({"mg_per_kg": None}, "mg_per_kg_missing"),
    ({"mg_per_kg": 0}, "not_positive"),
    ({"mg_per_kg": 0.49}, "mg_per_kg_below_min"),
    ({"mg_per_kg": 0.5}, None),
    ({"mg_per_kg": 1.0, "previous_mg_per_kg": 0.75}, None),
    ({"mg_per_kg": 1.01, "previous_mg_per_kg": 0.8}, "mg_per_kg_above_max"),
    ({"mg_per_kg": 0.75, "previous_mg_per_kg": 0.5}, None),
    ({"mg_per_kg": 0.76, "previous_mg_per_kg": 0.5}, "escalation_too_large"),
    ({"mg_per_kg": 0.85, "previous_mg_per_kg": 0.6}, None),  # 0.25 exactly, not 0.2500...06
    ({"mg_per_kg": 0.5, "previous_mg_per_kg": 1.0}, None),  # stepping down is always allowed
    ({"previous_mg_per_kg": 0}, "not_positive"),
    ({"weight_kg": 150, "mg_per_kg": 1.0, "previous_mg_per_kg": 0.75}, None),  # 150 mg
    ({"weight_kg": 150.1, "mg_per_kg": 1.0, "previous_mg_per_kg": 0.75}, "dose_above_cap"),
    ({"weight_kg": 300, "mg_per_kg": 0.5}, None),  # 150.0 mg
    ({"weight_kg": 300, "mg_per_kg": 0.51}, "dose_above_cap"),
    ({"minutes": None}, "minutes_missing"),
    ({"minutes": 0}, "not_positive"),
    ({"minutes": 39}, "minutes_below_min"),
    ({"minutes": 39.9}, "minutes_below_min"),
    ({"minutes": 40}, None),
    ({"minutes": 60}, None),
    ({"minutes": 61}, "minutes_above_max"),
    ({"bag_volume_ml": None}, "volume_basis"),
    ({"concentration_mg_per_ml": 10}, "volume_basis"),
    ({"bag_volume_ml": 0}, "not_positive"),
    ({"bag_volume_ml": None, "concentration_mg_per_ml": -1}, "not_positive"),
    ({"bag_volume_ml": None, "concentration_mg_per_ml": 50}, None),
    ({"bag_volume_ml": None, "concentration_mg_per_ml": 50.1}, "concentration_too_high"),
    ({"bag_volume_ml": None, "concentration_mg_per_ml": 100}, "concentration_too_high"),
    ({"bag_volume_ml": 0.7}, None),  # 35 mg in 0.7 mL = 50 mg/mL
    ({"bag_volume_ml": 0.69}, "concentration_too_high"),
    ({"protocol_id": "oral-ketamine"}, "protocol_not_plannable"),
    ({"protocol_id": "sublingual-ketamine"}, "protocol_not_plannable"),
    ({"protocol_id": "intranasal-esketamine"}, "protocol_flat_dose"),
]


@pytest.mark.parametrize(("changes", "expected"), REFUSALS)
def test_hard_stops(changes: dict[str, Any], expected: str | None) -> None:
    result = order(**changes)
    if expected is None:
        assert result.refusals == (), result.refusals
        assert result.dose_mg is not None and result.rate_ml_per_h is not None
    else:
        assert expected in codes(result.refusals), result.refusals
        assert result.dose_mg is None and result.rate_ml_per_h is None


def test_every_refusal_and_warning_names_its_field_text_and_known_sources() -> None:
    known = reference_ids()
    seen: set[str] = set()
    for changes, _ in REFUSALS + [(c, None) for c, _ in WARNINGS]:
        result = order(**changes)
        for issue in (*result.refusals, *result.warnings):
            seen.add(issue.code)
            assert issue.field and issue.text.strip() and issue.sources
            assert set(issue.sources) <= known, issue
    assert {"weight_unknown", "dose_above_cap", "escalation_too_large"} <= seen


def test_the_unknown_weight_refusal_says_so() -> None:
    refusal = order(weight_kg=None).refusals[0]
    assert refusal.field == "weight_kg"
    assert "Unknown weight" in refusal.text and "assumed" in refusal.text


def test_a_non_number_argument_is_an_input_error() -> None:
    with pytest.raises(DosingInputError) as info:
        order(weight_kg="70")
    assert info.value.field == "weight_kg"


def test_an_unknown_protocol_is_an_input_error() -> None:
    with pytest.raises(DosingInputError) as info:
        order(protocol_id="iv-ketamine-fast")
    assert info.value.field == "protocol"


def test_a_dated_weight_needs_today() -> None:
    with pytest.raises(DosingInputError) as info:
        order(today=None)
    assert info.value.field == "today"


def test_settings_for_another_protocol_are_rejected() -> None:
    with pytest.raises(DosingInputError) as info:
        order(settings=DosingSettings.defaults("im-ketamine"))
    assert info.value.field == "settings"


def test_clinic_settings_change_the_limits_and_are_returned() -> None:
    strict = DosingSettings.defaults(IV).model_copy(update={"absolute_cap_mg": 30.0})
    result = order(settings=strict)
    assert codes(result.refusals) == {"dose_above_cap"}
    assert result.settings["absolute_cap_mg"] == 30.0
    fresh = DosingSettings.defaults(IV).model_copy(update={"weight_freshness_days": 7})
    assert codes(order(weight_measured_on=TODAY - timedelta(days=8), settings=fresh).refusals) == {
        "weight_stale"
    }


def test_settings_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="min <= standard <= max"):
        DosingSettings.defaults(IV).model_validate(
            {**DosingSettings.defaults(IV).as_dict(), "min_mg_per_kg": 2.0}
        )


# --- warnings at their boundaries ----------------------------------------------------------

WARNINGS = [
    ({"weight_measured_on": None, "today": None}, "weight_date_unknown"),
    ({"mg_per_kg": 0.5}, None),
    ({"mg_per_kg": 0.51, "previous_mg_per_kg": 0.5}, "mg_per_kg_above_standard"),
    ({"mg_per_kg": 0.75}, "escalation_unchecked"),
    ({"bag_volume_ml": 17.5}, None),  # 35 mg in 17.5 mL = 2 mg/mL
    ({"bag_volume_ml": 17.4}, "bag_concentration_unusual"),
    ({"height_cm": 152.8}, "obesity_actual_weight"),  # 70 / 1.528^2 = 29.98 -> BMI 30.0
    ({"height_cm": 152.9}, None),  # BMI 29.9
]


@pytest.mark.parametrize(("changes", "expected"), WARNINGS)
def test_warnings(changes: dict[str, Any], expected: str | None) -> None:
    result = order(**changes)
    assert result.refusals == ()
    if expected is None:
        assert result.warnings == (), result.warnings
    else:
        assert expected in codes(result.warnings)
        assert result.dose_mg is not None


# --- dosing weight policy --------------------------------------------------------------------


def _policy(policy: str) -> DosingSettings:
    return DosingSettings.defaults(IV).model_copy(update={"dosing_weight_policy": policy})


def test_devine_ideal_body_weight() -> None:
    assert ideal_body_weight_kg(Decimal("177.8"), "male") == Decimal("73.0")  # 5 ft 10 in
    assert ideal_body_weight_kg(Decimal("167.64"), "female") == Decimal("59.3")  # 5 ft 6 in


def test_ideal_weight_policy_doses_obese_patients_on_ideal_weight_and_records_it() -> None:
    result = order(weight_kg=120, height_cm=170, sex="male", settings=_policy("ideal"))
    assert result.refusals == ()
    assert result.bmi == Decimal("41.5")
    assert result.dosing_weight_basis == "ideal"
    assert result.dosing_weight_kg == Decimal("65.9")
    assert result.dose_mg == Decimal("33.0")  # 65.9 x 0.5 = 32.95, half up
    assert result.weight_kg == Decimal("120")
    assert result.settings["dosing_weight_policy"] == "ideal"
    assert any("ideal body weight" in step for step in result.steps)


def test_adjusted_weight_policy() -> None:
    result = order(weight_kg=120, height_cm=170, sex="male", settings=_policy("adjusted"))
    assert result.dosing_weight_basis == "adjusted"
    assert result.dosing_weight_kg == Decimal("87.5")  # 65.9 + 0.4 x 54.1 = 87.54
    assert result.dose_mg == Decimal("43.8")


def test_below_the_bmi_threshold_actual_weight_is_used_whatever_the_policy() -> None:
    result = order(weight_kg=70, height_cm=175, sex="female", settings=_policy("ideal"))
    assert result.dosing_weight_basis == "actual" and result.dosing_weight_kg == Decimal("70")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"weight_kg": 120, "height_cm": None, "sex": "male"}, "height_missing"),
        ({"weight_kg": 120, "height_cm": 170, "sex": None}, "sex_missing"),
    ],
)
def test_ideal_weight_policy_never_guesses(changes: dict[str, Any], code: str) -> None:
    result = order(settings=_policy("ideal"), **changes)
    assert codes(result.refusals) == {code}


def test_short_stature_warns_that_devine_is_not_defined() -> None:
    result = order(weight_kg=80, height_cm=150, sex="female", settings=_policy("ideal"))
    assert "ideal_weight_short_stature" in codes(result.warnings)


# --- IM ketamine -----------------------------------------------------------------------------


def test_im_ketamine_draws_up_from_the_vial_with_no_rate() -> None:
    result = order(
        protocol_id="im-ketamine",
        minutes=None,
        bag_volume_ml=None,
        concentration_mg_per_ml=50,
    )
    assert result.refusals == ()
    assert result.dose_mg == Decimal("35") and result.volume_ml == Decimal("0.7")
    assert result.rate_ml_per_h is None and result.minutes is None
    assert result.observation_minutes == 60


@pytest.mark.parametrize(
    ("changes", "code", "kind"),
    [
        ({"minutes": None, "concentration_mg_per_ml": 50}, "bag_not_applicable", "refusal"),
        ({"minutes": None, "bag_volume_ml": None}, "concentration_missing", "refusal"),
        ({"bag_volume_ml": None, "concentration_mg_per_ml": 50}, "minutes_not_applicable", "w"),
        ({"minutes": None, "bag_volume_ml": None, "concentration_mg_per_ml": 100}, None, ""),
        (
            {"minutes": None, "bag_volume_ml": None, "concentration_mg_per_ml": 100.1},
            "concentration_too_high",
            "refusal",
        ),
        (
            {
                "minutes": None,
                "bag_volume_ml": None,
                "concentration_mg_per_ml": 50,
                "mg_per_kg": 0.24,
            },
            "mg_per_kg_below_min",
            "refusal",
        ),
        (
            {
                "minutes": None,
                "bag_volume_ml": None,
                "concentration_mg_per_ml": 50,
                "mg_per_kg": 0.25,
            },
            None,
            "",
        ),
        (
            {
                "minutes": None,
                "bag_volume_ml": None,
                "concentration_mg_per_ml": 50,
                "mg_per_kg": 0.51,
            },
            "mg_per_kg_above_max",
            "refusal",
        ),
    ],
)
def test_im_boundaries(changes: dict[str, Any], code: str | None, kind: str) -> None:
    result = order(protocol_id="im-ketamine", **changes)
    if code is None:
        assert result.refusals == ()
    elif kind == "refusal":
        assert code in codes(result.refusals)
    else:
        assert code in codes(result.warnings)


# --- esketamine ------------------------------------------------------------------------------

ESKETAMINE = [
    # (dose, session, age, refusal or None, warning or None, devices)
    (56, 1, None, None, None, 2),
    (84, 1, None, "first_dose", None, None),
    (84, 2, None, None, None, 3),
    (56, 5, 40, None, None, 2),
    (28, 2, None, "dose_not_in_label", None, None),
    (28, 1, 64, "dose_not_in_label", None, None),
    (28, 1, 65, None, "older_adult_dose", 1),
    (56, 1, 64, None, None, 2),
    (56, 1, 65, None, "older_adult_start", 2),
    (84, 1, 70, "first_dose", None, None),
    (70, 2, None, "not_whole_devices", None, None),
    (112, 2, None, "above_label_max", None, None),
    (0, 2, None, "not_positive", None, None),
    (None, 2, None, "dose_missing", None, None),
    (56, 0, None, "not_positive", None, None),
    (56, 1, 17, "not_for_children", None, None),
    (56, 1, 18, None, None, 2),
]


@pytest.mark.parametrize(("dose", "session", "age", "refusal", "warning", "devices"), ESKETAMINE)
def test_esketamine_flat_doses(
    dose: int | None,
    session: int,
    age: int | None,
    refusal: str | None,
    warning: str | None,
    devices: int | None,
) -> None:
    result = esketamine_order(dose, session, age_years=age)
    if refusal is None:
        assert result.refusals == (), result.refusals
        assert result.devices == devices and result.dose_mg == dose
        assert result.sprays == 2 * devices
    else:
        assert refusal in codes(result.refusals)
        assert result.dose_mg is None and result.devices is None
    if warning is None:
        assert result.warnings == ()
    else:
        assert warning in codes(result.warnings)


def test_esketamine_devices_rest_and_monitoring() -> None:
    result = esketamine_order(84, 3)
    assert result.rest_between_devices_minutes == 5
    assert result.dosing_minutes == 10  # two 5-minute rests between three devices
    assert result.observation_minutes == 120
    assert len([s for s in result.steps if s.startswith("Device")]) == 3
    assert result.settings["doses_mg"] == [56, 84]
    data = result.to_json_dict()
    assert data["devices"] == 3 and data["status"] == "ordered"


def test_esketamine_input_errors() -> None:
    with pytest.raises(DosingInputError):
        esketamine_order(56.0, 1)  # type: ignore[arg-type]
    with pytest.raises(DosingInputError):
        esketamine_order(56, True)  # type: ignore[arg-type]
    with pytest.raises(DosingInputError):
        esketamine_order(56, 1, protocol_id="iv-ketamine")


# --- properties ------------------------------------------------------------------------------

weights = st.decimals(min_value=30, max_value=300, places=1).map(float)
doses = st.decimals(min_value="0.5", max_value="1.0", places=2).map(float)
minutes = st.integers(min_value=40, max_value=60)
bags = st.integers(min_value=50, max_value=1000)
strengths = st.decimals(min_value=1, max_value=50, places=1).map(float)


def _half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _sane(w: float, d: float, m: int, **kw: Any) -> Order:
    return calculate_order(IV, w, d, m, previous_mg_per_kg=d, **kw)


@settings(max_examples=300, deadline=None)
@given(w=weights, d=doses, m=minutes, bag=bags)
def test_dose_and_bag_rate_arithmetic(w: float, d: float, m: int, bag: int) -> None:
    result = _sane(w, d, m, bag_volume_ml=bag)
    exact = Decimal(str(w)) * Decimal(str(d))
    if _half_up(exact) > 150:
        assert codes(result.refusals) == {"dose_above_cap"}
        return
    assert result.refusals == ()
    assert result.dose_mg is not None and result.volume_ml is not None
    assert result.rate_ml_per_h is not None
    assert abs(result.dose_mg - exact) <= Decimal("0.05")
    assert abs(result.rate_ml_per_h - result.volume_ml * 60 / m) <= Decimal("0.05")
    assert result.rate_ml_per_h >= 0


@settings(max_examples=300, deadline=None)
@given(w=weights, d=doses, m=minutes, c=strengths)
def test_dose_and_concentration_rate_arithmetic(w: float, d: float, m: int, c: float) -> None:
    result = _sane(w, d, m, concentration_mg_per_ml=c)
    if result.refused:
        assert codes(result.refusals) == {"dose_above_cap"}
        return
    assert result.dose_mg is not None and result.volume_ml is not None
    assert result.rate_ml_per_h is not None
    assert abs(result.volume_ml - result.dose_mg / Decimal(str(c))) <= Decimal("0.005")
    assert abs(result.rate_ml_per_h - result.volume_ml * 60 / m) <= Decimal("0.05")
    assert result.rate_ml_per_h >= 0


@settings(max_examples=400, deadline=None)
@given(
    w=st.decimals(min_value=1, max_value=400, places=1),
    d=st.decimals(min_value="0.1", max_value="1.5", places=2),
    m=st.integers(min_value=20, max_value=90),
    prev=st.none() | st.decimals(min_value="0.5", max_value="1.0", places=2),
)
def test_refused_if_and_only_if_outside_the_limits(
    w: Decimal, d: Decimal, m: int, prev: Decimal | None
) -> None:
    result = calculate_order(
        IV,
        float(w),
        float(d),
        m,
        bag_volume_ml=100,
        previous_mg_per_kg=None if prev is None else float(prev),
        weight_measured_on=TODAY,
        today=TODAY,
    )
    expected = set()
    if not 30 <= w <= 300:
        expected.add("weight_implausible")
    if d < Decimal("0.5"):
        expected.add("mg_per_kg_below_min")
    if d > Decimal("1.0"):
        expected.add("mg_per_kg_above_max")
    if prev is not None and d - prev > Decimal("0.25"):
        expected.add("escalation_too_large")
    if not 40 <= m <= 60:
        expected.add("minutes_below_min" if m < 40 else "minutes_above_max")
    if 30 <= w <= 300 and _half_up(w * d) > 150:
        expected.add("dose_above_cap")
    assert codes(result.refusals) == expected
    assert result.refused == bool(expected)


@settings(max_examples=200, deadline=None)
@given(
    a=st.decimals(min_value=30, max_value=150, places=1),
    b=st.decimals(min_value=30, max_value=150, places=1),
    d=doses,
    m=minutes,
    c=strengths,
)
def test_monotonic_in_weight(a: Decimal, b: Decimal, d: float, m: int, c: float) -> None:
    light, heavy = sorted((a, b))
    first = _sane(float(light), d, m, concentration_mg_per_ml=c)
    second = _sane(float(heavy), d, m, concentration_mg_per_ml=c)
    if first.refused or second.refused:
        return
    assert first.dose_mg is not None and second.dose_mg is not None
    assert first.volume_ml is not None and second.volume_ml is not None
    assert first.rate_ml_per_h is not None and second.rate_ml_per_h is not None
    assert first.dose_mg <= second.dose_mg
    assert first.volume_ml <= second.volume_ml
    assert first.rate_ml_per_h <= second.rate_ml_per_h
