"""Database triggers that make a table append-only: signed clinical records and the audit trail
are never changed or deleted, whoever connects to the database."""

from __future__ import annotations

from alembic import op


def make_append_only(table: str) -> None:
    message = f"{table} is append-only"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{message}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def drop_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def make_sealed(table: str, column: str = "signed_at") -> None:
    """Rows of ``table`` cannot be changed or deleted once ``column`` is set (signed)."""
    message = f"{table}: a signed record cannot be changed; add an amendment"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION {table}_sealed() RETURNS trigger AS $$
            BEGIN
                IF OLD.{column} IS NOT NULL THEN
                    RAISE EXCEPTION '{message}';
                END IF;
                IF TG_OP = 'DELETE' THEN
                    RETURN OLD;
                END IF;
                RETURN NEW;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_sealed BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_sealed()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_sealed_{verb.lower()} BEFORE {verb} ON {table} "
            f"WHEN OLD.{column} IS NOT NULL BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def drop_sealed(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_sealed ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_sealed()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_sealed_{verb}")


def make_closed_after_signing(
    table: str, parent: str = "treatment_sessions", key: str = "session_id"
) -> None:
    """Nothing new is recorded in ``table`` for a ``parent`` row once that row is signed."""
    message = f"{table}: the {parent} record is signed; add an amendment instead"
    signed = f"(SELECT signed_at FROM {parent} WHERE id = NEW.{key}) IS NOT NULL"  # noqa: S608 (trigger DDL, names from the code)  # nosec B608
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION {table}_closed_after_signing() RETURNS trigger AS $$
            BEGIN
                IF NEW.{key} IS NOT NULL AND {signed} THEN
                    RAISE EXCEPTION '{message}';
                END IF;
                RETURN NEW;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_closed_after_signing BEFORE INSERT ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_closed_after_signing()"
        )
        return
    op.execute(
        f"CREATE TRIGGER {table}_closed_after_signing BEFORE INSERT ON {table} "
        f"WHEN NEW.{key} IS NOT NULL AND {signed} "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


def drop_closed_after_signing(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_closed_after_signing ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_closed_after_signing()")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_closed_after_signing")
