"""LoRA adapters (peft) on the text tower: low-rank updates of its attention projections train in place of its
weights, and are merged into them before any model folder is written, so a checkpoint is an ordinary GEmo-CLAP
folder that loads exactly as before, without peft."""

from __future__ import annotations

import copy

from ..modeling import GEmoClapModel


def add_text_lora(model: GEmoClapModel, rank: int) -> None:
    """Wrap `model.text_model` with LoRA adapters of `rank` (alpha 2 x rank) on the attention projections peft knows
    for its architecture (query and value for BERT and RoBERTa); its own weights are frozen."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError("text_lora_rank needs peft: pip install 'gemo-clap[lora]'") from error
    model.text_model = get_peft_model(model.text_model, LoraConfig(r=rank, lora_alpha=2 * rank))


def has_text_lora(model: GEmoClapModel) -> bool:
    return hasattr(model.text_model, "merge_and_unload")


def merge_text_lora(model: GEmoClapModel) -> None:
    """Merge the text tower's adapters into its weights, in place (the model is an ordinary one afterwards)."""
    if has_text_lora(model):
        model.text_model = model.text_model.merge_and_unload()


def mergeable(model: GEmoClapModel, state_dict: dict | None) -> tuple[GEmoClapModel, dict | None]:
    """What `save_pretrained` should write: `model` and `state_dict` (weights it held earlier) unchanged, or for a
    model with text adapters a merged copy holding `state_dict` (the model itself keeps training)."""
    if not has_text_lora(model):
        return model, state_dict
    merged = copy.deepcopy(model)
    if state_dict is not None:
        merged.load_state_dict(state_dict)
    merge_text_lora(merged)
    return merged, None
