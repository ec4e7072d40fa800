"""Axis-aligned boxes in image pixels: non-maximum suppression, padding and IoU."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    """A detected region: top-left corner, size (pixels of the input image) and a score in [0, 1]."""

    x: float
    y: float
    w: float
    h: float
    score: float = 1.0

    def pixels(self) -> list[int]:
        """``[x, y, w, h]`` as ints, rounded outward so the box never shrinks."""
        x0, y0 = int(np.floor(self.x)), int(np.floor(self.y))
        x1, y1 = int(np.ceil(self.x + self.w)), int(np.ceil(self.y + self.h))
        return [x0, y0, x1 - x0, y1 - y0]


def iou(a: Detection, b: Detection) -> float:
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def nms(dets: list[Detection], threshold: float = 0.3) -> list[Detection]:
    """Keep the best-scoring box of every group overlapping by more than ``threshold`` IoU."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: d.score, reverse=True):
        if all(iou(d, k) <= threshold for k in kept):
            kept.append(d)
    return kept


def pad(d: Detection, fraction: float, width: int, height: int) -> Detection:
    """Grow a box by ``fraction`` of its size on every side, clipped to the image."""
    x0 = max(0.0, d.x - d.w * fraction)
    y0 = max(0.0, d.y - d.h * fraction)
    x1 = min(float(width), d.x + d.w * (1 + fraction))
    y1 = min(float(height), d.y + d.h * (1 + fraction))
    return Detection(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0), d.score)
