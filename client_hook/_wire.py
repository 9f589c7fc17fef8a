"""The wire format shared by the hook and the server.

Plain JSON has no NaN or infinity, and a training run that goes NaN is exactly
the run someone needs to see.  Non-finite floats therefore travel as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` wherever a number is
expected; everything else is ordinary JSON.  The read API uses the same
encoding, so a value survives hook -> server -> database -> browser unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

NAN = "NaN"
POS_INF = "Infinity"
NEG_INF = "-Infinity"

_DECODE = {NAN: math.nan, POS_INF: math.inf, NEG_INF: -math.inf}

PROTOCOL_VERSION = 1


def encode_float(x: float) -> float | str:
    """Return ``x`` itself when finite, otherwise its string encoding."""
    if x != x:
        return NAN
    if x == math.inf:
        return POS_INF
    if x == -math.inf:
        return NEG_INF
    return x


def encode_floats(values: Iterable[float]) -> list[float | str]:
    return [encode_float(float(v)) for v in values]


def decode_float(x: object) -> float:
    """Decode one wire value; raise ``ValueError`` for anything that is not a number."""
    if isinstance(x, bool):
        raise ValueError(f"expected a number, got boolean {x!r}")
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        try:
            return _DECODE[x]
        except KeyError:
            raise ValueError(
                f"expected a number or one of {NAN!r}, {POS_INF!r}, {NEG_INF!r}; got {x[:40]!r}"
            ) from None
    raise ValueError(f"expected a number, got {type(x).__name__}")


def is_finite(x: float) -> bool:
    return math.isfinite(x)
