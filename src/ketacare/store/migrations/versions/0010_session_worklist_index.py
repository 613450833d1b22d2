"""the day's session worklist: an index on a clinic's sessions in time order

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_treatment_sessions_clinic_at_id",
        "treatment_sessions",
        ["clinic_id", "scheduled_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_treatment_sessions_clinic_at_id", table_name="treatment_sessions")
