"""dashboard indexes on dosing sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_treatment_sessions_clinic_dose", ["clinic_id", "dose_started_at"], unique=False
        )
        batch_op.create_index(
            "ix_treatment_sessions_clinic_patient_dose",
            ["clinic_id", "patient_id", "dose_started_at", "protocol_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_treatment_sessions_clinic_patient_dose")
        batch_op.drop_index("ix_treatment_sessions_clinic_dose")
