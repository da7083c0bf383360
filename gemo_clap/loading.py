"""Finding and loading a trained model, for every entry point (predict, evaluate, export-onnx, push, the app): a
model folder or Hub repo id checked before any Hub call, the zero-shot pipeline of a checkpoint, the ONNX runner of
an export."""

from __future__ import annotations

from pathlib import Path


def local_folder_or_repo_id(name: str | Path) -> str | Path:
    """`name` unchanged when it is an existing folder or could be a Hub repo id; otherwise `FileNotFoundError`
    saying the folder does not exist (rather than a failed Hub connection for a mistyped local path)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if Path(name).exists():
        if not Path(name).is_dir():
            raise NotADirectoryError(f"{name} is a file, not a model folder")
        return name
    text = str(name)
    try:
        validate_repo_id(text)
        looks_local = text.startswith((".", "/", "~"))
    except HFValidationError:
        looks_local = True
    if looks_local:
        raise FileNotFoundError(f"model folder {text} does not exist (and it is not a Hub repo id)")
    return name


def load_classifier(model: str | Path, trust_remote_code: bool = False):
    """The zero-shot pipeline of a model folder or repo id: the installed code, or with `trust_remote_code` the
    checkpoint's own."""
    from transformers import pipeline

    from .modeling import PIPELINE_TASK, GEmoClapModel, GEmoClapProcessor, GEmoClapZeroShotAudioClassificationPipeline

    model = str(local_folder_or_repo_id(model))
    if trust_remote_code:
        return pipeline(PIPELINE_TASK, model=model, trust_remote_code=True)
    processor = GEmoClapProcessor.from_pretrained(model)
    return GEmoClapZeroShotAudioClassificationPipeline(
        model=GEmoClapModel.from_pretrained(model),
        processor=processor,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )


def load_onnx_runner(folder: str | Path, trust_remote_code: bool = False):
    """The onnxruntime runner of an exported folder, called like the pipeline (no torch imported)."""
    from .onnx.runtime import GEmoClapOnnxRunner

    if trust_remote_code:
        raise ValueError("--trust-remote-code applies to --model only; an --onnx folder runs no checkpoint code")
    return GEmoClapOnnxRunner(folder)
