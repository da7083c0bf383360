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
    parser.add_argument(
        "--test-fold",
        type=test_fold_argument,
        help="fold held out for testing; none: train on every utterance (a final model, no test score)",
    )
    add_select_argument(parser)
    parser.add_argument("--output-dir", help="where checkpoints, the model and results go")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output-dir from its newest checkpoint (resume only checkpoints you made: "
        "accelerate's state files are pickles)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a run already in --output-dir (its cache is kept)"
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. num_epochs=3 model.variant=ml"
    )


def test_fold_argument(text: str) -> int | str:
    """`--test-fold`: a fold number, or "none"."""
    if text.lower() == "none":
        return "none"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a fold number or none, got {text!r}") from None


def add_select_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--select",
        action="store_true",
        help="choose the settings of `select_space` on speaker-held-out inner folds of the training folds "
        "(select=auto; the test fold is never seen)",
    )


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """The config file plus `--dataset/--test-fold/--output-dir` plus `key=value` overrides."""
    overrides = list(args.overrides)
    for flag, key in (("dataset", "dataset"), ("test_fold", "test_fold"), ("output_dir", "output_dir")):
        if getattr(args, flag, None) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if getattr(args, "select", False):
        overrides.append("select=auto")
    config = TrainingConfig.load(args.config, overrides)
    if not config.dataset:
        raise ValueError("no dataset given (--dataset or `dataset:` in the config)")
    return config


def run(args: argparse.Namespace) -> int:
    from .loop import train

    result = train(config_from_args(args), resume=args.resume, overwrite=args.overwrite)
    if os.environ.get("RANK", "0") == "0":  # one summary line under `accelerate launch`
        summary = {"model": str(result.model_dir), "best_epoch": result.best_epoch}
        summary.update(
            {f"test_{key}": result.test_metrics[key] for key in ("war", "uar") if key in result.test_metrics}
        )
        if "selection" in result.test_metrics:
            summary["selected"] = result.test_metrics["selection"]["chosen"]
        print(json.dumps(summary))
    return 0


def main() -> int:
    """`python -m gemo_clap.train.cli_train ...` (what `accelerate launch -m` runs): `gemo-clap train ...`."""
    from ..cli import main as cli_main

    return cli_main(["train", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
