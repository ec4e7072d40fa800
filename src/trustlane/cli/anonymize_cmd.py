"""`trustlane anonymize image IN... --out DIR --json`: mask faces and licence plates in images.

The ``--json`` output is a stable contract: one object per input image, one per line,
``{"file": ..., "faces": [[x, y, w, h], ...], "plates": [[x, y, w, h], ...]}`` in pixels of the input image
(the padded boxes that were masked). Every input is read and checked before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trustlane.cli.common import JsonOption, emit_json
from trustlane.errors import UsageError
from trustlane.privacy.image.io import LoadedImage, read_image, write_image
from trustlane.privacy.image.processor import ImageAnonymiser

app = typer.Typer(no_args_is_help=True)


@app.callback()
def anonymize() -> None:
    """Anonymise data before it leaves the holder."""


@app.command("image")
def image(
    inputs: Annotated[list[Path], typer.Argument(metavar="IN...", help="Image files (JPEG, PNG, BMP, TIFF, WebP).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the masked images (same names and formats).")],
    mask: Annotated[str, typer.Option(help="fill (solid black) or mosaic (coarse blocks).")] = "fill",
    face_threshold: Annotated[float, typer.Option(help="CenterFace score above which a face is masked.")] = 0.15,
    faces: Annotated[bool, typer.Option("--faces/--no-faces", help="Find and mask faces.")] = True,
    plates: Annotated[bool, typer.Option("--plates/--no-plates", help="Find and mask licence plates.")] = True,
    json_out: JsonOption = False,
) -> None:
    """Find faces and licence plates offline and mask them irreversibly; writes DIR/<name> per input."""
    processor = ImageAnonymiser()
    config = {"mask": mask, "face_threshold": face_threshold, "faces": faces, "plates": plates}
    problems = processor.validate(config)
    if problems:
        raise UsageError("; ".join(problems), hint="see `trustlane anonymize image --help`")
    names = [p.name for p in inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"two inputs share the name {dupes[0]}", hint="outputs keep input names: rename or split")
    resolved_out = out.resolve()
    for p in inputs:
        if p.resolve().parent == resolved_out:
            raise UsageError(f"{p} is inside --out {out}", hint="write the masked images to another folder")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    # Decode every image once before writing the first output (a damaged file late in the list must not
    # leave half the outputs written), then again one at a time, so memory holds one image, not all.
    for p in inputs:
        read_image(p)
    for path in inputs:
        img = read_image(path)
        result = processor.operate(img.pixels, config)
        write_image(out / path.name, LoadedImage(result.image, img.format, img.orientation))
        record = {"file": str(path), **result.to_json()}
        if json_out:
            emit_json(record)
        else:
            print(f"{path}: {len(result.faces)} face(s), {len(result.plates)} plate(s) -> {out / path.name}")
