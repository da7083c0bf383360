"""Checkpoints saved by earlier code (tests/fixtures/legacy_checkpoints, see its README) still load with the current
code and give the outputs that code computed: loss, logits, gender logits and audio embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import _clip
from gemo_clap.modeling import GEmoClapModel, GEmoClapProcessor
from transformers import AutoModel

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "legacy_checkpoints"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("kind", ["wavlm", "whisper"])
def test_legacy_checkpoint_gives_the_outputs_it_was_saved_with(kind):
    folder, expected = FIXTURES / kind, EXPECTED[kind]
    model = GEmoClapModel.from_pretrained(folder).eval()
    processor = GEmoClapProcessor.from_pretrained(folder)
    assert type(AutoModel.from_pretrained(folder)) is GEmoClapModel
    config = model.config
    assert (config.variant, config.target_normalisation, config.max_audio_seconds) == (expected["variant"], "row", 6)
    assert (config.sl_alpha, config.ml_alpha, config.audio_pooling, config.audio_layer_pooling) == (
        0.7,
        0.6,
        "mean",
        "last",  # saved as use_weighted_layer_sum=false
    )

    clips = [_clip(seconds, seed) for seconds, seed in EXPECTED["clips"]]
    inputs = processor(audio=clips, text=EXPECTED["prompts"], sampling_rate=16000)
    kwargs = dict(
        inputs,
        emotion_labels=torch.tensor(EXPECTED["emotion_labels"]),
        gender_labels=torch.tensor(EXPECTED["gender_labels"]),
    )
    if expected["variant"] == "ml":
        gender = processor(text=EXPECTED["gender_prompts"])
        kwargs.update(gender_input_ids=gender["input_ids"], gender_attention_mask=gender["attention_mask"])
    with torch.no_grad():
        output = model(**kwargs)
    assert output.loss.item() == pytest.approx(expected["loss"], rel=1e-5)
    torch.testing.assert_close(
        output.logits_per_audio, torch.tensor(expected["logits_per_audio"]), rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(output.audio_embeds, torch.tensor(expected["audio_embeds"]), rtol=1e-5, atol=1e-6)
    if "logits_per_audio_gender" in expected:
        torch.testing.assert_close(
            output.logits_per_audio_gender, torch.tensor(expected["logits_per_audio_gender"]), rtol=1e-5, atol=1e-5
        )
