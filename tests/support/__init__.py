"""Helpers shared by the tests and the benchmarks; ``fixtures`` is the pytest plugin."""
