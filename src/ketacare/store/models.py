"""Tables. Every clinical row carries ``clinic_id``: the tenant key and, at scale, the
distribution column. Times are timezone-aware UTC."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ketacare.store.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Clinic(Base):
    """A clinic: the unit of tenancy. Users and patients belong to exactly one."""

    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The clinic's overrides of the cited defaults (calendar, dosing, monitoring); validated by
    # app.clinic_settings. Every decision stores the values it used.
    settings: Mapped[dict[str, Any] | None]
    settings_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A member of a clinic's staff (or a researcher) who signs in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Two-factor sign-in (RFC 6238): the key shared with the user's authenticator app, and the
    # last time step accepted, so a code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class UserSession(Base):
    """A signed-in browser. The cookie carries a signed random token; only its hash is kept,
    so a copy of the database cannot be used to sign in."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A per-user API token for scripts and devices; stored as a SHA-256 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginFailure(Base):
    """One failed sign-in, kept to throttle guessing by username and by address."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Patient(Base):
    """A person in the programme. ``version`` guards against lost updates."""

    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("clinic_id", "mrn"),
        Index("ix_patients_clinic_name", "clinic_id", "name_key", "id"),
        Index("ix_patients_clinic_family", "clinic_id", "family_key"),
        Index("ix_patients_clinic_given", "clinic_id", "given_key"),
        Index("ix_patients_clinic_stage", "clinic_id", "stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    mrn: Mapped[str] = mapped_column(String(32))
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    # Case- and accent-folded copies for indexed search and stable ordering.
    family_key: Mapped[str] = mapped_column(String(100))
    given_key: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(String(201))
    date_of_birth: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(20), default="intake")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class BodyMeasurement(Base):
    """Weight and/or height measured at a time (dosing uses the latest fresh weight)."""

    __tablename__ = "body_measurements"
    __table_args__ = (Index("ix_body_measurements_patient_at", "patient_id", "measured_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    measured_at: Mapped[datetime]
    weight_kg: Mapped[float | None] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class MedicationEntry(Base):
    """A medicine the patient takes or took, as entered by staff (resolved by screening)."""

    __tablename__ = "medication_entries"
    __table_args__ = (Index("ix_medication_entries_patient_status", "patient_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    name_entered: Mapped[str] = mapped_column(String(200))
    dose_text: Mapped[str | None] = mapped_column(String(200))
    start_date: Mapped[date | None] = mapped_column(Date)
    stop_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class AuditEvent(Base):
    """Who did what to which patient's data, when, and how it ended. Append-only: the
    database refuses UPDATE and DELETE on this table (see the initial migration)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_clinic_at", "clinic_id", "at"),
        Index("ix_audit_events_clinic_patient_at", "clinic_id", "patient_id", "at"),
        Index("ix_audit_events_clinic_user_at", "clinic_id", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any] | None]


class InteractionScreen(Base):
    """One screen of a patient's medication list, stored exactly as the clinician saw it: the
    inputs, the full result and the knowledge version in force."""

    __tablename__ = "interaction_screens"
    __table_args__ = (Index("ix_interaction_screens_patient_at", "patient_id", "screened_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    screened_at: Mapped[datetime] = mapped_column(default=utcnow)
    screened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    agent: Mapped[str] = mapped_column(String(20))
    route: Mapped[str] = mapped_column(String(20))
    knowledge_version: Mapped[str] = mapped_column(String(32))
    # SHA-256 of (agent, route, sorted inputs, knowledge version): an unchanged list is not
    # stored again.
    input_hash: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any]]
    highest_severity: Mapped[str | None] = mapped_column(String(20))


class IntakeRecord(Base):
    """One saved revision of a patient's structured intake. Revisions are never changed: a
    correction is a new revision, the latest is current."""

    __tablename__ = "intake_records"
    __table_args__ = (Index("ix_intake_records_patient_at", "patient_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Who diagnosed ADHD and when (free text as the referral letter says it).
    diagnosis_by: Mapped[str | None] = mapped_column(String(200))
    diagnosis_when: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any]]


class Assessment(Base):
    """One administration of a rating scale: every item answer, and the score as computed
    with the knowledge version in force."""

    __tablename__ = "assessments"
    __table_args__ = (
        Index(
            "ix_assessments_patient_instrument_at", "patient_id", "instrument", "administered_at"
        ),
        Index("ix_assessments_clinic_urgent_at", "clinic_id", "urgent", "administered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    instrument: Mapped[str] = mapped_column(String(20))
    administered_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(20))  # staff | self_report
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answers: Mapped[list[int]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)
    band: Mapped[str | None] = mapped_column(String(40))
    positive_screen: Mapped[bool | None] = mapped_column(Boolean)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any]]
    knowledge_version: Mapped[str] = mapped_column(String(32))
    # Set when the scale was rated during a dosing session (CADSS, MOAA/S).
    session_id: Mapped[int | None] = mapped_column(ForeignKey("treatment_sessions.id"), index=True)


