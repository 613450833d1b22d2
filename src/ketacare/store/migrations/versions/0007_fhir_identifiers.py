"""FHIR import: external record identifiers, patient conditions, imported resources

``external_records`` makes re-importing a resource harmless; ``imported_resources`` keeps what
has no other home (unknown codes, refused values, blood pressure outside a session).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:27:39
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ketacare.store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "external_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=255), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("local_table", sa.String(length=40), nullable=False),
        sa.Column("local_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("imported_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_external_records_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_records")),
        sa.UniqueConstraint(
            "clinic_id",
            "system",
            "resource_type",
            "external_id",
            name=op.f("uq_external_records_clinic_id_system_resource_type_external_id"),
        ),
    )
    with op.batch_alter_table("external_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_external_records_local", ["local_table", "local_id"], unique=False
        )

    op.create_table(
        "imported_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("disposition", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=True),
        sa.Column("code_system", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("display", sa.String(length=500), nullable=True),
        sa.Column("effective_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("readings", sa.JSON(), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("imported_by", sa.Integer(), nullable=True),
        sa.Column("imported_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_imported_resources_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["imported_by"], ["users.id"], name=op.f("fk_imported_resources_imported_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_imported_resources_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_resources")),
    )
    with op.batch_alter_table("imported_resources", schema=None) as batch_op:
        batch_op.create_index(
            "ix_imported_resources_clinic_disposition", ["clinic_id", "disposition"], unique=False
        )
        batch_op.create_index(
            "ix_imported_resources_patient_at", ["patient_id", "effective_at"], unique=False
        )

    op.create_table(
        "patient_conditions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("code_system", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("display", sa.String(length=500), nullable=True),
        sa.Column("codings", sa.JSON(), nullable=False),
        sa.Column("clinical_status", sa.String(length=20), nullable=True),
        sa.Column("onset", sa.String(length=40), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_patient_conditions_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_conditions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_patient_conditions_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_conditions")),
    )
    with op.batch_alter_table("patient_conditions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_patient_conditions_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index("ix_patient_conditions_patient", ["patient_id", "code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patient_conditions", schema=None) as batch_op:
        batch_op.drop_index("ix_patient_conditions_patient")
        batch_op.drop_index(batch_op.f("ix_patient_conditions_clinic_id"))

    op.drop_table("patient_conditions")
    with op.batch_alter_table("imported_resources", schema=None) as batch_op:
        batch_op.drop_index("ix_imported_resources_patient_at")
        batch_op.drop_index("ix_imported_resources_clinic_disposition")

    op.drop_table("imported_resources")
    with op.batch_alter_table("external_records", schema=None) as batch_op:
        batch_op.drop_index("ix_external_records_local")

    op.drop_table("external_records")
