"""Audio pooling options (`audio_pooling` mean / statistics x `audio_layer_pooling` last / weighted_sum /
concatenate): the pooled vector against a numpy computation from the tower's own hidden states, padding invariance and
batched == one at a time for every option, the frozen-tower cache reproducing the tower path, and the options
surviving save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gemo_clap.modeling import GEmoClapModel
from gemo_clap.train.towers import build_model_and_processor
from gemo_clap.train.training_model import audio_features

LAYER_POOLINGS = ("last", "weighted_sum", "concatenate")
OPTIONS = [(pooling, layers) for layers in LAYER_POOLINGS for pooling in ("mean", "statistics")]
IDS = [f"{layers}-{pooling}" for pooling, layers in OPTIONS]


@pytest.fixture(scope="module")
def built(tiny_encoders):
    """`built(kind, pooling, layers)` -> (model in eval mode, processor) with non-uniform layer weights."""
    cache = {}

    def get(kind: str, pooling: str, layers: str):
        if (kind, pooling, layers) not in cache:
            model, processor = build_model_and_processor(
                *tiny_encoders(kind), projection_dim=16, audio_pooling=pooling, audio_layer_pooling=layers
            )
            if layers == "weighted_sum":
                with torch.no_grad():
                    model.audio_layer_weights.copy_(torch.linspace(-1.0, 1.5, model.audio_layer_weights.numel()))
            cache[(kind, pooling, layers)] = (model.eval(), processor)
        return cache[(kind, pooling, layers)]

    return get


@pytest.fixture(scope="module")
def clips(make_clip):
    return [make_clip(seconds, seed=seed) for seed, seconds in enumerate([0.7, 2.2, 1.3])]


def hidden_states_alone(model, processor, clip) -> np.ndarray:
    """`[states, frames, hidden]` of one unpadded clip: the tower's own outputs (WavLM: `hidden_states` for the
    weighted sum, as transformers' `use_weighted_layer_sum` heads take them, else `last_hidden_state`), or the
    short-input Whisper path's."""
    inputs = processor(audio=clip, sampling_rate=16000)
    weighted = model.config.pools_all_layers
    with torch.no_grad():
        if model.config.audio_config.model_type == "whisper":
            states, _ = model.audio_tower.hidden_states(
                model.audio_model, inputs["input_features"], inputs["audio_attention_mask"], 14, all_layers=True
            )
        else:
            outputs = model.audio_model(input_values=inputs["input_values"], output_hidden_states=True)
            states = outputs.hidden_states if weighted else (outputs.last_hidden_state,)
    return torch.stack(states)[:, 0].double().numpy()


def expected_pooled(model, states: np.ndarray) -> np.ndarray:
    """The pooling written out in numpy: per-state mean and population std over frames, then the softmax-weighted
    sum over states (or the last state) of the mean or [mean, std], or every state's, concatenated."""
    mean, std = states.mean(axis=1), states.std(axis=1)
    per_state = mean if model.config.audio_pooling == "mean" else np.concatenate([mean, std], axis=1)
    if model.config.audio_layer_pooling == "weighted_sum":
        logits = model.audio_layer_weights.detach().double().numpy()
        weights = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        return weights @ per_state
    if model.config.audio_layer_pooling == "concatenate":
        return per_state.reshape(-1)
    return per_state[-1]


@pytest.mark.parametrize("kind", ["wavlm", "whisper"])
@pytest.mark.parametrize(("pooling", "layers"), OPTIONS, ids=IDS)
def test_pooled_batch_equals_numpy_pooling_of_each_clip_alone(built, clips, kind, pooling, layers):
    model, processor = built(kind, pooling, layers)
    with torch.no_grad():
        batched = model.get_audio_pooled_output(**processor(audio=clips, sampling_rate=16000)).double().numpy()
    hidden = model.config.audio_config.hidden_size
    states = model.audio_tower.num_hidden_states(model.config.audio_config) if layers == "concatenate" else 1
    assert batched.shape == (3, hidden * (2 if pooling == "statistics" else 1) * states)
    for row, clip in enumerate(clips):
        expected = expected_pooled(model, hidden_states_alone(model, processor, clip))
        np.testing.assert_allclose(batched[row], expected, rtol=1e-4, atol=1e-5)
    assert np.abs(batched[0] - batched[1]).max() > 1e-3


@pytest.mark.parametrize("kind", ["wavlm", "whisper"])
@pytest.mark.parametrize(("pooling", "layers"), OPTIONS, ids=IDS)
def test_embeddings_batched_equal_one_at_a_time(built, clips, kind, pooling, layers):
    model, processor = built(kind, pooling, layers)
    with torch.no_grad():
        batched = model.get_audio_features(**processor(audio=clips, sampling_rate=16000))
        alone = torch.cat([model.get_audio_features(**processor(audio=clip, sampling_rate=16000)) for clip in clips])
    assert (batched - alone).abs().max().item() < 1e-5


