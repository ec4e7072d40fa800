"""Decode many CAN payloads of one message at once with numpy.

``payloads`` is an ``(frames, length)`` uint8 matrix. Each signal's raw bits are cut from a window of at most
nine bytes, sign-extended or reinterpreted as IEEE floats, and scaled (``raw * scale + offset``, the same
arithmetic as cantools). Choice tables are not applied: the value stays numeric. Multiplexed signals have a
sample only in frames whose multiplexer carries one of their multiplexer ids.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trustlane.ingest.readers.dbc import MessageLayout, SignalLayout
from trustlane.ingest.readers.values import AnyArray

U64 = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]


def _window(payloads: npt.NDArray[np.uint8], first: int, count: int, little_endian: bool) -> U64:
    word = np.zeros(len(payloads), dtype=np.uint64)
    for i in range(count):
        position = 8 * i if little_endian else 8 * (count - 1 - i)
        word |= payloads[:, first + i].astype(np.uint64) << np.uint64(position)
    return word


def raw_bits(payloads: npt.NDArray[np.uint8], signal: SignalLayout) -> U64:
    """The unsigned raw value of ``signal`` in every frame."""
    mask = np.uint64((1 << signal.length) - 1)
    if signal.nbytes <= 8:
        word = _window(payloads, signal.first_byte, signal.nbytes, signal.little_endian)
        return (word >> np.uint64(signal.shift)) & mask
    # nine bytes: a long signal that does not start on a byte boundary
    word = _window(payloads, signal.first_byte, 8, signal.little_endian)
    extra = payloads[:, signal.first_byte + 8].astype(np.uint64)
    if signal.little_endian:
        low = word >> np.uint64(signal.shift)
        return (low | (extra << np.uint64(64 - signal.shift))) & mask
    return ((word << np.uint64(8 - signal.shift)) | (extra >> np.uint64(signal.shift))) & mask


def physical(raw: U64, signal: SignalLayout) -> AnyArray:
    """Scaled values: int64 when they are whole numbers that fit, float64 otherwise."""
    if signal.is_float:
        floats = raw.astype(np.uint32).view(np.float32) if signal.length == 32 else raw.view(np.float64)
        return floats.astype(np.float64) * signal.scale + signal.offset
    if signal.signed:
        if signal.length == 64:
            numbers = raw.view(np.int64)
        else:
            numbers = raw.astype(np.int64)
            numbers -= ((numbers >> (signal.length - 1)) & 1) << signal.length
    elif signal.length == 64:
        return raw.astype(np.float64) * signal.scale + signal.offset
    else:
        numbers = raw.astype(np.int64)
    if signal.integral:
        return numbers * np.int64(signal.scale) + np.int64(signal.offset)
    return numbers.astype(np.float64) * signal.scale + signal.offset


def decode(message: MessageLayout, payloads: npt.NDArray[np.uint8]) -> dict[str, tuple[AnyArray, BoolArray]]:
    """For each signal of ``message``: (values of the frames that carry it, mask of those frames)."""
    raws: dict[str, U64] = {}
    present: dict[str, BoolArray] = {}
    by_name = {signal.name: signal for signal in message.signals}

    def presence(signal: SignalLayout, depth: int = 0) -> BoolArray:
        if signal.name in present:
            return present[signal.name]
        mask = np.ones(len(payloads), dtype=np.bool_)
        parent = by_name.get(signal.multiplexer) if signal.multiplexer else None
        if parent is not None and depth < len(by_name):
            selector = raws.setdefault(parent.name, raw_bits(payloads, parent))
            ids = np.fromiter(sorted(signal.multiplexer_ids), dtype=np.uint64)
            mask = presence(parent, depth + 1) & np.isin(selector, ids)
        present[signal.name] = mask
        return mask

    decoded: dict[str, tuple[AnyArray, BoolArray]] = {}
    for signal in message.signals:
        raw = raws.setdefault(signal.name, raw_bits(payloads, signal))
        mask = presence(signal)
        values = physical(raw if mask.all() else raw[mask], signal)
        decoded[signal.name] = (values, mask)
    return decoded
