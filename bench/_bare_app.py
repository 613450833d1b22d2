"""The baselines of bench/load.py, served the same way as KetaCare: a bare FastAPI endpoint, and
the least any request for patient data must do (who is calling, an audit event committed)."""

import os

from fastapi import FastAPI
from sqlalchemy import create_engine, text

app = FastAPI()
# The benchmark's own database (load.py serves KetaCare on it in the same run).
_engine = create_engine(os.environ["KETACARE_DATABASE_URL"])
_CALLER = text("SELECT id, clinic_id, role FROM users ORDER BY id LIMIT 1")
_AUDIT = text(
    "INSERT INTO audit_events (at, clinic_id, user_id, actor, action, outcome) "
    "VALUES (now(), :clinic_id, :id, 'bench', 'bench.floor', 'success')"
)


@app.get("/bare")
def bare() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/floor")
def floor() -> dict[str, str]:
    """One indexed lookup and one audit row committed: no page, no checks, no ORM."""
    with _engine.begin() as conn:
        user = conn.execute(_CALLER).one()
        conn.execute(_AUDIT, {"clinic_id": user.clinic_id, "id": user.id})
    return {"status": "ok"}