@pytest.mark.parametrize(("pooling", "layers"), OPTIONS, ids=IDS)
def test_cached_statistics_give_the_tower_paths_embeddings(built, clips, pooling, layers):
    """What the frozen-tower cache stores (`get_audio_layer_statistics`, every layer when the pooling reads them)
    reproduces the tower path, so cache-served epochs train the very same function, layer weights included."""
    model, processor = built("whisper", pooling, layers)
    inputs = processor(audio=clips, sampling_rate=16000)
    with torch.no_grad():
        statistics = model.get_audio_layer_statistics(**inputs)
        direct = model.get_audio_features(**inputs)
        cached = audio_features(model, {"audio_layer_statistics": statistics})
    states = model.config.audio_config.encoder_layers + 1 if layers != "last" else 1
    assert statistics.shape == (3, states, 2, model.config.audio_config.hidden_size)
    assert torch.equal(direct, cached)


def test_layer_weights_learn_from_cached_statistics(built, clips):
    model, processor = built("wavlm", "statistics", "weighted_sum")
    statistics = model.get_audio_layer_statistics(**processor(audio=clips, sampling_rate=16000)).detach()
    model.zero_grad()
    audio_features(model, {"audio_layer_statistics": statistics}).sum().backward()
    assert model.audio_layer_weights.grad is not None and model.audio_layer_weights.grad.abs().sum() > 0
    model.zero_grad()


@pytest.mark.parametrize("layers", LAYER_POOLINGS)
def test_silence_gives_finite_statistics_and_gradients(built, layers):
    model, processor = built("wavlm", "statistics", layers)
    inputs = processor(audio=np.zeros(16000, dtype=np.float32), sampling_rate=16000)
    features = model.get_audio_features(**inputs)
    features.sum().backward()
    assert torch.isfinite(features).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad()


@pytest.mark.parametrize("kind", ["wavlm", "whisper"])
def test_pooling_options_survive_save_and_load(built, clips, kind, tmp_path):
    model, processor = built(kind, "statistics", "weighted_sum")
    model.save_pretrained(tmp_path)
    reloaded = GEmoClapModel.from_pretrained(tmp_path).eval()
    assert (reloaded.config.audio_pooling, reloaded.config.audio_layer_pooling) == ("statistics", "weighted_sum")
    assert torch.equal(reloaded.audio_layer_weights, model.audio_layer_weights)
    with torch.no_grad():
        inputs = processor(audio=clips, sampling_rate=16000)
        assert torch.equal(reloaded.get_audio_features(**inputs), model.get_audio_features(**inputs))


@pytest.mark.parametrize("layers", ["weighted_sum", "concatenate"])
def test_pooling_every_layer_needs_every_layers_statistics(built, clips, layers):
    model, processor = built("wavlm", "mean", layers)
    last_only = torch.zeros(2, 1, 2, model.config.audio_config.hidden_size)
    with pytest.raises(ValueError, match=f"audio_layer_pooling='{layers}' needs all 3"):
        model.pool_audio_statistics(last_only)


def test_layer_weights_train_with_their_own_learning_rate(tiny_encoders, tmp_path):
    """A few hundred steps at the towers' learning rate barely move softmax layer weights started uniform:
    `layer_weights_learning_rate` gives them their own (without weight decay)."""
    from gemo_clap.train import loop
    from gemo_clap.train.config import TrainingConfig
    from helpers import build_tiny_dataset, tiny_overrides

    dataset = build_tiny_dataset(tmp_path / "data")
    moved = {}
    for rate in (0.0, 0.05):
        changes = dict(freeze="audio", num_epochs=2, learning_rate=1e-4, layer_weights_learning_rate=rate)
        overrides = tiny_overrides(tiny_encoders("wavlm"), dataset, tmp_path / f"run-{rate}", **changes)
        config = TrainingConfig.load(None, [*overrides, "model.audio_layer_pooling=weighted_sum"])
        model, _ = build_model_and_processor(*tiny_encoders("wavlm"), audio_layer_pooling="weighted_sum")
        groups = loop._parameter_groups(model, config)
        assert groups[1]["params"][0] is model.audio_layer_weights and groups[1]["weight_decay"] == 0.0
        assert groups[1]["lr"] == (rate or 1e-4)
        assert all(param is not model.audio_layer_weights for param in groups[0]["params"])
        loop.train(config)
        moved[rate] = GEmoClapModel.from_pretrained(tmp_path / f"run-{rate}" / "model").audio_layer_weights.abs().max()
    assert moved[0.0] < 1e-3 < 0.01 < moved[0.05]
