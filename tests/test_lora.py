"""`text_lora_rank` / `audio_lora_rank`: peft LoRA adapters train on a tower's attention instead of its weights; every
saved folder holds them merged, loads through its own remote code without peft (or gemo_clap) and gives the logits the
model had in memory; a run changes only the adapted projections of that tower."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.loop import _save_model, train
from gemo_clap.train.lora import add_lora, has_lora
from gemo_clap.train.towers import build_model_and_processor
from helpers import OFFLINE, REMOTE_CODE_LOGITS, tiny_overrides
from safetensors.torch import load_file

pytest.importorskip("peft", reason="text_lora_rank needs peft (pip install 'gemo-clap[lora]')")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(("tower", "kind"), [("text_model", "wavlm"), ("audio_model", "whisper")])
def test_a_lora_model_is_saved_merged_and_loads_without_peft_with_its_logits(
    tiny_encoders, tmp_path, make_clip, tower, kind
):
    model, processor = build_model_and_processor(*tiny_encoders(kind), projection_dim=16)
    add_lora(model, tower, 4)
    adapters = {name: p for name, p in model.named_parameters() if "lora_" in name}
    assert adapters and all(p.requires_grad for p in adapters.values())
    assert not any(p.requires_grad for name, p in getattr(model, tower).named_parameters() if "lora_" not in name)
    torch.manual_seed(0)
    with torch.no_grad():  # trained adapters: B is zero at initialisation, which would hide a missing merge
        for name, parameter in adapters.items():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    inputs = processor(audio=[make_clip(1.0, seed=1), make_clip(2.0, seed=2)], text=["The emotion is sad."] * 3)
    inputs["input_ids"][1, 3] = 7
    model.eval()
    with torch.no_grad():
        logits = model(**inputs).logits_per_audio

    _save_model(model, processor, tmp_path / "model")
    assert has_lora(model)  # the model in training keeps its adapters; the folder holds them merged
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert not any("lora" in name or "base_layer" in name for name in saved)
    np.savez(tmp_path / "inputs.npz", **{key: value.numpy() for key, value in inputs.items()})
    subprocess.run([sys.executable, "-c", REMOTE_CODE_LOGITS, str(tmp_path)], check=True, env=os.environ | OFFLINE)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "logits.npy")), logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("changes", "tower", "adapted"),
    [
        (dict(freeze="audio", text_lora_rank=4), "text_model.", ("query.weight", "value.weight")),
        (dict(freeze="none", audio_lora_rank=4, freeze_text=True), "audio_model.", ("q_proj.weight", "v_proj.weight")),
    ],
    ids=["text", "audio"],
)
def test_a_lora_run_changes_only_the_adapted_weights(tiny_encoders, dataset_dir, tmp_path, changes, tower, adapted):
    changes = dict(changes, validation_fraction=0, num_epochs=2)
    result = train(
        TrainingConfig.load(None, tiny_overrides(tiny_encoders("whisper"), dataset_dir, tmp_path, **changes))
    )
    initial, _ = build_model_and_processor(*tiny_encoders("whisper"))
    before = {name: tensor for name, tensor in initial.state_dict().items() if name.startswith(tower)}
    after = load_file(result.model_dir / "model.safetensors")
    assert set(before) <= set(after) and not any("lora" in name for name in after)
    changed = {name for name, tensor in before.items() if not torch.equal(after[name], tensor)}
    assert changed and all(name.endswith(adapted) for name in changed)


def test_lora_and_a_frozen_tower_exclude_each_other():
    with pytest.raises(ValueError, match="text_lora_rank trains adapters on the text tower: it needs freeze_text"):
        TrainingConfig.from_dict({"text_lora_rank": 8, "freeze_text": True})
    with pytest.raises(ValueError, match="audio_lora_rank adapts every layer of the audio tower: it needs freeze=none"):
        TrainingConfig.from_dict({"audio_lora_rank": 8, "freeze": "layers", "freeze_layers": 1})
