"""`gemo-clap push`: publish a saved model folder (safetensors, remote code, processor) with a rendered model card."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder written by training (`<output_dir>/model`)")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hugging Face Hub")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--results", help="results.json (cross-validate) or test_results.json (train) for the card")
    parser.add_argument("--dataset-name", help="training corpus on the card (default: the built dataset's name)")
    parser.add_argument("--protocol", help="evaluation protocol on the card (default: from the corpus)")
    parser.add_argument("--token", help="Hub token (default: the logged-in one)")


def _results(path: str | None) -> dict | None:
    """A train run's test metrics, or the first variant's summary of a cross-validation."""
    if path is None:
        return None
    data = json.loads(Path(path).read_text())
    return next(iter(data["variants"].values()))["summary"] if "variants" in data else data


def corpus_and_protocol(training_args: dict | None, num_labels: int) -> tuple[str, str]:
    """The training corpus's name (from the built dataset's info) and its cross-validation protocol."""
    info = Path((training_args or {}).get("dataset", "")) / "dataset_info.json"
    name = (json.loads(info.read_text()).get("dataset_name") if info.is_file() else None) or "custom"
    if name == "iemocap":
        return "IEMOCAP", f"leave-one-session-out 5-fold cross-validation, {num_labels} classes"
    return name, f"speaker-independent k-fold cross-validation, {num_labels} classes"


def run(args: argparse.Namespace) -> int:
    from ..modeling import GEmoClapConfig
    from .model_card import render_model_card
    from .publish import push_model_folder

    folder = Path(args.model)
    try:
        config = GEmoClapConfig.from_pretrained(folder)
        training_config = folder.parent / "training_config.json"
        training_args = json.loads(training_config.read_text()) if training_config.exists() else None
        corpus, protocol = corpus_and_protocol(training_args, len(config.emotion_labels))
        card = render_model_card(
            repo_id=args.repo_id,
            variant=config.variant,
            audio_encoder=(training_args or {}).get("audio_encoder", config.audio_config.model_type),
            text_encoder=(training_args or {}).get("text_encoder", config.text_config.model_type),
            dataset_name=args.dataset_name or corpus,
            protocol=args.protocol or protocol,
            label_names=list(config.emotion_labels),
            results=_results(args.results),
            training_args=training_args,
        )
        commit = push_model_folder(folder, args.repo_id, private=args.private, token=args.token, model_card=card)
    except (ValueError, OSError) as error:
        print(f"gemo-clap push: {error}", file=sys.stderr)
        return 2
    print(f"pushed {folder} to {args.repo_id}: {getattr(commit, 'commit_url', commit)}")
    return 0
