"""All SQL of the server, one module per concern."""

from .errors import RunNotFound

__all__ = ["RunNotFound"]
