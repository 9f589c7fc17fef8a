"""Scalars from TensorBoard event files, read with the standard library alone.

An event file is a sequence of TFRecords (``uint64 length``, ``uint32 masked
CRC-32C of the length``, ``data``, ``uint32 masked CRC-32C of the data``), each
``data`` a protobuf ``Event``.  Only the fields that carry scalars are decoded:

- ``Event``: ``step`` (2), ``summary`` (5)
- ``Summary``: repeated ``value`` (1)
- ``Summary.Value``: ``tag`` (1), ``simple_value`` (2, float), ``tensor`` (8),
  ``metadata`` (9) -> ``plugin_data`` (1) -> ``plugin_name`` (1)
- ``TensorProto``: ``dtype`` (1), ``tensor_shape`` (2), ``tensor_content`` (4),
  ``float_val`` (5), ``double_val`` (6), ``int_val`` (7), ``int64_val`` (10)

``simple_value`` is what PyTorch's ``SummaryWriter.add_scalar`` writes; a 0-d
tensor under the ``scalars`` plugin is what ``tf.summary.scalar`` writes.
Histograms, images, text and graphs are counted and left out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ._model import BadImport, ImportedRun

# -- CRC-32C (Castagnoli), as TFRecord framing uses ----------------------------------
_POLY = 0x82F63B78
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(f: BinaryIO, verify: bool = True) -> Iterator[bytes]:
    """The records of one file. A record cut short at the end (a file still being
    written) ends the file quietly; a damaged length header raises :class:`BadImport`."""
    while True:
        header = f.read(12)
        if len(header) < 12:
            return
        length, length_crc = struct.unpack("<QI", header)
        if masked_crc32c(header[:8]) != length_crc:
            raise BadImport("damaged record header (CRC mismatch): not a TensorBoard event file?")
        data = f.read(length)
        footer = f.read(4)
        if len(data) < length or len(footer) < 4:
            return
        if verify and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise BadImport("damaged record (CRC mismatch)")
        yield data


# -- protobuf wire format --------------------------------------------------------------
def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise BadImport("truncated protobuf varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise BadImport("protobuf varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)``: an int for varints, bytes otherwise."""
    i, n = 0, len(buf)
    while i < n:
        key = buf[i]  # field numbers below 16 fit one byte: the fast path
        if key < 0x80:
            i += 1
        else:
            key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
            yield num, wt, v
        elif wt == 1:
            yield num, wt, buf[i : i + 8]
            i += 8
        elif wt == 2:
            if i < n and buf[i] < 0x80:
                size = buf[i]
                i += 1
            else:
                size, i = _varint(buf, i)
            if i + size > n:
                raise BadImport("truncated protobuf field")
            yield num, wt, buf[i : i + size]
            i += size
        elif wt == 5:
            yield num, wt, buf[i : i + 4]
            i += 4
        else:
            raise BadImport(f"unsupported protobuf wire type {wt}")
        if i > n:
            raise BadImport("truncated protobuf field")


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64 = 1, 2, 3, 9
_CONTENT_FMT = {_DT_FLOAT: "<f", _DT_DOUBLE: "<d", _DT_INT32: "<i", _DT_INT64: "<q"}


def _tensor_scalar(buf: bytes) -> float | None:
    """The value of a 0-d numeric ``TensorProto``, else ``None``."""
    dtype = 0
    vals: list[float] = []
    content = b""
    for num, _wt, v in fields(buf):
        if num == 1 and isinstance(v, int):
            dtype = v
        elif num == 2 and isinstance(v, bytes):
            if any(n == 2 for n, _, _ in fields(v)):  # a dim: not a scalar
                return None
        elif num == 4 and isinstance(v, bytes):
            content = v
        elif num == 5 and isinstance(v, bytes):
            vals += struct.unpack(f"<{len(v) // 4}f", v)
        elif num == 6 and isinstance(v, bytes):
            vals += struct.unpack(f"<{len(v) // 8}d", v)
        elif num in (7, 10):
            if isinstance(v, int):
                vals.append(float(_int64(v)) if num == 10 else float(v))
            else:  # packed varints
                j = 0
                while j < len(v):
                    x, j = _varint(v, j)
                    vals.append(float(_int64(x)))
    if content and dtype in _CONTENT_FMT:
        fmt = _CONTENT_FMT[dtype]
        if len(content) == struct.calcsize(fmt):
            return float(struct.unpack(fmt, content)[0])
    if dtype in _CONTENT_FMT and len(vals) == 1:
        return vals[0]
    return None


def _plugin(meta: bytes) -> str:
    for num, _, v in fields(meta):
        if num == 1 and isinstance(v, bytes):
            for n2, _, v2 in fields(v):
                if n2 == 1 and isinstance(v2, bytes):
                    return v2.decode(errors="replace")
    return ""


def scalar_events(data: bytes, plugins: dict[str, str]) -> Iterator[tuple[str, int, float | None]]:
    """``(tag, step, value)`` for each value in one Event; ``None`` for a non-scalar value.

    ``plugins`` remembers each tag's plugin: TensorFlow writes a tag's metadata only once.
    """
    step = 0
    summary = None
    for num, _, v in fields(data):
        if num == 2 and isinstance(v, int):
            step = _int64(v)
        elif num == 5 and isinstance(v, bytes):
            summary = v
    if summary is None:
        return
    for num, _, value in fields(summary):
        if num != 1 or not isinstance(value, bytes):
            continue
        tag, simple, tensor, meta, other = "", None, None, None, False
        for n, wt, v in fields(value):
            if n == 1 and isinstance(v, bytes):
                tag = v.decode(errors="replace")
            elif n == 2 and wt == 5 and isinstance(v, bytes):
                simple = struct.unpack("<f", v)[0]
            elif n == 8 and isinstance(v, bytes):
                tensor = v
            elif n == 9 and isinstance(v, bytes):
                meta = v
            elif n in (3, 4, 5, 6):
                other = True
        if meta is not None:
            plugins[tag] = _plugin(meta)
        if simple is not None:
            yield tag, step, float(simple)
        elif tensor is not None and plugins.get(tag, "scalars") in ("scalars", ""):
            yield tag, step, _tensor_scalar(tensor)
        elif tensor is not None or other:
            yield tag, step, None


def is_event_file(path: Path) -> bool:
    return path.is_file() and "tfevents" in path.name


def event_dirs(root: Path) -> dict[Path, list[Path]]:
    """Each folder under ``root`` holding event files, with its files in name (= time) order."""
    files = (
        [root] if is_event_file(root) else sorted(p for p in root.rglob("*") if is_event_file(p))
    )
    out: dict[Path, list[Path]] = {}
    for f in files:
        out.setdefault(f.parent, []).append(f)
    return out


def read_run(files: list[Path], name: str, verify: bool = True) -> ImportedRun:
    """One run from the event files of one folder."""
    run = ImportedRun(name=name, source=str(files[0].parent), format="tensorboard")
    skipped: dict[str, int] = {}
    for path in files:
        plugins: dict[str, str] = {}
        with open(path, "rb") as f:
            for record in read_records(f, verify=verify):
                for tag, step, value in scalar_events(record, plugins):
                    if value is None or step < 0:
                        skipped[tag] = skipped.get(tag, 0) + 1
                    else:
                        run.add(tag, step, value)
    if skipped:
        tags = ", ".join(sorted(skipped)[:8]) + (" ..." if len(skipped) > 8 else "")
        run.notes.append(
            f"left out {sum(skipped.values())} non-scalar value(s) (histograms, images, text): {tags}"
        )
    return run
