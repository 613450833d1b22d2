"""Use-cases: (db session, actor, input) -> result. Permissions, transactions and audit live here;
this is the only layer that writes."""
