"""The image anonymiser: faces (CenterFace) and plates (built-in offline detector), padded and masked."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from trustlane.privacy.base import Processor, register
from trustlane.privacy.image import faces as face_model
from trustlane.privacy.image.boxes import Detection, pad
from trustlane.privacy.image.masking import MASKS, mask
from trustlane.privacy.image.plates import OfflinePlateDetector, PlateDetector


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="plates")


@dataclass
class ImageResult:
    image: np.ndarray  # the masked copy
    faces: list[Detection]  # padded boxes, as masked
    plates: list[Detection]

    def to_json(self) -> dict[str, Any]:
        return {"faces": [d.pixels() for d in self.faces], "plates": [d.pixels() for d in self.plates]}


@register
class ImageAnonymiser(Processor):
    name = "image.anonymise"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {
        "mask": "fill",
        "faces": True,
        "plates": True,
        # Low on purpose: a false face costs a masked patch, a missed one leaks a person (see docs/PRIVACY.md).
        "face_threshold": 0.15,
        # int8: the quantised CenterFace (about 3× faster on CPU, same recall on the developer set); fp32: as shipped.
        "face_model": face_model.DEFAULT_MODEL,
        "face_upscale": 1.0,
        # 0: the face network sees the image at full size; a cap (e.g. 640) trades small faces for speed.
        "face_max_side": 0,
        "padding": 0.1,
    }

    def __init__(self, plate_detector: PlateDetector | None = None, frames_in_parallel: bool = False) -> None:
        """``frames_in_parallel``: the caller runs one image per core, so each image uses one core (faces, then
        plates) instead of spreading one image over all of them."""
        self.plate_detector = plate_detector or OfflinePlateDetector()
        self.frames_in_parallel = frames_in_parallel

    def check(self, config: dict[str, Any]) -> list[str]:
        problems = []
        if config["mask"] not in MASKS:
            problems.append(f"mask must be one of {', '.join(MASKS)}, not {config['mask']!r}")
        for key in ("faces", "plates"):
            if not isinstance(config[key], bool):
                problems.append(f"{key} must be true or false")
        t = config["face_threshold"]
        if not isinstance(t, int | float) or not 0 < t < 1:
            problems.append(f"face_threshold must be a number between 0 and 1 (exclusive), not {t!r}")
        if config["face_model"] not in face_model.MODELS:
            problems.append(f"face_model must be one of {', '.join(face_model.MODELS)}, not {config['face_model']!r}")
        u = config["face_upscale"]
        if not isinstance(u, int | float) or not 0.25 <= u <= 4:
            problems.append(f"face_upscale must be between 0.25 and 4, not {u!r}")
        m = config["face_max_side"]
        if isinstance(m, bool) or not isinstance(m, int) or not (m == 0 or 64 <= m <= 8192):
            problems.append(f"face_max_side must be 0 (no cap) or a whole number of pixels from 64 to 8192, not {m!r}")
        p = config["padding"]
        if not isinstance(p, int | float) or not 0 <= p <= 1:
            problems.append(f"padding must be a fraction of the box between 0 and 1, not {p!r}")
        return problems

    def apply(self, data: Any, config: dict[str, Any]) -> ImageResult:
        image = np.array(data, dtype=np.uint8, copy=True)
        if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
            raise ValueError(f"expected an H×W×3 or H×W×4 image, got shape {image.shape}")
        height, width = image.shape[:2]
        rgb = np.ascontiguousarray(image[..., :3])
        found_faces: list[Detection] = []
        found_plates: list[Detection] = []
        # Alone, one image spreads over the cores: the plate detector (OpenCV) runs on a second thread while
        # onnxruntime runs the face network; both release the GIL. Beside other frames, each keeps to one core.
        overlap = config["plates"] and not self.frames_in_parallel
        plates_job = _pool().submit(self.plate_detector.detect, rgb) if overlap else None
        if config["faces"]:
            found_faces = face_model.detect_faces(
                rgb,
                float(config["face_threshold"]),
                float(config["face_upscale"]),
                int(config["face_max_side"]),
                model=config["face_model"],
                threads=1 if self.frames_in_parallel else 0,
            )
        if plates_job is not None:
            found_plates = plates_job.result()
        elif config["plates"]:
            found_plates = self.plate_detector.detect(rgb)
        padding = float(config["padding"])
        faces = [pad(d, padding, width, height) for d in found_faces]
        plates = [pad(d, padding, width, height) for d in found_plates]
        mask(image, faces + plates, config["mask"])
        return ImageResult(image, faces, plates)

    def parameters(self, config: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        record = super().parameters(config)
        model = self.settings(config)["face_model"]
        record["models"] = {
            "faces": f"CenterFace {model} ({face_model.model_digest(model)})",
            "plates": f"{self.plate_detector.name} {self.plate_detector.version}",
        }
        return record
