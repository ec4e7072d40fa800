"""Reading and writing images safely: a pixel limit before decoding, atomic writes, no metadata kept."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from trustlane.errors import MalformedInput, UsageError

# 100 megapixels: about a 12,000 × 8,000 photograph; more would need several GB of RAM per image.
MAX_PIXELS = 100_000_000
FORMATS = {"JPEG", "PNG", "BMP", "TIFF", "WEBP"}
_ORIENTATION = 0x0112


@dataclass
class LoadedImage:
    pixels: np.ndarray  # H×W×3 (RGB) or H×W×4 (RGBA), uint8
    format: str
    orientation: int | None

    @property
    def rgb(self) -> np.ndarray:
        return self.pixels[..., :3]


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode an image file, refusing what is not an image, is damaged, or is larger than ``max_pixels``."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file", hint="give the paths of image files (JPEG, PNG, BMP, TIFF, WebP)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt = img.format or ""
                if fmt not in FORMATS:
                    raise MalformedInput(
                        f"{path}: {fmt or 'unknown'} images are not supported",
                        hint=f"convert it to one of {', '.join(sorted(FORMATS))}",
                    )
                width, height = img.size
                if width * height > max_pixels:
                    raise UsageError(
                        f"{path}: {width}×{height} is {width * height:,} pixels, above the limit of {max_pixels:,}",
                        hint="split or downscale the image first",
                    )
                orientation = img.getexif().get(_ORIENTATION)
                mode = "RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB"
                pixels = np.array(img.convert(mode))
    except Image.DecompressionBombError:
        raise UsageError(
            f"{path}: the image is far above the limit of {max_pixels:,} pixels",
            hint="split or downscale the image first",
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MalformedInput(
            f"{path} is not a readable image ({exc})", hint="check that the file is a complete JPEG/PNG image"
        ) from None
    return LoadedImage(pixels, fmt, int(orientation) if isinstance(orientation, int) else None)


def write_image(path: Path, image: LoadedImage) -> None:
    """Write in the image's own format through a temporary file and a rename: never half-written.

    Metadata is dropped (EXIF can hold GPS position and camera serial numbers) except the orientation.
    """
    img = Image.fromarray(image.pixels)
    options: dict[str, object] = {}
    if image.orientation is not None:
        exif = Image.Exif()
        exif[_ORIENTATION] = image.orientation
        options["exif"] = exif.tobytes()
    if image.format == "JPEG":
        img = img.convert("RGB")
        options.update(quality=95, subsampling=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format=image.format, **options)
            f.flush()
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes it owner-only; the output is a normal file
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise
