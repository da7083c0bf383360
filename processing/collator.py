"""Batches built datasets for GEmo-CLAP: audio features (decoded audio through the processor, or a frozen tower's
cached statistics), emotion/gender label tensors, and the label prompts: each distinct prompt of a batch once,
with `prompt_index` giving each utterance's row, so the text tower runs once per distinct prompt."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..modeling import GEmoClapProcessor
from ..modeling.labels_gemo_clap import DEFAULT_GENDER_LABELS, DEFAULT_GENDER_PROMPT_TEMPLATE, DEFAULT_PROMPT_TEMPLATE
from .audio import SAMPLING_RATE, decode_example_audio


class LabelPrompts:
    """The prompts of a label set (`template.format(name)`), tokenised once; a batch takes the rows it needs."""

    def __init__(self, processor: GEmoClapProcessor, names: Sequence[str], template: str):
        tokens = processor(text=[template.format(name) for name in names])
        self.input_ids, self.attention_mask = tokens["input_ids"], tokens["attention_mask"]

    def select(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) of the batch's distinct labels, and each item's row among them."""
        distinct, index = torch.unique(labels, return_inverse=True)
        mask = self.attention_mask[distinct]
        used = mask.any(dim=0)  # drop the padding columns no selected prompt needs
        return self.input_ids[distinct][:, used], mask[:, used], index


@dataclass
class GEmoClapCollator:
    """Turns dataset rows (`id`, `audio` or `audio_layer_statistics`, `emotion`, `gender`) into
    `GEmoClapModel.forward` inputs.

    Args:
        processor: the model's processor.
        emotion_names / gender_names: class names in label-index order (the dataset's `ClassLabel` names).
        prompt_template / gender_prompt_template: prompts with one `{}` for the label name.
        with_gender_prompts: also give the gender prompts (variants that train them, ML-GEmo-CLAP).
        speech_only: decode each clip from its first speech to its last (`decode_example_audio`).
    """

    processor: GEmoClapProcessor
    emotion_names: Sequence[str]
    gender_names: Sequence[str] = DEFAULT_GENDER_LABELS
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    gender_prompt_template: str = DEFAULT_GENDER_PROMPT_TEMPLATE
    with_gender_prompts: bool = False
    speech_only: bool = False
    emotion_prompts: LabelPrompts = field(init=False, repr=False)
    gender_prompts: LabelPrompts = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.emotion_prompts = LabelPrompts(self.processor, self.emotion_names, self.prompt_template)
        self.gender_prompts = LabelPrompts(self.processor, self.gender_names, self.gender_prompt_template)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if "audio_layer_statistics" in examples[0]:
            batch = {"audio_layer_statistics": torch.stack([example["audio_layer_statistics"] for example in examples])}
        elif "audio_layer_input" in examples[0]:  # a cached hidden state: padded to the longest, with its frame mask
            states = [example["audio_layer_input"] for example in examples]
            batch = {
                "audio_layer_input": torch.nn.utils.rnn.pad_sequence(states, batch_first=True),
                "audio_frame_mask": torch.nn.utils.rnn.pad_sequence(
                    [torch.ones(len(state), dtype=torch.long) for state in states], batch_first=True
                ),
                "audio_lower_statistics": torch.stack([example["audio_lower_statistics"] for example in examples]),
            }
        else:
            audio = [decode_example_audio(example["audio"], speech_only=self.speech_only) for example in examples]
            batch = dict(self.processor(audio=audio, sampling_rate=SAMPLING_RATE))
        batch["emotion_labels"] = torch.tensor([example["emotion"] for example in examples], dtype=torch.long)
        batch["input_ids"], batch["attention_mask"], batch["prompt_index"] = self.emotion_prompts.select(
            batch["emotion_labels"]
        )
        if "gender" in examples[0]:
            batch["gender_labels"] = torch.tensor([example["gender"] for example in examples], dtype=torch.long)
            if self.with_gender_prompts:
                prompts = self.gender_prompts.select(batch["gender_labels"])
                batch["gender_input_ids"], batch["gender_attention_mask"], batch["gender_prompt_index"] = prompts
        return batch


def example_key(example: dict[str, Any]) -> str:
    """An utterance's cache key: its id and a hash of its audio bytes."""
    audio_bytes = example["audio"].get("bytes") or str(example["audio"].get("path")).encode()
    return f"{example['id']}:{hashlib.sha1(audio_bytes).hexdigest()[:12]}"
