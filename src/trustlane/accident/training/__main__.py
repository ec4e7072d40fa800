"""``python -m trustlane.accident.training --out src/trustlane/accident/core/model.onnx --seed 1``"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trustlane.accident.training.train import Settings, train


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m trustlane.accident.training", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="where to write the ONNX model")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="training seed (weights, batches)")
    parser.add_argument(
        "--recordings",
        type=int,
        default=defaults.train_recordings_per_scenario,
        help="training recordings per scenario",
    )
    parser.add_argument(
        "--validation",
        type=int,
        default=defaults.validation_recordings_per_scenario,
        help="validation recordings per scenario",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="processes generating data")
    parser.add_argument("--cache", type=Path, default=None, help="snippet cache folder (default: system temp)")
    parser.add_argument("--record", type=Path, default=None, help="also write the run's record (JSON) here")
    args = parser.parse_args(argv)
    if args.recordings < 1 or args.validation < 1 or args.epochs < 1:
        parser.error("--recordings, --validation and --epochs must be at least 1")
    settings = Settings(
        seed=args.seed,
        train_recordings_per_scenario=args.recordings,
        validation_recordings_per_scenario=args.validation,
        epochs=args.epochs,
        workers=args.workers,
    )
    record = train(settings, args.out, cache=args.cache)
    text = json.dumps({k: v for k, v in record.items() if k != "history"}, indent=2)
    print(text)
    if args.record is not None:
        args.record.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
