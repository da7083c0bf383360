"""The ``gemo-clap`` console entry point: one command, one subcommand per job.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``gemo-clap --help`` stays fast. Bad input is reported the
same way by every subcommand: ``run`` raises (``ValueError``, ``OSError``, ``ImportError``) and ``main`` prints one
line ``gemo-clap <command>: <what is wrong>`` to stderr and returns 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

USER_ERRORS = (ValueError, OSError, ImportError)  # bad input, files or towers: one clear line, exit code 2
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("gemo_clap.demo", "offline end-to-end demo on a generated corpus (no downloads)"),
    "build-dataset": ("gemo_clap.processing.cli", "turn a corpus on disk into a Hugging Face dataset"),
    "train": ("gemo_clap.train.cli_train", "train Emo-CLAP / SL-GEmo-CLAP / ML-GEmo-CLAP on one fold"),
    "cross-validate": ("gemo_clap.train.cli_cross_validate", "train and evaluate every fold, write results"),
    "cross-corpus": ("gemo_clap.train.cli_cross_corpus", "train on some corpora, score one never trained on"),
    "evaluate": ("gemo_clap.train.evaluation.cli_evaluate", "zero-shot evaluation of a saved model on a dataset"),
    "push": ("gemo_clap.train.hub.cli_push", "publish a saved model to the Hugging Face Hub"),
    "predict": ("gemo_clap.predict", "emotion (and gender) of audio files, with timelines for long files"),
    "export-onnx": ("gemo_clap.onnx.cli", "export a model to ONNX, run with onnxruntime without torch"),
    "app": ("gemo_clap.app", "a web app (Gradio) serving a model: files, the microphone, an API; or a Space"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Parser for ``argv``; only the subcommand named in ``argv`` imports its module for its options."""
    parser = argparse.ArgumentParser(prog="gemo-clap", description="GEmo-CLAP speech emotion recognition")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if name in argv:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def quiet_weight_loading() -> None:
    """No transformers "Loading weights" bar on every model load (downloads keep huggingface_hub's bars)."""
    if importlib.util.find_spec("transformers") is not None:
        from transformers.utils import logging

        logging.set_tqdm_hook(lambda factory, args, kwargs: factory(*args, **{**kwargs, "disable": True}))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    quiet_weight_loading()
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except USER_ERRORS as error:
        print(f"gemo-clap {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
