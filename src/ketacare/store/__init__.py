"""Persistence: engine, tables, migrations. Knows tables, not clinical rules."""
