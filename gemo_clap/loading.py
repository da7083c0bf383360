"""Loading a trained model, for every entry point (predict, evaluate, export-onnx, the app): a model folder or Hub
repo id checked before any Hub call, the zero-shot pipeline of a checkpoint, the ONNX runner of an export."""

from __future__ import annotations

import json
from pathlib import Path

from .train.sources import local_folder_or_repo_id


def check_model_folder(model: str | Path) -> None:
    """A local model folder must hold a gemo-clap checkpoint (`config.json` with `model_type` "gemo_clap");
    otherwise `ValueError` saying so, instead of transformers' long loading error. Hub repo ids pass unchecked."""
    folder = Path(model)
    if not folder.is_dir():
        return
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    if model_type != "gemo_clap":
        hint = " (an ONNX export: use --onnx)" if (folder / "gemo_clap_onnx.json").is_file() else ""
        raise ValueError(f"{folder} is not a gemo-clap model folder: no config.json with model_type gemo_clap{hint}")


def load_classifier(model: str | Path, trust_remote_code: bool = False):
    """The zero-shot pipeline of a model folder or repo id: the installed code, or with `trust_remote_code` the
    checkpoint's own."""
    from transformers import pipeline

    from .modeling import PIPELINE_TASK, GEmoClapModel, GEmoClapProcessor
    from .train.towers import classifier_of

    model = str(local_folder_or_repo_id(model))
    check_model_folder(model)
    if trust_remote_code:
        return pipeline(PIPELINE_TASK, model=model, trust_remote_code=True)
    return classifier_of(GEmoClapModel.from_pretrained(model), GEmoClapProcessor.from_pretrained(model))


def load_onnx_runner(folder: str | Path, trust_remote_code: bool = False):
    """The onnxruntime runner of an exported folder, called like the pipeline (no torch imported)."""
    from .onnx.runtime import GEmoClapOnnxRunner

    if trust_remote_code:
        raise ValueError("--trust-remote-code applies to --model only; an --onnx folder runs no checkpoint code")
    return GEmoClapOnnxRunner(folder)
