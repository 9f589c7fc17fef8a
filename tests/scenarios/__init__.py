"""Labelled training scenarios for the diagnosis engine (see ``catalog.py``)."""
