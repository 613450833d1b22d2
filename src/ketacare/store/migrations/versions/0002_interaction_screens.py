"""interaction screens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:07:20.637420
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ketacare.store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interaction_screens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("screened_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("screened_by", sa.Integer(), nullable=True),
        sa.Column("agent", sa.String(length=20), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("knowledge_version", sa.String(length=32), nullable=False),
        sa.Column("input_hash", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("highest_severity", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_interaction_screens_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_interaction_screens_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["screened_by"], ["users.id"], name=op.f("fk_interaction_screens_screened_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction_screens")),
    )
    with op.batch_alter_table("interaction_screens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interaction_screens_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            "ix_interaction_screens_patient_at", ["patient_id", "screened_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("interaction_screens", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_screens_patient_at")
        batch_op.drop_index(batch_op.f("ix_interaction_screens_clinic_id"))

    op.drop_table("interaction_screens")
