"""Alembic migrations of the store; `bridge.store.migrate` runs them at start-up."""
