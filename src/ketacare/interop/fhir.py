"""A patient's record as a FHIR R4B Bundle (JSON-ready dicts), and the server's metadata.

Pure: the builders take rows already loaded by the use-case (``PatientRecord``) and read only
their attributes and the knowledge files; no database, clock or network. FHIR R4B (4.3.0) is
used because the model library has no plain R4 models; for the resources written here R4B is
wire-compatible with R4 (4.0.1).

Resource ids are stable and derived from row ids (``obs-bp-123``); the Patient's id is the
patient's own id, so ``Patient/12`` is the same patient in the REST API and in a Bundle. Every
reference is relative (``Type/id``) and every entry's ``fullUrl`` is the base URL (empty by
default: relative) followed by ``Type/id``, so each reference resolves to an entry of the same
Bundle. Codes come from ``knowledge/fhir_codes.yaml``; where no standard code was found, the
code is KetaCare's own (``urn:ketacare:codesystem``), never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from ketacare.interop.fhir_resources import (
    JSON,
    PatientRecord,
    RecordBuilder,
    instant,
    mrn_system,
    questionnaire_url,
)
from ketacare.knowledge.fhir_code_defs import FhirCodes, load_fhir_codes

__all__ = [
    "FHIR_VERSION",
    "JSON",
    "PatientRecord",
    "capability_statement",
    "mrn_system",
    "operation_outcome",
    "patient_bundle",
    "patient_resource",
    "questionnaire_url",
    "searchset",
]

FHIR_VERSION = "4.3.0"


def patient_resource(record: PatientRecord, codes: FhirCodes | None = None) -> JSON:
    """The Patient resource alone."""
    return RecordBuilder(record, codes or load_fhir_codes()).patient()


def _entry(resource: JSON, base_url: str) -> JSON:
    return {
        "fullUrl": f"{base_url}{resource['resourceType']}/{resource['id']}",
        "resource": resource,
    }


def patient_bundle(
    record: PatientRecord,
    *,
    timestamp: datetime,
    base_url: str = "",
    codes: FhirCodes | None = None,
) -> JSON:
    """One patient's whole record as a Bundle of type collection."""
    resources = RecordBuilder(record, codes or load_fhir_codes()).build()
    return {
        "resourceType": "Bundle",
        "id": f"patient-{record.patient.id}-record",
        "meta": {"lastUpdated": instant(timestamp)},
        "type": "collection",
        "timestamp": instant(timestamp),
        "entry": [_entry(r, base_url) for r in resources],
    }


def searchset(
    resources: Sequence[JSON], *, timestamp: datetime, base_url: str = "", self_url: str = ""
) -> JSON:
    """Search results as a Bundle of type searchset (every entry a match)."""
    bundle: JSON = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": instant(timestamp)},
        "type": "searchset",
        "total": len(resources),
        "timestamp": instant(timestamp),
        "entry": [{**_entry(r, base_url), "search": {"mode": "match"}} for r in resources],
    }
    if self_url:
        bundle["link"] = [{"relation": "self", "url": self_url}]
    return bundle


def operation_outcome(code: str, diagnostics: str, *, expression: str | None = None) -> JSON:
    """An error as FHIR reports it. ``code`` is an IssueType (not-found, forbidden, invalid,
    login, exception)."""
    issue: JSON = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def capability_statement(*, software_version: str, released: date, base_url: str) -> JSON:
    """What this server answers: read and search Patient, search Observation, $everything."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": released.isoformat(),
        "publisher": "KetaCare",
        "kind": "instance",
        "software": {"name": "KetaCare", "version": software_version},
        "implementation": {"description": "KetaCare FHIR export (read-only)", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <API token> (see the Account page)."
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": "_id", "type": "token"},
                            {"name": "identifier", "type": "token"},
                        ],
                        "operation": [
                            {
                                "name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                            }
                        ],
                    },
                    {
                        "type": "Observation",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "category", "type": "token"},
                            {"name": "code", "type": "token"},
                        ],
                    },
                ],
            }
        ],
    }
