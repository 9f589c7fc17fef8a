"""Whole-system tests: real training processes, a real server, real faults."""
