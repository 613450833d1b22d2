"""outcome summaries: each dosed patient's first dose, and per scale baseline and latest totals

Also widens the index of dosed sessions by id, so a period's alert and adverse-event counts read
only indexes.

Derived tables kept in step by the use-cases (app/outcome_summaries.py); filled here from the
records already stored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ketacare.store.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_FIRST_DOSES = """
INSERT INTO patient_first_doses (patient_id, clinic_id, first_dose_at, protocol_id)
SELECT f.patient_id, f.clinic_id, f.first_at,
       (SELECT s.protocol_id FROM treatment_sessions s
        WHERE s.patient_id = f.patient_id AND s.dose_started_at = f.first_at
        ORDER BY s.id LIMIT 1)
FROM (SELECT patient_id, clinic_id, MIN(dose_started_at) AS first_at
      FROM treatment_sessions WHERE dose_started_at IS NOT NULL
      GROUP BY patient_id, clinic_id) f
"""

BACKFILL_SCALES = """
INSERT INTO patient_scale_summaries
       (patient_id, instrument, clinic_id, baseline_total, latest_total)
SELECT d.patient_id, r.instrument, d.clinic_id,
       (SELECT a.total FROM assessments a
        WHERE a.patient_id = d.patient_id AND a.instrument = r.instrument
          AND a.session_id IS NULL AND a.administered_at <= d.first_dose_at
        ORDER BY a.administered_at DESC, a.id DESC LIMIT 1),
       (SELECT a.total FROM assessments a
        WHERE a.patient_id = d.patient_id AND a.instrument = r.instrument
          AND a.session_id IS NULL AND a.administered_at > d.first_dose_at
        ORDER BY a.administered_at DESC, a.id DESC LIMIT 1)
FROM patient_first_doses d
JOIN (SELECT DISTINCT patient_id, instrument FROM assessments WHERE session_id IS NULL) r
  ON r.patient_id = d.patient_id
"""


def upgrade() -> None:
    op.create_table(
        "patient_first_doses",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("first_dose_at", ketacare.store.types.UTCDateTime(), nullable=False),
        sa.Column("protocol_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    with op.batch_alter_table("patient_first_doses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_patient_first_doses_clinic_at", ["clinic_id", "first_dose_at"], unique=False
        )
    op.create_table(
        "patient_scale_summaries",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=20), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("baseline_total", sa.Integer(), nullable=True),
        sa.Column("latest_total", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.PrimaryKeyConstraint("patient_id", "instrument"),
    )
    op.execute(BACKFILL_FIRST_DOSES)
    op.execute(BACKFILL_SCALES)
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_treatment_sessions_clinic_dose")
        batch_op.create_index(
            "ix_treatment_sessions_clinic_dose_id", ["clinic_id", "dose_started_at", "id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_treatment_sessions_clinic_dose_id")
        batch_op.create_index(
            "ix_treatment_sessions_clinic_dose", ["clinic_id", "dose_started_at"], unique=False
        )
    op.drop_table("patient_scale_summaries")
    with op.batch_alter_table("patient_first_doses", schema=None) as batch_op:
        batch_op.drop_index("ix_patient_first_doses_clinic_at")
    op.drop_table("patient_first_doses")
