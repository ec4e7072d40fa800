"""Licence plates, offline: an OpenCV plate cascade joined with colour and contrast/edge candidate regions.

A detector is anything with ``name``, ``version`` and ``detect(rgb) -> list[Detection]`` (``PlateDetector``);
the built-in one needs nothing beyond OpenCV. It favours recall: a false candidate costs a masked patch of
road, a missed plate is personal data leaving the holder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from trustlane.errors import UsageError
from trustlane.privacy.image.boxes import Detection, nms


class PlateDetector(Protocol):
    name: str
    version: str

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


# The 16-stage plate cascade found no plate on the developer images that the stroke regions missed, at half
# the cost of the whole detector; this one still adds some small, low-contrast plates.
CASCADE = "haarcascade_russian_plate_number.xml"


# Plates are 2:1 (US) to 4.7:1 (EU); tilted ones look squarer, long merged rows longer.
MIN_ASPECT, MAX_ASPECT = 1.5, 7.0
# A candidate region spans the characters plus the plate's border and whatever dark strokes touch it (a bumper
# edge, a frame): up to four character heights tall, not just the characters.
MAX_HEIGHT_CHARS = 4.0
# Characters give a row at least this many dark/light changes (3 characters); paint and sky give fewer.
MIN_TRANSITIONS = 6
CHARACTER_HEIGHTS = (6, 10, 16, 26, 42, 68)
# Larger characters are searched on a reduced image where they are this tall: ten pixels still give the
# stroke and transition tests what they need (same recall on the developer images as 16 px, fewer false
# boxes), and the full-size passes, the costly ones, are only those for characters under 10 px.
SEARCH_CHAR_HEIGHT = 10
_SQUARE = np.ones((3, 3), np.uint8)


_per_thread = threading.local()


def _cascade(name: str) -> cv2.CascadeClassifier:
    # One classifier per thread: OpenCV's CascadeClassifier keeps scratch state in the object, and two threads
    # running detectMultiScale on one instance crash the process.
    loaded: dict[str, cv2.CascadeClassifier] = _per_thread.__dict__.setdefault("cascades", {})
    if name not in loaded:
        path = Path(cv2.__file__).parent / "data" / name  # where opencv-python ships cv2.data.haarcascades
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise UsageError(f"OpenCV cascade {path} did not load", hint="reinstall opencv-python (it ships the XML)")
        loaded[name] = cascade
    return loaded[name]


def cascade_candidates(gray: np.ndarray) -> list[Detection]:
    # Plates under 36 px wide are left to the stroke regions: the smallest cascade scales cost the most.
    found = _cascade(CASCADE).detectMultiScale(gray, scaleFactor=1.15, minNeighbors=3, minSize=(36, 12))
    return [Detection(float(x), float(y), float(w), float(h), 0.6) for x, y, w, h in found]


def _transitions(band: np.ndarray) -> float:
    """Median count of dark/light changes along the rows of a band: characters give many, smooth paint few."""
    if band.size == 0:
        return 0.0
    binary = band > cv2.threshold(band, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]
    changes = np.count_nonzero(np.diff(binary.astype(np.int8), axis=1), axis=1)
    return float(np.median(changes))


def edge_candidates(gray: np.ndarray, char_height: int) -> list[Detection]:
    """Regions dense in vertical strokes with a plate's aspect ratio, for characters about ``char_height`` px."""
    k = max(3, char_height)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k * 2 + 1, k // 2 * 2 + 1))
    dark_on_light = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    light_on_dark = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, kernel)
    out: list[Detection] = []
    height, width = gray.shape
    for strokes in (dark_on_light, light_on_dark):
        gx = np.abs(cv2.Sobel(strokes, cv2.CV_32F, 1, 0, ksize=3))
        gx = (gx * (255.0 / max(float(gx.max()), 1e-6))).astype(np.uint8)
        gx = cv2.GaussianBlur(gx, (5, 5), 0)
        closed = cv2.morphologyEx(gx, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k * 2 + 1, 3)))
        _, mask = cv2.threshold(closed, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        mask = cv2.erode(mask, _SQUARE, iterations=1)
        mask = cv2.dilate(mask, _SQUARE, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if not (MIN_ASPECT <= w / h <= MAX_ASPECT) or h < char_height * 0.6 or h > char_height * MAX_HEIGHT_CHARS:
                continue
            if w * h > 0.05 * width * height:
                continue
            t = _transitions(gray[y + h // 4 : y + h - h // 4, x : x + w])
            if t < MIN_TRANSITIONS:
                continue
            fill = cv2.contourArea(contour) / float(w * h)
            out.append(Detection(float(x), float(y), float(w), float(h), min(1.0, 0.2 + 0.03 * t) * fill))
    return out


# Plate backgrounds with a strong colour (OpenCV hue, 0–180): blue (CN small vehicles, US states) and yellow
# (CN large vehicles, rear plates in several EU countries). White and grey plates are left to the strokes.
PLATE_HUES = ((100, 125), (15, 35))
MIN_SATURATION, MIN_VALUE = 80, 60


def colour_candidates(rgb: np.ndarray, gray: np.ndarray) -> list[Detection]:
    """Solid blue or yellow regions shaped like a plate (tilt allowed) with characters across them.

    The box is the upright bounding box of the region, so a tilted plate is covered corner to corner.
    """
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    height, width = gray.shape
    close = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 3))  # joins the background across thin characters
    out: list[Detection] = []
    for low, high in PLATE_HUES:
        region = cv2.inRange(hsv, (low, MIN_SATURATION, MIN_VALUE), (high, 255, 255))
        region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, close)
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w < 24 or h < 8 or w * h > 0.05 * width * height:
                continue
            _, (rw, rh), _ = cv2.minAreaRect(contour)
            long_side, short_side = max(rw, rh), min(rw, rh)
            # The rotated rectangle has a plate's proportions and the region fills most of it.
            if short_side < 6 or not 1.8 <= long_side / short_side <= 6.0:
                continue
            if cv2.contourArea(contour) < 0.5 * rw * rh:
                continue
            if _transitions(gray[y + h // 4 : y + h - h // 4, x : x + w]) < MIN_TRANSITIONS:
                continue
            out.append(Detection(float(x), float(y), float(w), float(h), 0.5))
    return out


def detect_plates(rgb: np.ndarray) -> list[Detection]:
    """Plate candidates in an RGB uint8 image: cascade hits, blue/yellow plate regions and stroke-dense regions
    at six character sizes."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    found = cascade_candidates(gray) + colour_candidates(rgb, gray)
    width = gray.shape[1]
    for char_height in CHARACTER_HEIGHTS:
        if char_height * 6 > width:
            break
        # Large characters are searched on a reduced image: the same kernels, a fraction of the work.
        scale = min(1.0, SEARCH_CHAR_HEIGHT / char_height)
        small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        for d in edge_candidates(small, round(char_height * scale)):
            found.append(Detection(d.x / scale, d.y / scale, d.w / scale, d.h / scale, d.score))
    return nms(found, 0.3)


class OfflinePlateDetector:
    """The built-in detector (``detect_plates``)."""

    name = "opencv-cascade+stroke-regions"
    # 1: both cascades, stroke regions up to 2.5 character heights, no colour regions; 2: characters over
    # 16 px searched at 16 px
    version = "3"

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return detect_plates(rgb)
