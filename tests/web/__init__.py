"""Tests of the dashboard (``web/``)."""
