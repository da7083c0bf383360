"""``gemo-clap build-dataset``: turn a corpus on disk into a Hugging Face dataset saved with ``save_to_disk``."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from ..modeling.audio_gemo_clap import MIN_SECONDS
from .atomic import check_folder_path
from .builder import DEFAULT_MAX_SECONDS, build_corpus, save_dataset
from .corpora import CORPORA
from .label_maps import PRESETS
from .summary import format_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", choices=list(CORPORA), help="corpus reader")
    parser.add_argument(
        "source", type=Path, help="corpus folder (IEMOCAP_full_release/, EmoDB, RAVDESS, CREMA-D) or manifest file"
    )
    parser.add_argument("--output", type=Path, required=True, help="folder written with Dataset.save_to_disk")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="keep the first N seconds of each clip (0: whole clips)",
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=MIN_SECONDS,
        help=f"leave out clips shorter than this (default {MIN_SECONDS:g}: no frame of speech)",
    )
    parser.add_argument(
        "--folds", type=int, default=None, help="speaker-independent folds (default 5; IEMOCAP: its 5 sessions)"
    )
    parser.add_argument(
        "--label-map",
        default=None,
        help=f"preset ({', '.join(PRESETS)}), inline 'src:dst,src:dst' or a JSON file "
        "(default: 4class for IEMOCAP, all labels otherwise)",
    )
    parser.add_argument("--keep-all", action="store_true", help="keep labels the label map does not cover")
    parser.add_argument("--strict", action="store_true", help="fail on any missing/unreadable file or bad label line")
    parser.add_argument("--num-proc", type=int, default=1, help="processes decoding audio")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")


def run(args: argparse.Namespace) -> int:
    if args.max_seconds < 0:
        raise ValueError(f"--max-seconds must be >= 0, got {args.max_seconds}")
    if args.min_seconds < 0 or (args.max_seconds and args.min_seconds > args.max_seconds):
        raise ValueError(f"--min-seconds must be in [0, --max-seconds], got {args.min_seconds}")
    check_folder_path(args.output, "--output")
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"output folder already exists: {args.output} (use --overwrite)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cache_dir = tempfile.mkdtemp(prefix=f".{args.output.name}.cache-", dir=args.output.parent)
    try:
        dataset, report = build_corpus(
            args.corpus,
            args.source,
            label_map=args.label_map,
            keep_all=args.keep_all,
            num_folds=args.folds,
            max_seconds=args.max_seconds or None,
            min_seconds=args.min_seconds,
            num_proc=args.num_proc,
            strict=args.strict,
            cache_dir=cache_dir,
        )
        save_dataset(dataset, args.output, overwrite=args.overwrite)
        print(format_summary(dataset, report))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    print(f"saved to {args.output}")
    return 0
