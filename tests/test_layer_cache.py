"""Training the top of the audio tower over a cache of the hidden state below it (`freeze=layers`, `freeze_layers=k`):
the cached state and lower statistics equal running the lower layers, the cached batch gives the loss and gradients
of the uncached one, and a training run serves every epoch from the cache without running the frozen layers."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from datasets import load_from_disk
from gemo_clap.modeling import GEmoClapLoss, GEmoClapModel
from gemo_clap.modeling.modeling_gemo_clap import frame_statistics
from gemo_clap.processing.audio import SAMPLING_RATE, decode_example_audio
from gemo_clap.train.audio_cache import AudioFeatureCache
from gemo_clap.train.collator import GEmoClapCollator
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.global_loss import contrastive_loss
from gemo_clap.train.loop import train
from gemo_clap.train.towers import build_model_and_processor
from gemo_clap.train.training_model import GEmoClapTrainingModel
from helpers import EMOTIONS, tiny_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FROZEN = 1  # the tiny Whisper tower has 2 layers: layer 0 frozen and cached, layer 1 trains


@pytest.fixture(scope="module")
def model_and_processor(tiny_encoders):
    model, processor = build_model_and_processor(
        *tiny_encoders("whisper"), projection_dim=16, audio_layer_pooling="concatenate", audio_pooling="statistics"
    )
    model.freeze_audio_layers(FROZEN)
    return model.eval(), processor


def filled_cache(model, processor, dataset, tmp_path) -> AudioFeatureCache:
    cache = AudioFeatureCache(model.audio_model, tmp_path, layer_input=FROZEN)
    cache.fill(model, processor, [dataset], Accelerator(cpu=True), batch_size=3)
    return cache


def test_cached_layer_input_equals_running_the_lower_layers(model_and_processor, dataset_dir, tmp_path):
    model, processor = model_and_processor
    dataset = load_from_disk(str(dataset_dir)).select(range(6))
    cache = filled_cache(model, processor, dataset, tmp_path)
    reopened = AudioFeatureCache(model.audio_model, tmp_path, layer_input=FROZEN)  # read back through the memory map
    for example in dataset:
        inputs = processor(audio=decode_example_audio(example["audio"]), sampling_rate=SAMPLING_RATE)
        with torch.no_grad():
            states, mask = model.audio_tower.hidden_states(
                model.audio_model, inputs["input_features"], inputs["audio_attention_mask"], 14, all_layers=True
            )
        row = reopened.cached_split(dataset.select([dataset["id"].index(example["id"])]))[0]
        assert row["audio_layer_input"].shape == (int(mask.sum()), model.config.audio_config.hidden_size)
        # float16 on disk: within its rounding of the state, the lower statistics exact
        torch.testing.assert_close(row["audio_layer_input"], states[FROZEN][0], rtol=1e-3, atol=1e-3)
        expected_lower = frame_statistics(torch.stack(states[:FROZEN], dim=1), mask)[0]
        torch.testing.assert_close(row["audio_lower_statistics"], expected_lower)
    assert cache.path.name.endswith(f"-layer{FROZEN}.safetensors")


def test_cached_top_layers_give_the_uncached_loss_and_gradients(model_and_processor, dataset_dir, tmp_path):
    model, processor = model_and_processor
    dataset = load_from_disk(str(dataset_dir)).select(range(8))
    cache = filled_cache(model, processor, dataset, tmp_path)
    collator = GEmoClapCollator(processor, EMOTIONS, with_gender_prompts=False)
    uncached = collator(list(dataset))
    cached = collator(list(cache.cached_split(dataset)))
    assert set(cached) >= {"audio_layer_input", "audio_frame_mask", "audio_lower_statistics"}
    assert "input_features" not in cached and torch.equal(cached["emotion_labels"], uncached["emotion_labels"])

    results = []
    criterion = GEmoClapLoss.from_config(model.config)
    for batch in (uncached, cached):
        model.zero_grad()
        loss = contrastive_loss(criterion, GEmoClapTrainingModel(model)(batch), batch)
        loss.backward()
        gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((loss.item(), gradients))
    model.zero_grad()
    (loss, gradients), (cached_loss, cached_gradients) = results
    assert cached_loss == pytest.approx(loss, rel=1e-3)  # the cached state is float16
    trained_layer = f"audio_model.layers.{FROZEN}."
    assert any(name.startswith(trained_layer) for name in cached_gradients)
    assert not any(name.startswith("audio_model.layers.0.") or "conv" in name for name in cached_gradients)
    assert set(cached_gradients) == set(gradients)
    for name, gradient in gradients.items():
        torch.testing.assert_close(cached_gradients[name], gradient, rtol=0.05, atol=1e-3, msg=name)


def test_training_the_top_layer_never_runs_the_frozen_one(tiny_encoders, dataset_dir, tmp_path, monkeypatch):
    calls = {"frozen layer": 0}
    original = build_model_and_processor

    def counting_build(*args, **kwargs):
        model, processor = original(*args, **kwargs)
        model.audio_model.layers[0].register_forward_hook(
            lambda *_: calls.update({"frozen layer": calls["frozen layer"] + 1})
        )
        return model, processor

    from gemo_clap.train import loop

    monkeypatch.setattr(loop, "build_model_and_processor", counting_build)
    changes = dict(freeze="layers", freeze_layers=FROZEN, audio_layer_pooling="weighted_sum", num_epochs=2)
    config = TrainingConfig.load(None, tiny_overrides(tiny_encoders("whisper"), dataset_dir, tmp_path, **changes))
    test_scores = loop._test_scores
    monkeypatch.setattr(
        loop, "_test_scores", lambda run: calls.update(training=calls["frozen layer"]) or test_scores(run)
    )
    train(config)
    # the cache ran the frozen layer once per clip in batches of eval_batch_size (8): 12 training and 4 validation
    # clips -> 2 batches; no epoch and no validation ran it again (the test fold is scored through the pipeline)
    assert calls["training"] == 2
    files = list((tmp_path / "audio_cache").glob(f"audio-*-layer{FROZEN}-speech.safetensors"))
    assert len(files) == 1
    saved = GEmoClapModel.from_pretrained(tmp_path / "model")
    initial, _ = original(*tiny_encoders("whisper"), audio_layer_pooling="weighted_sum")
    assert torch.equal(saved.audio_model.layers[0].fc1.weight, initial.audio_model.layers[0].fc1.weight)
    assert not torch.equal(saved.audio_model.layers[1].fc1.weight, initial.audio_model.layers[1].fc1.weight)


def test_an_unsupported_tower_runs_every_batch(tiny_encoders, dataset_dir, tmp_path):
    """WavLM's layers take a position bias from the first one: it is not served from a layer cache (no error)."""
    changes = dict(freeze="layers", freeze_layers=1, num_epochs=1)
    config = TrainingConfig.load(None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path, **changes))
    train(config)
    assert not (tmp_path / "audio_cache").exists()
    assert (tmp_path / "model" / "model.safetensors").is_file()
