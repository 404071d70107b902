"""Storage: one schema on SQLite or PostgreSQL, queries grouped by subject."""

from mailbeacon.store.db import make_engine
from mailbeacon.store.migrate import upgrade

__all__ = ["make_engine", "upgrade"]