class PatientFirstDose(Base):
    """Derived, kept in step by every write that doses a patient: when the first dose of the
    programme started and under which protocol. The clinic dashboard's cohorts come from here
    instead of a scan of every session."""

    __tablename__ = "patient_first_doses"
    __table_args__ = (Index("ix_patient_first_doses_clinic_at", "clinic_id", "first_dose_at"),)

    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    first_dose_at: Mapped[datetime]
    protocol_id: Mapped[str] = mapped_column(String(40))


class PatientScaleSummary(Base):
    """Derived, kept in step with ratings and the first dose: per dosed patient and scale, the
    baseline total (latest rating at or before the first dose) and the latest total after it."""

    __tablename__ = "patient_scale_summaries"

    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    instrument: Mapped[str] = mapped_column(String(20), primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    baseline_total: Mapped[int | None] = mapped_column(Integer)
    latest_total: Mapped[int | None] = mapped_column(Integer)


class FlagAcknowledgement(Base):
    """A clinician has seen an urgent flag and acted (e.g. PHQ-9 item 9 answered above 0)."""

    __tablename__ = "flag_acknowledgements"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"), unique=True)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(Text)


class EligibilityReview(Base):
    """A prescriber's signed eligibility decision: inputs, outputs, knowledge version and
    settings exactly as reviewed. Immutable (the database refuses UPDATE and DELETE); an
    amendment is a new review that points at the one it amends."""

    __tablename__ = "eligibility_reviews"
    __table_args__ = (Index("ix_eligibility_reviews_patient_at", "patient_id", "signed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_records.id"))
    computed_decision: Mapped[str] = mapped_column(String(20))
    final_decision: Mapped[str] = mapped_column(String(20))
    override_reason: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]]
    output: Mapped[dict[str, Any]]
    knowledge_version: Mapped[str] = mapped_column(String(32))
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("eligibility_reviews.id"))


