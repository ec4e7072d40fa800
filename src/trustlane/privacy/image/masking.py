"""Irreversible masks: a solid fill, or a mosaic whose blocks are too coarse to recover the content.

A Gaussian blur is not offered: it is a known linear filter and can be largely inverted (deconvolution).
A mosaic replaces each block by its mean colour; with blocks of at least ``MIN_BLOCK`` px and at most
``MAX_BLOCKS_PER_SIDE`` blocks across the longer side, a plate has at most two or three characters per block.
"""

from __future__ import annotations

import math

import numpy as np

from trustlane.privacy.image.boxes import Detection

MASKS = ("fill", "mosaic")
MIN_BLOCK = 12
MAX_BLOCKS_PER_SIDE = 8
FILL_COLOUR = (0, 0, 0)


def _bounds(d: Detection, width: int, height: int) -> tuple[int, int, int, int]:
    x, y, w, h = d.pixels()
    return max(0, x), max(0, y), min(width, x + w), min(height, y + h)


def block_size(w: int, h: int) -> int:
    return max(MIN_BLOCK, math.ceil(max(w, h) / MAX_BLOCKS_PER_SIDE))


def mask(image: np.ndarray, boxes: list[Detection], how: str) -> None:
    """Mask ``boxes`` in ``image`` (H×W×3 or H×W×4 uint8) in place."""
    if how not in MASKS:
        raise ValueError(f"unknown mask {how!r}")
    height, width = image.shape[:2]
    channels = image.shape[2]
    for d in boxes:
        x0, y0, x1, y1 = _bounds(d, width, height)
        if x1 <= x0 or y1 <= y0:
            continue
        region = image[y0:y1, x0:x1]
        if how == "fill":
            region[..., :3] = np.array(FILL_COLOUR, np.uint8)
            if channels == 4:
                region[..., 3] = 255  # opaque, so no viewer shows what was behind the mask
            continue
        block = block_size(x1 - x0, y1 - y0)
        for by in range(0, y1 - y0, block):
            for bx in range(0, x1 - x0, block):
                cell = region[by : by + block, bx : bx + block]
                cell[...] = cell.reshape(-1, channels).mean(axis=0).round().astype(np.uint8)
