"""Batches built datasets for GEmo-CLAP: decoded audio through the processor, one prompt per utterance,
emotion/gender label tensors and each example's cache key (id + audio hash, for the frozen-tower cache)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..modeling import GEmoClapProcessor
from ..modeling.configuration_gemo_clap import DEFAULT_GENDER_LABELS
from .audio import SAMPLING_RATE, decode_example_audio


@dataclass
class GEmoClapCollator:
    """Turns dataset rows (`id`, `audio`, `emotion`, `gender`) into `GEmoClapModel.forward` inputs.

    Args:
        processor: the model's processor.
        emotion_names / gender_names: class names in label-index order (the dataset's `ClassLabel` names).
        prompt_template / gender_prompt_template: prompts with one `{}` for the label name.
        with_gender_prompts: also tokenise one gender prompt per utterance (ML-GEmo-CLAP).
    """

    processor: GEmoClapProcessor
    emotion_names: Sequence[str]
    gender_names: Sequence[str] = DEFAULT_GENDER_LABELS
    prompt_template: str = "The emotion is {}."
    gender_prompt_template: str = "The speaker is {}."
    with_gender_prompts: bool = False

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        audio = [decode_example_audio(example["audio"]) for example in examples]
        emotions = [example["emotion"] for example in examples]
        batch = dict(
            self.processor(
                audio=audio,
                text=[self.prompt_template.format(self.emotion_names[label]) for label in emotions],
                sampling_rate=SAMPLING_RATE,
            )
        )
        batch["emotion_labels"] = torch.tensor(emotions, dtype=torch.long)
        if "gender" in examples[0]:
            genders = [example["gender"] for example in examples]
            batch["gender_labels"] = torch.tensor(genders, dtype=torch.long)
            if self.with_gender_prompts:
                prompts = [self.gender_prompt_template.format(self.gender_names[label]) for label in genders]
                tokens = self.processor(text=prompts)
                batch["gender_input_ids"], batch["gender_attention_mask"] = (
                    tokens["input_ids"],
                    tokens["attention_mask"],
                )
        batch["cache_keys"] = [example_key(example) for example in examples]
        return batch


def example_key(example: dict[str, Any]) -> str:
    """An utterance's cache key: its id and a hash of its audio bytes."""
    audio_bytes = example["audio"].get("bytes") or str(example["audio"].get("path")).encode()
    return f"{example['id']}:{hashlib.sha1(audio_bytes).hexdigest()[:12]}"
