"""Hand a parser's result from the isolated child to the caller without copying its sample arrays.

The child pickles the result with protocol 5 and keeps large contiguous buffers (numpy arrays) *out of
band*: they are written raw, each at a 64-byte aligned offset, after the pickle stream. The caller maps the
file copy-on-write and unpickles with those buffers as memory views of the mapping, so each array of the
result is a view of the file's pages (in ``/dev/shm``: memory shared with the child, never copied again).
The file can be unlinked at once: the mapping keeps its pages until the last array goes.

Layout: ``TLHO | u32 buffers | u64 pickle length | buffers × (u64 offset, u64 length) | pickle | buffers``.
"""

from __future__ import annotations

import mmap
import pickle
import struct
from pathlib import Path
from typing import Any

_MAGIC = b"TLHO"
_HEAD = struct.Struct("<4sIQ")
_ENTRY = struct.Struct("<QQ")
_ALIGN = 64
_MIN_OUT_OF_BAND = 1 << 16  # smaller buffers stay in the pickle stream (a page per buffer would waste more)


class HandoverError(Exception):
    """The result file is not one :func:`write_result` wrote (truncated or damaged)."""


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def write_result(path: str | Path, result: Any) -> None:
    """Write ``result`` to ``path`` (already created, empty); large buffers go out of band."""
    buffers: list[pickle.PickleBuffer] = []

    def keep_out_of_band(buffer: pickle.PickleBuffer) -> bool:
        view = buffer.raw()
        if view.nbytes < _MIN_OUT_OF_BAND:
            return True  # true: serialise it in band
        buffers.append(buffer)
        return False

    stream = pickle.dumps(result, protocol=5, buffer_callback=keep_out_of_band)
    offset = _aligned(_HEAD.size + _ENTRY.size * len(buffers) + len(stream))
    entries = []
    for buffer in buffers:
        size = buffer.raw().nbytes
        entries.append((offset, size))
        offset = _aligned(offset + size)
    with open(path, "wb") as out:
        out.write(_HEAD.pack(_MAGIC, len(buffers), len(stream)))
        out.write(b"".join(_ENTRY.pack(*entry) for entry in entries))
        out.write(stream)
        for (start, _), buffer in zip(entries, buffers, strict=True):
            out.seek(start)
            out.write(buffer.raw())
        out.truncate(offset)


def read_result(path: str | Path) -> Any:
    """The result in ``path``; its large arrays are copy-on-write views of the file's pages."""
    with open(path, "rb") as source:
        size = source.seek(0, 2)
        if size < _HEAD.size:
            raise HandoverError("the result is truncated")
        mapping = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_COPY)
    view = memoryview(mapping)
    magic, count, stream_size = _HEAD.unpack_from(view)
    table_end = _HEAD.size + _ENTRY.size * count
    if magic != _MAGIC or table_end + stream_size > size:
        raise HandoverError("the result is damaged")
    buffers = []
    for number in range(count):
        start, length = _ENTRY.unpack_from(view, _HEAD.size + _ENTRY.size * number)
        if start + length > size:
            raise HandoverError("the result is damaged")
        buffers.append(view[start : start + length])
    try:
        return pickle.loads(view[table_end : table_end + stream_size], buffers=buffers)  # noqa: S301 - our child's
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:  # a child that stopped while writing
        raise HandoverError(f"the result is damaged ({type(exc).__name__})") from None