class ConsentRecord(Base):
    """Informed consent given (or withdrawn) for a version of the consent text. Immutable."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_records_patient_at", "patient_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    consent_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # given | withdrawn
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class SelfReportLink(Base):
    """A one-time, expiring link for a patient to answer questionnaires without signing in.
    Only the token's hash is stored."""

    __tablename__ = "self_report_links"
    __table_args__ = (Index("ix_self_report_links_patient", "patient_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    instruments: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class TreatmentCourse(Base):
    """A planned series of dosing sessions with CBT after each, as the planner laid it out. The
    plan's revision rises with every re-planning; the sessions themselves are rows of their own."""

    __tablename__ = "treatment_courses"
    __table_args__ = (
        Index("ix_treatment_courses_patient_at", "patient_id", "created_at"),
        Index("ix_treatment_courses_clinic_status", "clinic_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    protocol_id: Mapped[str] = mapped_column(String(40))
    start_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|completed|stopped
    # CoursePlan.to_json_dict(): sessions, warnings, missed history, rules and calendar.
    plan: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer, default=0)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class TreatmentSession(Base):
    """One monitored dosing session (infusion, injection or nasal dose) of a patient. Once
    signed, the database refuses to change it or anything recorded in it."""

    __tablename__ = "treatment_sessions"
    __table_args__ = (
        Index("ix_treatment_sessions_patient_at", "patient_id", "scheduled_at"),
        Index("ix_treatment_sessions_clinic_status_at", "clinic_id", "status", "scheduled_at"),
        # The day's worklist: a range of one clinic's days, in time order, keyset-paged.
        Index("ix_treatment_sessions_clinic_at_id", "clinic_id", "scheduled_at", "id"),
        Index("ix_treatment_sessions_course", "course_id", "plan_key"),
        # Dashboard: sessions dosed in a period; each patient's first dose and its protocol.
        # With the id, counting a period's alerts and adverse events reads only the index.
        Index("ix_treatment_sessions_clinic_dose_id", "clinic_id", "dose_started_at", "id"),
        Index(
            "ix_treatment_sessions_clinic_patient_dose",
            "clinic_id",
            "patient_id",
            "dose_started_at",
            "protocol_id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("treatment_courses.id"))
    # The planner's key ("infusion-3") and the infusion's number within the course.
    plan_key: Mapped[str | None] = mapped_column(String(30))
    number: Mapped[int | None] = mapped_column(Integer)
    protocol_id: Mapped[str] = mapped_column(String(40))
    scheduled_at: Mapped[datetime]
    # scheduled | in_progress | paused | completed | stopped | missed | cancelled
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    # Pre-dose readings: the baseline every rise alert is measured against.
    baseline: Mapped[dict[str, Any] | None]
    # The blood-pressure gate as decided on the baseline (band, reasons, settings, version).
    gate: Mapped[dict[str, Any] | None]
    gate_override_reason: Mapped[str | None] = mapped_column(Text)
    # Fasting, escort, pregnancy, interaction re-screen: answers and the decision on them.
    prechecks: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime | None]
    dose_started_at: Mapped[datetime | None]
    dose_ended_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    # The discharge checklist as evaluated at sign-off (inputs, criteria, settings, version).
    discharge: Mapped[dict[str, Any] | None]
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class DoseOrder(Base):
    """A dose order as calculated (or refused) for a session: inputs, the calculation with
    every step, warnings, refusals, settings and knowledge version. Append-only; a changed
    order is a new row, and a second person's check is a row of its own."""

    __tablename__ = "dose_orders"
    __table_args__ = (Index("ix_dose_orders_session_at", "session_id", "ordered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("treatment_sessions.id"))
    status: Mapped[str] = mapped_column(String(20))  # ordered | refused
    dose_mg: Mapped[float | None] = mapped_column(Float)
    mg_per_kg: Mapped[float | None] = mapped_column(Float)
    inputs: Mapped[dict[str, Any]]
    output: Mapped[dict[str, Any]]
    knowledge_version: Mapped[str] = mapped_column(String(32))
    ordered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ordered_at: Mapped[datetime] = mapped_column(default=utcnow)


class DoseVerification(Base):
    """A second person checked an order's numbers against the pump and the syringe or bag."""

    __tablename__ = "dose_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("dose_orders.id"), unique=True)
    verified_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionEvent(Base):
    """What happened in a session, in order: dose started or ended, paused, resumed, stopped
    early, alert acknowledged. Append-only."""

    __tablename__ = "session_events"
    __table_args__ = (Index("ix_session_events_session_at", "session_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("treatment_sessions.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    text: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RiskDecision(Base):
    """A prescriber's decision, before a dose, on the patient's open suicide-risk flags: proceed
    (with the reason) or defer. Append-only; the flags it covers are rows of their own."""

    __tablename__ = "risk_decisions"
    __table_args__ = (Index("ix_risk_decisions_session_at", "session_id", "decided_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    # The session whose start the decision is about.
    session_id: Mapped[int] = mapped_column(ForeignKey("treatment_sessions.id"))
    decision: Mapped[str] = mapped_column(String(20))  # proceed | defer
    reason: Mapped[str] = mapped_column(Text)
    # The flags as the prescriber saw them (level, words, instruction), for the record.
    flags: Mapped[list[Any]] = mapped_column(JSON)
    knowledge_version: Mapped[str] = mapped_column(String(32))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskDecisionFlag(Base):
    """One flag a risk decision covers: an urgent rating or a CBT note (exactly one)."""

    __tablename__ = "risk_decision_flags"
    __table_args__ = (
        CheckConstraint("(assessment_id IS NULL) != (therapy_session_id IS NULL)", name="one_flag"),
        Index("ix_risk_decision_flags_assessment", "assessment_id"),
        Index("ix_risk_decision_flags_therapy", "therapy_session_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("risk_decisions.id"), index=True)
    assessment_id: Mapped[int | None] = mapped_column(ForeignKey("assessments.id"))
    therapy_session_id: Mapped[int | None] = mapped_column(ForeignKey("therapy_sessions.id"))


class AdverseEvent(Base):
    """An adverse event during or after a session, coded from knowledge/adverse_events.yaml."""

    __tablename__ = "adverse_events"
    __table_args__ = (
        Index("ix_adverse_events_session_at", "session_id", "onset_at"),
        Index("ix_adverse_events_clinic_at", "clinic_id", "onset_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    session_id: Mapped[int] = mapped_column(ForeignKey("treatment_sessions.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    code: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(20))  # mild | moderate | severe
    serious: Mapped[bool] = mapped_column(Boolean, default=False)
    onset_at: Mapped[datetime]
    action: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(20))  # resolved | ongoing | unknown
    note: Mapped[str | None] = mapped_column(Text)
    knowledge_version: Mapped[str] = mapped_column(String(32))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionAmendment(Base):
    """A correction or addition to a signed session; the signed record itself never changes."""

    __tablename__ = "session_amendments"
    __table_args__ = (Index("ix_session_amendments_session_at", "session_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("treatment_sessions.id"))
    text: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class TherapySession(Base):
    """A psychotherapy (CBT) session, usually in the window after an infusion, with the
    therapist's short structured note. Signed notes are immutable; corrections are new rows
    that point at the note they amend."""

    __tablename__ = "therapy_sessions"
    __table_args__ = (
        Index("ix_therapy_sessions_patient_at", "patient_id", "scheduled_at"),
        Index("ix_therapy_sessions_clinic_status_at", "clinic_id", "status", "scheduled_at"),
        Index("ix_therapy_sessions_course", "course_id", "plan_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("treatment_courses.id"))
    plan_key: Mapped[str | None] = mapped_column(String(30))
    # The dosing session this one follows (the CBT window is counted from its end).
    follows_session_id: Mapped[int | None] = mapped_column(ForeignKey("treatment_sessions.id"))
    scheduled_at: Mapped[datetime]
    minutes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    note: Mapped[dict[str, Any] | None]
    therapist_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime | None]
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("therapy_sessions.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class VitalSample(Base):
    """One set of readings during a session. The device's measured time and the server's
    received time are kept apart; ``sample_key`` makes a re-sent device batch harmless."""

    __tablename__ = "vital_samples"
    __table_args__ = (
        Index("ix_vital_samples_session_at", "session_id", "measured_at"),
        UniqueConstraint("session_id", "sample_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("treatment_sessions.id"))
    measured_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    systolic: Mapped[float | None] = mapped_column(Float)
    diastolic: Mapped[float | None] = mapped_column(Float)
    heart_rate: Mapped[float | None] = mapped_column(Float)
    spo2: Mapped[float | None] = mapped_column(Float)
    respiratory_rate: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(20))  # manual | device
    sample_key: Mapped[str | None] = mapped_column(String(100))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class SessionAlert(Base):
    """An alert raised by a reading, as the rules in force decided it."""

    __tablename__ = "session_alerts"
    __table_args__ = (Index("ix_session_alerts_session_at", "session_id", "raised_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("treatment_sessions.id"))
    vital_sample_id: Mapped[int] = mapped_column(ForeignKey("vital_samples.id"))
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    code: Mapped[str] = mapped_column(String(60))
    severity: Mapped[str] = mapped_column(String(20))
    field: Mapped[str] = mapped_column(String(30))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[str]] = mapped_column(JSON)
    knowledge_version: Mapped[str] = mapped_column(String(32))


class ExternalRecord(Base):
    """Which local row a resource imported from another system became, and a hash of the
    content it had: importing the same resource again finds it here and changes nothing."""

    __tablename__ = "external_records"
    __table_args__ = (
        UniqueConstraint("clinic_id", "system", "resource_type", "external_id"),
        Index("ix_external_records_local", "local_table", "local_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    # The sending system (Bundle.meta.source, else the system of the patient's identifier).
    system: Mapped[str] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(255))
    local_table: Mapped[str] = mapped_column(String(40))
    local_id: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PatientCondition(Base):
    """A coded diagnosis on the patient's problem list (ICD-10, SNOMED CT), as received."""

    __tablename__ = "patient_conditions"
    __table_args__ = (Index("ix_patient_conditions_patient", "patient_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    code_system: Mapped[str | None] = mapped_column(String(255))
    code: Mapped[str | None] = mapped_column(String(64))
    display: Mapped[str | None] = mapped_column(String(500))
    # Every coding as received ({system, code, display}); the first known one is in code.
    codings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    clinical_status: Mapped[str | None] = mapped_column(String(20))
    onset: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(20), default="import")
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportedResource(Base):
    """A received resource KetaCare has no other home for: a blood pressure outside a session,
    an observation with a code or unit it does not understand, a refused value, a resource
    type it does not use. Kept with the reason, never dropped."""

    __tablename__ = "imported_resources"
    __table_args__ = (
        Index("ix_imported_resources_patient_at", "patient_id", "effective_at"),
        Index("ix_imported_resources_clinic_disposition", "clinic_id", "disposition"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    resource_type: Mapped[str] = mapped_column(String(40))
    # stored: understood (e.g. blood pressure) | kept: not understood | refused: impossible
    disposition: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str | None] = mapped_column(String(40))
    code_system: Mapped[str | None] = mapped_column(String(255))
    code: Mapped[str | None] = mapped_column(String(64))
    display: Mapped[str | None] = mapped_column(String(500))
    effective_at: Mapped[datetime | None]
    # Numbers as received, by name ({"systolic": 128, "diastolic": 82} or {"value": 5.4}).
    readings: Mapped[dict[str, Any] | None]
    unit: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    resource: Mapped[dict[str, Any]]
    imported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
