"""Privacy processing: detection recall on the annotated developer images, image throughput beside the
cost of decoding and of one CenterFace forward pass, location and DP throughput, and the DP error of a
fleet mean speed by region.

Recall counts an annotated box as found when a reported (padded) box overlaps it with IoU ≥ 0.3. The
annotations are not exhaustive, so precision cannot be computed in general. Two proxies are reported instead:
boxes per image, and plate precision on the single-plate close-ups (`oa_`, `ccpd_`), where the one annotated
plate is almost always the only plate in view, so any other plate box is very likely false.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trustlane.errors import UsageError
from trustlane.privacy.image import faces as face_model
from trustlane.privacy.image.batch import anonymise_files, default_workers
from trustlane.privacy.image.boxes import Detection, iou
from trustlane.privacy.image.io import read_image, write_image
from trustlane.privacy.image.processor import ImageAnonymiser

Progress = Callable[[str, float], None]
IOU = 0.3


def _noop(_: str, __: float) -> None:
    return None


def _default_images() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "images"


def _recall(folder: Path, config: dict[str, Any], progress: Progress) -> dict[str, Any]:
    notes = json.loads((folder / "annotations.json").read_text())
    hits: dict[str, list[int]] = {}
    detections = {"faces": 0, "plates": 0}
    closeups = [0, 0]  # plate boxes matching the annotated plate, all plate boxes, on single-plate close-ups
    processor = ImageAnonymiser()
    entries = notes["images"]
    for n, entry in enumerate(entries):
        img = read_image(folder / entry["file"])
        result = processor.operate(img.pixels, config)
        detections["faces"] += len(result.faces)
        detections["plates"] += len(result.plates)
        prefix = entry["file"].split("_")[0]
        if prefix in ("oa", "ccpd"):
            truths = [Detection(b["x"], b["y"], b["w"], b["h"]) for b in entry["boxes"] if b["label"] == "plate"]
            closeups[0] += sum(any(iou(t, d) >= IOU for t in truths) for d in result.plates)
            closeups[1] += len(result.plates)
        for b in entry["boxes"]:
            truth = Detection(b["x"], b["y"], b["w"], b["h"])
            found = result.faces if b["label"] == "face" else result.plates
            hit = any(iou(truth, d) >= IOU for d in found)
            keys = [f"{b['label']}", f"{b['label']}_{prefix}"]
            if b["label"] == "face" and prefix == "wf":
                keys.append("face_wf_under20px" if b["h"] < 20 else "face_wf_20px_up")
            for key in keys:
                hits.setdefault(key, [0, 0])
                hits[key][0] += hit
                hits[key][1] += 1
        progress(f"recall {config}", (n + 1) / len(entries))
    out: dict[str, Any] = {}
    for key, (found_n, total) in sorted(hits.items()):
        out[f"recall_{key}"] = f"{found_n}/{total} = {found_n / total:.3f}"
    out["faces_reported_per_image"] = round(detections["faces"] / len(entries), 2)
    out["plates_reported_per_image"] = round(detections["plates"] / len(entries), 2)
    if closeups[1]:
        out["plate_precision_closeups"] = f"{closeups[0]}/{closeups[1]} = {closeups[0] / closeups[1]:.3f}"
    return out


def _anonymise_rate(files: list[Path], config: dict[str, Any], rounds: int, workers: int) -> float:
    """Images/s as the CLI does it (``anonymise_files``): decode, faces and plates, mask, encode and write."""
    elapsed = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            begin = time.perf_counter()
            anonymise_files(files, Path(tmp) / f"round{r}", config, workers=workers)
            elapsed += time.perf_counter() - begin
    return rounds * len(files) / elapsed


def _best_of(fn: Callable[[], object], n: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(n):
        begin = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - begin)
    return best


def _forward_s(height: int, width: int, model: str) -> float:
    """One face-network pass on one thread (the way each frame worker runs it); best of five."""
    blob = np.zeros((1, 3, height, width), np.float32)
    session = face_model.session(model, threads=1)
    return _best_of(lambda: session.run(None, {face_model.INPUT_NAME: blob}), 5)


def _throughput(folder: Path, progress: Progress, rounds: int) -> dict[str, Any]:
    files = sorted(p for p in folder.glob("ro_*.jpg"))  # 1280×720 dash-camera frames
    if not files:
        raise UsageError(f"no 1280×720 ro_*.jpg frames in {folder}")
    loaded = read_image(files[0])
    detector = ImageAnonymiser().plate_detector
    cores = default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        decode = _best_of(lambda: read_image(files[0]))
        encode = _best_of(lambda: write_image(Path(tmp) / files[0].name, loaded))
    plates = _best_of(lambda: detector.detect(loaded.rgb))
    forward = {m: _forward_s(736, 1280, m) for m in face_model.MODELS}
    # The work one frame needs on one core; with every core on its own frame, the rate cannot exceed this.
    per_frame = decode + forward[face_model.DEFAULT_MODEL] + plates + encode
    bound = cores / per_frame
    progress("throughput limits", 0.25)
    rate = _anonymise_rate(files, {}, rounds, 0)
    progress("throughput", 0.5)
    one_worker = _anonymise_rate(files, {}, rounds, 1)
    progress("throughput", 0.75)
    fp32 = _anonymise_rate(files, {"face_model": "fp32"}, rounds, 0)
    progress("throughput", 1.0)
    return {
        "images_1280x720": rounds * len(files),
        "cores": cores,
        "anonymise_images_per_s": round(rate, 2),
        "anonymise_one_worker_images_per_s": round(one_worker, 2),
        "anonymise_fp32_faces_images_per_s": round(fp32, 2),
        "limit_images_per_s": round(bound, 2),
        "ratio_to_limit": round(rate / bound, 2),
        "jpeg_decode_s": round(decode, 4),
        "jpeg_encode_write_s": round(encode, 4),
        "centerface_int8_forward_1280x736_1thread_s": round(forward["int8"], 3),
        "centerface_fp32_forward_1280x736_1thread_s": round(forward["fp32"], 3),
        "plate_detector_1thread_s": round(plates, 3),
    }


def _commute(samples: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 1_700_000_000_000_000_000 + np.arange(samples, dtype=np.int64) * 1_000_000_000
    # a random walk at ~15 m/s with long pauses: stops for the zone finder to find
    step = rng.normal(0, 15 / 111_000, (2, samples)) * (rng.uniform(0, 1, samples) > 0.5)
    return t, 48.1 + np.cumsum(step[0]), 11.5 + np.cumsum(step[1])


def _location(progress: Progress, samples: int) -> dict[str, Any]:
    from trustlane.privacy import get
    from trustlane.privacy.location import Track, distance_m

    track = Track.of(*_commute(samples))
    out: dict[str, Any] = {"location_samples": samples}
    begin = time.perf_counter()
    distance_m(track.lat, track.lon, 48.1, 11.5)
    out["reference_numpy_distance_samples_per_s"] = round(samples / (time.perf_counter() - begin))
    for name, config in (
        ("location.geoind", {"epsilon_per_m": 0.01, "seed": 1}),
        ("location.coarsen", {"cell_m": 500.0}),
        ("location.trim", {}),
        ("location.zones", {}),
    ):
        begin = time.perf_counter()
        get(name).operate(track, config)
        out[f"{name.split('.')[1]}_samples_per_s"] = round(samples / (time.perf_counter() - begin))
        progress("location", 1.0)
    return out


def _dp(progress: Progress, repetitions: int) -> dict[str, Any]:
    from trustlane.privacy.aggregates import release
    from trustlane.privacy.budget import PrivacyBudget

    rng = np.random.default_rng(42)
    regions = ["north", "south", "east", "west", "centre"]
    owner = rng.integers(0, len(regions), 10_000)
    base = np.array([55.0, 62.0, 70.0, 48.0, 35.0])
    speeds = np.clip(rng.normal(base[owner], 15), 0, 200)
    data = {r: list(speeds[owner == i]) for i, r in enumerate(regions)}
    truth = {r: float(np.mean(v)) for r, v in data.items()}
    errors: list[float] = []
    elapsed = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        budget = PrivacyBudget(Path(tmp), "fleet", "bench", epsilon=repetitions * 1.0 + 1)
        for i in range(repetitions):
            begin = time.perf_counter()
            r = release("mean", data, budget, 1.0, bounds=(0.0, 200.0), groups=regions)
            elapsed += time.perf_counter() - begin
            errors += [abs(r.value[g] - truth[g]) / truth[g] for g in regions]
            progress("dp", (i + 1) / repetitions)
        refused = False
        try:
            release("count", [1.0], budget, 2.0)
        except Exception as exc:  # the budget left is 1.0: the query must be refused
            refused = type(exc).__name__ == "BudgetExhausted"
    return {
        "dp_vehicles": 10_000,
        "dp_regions": len(regions),
        "dp_mean_speed_rel_error_median": round(float(np.median(errors)), 5),
        "dp_mean_speed_rel_error_p95": round(float(np.percentile(errors, 95)), 5),
        "dp_grouped_releases_per_s": round(repetitions / elapsed, 1),
        "dp_budget_exhaustion_refused": refused,
    }


def privacy(
    progress: Progress | None = None,
    images: str | None = None,
    rounds: int = 1,
    upscale_pass: bool = True,
    location_samples: int = 86_400,
    dp_repetitions: int = 50,
    **_: Any,
) -> dict[str, Any]:
    """All privacy figures; keys are flat for `trustlane bench` tables."""
    report = progress or _noop
    folder = Path(images) if images else _default_images()
    if not (folder / "annotations.json").is_file():
        raise UsageError(f"{folder} has no annotations.json", hint="give --images ../shared/vectors/images")
    out: dict[str, Any] = {}
    out.update(_recall(folder, {}, report))
    fp32 = _recall(folder, {"face_model": "fp32", "plates": False}, report)
    out.update({f"fp32_{k}": v for k, v in fp32.items() if "face" in k})
    if upscale_pass:
        up = _recall(folder, {"face_upscale": 2.0}, report)
        out.update({f"upscale2_{k}": v for k, v in up.items() if k.startswith("recall_face")})
    out.update(_throughput(folder, report, rounds))
    out.update(_location(report, location_samples))
    out.update(_dp(report, dp_repetitions))

    return out
