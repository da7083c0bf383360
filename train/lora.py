"""LoRA adapters (peft) on a tower: low-rank updates of its attention projections train in place of its weights, and
are merged into them before any model folder is written, so a checkpoint is an ordinary GEmo-CLAP folder that loads
exactly as before, without peft. The text tower (`text_lora_rank`) and an unfrozen audio tower (`audio_lora_rank`)."""

from __future__ import annotations

import copy

from ..modeling import GEmoClapModel

TOWERS = ("text_model", "audio_model")
# the audio towers' attention projections (WavLM, wav2vec2, HuBERT, data2vec-audio and Whisper name them alike);
# the text towers' come from peft's table for their architecture (query and value for BERT and RoBERTa)
AUDIO_TARGETS = ["q_proj", "v_proj"]


def add_lora(model: GEmoClapModel, tower: str, rank: int) -> None:
    """Wrap `model.<tower>` ("text_model" or "audio_model") with LoRA adapters of `rank` (alpha 2 x rank) on its
    attention projections; the tower's own weights are frozen."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError(
            "LoRA adapters (text_lora_rank, audio_lora_rank) need peft: pip install 'gemo-clap[lora]'"
        ) from error
    targets = AUDIO_TARGETS if tower == "audio_model" else None
    setattr(
        model,
        tower,
        get_peft_model(getattr(model, tower), LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets)),
    )


def has_lora(model: GEmoClapModel) -> bool:
    return any(hasattr(getattr(model, tower), "merge_and_unload") for tower in TOWERS)


def merge_lora(model: GEmoClapModel) -> None:
    """Merge every tower's adapters into its weights, in place (the model is an ordinary one afterwards)."""
    for tower in TOWERS:
        if hasattr(getattr(model, tower), "merge_and_unload"):
            setattr(model, tower, getattr(model, tower).merge_and_unload())


def mergeable(model: GEmoClapModel, state_dict: dict | None) -> tuple[GEmoClapModel, dict | None]:
    """What `save_pretrained` should write: `model` and `state_dict` (weights it held earlier) unchanged, or for a
    model with adapters a merged copy holding `state_dict` (the model itself keeps training)."""
    if not has_lora(model):
        return model, state_dict
    merged = copy.deepcopy(model)
    if state_dict is not None:
        merged.load_state_dict(state_dict)
    merge_lora(merged)
    return merged, None
