"""Tests of the HTTP API (``server/api/``)."""
