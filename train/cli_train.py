"""`gemo-clap train`: train one fold (`--test-fold K`) from a config file with `key=value` overrides.

Single process: `gemo-clap train --config cpu-whisper-tiny-sl --dataset DIR --test-fold 1`.
Several processes: `accelerate launch -m gemo_clap.train.cli_train --config ... --test-fold 1`
(on CPU: `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m gemo_clap.train.cli_train ...`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .config import TrainingConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML/JSON config file, or the name of a shipped config (train/configs/)")
    parser.add_argument("--dataset", help="dataset folder written by `gemo-clap build-dataset`")
    parser.add_argument("--test-fold", type=int, help="fold held out for testing")
    parser.add_argument("--output-dir", help="where checkpoints, the model and results go")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. num_epochs=3")


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """The config file plus `--dataset/--test-fold/--output-dir` plus `key=value` overrides."""
    overrides = list(args.overrides)
    for flag, key in (("dataset", "dataset"), ("test_fold", "test_fold"), ("output_dir", "output_dir")):
        if getattr(args, flag, None) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    return TrainingConfig.load(args.config, overrides)


def run(args: argparse.Namespace) -> int:
    from .loop import train

    try:
        config = config_from_args(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"gemo-clap train: {error}", file=sys.stderr)
        return 2
    if not config.dataset:
        print("gemo-clap train: no dataset given (--dataset or `dataset:` in the config)", file=sys.stderr)
        return 2
    try:
        result = train(config, resume=args.resume)
    except (ValueError, FileNotFoundError) as error:  # bad dataset, fold or tower: say what, no traceback
        print(f"gemo-clap train: {error}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # one summary line under `accelerate launch`
        print(
            json.dumps(
                {
                    "model": str(result.model_dir),
                    "best_epoch": result.best_epoch,
                    "test_war": result.test_metrics["war"],
                    "test_uar": result.test_metrics["uar"],
                }
            )
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="gemo-clap train", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
