"""`audio_standardisation`: the per-element mean and std of the pooled statistics, measured on the training split
alone (from the frozen-tower cache, or one pass of the tower when there is none), equal a numpy computation, are
used by the pooling, and travel with the checkpoint (safetensors, remote code)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gemo_clap.modeling import GEmoClapModel, GEmoClapProcessor
from gemo_clap.processing.audio import SAMPLING_RATE, decode_example_audio
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.data import fold_splits, load_built_dataset
from gemo_clap.train.loop import train
from gemo_clap.train.standardisation import RunningMoments
from helpers import tiny_overrides
from transformers import AutoModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def numpy_statistics(model: GEmoClapModel, processor: GEmoClapProcessor, split) -> np.ndarray:
    """`[utterances, states, 2, hidden]`: mean and population std over frames of every hidden state of each clip
    alone, from the tower's own hidden states, in numpy."""
    rows = []
    with torch.no_grad():
        for example in split:
            audio = decode_example_audio(example["audio"], speech_only=True)  # as training pools it
            inputs = processor(audio=audio, sampling_rate=SAMPLING_RATE)
            states, _ = model.audio_tower.hidden_states(
                model.audio_model, inputs["input_features"], inputs["audio_attention_mask"], 14, all_layers=True
            )
            hidden = torch.stack(states)[:, 0].double().numpy()  # [states, frames, hidden]
            rows.append(np.stack([hidden.mean(axis=1), hidden.std(axis=1)], axis=1))
    return np.stack(rows)


@pytest.mark.parametrize("cached", [True, False], ids=["cache", "tower-pass"])
def test_standardisation_is_the_training_splits_moments_and_travels_with_the_checkpoint(
    tiny_encoders, dataset_dir, tmp_path, cached
):
    changes = dict(
        freeze="audio",
        cache_audio_features=cached,
        audio_standardisation=True,
        audio_layer_pooling="concatenate",
        audio_pooling="statistics",
    )
    config = TrainingConfig.load(None, tiny_overrides(tiny_encoders("whisper"), dataset_dir, tmp_path, **changes))
    train(config)
    model = GEmoClapModel.from_pretrained(tmp_path / "model").eval()
    processor = GEmoClapProcessor.from_pretrained(tmp_path / "model")
    splits = fold_splits(load_built_dataset(dataset_dir), 1, config.validation_fraction, config.seed)
    statistics = numpy_statistics(model, processor, splits.train)  # the frozen tower is the pretrained one
    assert len(statistics) == 12  # the training split only: not its 4 validation clips, not the test fold
    mean, std = statistics.mean(axis=0), statistics.std(axis=0)
    np.testing.assert_allclose(model.audio_statistics_mean.double().numpy(), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.audio_statistics_std.double().numpy(), np.maximum(std, 1e-4), rtol=1e-4, atol=1e-5)

    # the pooling divides by them: the pooled vector of a training clip is its standardised statistics
    example = splits.train[0]
    inputs = processor(audio=decode_example_audio(example["audio"], speech_only=True), sampling_rate=SAMPLING_RATE)
    with torch.no_grad():
        pooled = model.get_audio_pooled_output(**inputs)[0].double().numpy()
    expected = ((statistics[0] - mean) / np.maximum(std, 1e-4)).reshape(-1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-3, atol=1e-3)

    # in a process without gemo_clap the folder's own code loads them: tests/test_hub_roundtrip.py
    auto = AutoModel.from_pretrained(tmp_path / "model", trust_remote_code=True).eval()
    assert torch.equal(auto.audio_statistics_std, model.audio_statistics_std)


def test_running_moments_equal_numpy_over_batches_of_any_size():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(37, 3, 2, 5)) * rng.uniform(0.1, 10, size=(1, 3, 2, 5))
    moments = RunningMoments()
    for start, stop in ((0, 5), (5, 6), (6, 37)):
        moments.update(torch.tensor(data[start:stop], dtype=torch.float32))
    mean, std = moments.mean_std()
    np.testing.assert_allclose(mean.numpy(), data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std.numpy(), data.std(axis=0), rtol=1e-4)


def test_a_model_without_standardisation_refuses_statistics(tiny_encoders):
    from gemo_clap.train.towers import build_model_and_processor

    model, _ = build_model_and_processor(*tiny_encoders("whisper"))
    assert model.audio_statistics_mean is None and "audio_statistics_mean" not in model.state_dict()
    with pytest.raises(ValueError, match="without audio_standardisation"):
        model.set_audio_standardisation(torch.zeros(1, 2, 32), torch.ones(1, 2, 32))
    standardised, _ = build_model_and_processor(*tiny_encoders("whisper"), audio_standardisation=True)
    hidden = standardised.config.audio_config.hidden_size
    with pytest.raises(ValueError, match=r"shape \(1, 2, " + str(hidden)):
        standardised.set_audio_standardisation(torch.zeros(3, 2, hidden), torch.ones(3, 2, hidden))
