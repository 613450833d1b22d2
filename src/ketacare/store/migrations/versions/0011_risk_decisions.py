"""prescribers' decisions on suicide-risk flags before a dose, and the flags each covers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ketacare.store.types
from ketacare.store.immutable import (
    drop_append_only,
    drop_closed_after_signing,
    make_append_only,
    make_closed_after_signing,
)

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A decision is a recorded fact: never changed, never deleted (a new decision follows it), and
# none is added to a signed session.
APPEND_ONLY = ("risk_decisions", "risk_decision_flags")


def upgrade() -> None:
    op.create_table(
        "risk_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("knowledge_version", sa.String(length=32), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", ketacare.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_risk_decisions_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_risk_decisions_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_risk_decisions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["treatment_sessions.id"],
            name=op.f("fk_risk_decisions_session_id_treatment_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decisions")),
    )
    op.create_index(op.f("ix_risk_decisions_clinic_id"), "risk_decisions", ["clinic_id"])
    op.create_index(op.f("ix_risk_decisions_patient_id"), "risk_decisions", ["patient_id"])
    op.create_index("ix_risk_decisions_session_at", "risk_decisions", ["session_id", "decided_at"])
    op.create_table(
        "risk_decision_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=True),
        sa.Column("therapy_session_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(assessment_id IS NULL) != (therapy_session_id IS NULL)",
            name=op.f("ck_risk_decision_flags_one_flag"),
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_risk_decision_flags_assessment_id_assessments"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_risk_decision_flags_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["risk_decisions.id"],
            name=op.f("fk_risk_decision_flags_decision_id_risk_decisions"),
        ),
        sa.ForeignKeyConstraint(
            ["therapy_session_id"],
            ["therapy_sessions.id"],
            name=op.f("fk_risk_decision_flags_therapy_session_id_therapy_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decision_flags")),
    )
    op.create_index(op.f("ix_risk_decision_flags_clinic_id"), "risk_decision_flags", ["clinic_id"])
    op.create_index(
        op.f("ix_risk_decision_flags_decision_id"), "risk_decision_flags", ["decision_id"]
    )
    op.create_index("ix_risk_decision_flags_assessment", "risk_decision_flags", ["assessment_id"])
    op.create_index("ix_risk_decision_flags_therapy", "risk_decision_flags", ["therapy_session_id"])
    for table in APPEND_ONLY:
        make_append_only(table)
    make_closed_after_signing("risk_decisions")


def downgrade() -> None:
    drop_closed_after_signing("risk_decisions")
    for table in APPEND_ONLY:
        drop_append_only(table)
    op.drop_table("risk_decision_flags")
    op.drop_table("risk_decisions")
