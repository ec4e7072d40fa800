"""Bring sample arrays to the dtypes a :class:`~trustlane.ingest.model.Channel` holds.

Numbers become float64 or int64, flags bool, text Python ``str`` in an object array. Anything else
(structures, arrays per sample, raw bytes of no known encoding) is not a signal: :func:`normalise` returns None.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trustlane.ingest.readers.checks import INT64_MAX

AnyArray = npt.NDArray[np.generic]


def decode_text(values: AnyArray, encoding: str = "utf-8") -> AnyArray:
    """Byte strings to an object array of ``str`` (undecodable bytes become U+FFFD); ``str`` items pass through."""
    out = np.empty(len(values), dtype=object)
    for i, item in enumerate(values.tolist()):
        if isinstance(item, bytes):
            out[i] = item.rstrip(b"\0").decode(encoding, errors="replace")
        elif isinstance(item, str):
            out[i] = item
        else:
            out[i] = str(item)
    return out


def normalise(
    values: npt.NDArray[np.generic] | npt.NDArray[np.void], *, text_encoding: str = "utf-8"
) -> AnyArray | None:
    """``values`` as float64, int64, bool or str objects; None when they are not one scalar per sample."""
    if values.ndim != 1:
        return None
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(np.bool_, copy=False)
    if kind == "i":
        return values.astype(np.int64, copy=False)
    if kind == "u":
        if values.dtype.itemsize < 8 or not len(values) or int(values.max()) <= INT64_MAX:
            return values.astype(np.int64)
        return values.astype(np.float64)
    if kind == "f":
        return values.astype(np.float64, copy=False)
    if kind in "SU":
        return decode_text(values, text_encoding)
    if kind == "O":
        items = values.tolist()
        if all(isinstance(item, (str, bytes)) for item in items):
            return decode_text(values, text_encoding)
        return None
    return None
