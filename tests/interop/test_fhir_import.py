"""Reading a FHIR Bundle from another system: items, findings, units, references, errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketacare.interop.fhir_import import (
    BundleError,
    ConditionItem,
    KeptItem,
    MedicationItem,
    ObservationItem,
    PatientItem,
    PatientRef,
    parse_bundle,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "other_ehr_bundle.json"
PATIENT_URL = "urn:uuid:0000-patient"


def other_ehr() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "https://ehr.example/mrn", "value": "ab-123"}],
        "name": [{"family": "Okafor", "given": ["Chidi"]}],
        "gender": "male",
        "birthDate": "1979-03-04",
        **extra,
    }


def observation(code: str, value: Any = None, unit: str | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": PATIENT_URL},
        "effectiveDateTime": "2026-05-01T10:00:00Z",
        **extra,
    }
    if value is not None:
        body["valueQuantity"] = {"value": value, "system": "http://unitsofmeasure.org"}
        if unit is not None:
            body["valueQuantity"]["code"] = unit
    return body


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    entries = [{"fullUrl": PATIENT_URL, "resource": patient()}]
    entries += [{"resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def only(parsed: Any, cls: type) -> Any:
    found = [i for i in parsed.items if isinstance(i, cls) and i.resource_type != "Patient"]
    assert len(found) == 1, parsed.items
    return found[0]


# --- the hand-written bundle ----------------------------------------------------------------


def test_the_other_ehr_bundle_is_read_entry_by_entry() -> None:
    parsed = parse_bundle(other_ehr(), now=NOW)
    assert parsed.bundle_type == "transaction"
    assert parsed.source == "https://ehr.lakeside-psychiatry.example/fhir"
    kinds = [(i.index, type(i).__name__) for i in parsed.items]
    assert kinds == [
        (0, "PatientItem"),
        (1, "MedicationItem"),
        (3, "MedicationItem"),
        (4, "ObservationItem"),
        (5, "ObservationItem"),
        (6, "ConditionItem"),
        (7, "KeptItem"),
        (8, "KeptItem"),
        (9, "KeptItem"),
    ]
    assert parsed.merged == {2: 3}  # the Medication entry is read into its statement

    person = parsed.items[0]
    assert isinstance(person, PatientItem)
    assert (person.mrn, person.family_name, person.given_name) == (
        "LP-48213",
        "Nakamura-Reyes",
        "Alexandra Maria",
    )
    assert (person.birth_date, person.sex) == (date(1988, 9, 14), "female")
    assert person.phone == "+1 416 555 0142" and person.email == "alex.nr@example.org"
    assert person.address == "221 Harbord St, Apt 3, Toronto, ON, M6G 1G8, CA"

    vyvanse, sertraline = parsed.items[1], parsed.items[2]
    assert isinstance(vyvanse, MedicationItem) and isinstance(sertraline, MedicationItem)
    assert vyvanse.name == "Vyvanse 50 mg capsule"
    assert vyvanse.dose_text == "1 capsule by mouth every morning"
    assert (vyvanse.status, vyvanse.start_date) == ("active", date(2024, 3, 1))
    assert sertraline.name == "sertraline 50 MG Oral Tablet"  # via medicationReference
    assert sertraline.dose_text == "50 mg"
    assert sertraline.patient == PatientRef(index=0)  # "Patient/lp-48213" resolved in-bundle

    weight, bp = parsed.items[3], parsed.items[4]
    assert isinstance(weight, ObservationItem) and weight.kind == "weight"
    assert weight.weight_kg == 69.99  # 154.3 lb
    assert weight.effective_at == datetime(2026, 4, 10, 13, 15, tzinfo=UTC)
    assert isinstance(bp, ObservationItem) and (bp.systolic, bp.diastolic) == (128.0, 82.0)

    adhd = parsed.items[5]
    assert isinstance(adhd, ConditionItem)
    assert (adhd.known, adhd.coding.code, adhd.clinical_status, adhd.onset) == (
        "adhd",
        "F90.0",
        "active",
        "2019-06-03",
    )

    found = [(f.index, f.severity, f.code, f.path) for f in parsed.findings]
    assert found == [
        (7, "warning", "unknown_code", "entry[7].resource.code"),
        (8, "warning", "unknown_unit", "entry[8].resource.valueQuantity.unit"),
        (9, "warning", "unsupported_resource", "entry[9].resource.resourceType"),
    ]
    made_up, bad_unit, immunization = parsed.items[6:]
    assert isinstance(made_up, KeptItem) and made_up.coding is not None
    assert made_up.coding.code == "99999-9" and made_up.readings == {"value": 7.0}
    assert isinstance(bad_unit, KeptItem) and bad_unit.unit == "mg/dL"
    assert isinstance(immunization, KeptItem)
    assert immunization.resource["vaccineCode"]["coding"][0]["code"] == "158"
    assert {i.disposition for i in (made_up, bad_unit, immunization)} == {"kept"}


def test_parsing_is_deterministic_so_reimport_finds_the_same_keys() -> None:
    first = parse_bundle(other_ehr(), now=NOW)
    again = parse_bundle(other_ehr(), now=NOW)
    assert [(i.external_id, i.content_hash) for i in first.items] == [
        (i.external_id, i.content_hash) for i in again.items
    ]
    assert len({i.external_id for i in first.items}) == len(first.items)


# --- units ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "field", "expected"),
    [
        ("29463-7", 70, "kg", "weight_kg", 70.0),
        ("29463-7", 70500, "g", "weight_kg", 70.5),
        ("29463-7", 154.3, "[lb_av]", "weight_kg", 69.99),
        ("3141-9", 200, "[lb_av]", "weight_kg", 90.72),
        ("29463-7", 180, "lbs", "weight_kg", 81.65),  # printed alias without a UCUM code
        ("8302-2", 172.4, "cm", "height_cm", 172.4),
        ("8302-2", 1.72, "m", "height_cm", 172.0),
        ("8302-2", 68, "[in_i]", "height_cm", 172.7),
        ("8302-2", 1720, "mm", "height_cm", 172.0),
        ("8480-6", 131, "mm[Hg]", "systolic", 131.0),
        ("8462-4", 84, "mm[Hg]", "diastolic", 84.0),
    ],
)
def test_units_are_converted_to_kilograms_centimetres_and_mmhg(
    code: str, value: float, unit: str, field: str, expected: float
) -> None:
    obs = observation(code, value, unit)
    if unit == "lbs":
        obs["valueQuantity"] = {"value": value, "unit": "lbs"}
    item = only(parse_bundle(bundle(obs), now=NOW), ObservationItem)
    assert getattr(item, field) == expected
    assert not parse_bundle(bundle(obs), now=NOW).findings


@pytest.mark.parametrize(
    ("code", "value", "unit", "finding"),
    [
        ("29463-7", 95, "mg/dL", "unknown_unit"),
        ("8302-2", 170, "kg", "unknown_unit"),
        ("8480-6", 16, "kPa", "unknown_unit"),
        ("29463-7", 7, "kg", "implausible_value"),  # a child's or an entry error
        ("29463-7", 700, "[lb_av]", "implausible_value"),  # 317 kg
        ("8302-2", 17, "cm", "implausible_value"),
        ("8480-6", 400, "mm[Hg]", "implausible_value"),
        ("99999-9", 5, "1", "unknown_code"),
        ("8867-4", 72, "/min", "unknown_code"),  # heart rate outside a session: kept
    ],
)
def test_unknown_units_and_codes_are_kept_and_impossible_values_refused(
    code: str, value: float, unit: str, finding: str
) -> None:
    parsed = parse_bundle(bundle(observation(code, value, unit)), now=NOW)
    item = only(parsed, KeptItem)
    [f] = parsed.findings
    assert f.code == finding and f.index == 1
    expected = "refused" if finding == "implausible_value" else "kept"
    assert item.disposition == expected
    assert f.severity == ("error" if expected == "refused" else "warning")
    assert item.resource["valueQuantity"]["value"] == value  # the resource as received


def test_impossible_weight_names_the_range_from_the_knowledge_base() -> None:
    parsed = parse_bundle(bundle(observation("29463-7", 12, "kg")), now=NOW)
    assert "30-300 kg" in parsed.findings[0].message
    assert parsed.findings[0].path == "entry[1].resource.valueQuantity.value"


def test_blood_pressure_panel_with_swapped_values_is_refused() -> None:
    panel = observation("85354-9")
    panel["component"] = [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": c}]},
            "valueQuantity": {"value": v, "unit": "mmHg", "code": "mm[Hg]"},
        }
        for c, v in (("8480-6", 80), ("8462-4", 120))
    ]
    parsed = parse_bundle(bundle(panel), now=NOW)
    item = only(parsed, KeptItem)
    assert item.disposition == "refused"
    assert item.readings == {"systolic": 80.0, "diastolic": 120.0}
    assert parsed.findings[0].code == "implausible_value"


def test_a_measurement_in_the_future_or_without_a_time_is_refused() -> None:
    future = observation("29463-7", 70, "kg", effectiveDateTime="2027-01-01T00:00:00Z")
    undated = observation("29463-7", 70, "kg")
    del undated["effectiveDateTime"]
    parsed = parse_bundle(bundle(future, undated), now=NOW)
    assert [(f.index, f.code) for f in parsed.findings] == [(1, "future_time"), (2, "no_time")]


# --- other resources ------------------------------------------------------------------------


def test_medication_status_and_dates() -> None:
    statement = {
        "resourceType": "MedicationStatement",
        "status": "intended",
        "medicationCodeableConcept": {"text": "Concerta 36 mg"},
        "subject": {"reference": PATIENT_URL},
        "effectivePeriod": {"start": "2025-02-01", "end": "2025-01-01"},
    }
    parsed = parse_bundle(bundle(statement), now=NOW)
    item = only(parsed, MedicationItem)
    # Not knowing whether it is taken must not hide it from screening.
    assert (item.status, item.start_date, item.stop_date) == ("active", date(2025, 2, 1), None)
    assert [f.code for f in parsed.findings] == ["status_mapped", "dates_reversed"]


def test_a_condition_with_an_unknown_code_is_kept_on_the_problem_list_and_reported() -> None:
    condition = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]},
        "subject": {"reference": PATIENT_URL},
    }
    parsed = parse_bundle(bundle(condition), now=NOW)
    item = only(parsed, ConditionItem)
    assert item.known is None and item.coding.code == "35489007"
    assert [(f.code, f.severity) for f in parsed.findings] == [("unknown_code", "warning")]


@pytest.mark.parametrize(
    ("system", "code", "adhd"),
    [
        ("http://hl7.org/fhir/sid/icd-10", "F90.0", True),
        ("http://hl7.org/fhir/sid/icd-10-cm", "F90.2", True),
        ("http://hl7.org/fhir/sid/icd-10-cm", "F90", True),
        ("http://snomed.info/sct", "406506008", True),
        ("http://hl7.org/fhir/sid/icd-10", "F91.0", False),
        ("http://snomed.info/sct", "F90.0", False),
    ],
)
def test_adhd_is_recognised_by_icd10_and_snomed(system: str, code: str, adhd: bool) -> None:
    condition = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": PATIENT_URL},
    }
    item = only(parse_bundle(bundle(condition), now=NOW), ConditionItem)
    assert (item.known == "adhd") is adhd


# --- references -----------------------------------------------------------------------------


def test_references_by_full_url_by_id_and_to_a_patient_not_in_the_bundle() -> None:
    weights = [
        observation("29463-7", 70, "kg", subject={"reference": ref})
        for ref in (PATIENT_URL, "Patient/p1", "https://ehr.example/fhir/Patient/p1", "Patient/zz9")
    ]
    parsed = parse_bundle(bundle(*weights), now=NOW)
    refs = [i.patient for i in parsed.items if isinstance(i, ObservationItem)]
    assert refs == [PatientRef(index=0)] * 3 + [PatientRef(external_id="zz9")]


def test_an_unresolvable_reference_is_refused_and_kept() -> None:
    orphan = observation("29463-7", 70, "kg", subject={"reference": "urn:uuid:nobody"})
    parsed = parse_bundle(bundle(orphan), now=NOW)
    item = only(parsed, KeptItem)
    assert item.disposition == "refused"
    assert [(f.code, f.path) for f in parsed.findings] == [
        ("unresolved_reference", "entry[1].resource.subject")
    ]


def test_resources_of_a_refused_patient_are_refused_with_it() -> None:
    data = bundle(observation("29463-7", 70, "kg"))
    data["entry"][0]["resource"]["birthDate"] = "1979"  # a year only
    parsed = parse_bundle(data, now=NOW)
    assert [type(i).__name__ for i in parsed.items] == ["KeptItem", "KeptItem"]
    assert [(f.index, f.code) for f in parsed.findings] == [
        (0, "invalid_patient"),
        (1, "patient_refused"),
    ]


# --- invalid bundles ------------------------------------------------------------------------


def test_a_validation_error_names_the_entry_and_field() -> None:
    data = other_ehr()
    data["entry"][3]["resource"]["effectiveDateTime"] = "yesterday"
    data["entry"][4]["resource"]["valueQuantity"]["unit"] = 12
    with pytest.raises(BundleError) as caught:
        parse_bundle(data, now=NOW)
    paths = [i.path for i in caught.value.issues]
    assert paths == ["entry[3].resource.effectiveDateTime", "entry[4].resource.valueQuantity.unit"]
    assert "entry[4].resource.valueQuantity.unit: Input should be a valid string" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ([], "$"),
        ({"resourceType": "Patient"}, "resourceType"),
        ({"resourceType": "Bundle", "type": "searchset"}, "type"),
        ({"resourceType": "Bundle", "type": "batch", "entry": {}}, "entry"),
        ({"resourceType": "Bundle", "type": "batch", "entry": [3]}, "entry[0]"),
        ({"resourceType": "Bundle", "type": "batch", "entry": [{}]}, "entry[0].resource"),
        (
            {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"id": "x"}}]},
            "entry[0].resource",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"resource": {"resourceType": "Patient", "colour": "red"}}],
            },
            "entry[0].resource.colour",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"resource": patient(), "request": {"method": "DELETE", "url": "Patient/p1"}}
                ],
            },
            "entry[0].request.method",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"resource": {"resourceType": "x"}}],
            },
            "entry[0].resource.resourceType",
        ),
        # No database column can hold these: refused up front, never a crash when storing.
        ({"resourceType": "Bundle", "type": "batch", "id": float("nan")}, "$"),
        (
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"resource": patient(id="a\x00")}],
            },
            "$",
        ),
    ],
)
def test_what_is_not_a_readable_bundle_is_refused_with_the_place(data: Any, path: str) -> None:
    with pytest.raises(BundleError) as caught:
        parse_bundle(data, now=NOW)
    assert caught.value.issues[0].path == path


def test_a_contained_resource_of_an_unknown_type_is_a_bundle_error_not_a_crash() -> None:
    data = bundle()
    data["entry"][0]["resource"]["contained"] = [{"resourceType": "Gizmo", "id": "g"}]
    with pytest.raises(BundleError) as caught:
        parse_bundle(data, now=NOW)
    assert caught.value.issues[0].path == "entry[0].resource"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
KEYS = st.sampled_from(
    ["resourceType", "type", "entry", "resource", "fullUrl", "valueQuantity", "code", "subject"]
)


def _mutations(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The other EHR's bundle with one value somewhere replaced by arbitrary JSON."""

    def mutate(args: tuple[int, str, Any]) -> dict[str, Any]:
        index, key, value = args
        data = copy.deepcopy(base)
        entry = data["entry"][index % len(data["entry"])]
        target = entry["resource"] if key not in ("fullUrl", "resource") else entry
        target[key] = value
        return data

    return st.tuples(st.integers(0, 20), KEYS, JSON).map(mutate)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, _mutations(other_ehr())))
def test_arbitrary_json_raises_nothing_but_a_bundle_error(data: Any) -> None:
    try:
        parsed = parse_bundle(data, now=NOW)
    except BundleError as exc:
        error: BundleError | None = exc
    else:
        error = None
    if error is not None:
        assert error.issues and all(i.path and i.message for i in error.issues)
        return
    # Every entry is accounted for: an item, or read into another entry.
    count = len(data["entry"] or [])
    assert len(parsed.items) + len(parsed.merged) == count


def test_a_changed_medication_entry_changes_the_statement_that_refers_to_it() -> None:
    data = other_ehr()
    before = parse_bundle(data, now=NOW).items[2]
    data["entry"][2]["resource"]["code"]["coding"][0]["display"] = "sertraline 100 MG Oral Tablet"
    after = parse_bundle(data, now=NOW).items[2]
    assert isinstance(after, MedicationItem) and after.name == "sertraline 100 MG Oral Tablet"
    assert after.external_id == before.external_id
    assert after.content_hash != before.content_hash
