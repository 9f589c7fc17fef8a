"""Property-based tests (hypothesis) of the NaN/Inf encoding and the batch decoder."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fitscope.protocol import decode_float, encode_float
from fitscope_server.decode import BadBatch, decode_batch, parse_json

any_float = st.floats(allow_nan=True, allow_infinity=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(any_float)
def test_every_float_survives_the_wire(x):
    wire = json.loads(json.dumps(encode_float(x), allow_nan=False))
    back = decode_float(wire)
    assert (math.isnan(x) and math.isnan(back)) or back == x


@given(st.text())
def test_strings_other_than_the_three_names_are_refused(s):
    if s in ("NaN", "Infinity", "-Infinity"):
        return
    with pytest.raises(ValueError):
        decode_float(s)


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=20).filter(lambda k: k.isprintable()),
        st.lists(st.tuples(st.integers(0, 2**40), any_float), max_size=30),
        max_size=5,
    )
)
def test_valid_batches_decode_exactly(series):
    doc = {
        "batch_id": "b-1",
        "scalars": {
            k: {"steps": [s for s, _ in pts], "values": [encode_float(v) for _, v in pts]}
            for k, pts in series.items()
        },
    }
    batch = decode_batch(parse_json(json.dumps(doc, allow_nan=False).encode()))
    assert set(batch.scalars) == set(series)
    for k, pts in series.items():
        steps, values = (
            list(a.tolist()) if hasattr(a, "tolist") else list(a) for a in batch.scalars[k]
        )
        assert steps == [s for s, _ in pts]
        for got, (_, want) in zip(values, pts, strict=True):
            assert (math.isnan(got) and math.isnan(want)) or got == want


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_is_either_a_batch_or_a_clear_rejection(doc):
    try:
        batch = decode_batch(doc)
    except BadBatch as exc:
        assert 400 <= exc.status < 500 and str(exc)
    else:
        assert batch.batch_id and batch.n_points >= 0


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_parser(raw):
    try:
        decode_batch(parse_json(raw))
    except BadBatch as exc:
        assert 400 <= exc.status < 500
