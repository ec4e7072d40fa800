"""Check the layout an MDF4 file declares before asammdf reads its data.

asammdf trusts the declared record layout; a damaged file can make it read or write out of bounds, or allocate
for billions of records the file does not hold. These checks refuse such files with a clear message:

* every non-virtual channel lies inside its record (byte offset + bytes ≤ record size),
* every invalidation bit lies inside the record's invalidation bytes,
* a group's record count times record size fits in the data its blocks hold (uncompressed blocks cannot be
  larger than the file; compressed blocks cannot expand more than 65536-fold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asammdf.blocks import v4_constants as v4c

from trustlane.errors import MalformedInput

_HINT = "the MDF file is damaged; export or record it again"
_VIRTUAL = frozenset((v4c.CHANNEL_TYPE_VIRTUAL_MASTER, v4c.CHANNEL_TYPE_VIRTUAL))
_MAX_EXPANSION = 1 << 16


def _stored_bytes(path: Path, group: Any, file_size: int, index: int) -> int:
    stored = 0
    for block in group.get_data_blocks():
        size = int(block.original_size or 0)
        if block.block_type == v4c.DT_BLOCK:
            limit = file_size
        else:
            limit = max(int(block.compressed_size or 0), 1) * _MAX_EXPANSION
        if size > limit:
            raise MalformedInput(f"{path}: data group {index} has a block claiming {size} bytes", hint=_HINT)
        stored += size
    return stored


def check_layout(path: Path, mdf: Any) -> None:
    """Refuse ``mdf`` (opened from ``path``) if its declared layout cannot be read safely."""
    file_size = path.stat().st_size
    for index, group in enumerate(mdf.groups):
        cg = group.channel_group
        record = int(cg.samples_byte_nr)
        invalidation = int(cg.invalidation_bytes_nr)
        if not int(cg.flags) & v4c.FLAG_CG_VLSD:
            width = record + invalidation + int(group.data_group.record_id_len)
            claimed = int(cg.cycles_nr) * width
            stored = _stored_bytes(path, group, file_size, index)
            if claimed > stored:
                raise MalformedInput(
                    f"{path}: data group {index} claims {cg.cycles_nr} records of {width} bytes "
                    f"but holds {stored} bytes",
                    hint=_HINT,
                )
        for channel in group.channels:
            if int(channel.channel_type) in _VIRTUAL:
                continue
            end = int(channel.byte_offset) + (int(channel.bit_offset) + int(channel.bit_count) + 7) // 8
            if end > record:
                raise MalformedInput(
                    f"{path}: channel {channel.name!r} (group {index}) lies outside its {record}-byte record",
                    hint=_HINT,
                )
            if int(channel.flags) & v4c.FLAG_CN_INVALIDATION_PRESENT and (
                int(channel.pos_invalidation_bit) // 8 >= invalidation
            ):
                raise MalformedInput(
                    f"{path}: channel {channel.name!r} (group {index}) has its invalidation bit outside the record",
                    hint=_HINT,
                )
