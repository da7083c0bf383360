"""`freeze_text`: the text tower's prompt states are computed once per run, no training step runs the text tower, the
loss equals the one computed through the (frozen, eval-mode) tower, and only the text projection trains on the
text side."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from gemo_clap.modeling import GEmoClapLoss, GEmoClapModel
from gemo_clap.train.collator import GEmoClapCollator
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.global_loss import contrastive_loss
from gemo_clap.train.loop import train
from gemo_clap.train.towers import build_model_and_processor
from gemo_clap.train.training_model import FrozenPrompts, GEmoClapTrainingModel
from helpers import EMOTIONS, OFFLINE, REMOTE_CODE_LOGITS, tiny_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("variant", ["sl", "ml"])
def test_frozen_prompt_states_give_the_towers_loss_and_gradients(tiny_encoders, dataset_dir, variant):
    model, processor = build_model_and_processor(*tiny_encoders("wavlm"), projection_dim=16, variant=variant)
    model.text_model.requires_grad_(False)
    model.eval()  # no dropout anywhere: the two passes must see the same network
    collator = GEmoClapCollator(processor, EMOTIONS, with_gender_prompts=variant == "ml")
    batch = collator(list(load_from_disk(str(dataset_dir)).select(range(8))))
    prompts = FrozenPrompts(model, collator)
    assert prompts.emotion.shape == (4, model.config.text_config.hidden_size) and prompts.gender.shape[0] == 2

    results = []
    criterion = GEmoClapLoss.from_config(model.config)
    for training_model in (GEmoClapTrainingModel(model), GEmoClapTrainingModel(model, prompts)):
        model.zero_grad()
        loss = contrastive_loss(criterion, training_model(batch), batch)
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    model.zero_grad()
    (loss, gradients), (frozen_loss, frozen_gradients) = results
    assert frozen_loss == pytest.approx(loss, rel=1e-6)
    assert set(frozen_gradients) == set(gradients) and not any(name.startswith("text_model.") for name in gradients)
    for name, gradient in gradients.items():
        torch.testing.assert_close(frozen_gradients[name], gradient, msg=name)


def test_training_with_a_frozen_text_tower_never_runs_it_per_step(tiny_encoders, dataset_dir, tmp_path, monkeypatch):
    calls = []
    original = build_model_and_processor

    def counting_build(*args, **kwargs):
        model, processor = original(*args, **kwargs)
        model.text_model.register_forward_hook(lambda module, args, output: calls.append(module.training))
        return model, processor

    from gemo_clap.train import loop

    monkeypatch.setattr(loop, "build_model_and_processor", counting_build)
    changes = dict(freeze="audio", freeze_text=True, variant="ml", num_epochs=2)
    config = TrainingConfig.load(None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path, **changes))
    train(config)
    # 2 passes for the frozen prompt states (emotion, gender); then only evaluations (2 validations + the test, each
    # embedding the emotion and gender prompts once): 2 + 3 x 2, all in eval mode; 6 training steps ran none
    assert len(calls) == 8 and not any(calls)
    saved = GEmoClapModel.from_pretrained(tmp_path / "model")
    initial, _ = original(*tiny_encoders("wavlm"))
    text_weights = {n: t for n, t in initial.state_dict().items() if n.startswith("text_model.")}
    assert all(torch.equal(saved.state_dict()[name], tensor) for name, tensor in text_weights.items())
    assert not torch.equal(saved.text_projection.layers[0].weight, initial.text_projection.layers[0].weight)


def test_a_frozen_text_run_saves_a_checkpoint_that_remote_code_loads_with_the_same_logits(
    tiny_encoders, dataset_dir, tmp_path, make_clip, monkeypatch
):
    """The CPU configs' head (standardised per-layer means, linear projection) trained with the text tower frozen:
    the saved folder loads through its own remote code (no gemo_clap classes, no peft) with the logits the model
    had in memory when it was saved."""
    _, processor = build_model_and_processor(*tiny_encoders("whisper"))
    inputs = processor(
        audio=[make_clip(1.0, seed=1), make_clip(2.5, seed=2)], text=["The emotion is sad."] * 3, sampling_rate=16000
    )
    inputs["input_ids"][1, 3] = 7  # three different prompts
    recorded = []
    original_save = GEmoClapModel.save_pretrained

    def save_and_record(self, *args, **kwargs):
        training, _ = self.training, self.eval()
        with torch.no_grad():
            recorded.append(self(**inputs).logits_per_audio.clone())
        self.train(training)
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(GEmoClapModel, "save_pretrained", save_and_record)
    head = {
        "model.audio_layer_pooling": "concatenate",
        "model.audio_standardisation": "true",
        "model.projection_layers": 1,
        "model.projection_dropout": 0.2,
    }
    changes = dict(freeze="audio", freeze_text=True, validation_fraction=0, num_epochs=2, **head)
    train(TrainingConfig.load(None, tiny_overrides(tiny_encoders("whisper"), dataset_dir, tmp_path, **changes)))

    np.savez(tmp_path / "inputs.npz", **{key: value.numpy() for key, value in inputs.items()})
    subprocess.run([sys.executable, "-c", REMOTE_CODE_LOGITS, str(tmp_path)], check=True, env=os.environ | OFFLINE)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "logits.npy")), recorded[-1], rtol=0, atol=1e-5)
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["audio_standardisation"] and saved["auto_map"]["AutoModel"].startswith("modeling_gemo_clap.")
