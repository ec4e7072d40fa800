"""Anonymise many image files: one frame per core, all outputs or none.

Each worker decodes, masks and encodes whole frames (the face network on one thread), so two cores work on
two frames at once instead of splitting one frame's convolutions and waiting on each other. Outputs go to a
staging folder inside ``out`` and are moved into place only after every input succeeded: a damaged file late
in the list leaves no output behind, and each input is decoded once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2

from trustlane.errors import UsageError
from trustlane.privacy.image.io import LoadedImage, read_image, write_image
from trustlane.privacy.image.processor import ImageAnonymiser, ImageResult

Record = dict[str, Any]


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def _opencv_threads(n: int) -> Iterator[None]:
    # OpenCV's own thread pool would fight the frame workers for the same cores.
    before = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


STAGING_PREFIX = ".trustlane-staging-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_abandoned_staging(out: Path) -> None:
    """Staging folders of runs that were killed (their process is gone): never moved into place, never used."""
    for folder in out.glob(STAGING_PREFIX + "*"):
        pid = folder.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(out)
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)


def anonymise_files(
    inputs: list[Path],
    out: Path,
    config: dict[str, Any],
    workers: int = 0,
    on_done: Callable[[Record], None] | None = None,
) -> list[Record]:
    """Mask every input into ``out/<name>``; returns (and passes to ``on_done``, in input order, once all
    succeeded) one record per image: ``{"file", "faces", "plates"}``."""
    workers = min(workers or default_workers(), max(1, len(inputs)))
    processor = ImageAnonymiser(frames_in_parallel=workers > 1)
    problems = processor.validate(config)
    if problems:
        raise UsageError("; ".join(problems), hint="see `trustlane anonymize image --help`")
    settings = processor.settings(config)

    with _staging(out) as stage:

        def one(path: Path) -> Record:
            loaded = read_image(path)
            result: ImageResult = processor.apply(loaded.pixels, settings)
            write_image(stage / path.name, LoadedImage(result.image, loaded.format, loaded.orientation))
            return {"file": str(path), **result.to_json()}

        if workers == 1:
            records = [one(p) for p in inputs]
        else:
            with _opencv_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="frame") as pool:
                records = list(pool.map(one, inputs))
        for path, record in zip(inputs, records, strict=True):
            (stage / path.name).replace(out / path.name)
            if on_done is not None:
                on_done(record)
    return records
