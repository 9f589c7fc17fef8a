"""All SQL of the server, one module per concern."""

from .errors import RunNotFound, SeriesKindConflict, StaleSeriesIds

__all__ = ["RunNotFound", "SeriesKindConflict", "StaleSeriesIds"]
