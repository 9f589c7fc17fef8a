"""fitscope's Alembic history: the only way the database schema changes."""

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)
