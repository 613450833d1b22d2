"""sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 23:06:11.600923
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ketacare.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "treatment_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("protocol_id", sa.String(length=40), nullable=False),
        sa.Column("scheduled_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("baseline", sa.JSON(), nullable=True),
        sa.Column("gate", sa.JSON(), nullable=True),
        sa.Column("gate_override_reason", sa.Text(), nullable=True),
        sa.Column("started_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_treatment_sessions_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_treatment_sessions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_treatment_sessions_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treatment_sessions")),
    )
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_treatment_sessions_clinic_status_at",
            ["clinic_id", "status", "scheduled_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_treatment_sessions_patient_at", ["patient_id", "scheduled_at"], unique=False
        )

    op.create_table(
        "vital_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("measured_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("systolic", sa.Float(), nullable=True),
        sa.Column("diastolic", sa.Float(), nullable=True),
        sa.Column("heart_rate", sa.Float(), nullable=True),
        sa.Column("spo2", sa.Float(), nullable=True),
        sa.Column("respiratory_rate", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("sample_key", sa.String(length=100), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_vital_samples_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_vital_samples_recorded_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["treatment_sessions.id"],
            name=op.f("fk_vital_samples_session_id_treatment_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vital_samples")),
        sa.UniqueConstraint(
            "session_id", "sample_key", name=op.f("uq_vital_samples_session_id_sample_key")
        ),
    )
    with op.batch_alter_table("vital_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vital_samples_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(
            "ix_vital_samples_session_at", ["session_id", "measured_at"], unique=False
        )

    op.create_table(
        "session_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("vital_sample_id", sa.Integer(), nullable=False),
        sa.Column("raised_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("field", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("knowledge_version", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_session_alerts_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["treatment_sessions.id"],
            name=op.f("fk_session_alerts_session_id_treatment_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["vital_sample_id"],
            ["vital_samples.id"],
            name=op.f("fk_session_alerts_vital_sample_id_vital_samples"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_alerts")),
    )
    with op.batch_alter_table("session_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_alerts_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            "ix_session_alerts_session_at", ["session_id", "raised_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_session_alerts_session_at")
        batch_op.drop_index(batch_op.f("ix_session_alerts_clinic_id"))

    op.drop_table("session_alerts")
    with op.batch_alter_table("vital_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_vital_samples_session_at")
        batch_op.drop_index(batch_op.f("ix_vital_samples_clinic_id"))

    op.drop_table("vital_samples")
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_treatment_sessions_patient_at")
        batch_op.drop_index("ix_treatment_sessions_clinic_status_at")

    op.drop_table("treatment_sessions")
