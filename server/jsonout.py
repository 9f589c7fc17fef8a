"""Fast JSON answers: orjson straight from numpy arrays, non-finite floats wire-encoded.

Large series skip pydantic (validating a million floats costs far more than
reading them); the shapes are still documented by the ``…Out`` schemas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi.responses import Response

from fitscope.protocol import encode_float


def wire(values: np.ndarray | None) -> Any:
    """A float array as JSON-ready data: itself when all finite, else a list with the
    protocol's strings in place of the non-finite values."""
    if values is None:
        return None
    bad = np.flatnonzero(~np.isfinite(values))
    if not len(bad):
        return values
    out = values.tolist()
    for i in bad.tolist():
        out[i] = encode_float(out[i])
    return out


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


class JSONOut(Response):
    """A JSON response serialized by orjson (numpy arrays included)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
