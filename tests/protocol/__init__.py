"""Tests of the wire protocol shared by the hook and the server (non-finite floats, batches)."""
