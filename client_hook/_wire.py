"""Moved to :mod:`fitscope.protocol`; kept while callers move over."""

from __future__ import annotations

from .protocol import NAN, NEG_INF, POS_INF, PROTOCOL_VERSION, decode_float, encode_float

__all__ = ["NAN", "NEG_INF", "POS_INF", "PROTOCOL_VERSION", "decode_float", "encode_float"]
