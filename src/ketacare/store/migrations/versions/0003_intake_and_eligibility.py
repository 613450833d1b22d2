"""intake, assessments, eligibility reviews, consent, self-report

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 22:32:08.433640
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ketacare.store.types
from ketacare.store.immutable import drop_append_only, make_append_only

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


IMMUTABLE = ("eligibility_reviews", "consent_records")


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=20), nullable=False),
        sa.Column(
            "administered_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=40), nullable=True),
        sa.Column("positive_screen", sa.Boolean(), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("knowledge_version", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_assessments_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_assessments_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_assessments_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assessments_clinic_urgent_at",
            ["clinic_id", "urgent", "administered_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_assessments_patient_instrument_at",
            ["patient_id", "instrument", "administered_at"],
            unique=False,
        )

    op.create_table(
        "consent_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("consent_version", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_consent_records_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_consent_records_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_consent_records_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_records_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            "ix_consent_records_patient_at", ["patient_id", "recorded_at"], unique=False
        )

    op.create_table(
        "intake_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("diagnosis_by", sa.String(length=200), nullable=True),
        sa.Column("diagnosis_when", sa.String(length=100), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_intake_records_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_intake_records_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_intake_records_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_records")),
    )
    with op.batch_alter_table("intake_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intake_records_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            "ix_intake_records_patient_at", ["patient_id", "recorded_at"], unique=False
        )

    op.create_table(
        "self_report_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("instruments", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_self_report_links_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_self_report_links_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_self_report_links_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_self_report_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_self_report_links_token_hash")),
    )
    with op.batch_alter_table("self_report_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_self_report_links_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            "ix_self_report_links_patient", ["patient_id", "created_at"], unique=False
        )

    op.create_table(
        "eligibility_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("intake_id", sa.Integer(), nullable=True),
        sa.Column("computed_decision", sa.String(length=20), nullable=False),
        sa.Column("final_decision", sa.String(length=20), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("knowledge_version", sa.String(length=32), nullable=False),
        sa.Column("signed_by", sa.Integer(), nullable=True),
        sa.Column("signed_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"],
            ["eligibility_reviews.id"],
            name=op.f("fk_eligibility_reviews_amends_id_eligibility_reviews"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_eligibility_reviews_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["intake_id"],
            ["intake_records.id"],
            name=op.f("fk_eligibility_reviews_intake_id_intake_records"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_eligibility_reviews_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["signed_by"], ["users.id"], name=op.f("fk_eligibility_reviews_signed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eligibility_reviews")),
    )
    with op.batch_alter_table("eligibility_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_eligibility_reviews_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            "ix_eligibility_reviews_patient_at", ["patient_id", "signed_at"], unique=False
        )

    op.create_table(
        "flag_acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column(
            "acknowledged_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["users.id"],
            name=op.f("fk_flag_acknowledgements_acknowledged_by_users"),
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_flag_acknowledgements_assessment_id_assessments"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_flag_acknowledgements_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_acknowledgements")),
        sa.UniqueConstraint("assessment_id", name=op.f("uq_flag_acknowledgements_assessment_id")),
    )
    with op.batch_alter_table("flag_acknowledgements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_flag_acknowledgements_clinic_id"), ["clinic_id"], unique=False
        )

    for table in IMMUTABLE:
        make_append_only(table)


def downgrade() -> None:
    for table in IMMUTABLE:
        drop_append_only(table)
    with op.batch_alter_table("flag_acknowledgements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_acknowledgements_clinic_id"))

    op.drop_table("flag_acknowledgements")
    with op.batch_alter_table("eligibility_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_eligibility_reviews_patient_at")
        batch_op.drop_index(batch_op.f("ix_eligibility_reviews_clinic_id"))

    op.drop_table("eligibility_reviews")
    with op.batch_alter_table("self_report_links", schema=None) as batch_op:
        batch_op.drop_index("ix_self_report_links_patient")
        batch_op.drop_index(batch_op.f("ix_self_report_links_clinic_id"))

    op.drop_table("self_report_links")
    with op.batch_alter_table("intake_records", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_records_patient_at")
        batch_op.drop_index(batch_op.f("ix_intake_records_clinic_id"))

    op.drop_table("intake_records")
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_records_patient_at")
        batch_op.drop_index(batch_op.f("ix_consent_records_clinic_id"))

    op.drop_table("consent_records")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_index("ix_assessments_patient_instrument_at")
        batch_op.drop_index("ix_assessments_clinic_urgent_at")

    op.drop_table("assessments")
