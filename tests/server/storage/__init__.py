"""Tests of the storage layer (``server/storage/``), through the API on both backends."""
