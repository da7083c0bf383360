"""`gemo-clap push`: publish a saved model folder (safetensors, remote code, processor) with a rendered model card.

The training corpus comes from the run's `training_config.json` (recorded at training time); a model trained on a
corpus whose licence forbids redistribution (IEMOCAP) is pushed as private unless `--public` is given."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder written by training (`<output_dir>/model`)")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hugging Face Hub")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument("--private", action="store_true", help="create the repository as private")
    visibility.add_argument(
        "--public", action="store_true", help="create it public even if the training corpus is not redistributable"
    )
    parser.add_argument("--results", help="results.json (cross-validate) or test_results.json (train) for the card")
    parser.add_argument("--dataset-name", help="training corpus on the card (default: the one training recorded)")
    parser.add_argument("--protocol", help="evaluation protocol on the card (default: from the corpus)")
    parser.add_argument("--token", help="Hub token (default: the logged-in one)")


def _results(path: str | None) -> dict | None:
    """A train run's test metrics, or the first variant's summary of a cross-validation."""
    if path is None:
        return None
    data = json.loads(Path(path).read_text())
    return next(iter(data["variants"].values()))["summary"] if "variants" in data else data


def _recorded(path: Path) -> dict | None:
    """A JSON record training left in the model folder, if any."""
    return json.loads(path.read_text()) if path.is_file() else None


def training_corpus(training_args: dict | None) -> str:
    """The corpus a run trained on: recorded by training (`corpus`), else read from the dataset it names."""
    training_args = training_args or {}
    if training_args.get("corpus"):
        return training_args["corpus"]
    info = Path(training_args.get("dataset", "")) / "dataset_info.json"
    return (json.loads(info.read_text()).get("dataset_name") if info.is_file() else None) or "custom"


def run(args: argparse.Namespace) -> int:
    from ...modeling import GEmoClapConfig
    from ...processing.corpora import corpus_spec
    from ..config import CROSS_VALIDATION_FILE, LOCAL_PATH_KEYS, TRAINING_CONFIG_NAME
    from ..evaluation.zero_shot import scoring_sentence
    from ..selection import SELECTION_FILE
    from ..sources import local_folder_or_repo_id
    from .model_card import render_model_card
    from .publish import push_model_folder

    folder = Path(local_folder_or_repo_id(args.model))
    config = GEmoClapConfig.from_pretrained(folder)
    # what training recorded in the model folder; runs made before that recorded only their own folder's copy
    recorded = [folder / TRAINING_CONFIG_NAME, folder.parent / TRAINING_CONFIG_NAME]
    training_config = next((path for path in recorded if path.is_file()), None)
    training_args = json.loads(training_config.read_text()) if training_config else None
    corpus = training_corpus(training_args)
    spec = corpus_spec(args.dataset_name or corpus)
    dataset_name = args.dataset_name or (spec.title if spec and spec.name != "manifest" else corpus)
    protocol = args.protocol or (
        f"{(spec or corpus_spec('manifest')).protocol_text(None, len(config.emotion_labels))}; {scoring_sentence()}"
    )
    private = args.private
    if spec is not None and not spec.redistributable and not args.public:
        private = True
        if not args.private:
            print(
                f"gemo-clap push: warning: the model was trained on {spec.title}, whose licence forbids "
                f"redistribution: creating {args.repo_id} as private (pass --public to override)",
                file=sys.stderr,
            )
    card = render_model_card(
        repo_id=args.repo_id,
        variant=config.variant,
        audio_encoder=(training_args or {}).get("audio_encoder", config.audio_config.model_type),
        text_encoder=(training_args or {}).get("text_encoder", config.text_config.model_type),
        dataset_name=dataset_name,
        protocol=protocol,
        label_names=list(config.emotion_labels),
        results=_results(args.results),
        training_args={k: v for k, v in training_args.items() if k not in LOCAL_PATH_KEYS} if training_args else None,
        selection=_recorded(folder / SELECTION_FILE),
        cross_validation=_recorded(folder / CROSS_VALIDATION_FILE),
    )
    commit = push_model_folder(folder, args.repo_id, private=private, token=args.token, model_card=card)
    print(
        f"pushed {folder} to {args.repo_id}{' (private)' if private else ''}: {getattr(commit, 'commit_url', commit)}"
    )
    return 0
