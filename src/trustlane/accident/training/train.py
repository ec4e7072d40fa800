"""Train the network on generator data, calibrate its contact sigma on validation seeds, export it to ONNX.

Reproducible: the data seeds are fixed ranges (:mod:`.dataset`), ``seed`` fixes weights, batch order, proposal
offsets and augmentation; one CPU thread.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from trustlane.accident.core.learned import CENTRE, WINDOW, LearnedModel
from trustlane.accident.training.dataset import (
    TEST_SEEDS,
    TRAIN_SEEDS,
    VALIDATION_SEEDS,
    Snippets,
    load_snippets,
    windows,
)
from trustlane.accident.training.network import Exported, TemporalNet, contact_moments, soft_target

#: the share of validation contacts that must lie within ±2 sigma after calibration
COVERAGE = 0.92
OUTPUTS = ["crash_probability", "direction_probabilities", "contact_offset_ms", "contact_sigma_ms"]


@dataclass(frozen=True)
class Settings:
    seed: int = 1
    train_recordings_per_scenario: int = 120
    validation_recordings_per_scenario: int = 40
    epochs: int = 14
    batch: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    contact_weight: float = 0.5
    direction_weight: float = 0.5
    workers: int = 1


@dataclass(frozen=True)
class Batch:
    features: Tensor
    crash: Tensor
    direction: Tensor
    offset_ms: Tensor


def _batch(data: Snippets, index: npt.NDArray[np.int64], rng: np.random.Generator, augment: bool) -> Batch:
    features, offsets, direction = windows(data, index, rng, augment=augment)
    return Batch(
        torch.from_numpy(features),
        torch.from_numpy(data.crash[index].astype(np.float32)),
        torch.from_numpy(direction),
        torch.from_numpy(offsets.astype(np.float32)),
    )


def _losses(net: TemporalNet, batch: Batch, settings: Settings) -> tuple[Tensor, dict[str, float]]:
    crash, direction, contact = net(batch.features)
    crash_loss = nn.functional.binary_cross_entropy_with_logits(crash, batch.crash)
    is_crash = batch.crash > 0.5
    total = crash_loss
    parts = {"crash": float(crash_loss.detach())}
    if bool(is_crash.any()):
        direction_loss = nn.functional.cross_entropy(direction[is_crash], batch.direction[is_crash])
        target = soft_target(batch.offset_ms[is_crash])
        contact_loss = -(target * torch.log_softmax(contact[is_crash], dim=1)).sum(dim=1).mean()
        total = total + settings.direction_weight * direction_loss + settings.contact_weight * contact_loss
        parts |= {"direction": float(direction_loss.detach()), "contact": float(contact_loss.detach())}
    return total, parts


def _evaluate(net: TemporalNet, batch: Batch) -> dict[str, float]:
    """Validation figures at 0.5 crash probability; contact errors on collisions only."""
    net.eval()
    positions = torch.arange(WINDOW, dtype=torch.float32) - CENTRE
    with torch.no_grad():
        crash, direction, contact = net(batch.features)
        mean, _ = contact_moments(contact, positions)
    is_crash = batch.crash > 0.5
    errors = (mean - batch.offset_ms)[is_crash].abs().numpy()
    return {
        "crash_accuracy": float(((crash > 0) == is_crash).float().mean()),
        "false_positive_rate": float((crash[~is_crash] > 0).float().mean()),
        "direction_accuracy": float((direction[is_crash].argmax(dim=1) == batch.direction[is_crash]).float().mean()),
        "contact_median_ms": float(np.median(errors)),
        "contact_p95_ms": float(np.percentile(errors, 95)),
    }


def _sigma_scale(net: TemporalNet, batch: Batch) -> float:
    """Scale making ±2 sigma hold the true contact in COVERAGE of validation collisions."""
    exported = Exported(net, 1.0).eval()
    with torch.no_grad():
        _, _, mean, sigma = exported(batch.features)
    is_crash = batch.crash > 0.5
    ratio = ((mean - batch.offset_ms).abs() / (2 * sigma))[is_crash].numpy()
    return float(np.quantile(ratio, COVERAGE))


@contextlib.contextmanager
def _without_onnx_package() -> Iterator[None]:
    """Let the TorchScript exporter run without the ``onnx`` package.

    The exporter imports ``onnx`` only to splice onnxscript custom functions into the model; this network
    has none, so the serialized model is already complete. With ``onnx`` installed nothing is changed.
    """
    try:
        import onnx  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

        original = onnx_proto_utils._add_onnxscript_fn

        def unchanged(model_bytes: bytes, custom_opsets: Mapping[str, int]) -> bytes:
            return model_bytes

        onnx_proto_utils._add_onnxscript_fn = unchanged
        try:
            yield
        finally:
            onnx_proto_utils._add_onnxscript_fn = original
    else:
        yield


def export(net: TemporalNet, sigma_scale: float, out: Path, check: Batch) -> dict[str, float]:
    """Write the ONNX model and check onnxruntime agrees with PyTorch on the validation windows."""
    model = Exported(net, sigma_scale).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}")
    # the TorchScript exporter: the newer one needs the onnx and onnxscript packages, which inference never needs
    with _without_onnx_package(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's notices about its own legacy exporter
        torch.onnx.export(
            model,
            (check.features[:2],),
            str(tmp),
            input_names=["features"],
            output_names=OUTPUTS,
            dynamic_axes={"features": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}},
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(out)
    loaded = LearnedModel.load(str(out))
    with torch.no_grad():
        expected = [t.numpy() for t in model(check.features)]
    got = loaded.outputs(check.features.numpy())
    difference = {name: float(np.max(np.abs(e - g))) for name, e, g in zip(OUTPUTS, expected, got, strict=True)}
    if max(difference.values()) > 1e-3:
        raise RuntimeError(f"ONNX and PyTorch outputs differ: {difference}")
    return difference


def train(settings: Settings, out: Path, cache: Path | None = None, log: bool = True) -> dict[str, object]:
    """Train, calibrate and export; returns the run's record (settings, data, validation figures)."""
    torch.manual_seed(settings.seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(settings.seed)
    started = time.perf_counter()
    train_seeds = TRAIN_SEEDS[: settings.train_recordings_per_scenario]
    validation_seeds = VALIDATION_SEEDS[: settings.validation_recordings_per_scenario]
    assert not set(train_seeds) & set(TEST_SEEDS)
    data = load_snippets(train_seeds, cache=cache, workers=settings.workers)
    held = load_snippets(validation_seeds, cache=cache, workers=settings.workers)
    generated = time.perf_counter() - started
    check = _batch(held, np.arange(len(held)), np.random.default_rng(12345), augment=False)
    net = TemporalNet()
    optimiser = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    per_epoch = len(data) + int(data.crash.sum())
    steps = settings.epochs * ((per_epoch + settings.batch - 1) // settings.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, settings.learning_rate, total_steps=steps)
    history = []
    best: tuple[float, dict[str, Tensor]] | None = None
    for epoch in range(settings.epochs):
        net.train()
        # collisions twice per epoch: they alone train the direction and contact heads
        order = rng.permutation(np.concatenate([np.arange(len(data)), np.flatnonzero(data.crash)]))
        totals: dict[str, float] = {}
        for first in range(0, len(order), settings.batch):
            batch = _batch(data, order[first : first + settings.batch], rng, augment=True)
            loss, parts = _losses(net, batch, settings)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + v * len(batch.crash)
        figures = _evaluate(net, check)
        # selection score: errors in classification dominate, then timing
        score = (1 - figures["crash_accuracy"]) * 100 + (1 - figures["direction_accuracy"]) * 20
        score += figures["contact_median_ms"]
        history.append({"epoch": epoch + 1, **{k: round(v / len(data), 4) for k, v in totals.items()}, **figures})
        if log:
            print(json.dumps(history[-1]), flush=True)
        if best is None or score < best[0]:
            best = (score, {k: v.clone() for k, v in net.state_dict().items()})
    assert best is not None
    net.load_state_dict(best[1])
    net.eval()
    scale = _sigma_scale(net, check)
    difference = export(net, scale, out, check)
    return {
        "settings": asdict(settings),
        "train_seeds": [train_seeds[0], train_seeds[-1]],
        "validation_seeds": [validation_seeds[0], validation_seeds[-1]],
        "train_windows": len(data),
        "train_collision_windows": int(data.crash.sum()),
        "validation_windows": len(held),
        "parameters": sum(p.numel() for p in net.parameters()),
        "sigma_scale": round(scale, 4),
        "validation": _evaluate(net, check),
        "onnx_max_difference": difference,
        "model_bytes": out.stat().st_size,
        "data_seconds": round(generated, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "history": history,
    }
