"""A minimal TensorBoard event-file writer for tests (independent of fitscope's reader).

Writes TFRecord framing with CRC-32C and the protobuf fields TensorBoard uses,
so the reader can be tested on files like the ones PyTorch and TensorFlow write,
without either installed.
"""

from __future__ import annotations

import struct
from pathlib import Path


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    c = _crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num: int, v: int) -> bytes:
    return varint(num << 3) + varint(v)


def field_bytes(num: int, v: bytes) -> bytes:
    return varint((num << 3) | 2) + varint(len(v)) + v


def field_float(num: int, v: float) -> bytes:
    return varint((num << 3) | 5) + struct.pack("<f", v)


def field_double(num: int, v: float) -> bytes:
    return varint((num << 3) | 1) + struct.pack("<d", v)


def record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked(header)) + data + struct.pack("<I", _masked(data))


def event(step: int, values: list[bytes] | None = None, wall_time: float = 1.7e9) -> bytes:
    body = field_double(1, wall_time) + field_varint(2, step)
    if values is not None:
        body += field_bytes(5, b"".join(field_bytes(1, v) for v in values))
    return body


def simple_value(tag: str, v: float) -> bytes:
    """What torch's ``SummaryWriter.add_scalar`` writes."""
    return field_bytes(1, tag.encode()) + field_float(2, v)


def tensor_value(tag: str, v: float, with_metadata: bool, double: bool = False) -> bytes:
    """What ``tf.summary.scalar`` writes: a 0-d tensor; metadata only on a tag's first value."""
    if double:
        tensor = field_varint(1, 2) + field_bytes(2, b"") + field_bytes(4, struct.pack("<d", v))
    else:
        tensor = field_varint(1, 1) + field_bytes(2, b"") + field_bytes(5, struct.pack("<f", v))
    out = field_bytes(1, tag.encode()) + field_bytes(8, tensor)
    if with_metadata:
        plugin = field_bytes(1, field_bytes(1, b"scalars"))
        out += field_bytes(9, plugin)
    return out


def histogram_value(tag: str) -> bytes:
    histo = field_double(1, 0.0) + field_double(2, 1.0) + field_double(3, 2.0)
    return field_bytes(1, tag.encode()) + field_bytes(5, histo)


def text_value(tag: str, text: str) -> bytes:
    shape = field_bytes(2, field_varint(1, 1))  # TensorShapeProto with one dim of size 1
    tensor = field_varint(1, 7) + field_bytes(2, shape) + field_bytes(8, text.encode())
    plugin = field_bytes(1, field_bytes(1, b"text"))
    return field_bytes(1, tag.encode()) + field_bytes(8, tensor) + field_bytes(9, plugin)


def write(path: Path, events: list[bytes], tail: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    version = field_double(1, 1.7e9) + field_bytes(3, b"brain.Event:2")
    path.write_bytes(record(version) + b"".join(record(e) for e in events) + tail)
    return path
