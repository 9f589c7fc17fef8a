"""The fitscope server: a FastAPI service storing runs in SQLite or PostgreSQL."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
