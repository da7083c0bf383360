"""Augmented views for a frozen, cached tower: each cached view is what `make_view` gives for its seed, noise views
hold the SNR drawn, each epoch draws clean or a view per clip, and bad settings are refused before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gemo_clap.train.audio_cache import CachedSplit
from gemo_clap.train.augmented_views import AugmentedViews, ViewSettings, make_view, view_seed
from helpers import build_tiny_dataset, tiny_overrides

from gemo_clap.cli import main


def test_a_view_is_deterministic_for_its_seed_and_differs_between_views(make_clip):
    clip = make_clip(1.0)
    settings = ViewSettings(conditions=("noise", "telephone", "reverb"), seed=3)
    first = make_view(clip, "a:1", 1, settings)
    assert np.array_equal(first, make_view(clip, "a:1", 1, settings))
    assert not np.array_equal(first, make_view(clip, "a:1", 2, settings))
    assert not np.array_equal(first, make_view(clip, "a:1", 1, ViewSettings(settings.conditions, seed=4)))
    assert view_seed(3, "a:1", 1) != view_seed(3, "b:1", 1)


@pytest.mark.parametrize("snr", [0.0, 7.5, 20.0])
def test_a_noise_view_is_at_the_snr_drawn(make_clip, snr):
    clip = make_clip(1.0) * 0.5
    for view in range(1, 4):
        noisy = make_view(clip, "a:1", view, ViewSettings(conditions=("noise",), snr_db=(snr, snr)))
        measured = 10 * np.log10(
            np.mean(clip.astype(np.float64) ** 2) / np.mean((noisy - clip).astype(np.float64) ** 2)
        )
        assert measured == pytest.approx(snr, abs=0.05)


def test_babble_views_use_the_pool_and_differ_from_white_noise(make_clip):
    clip, voices = make_clip(1.0), [make_clip(0.7, seed=seed) for seed in (1, 2)]
    settings = ViewSettings(conditions=("babble",), snr_db=(5.0, 5.0))
    with_pool, without = make_view(clip, "a:1", 1, settings, voices), make_view(clip, "a:1", 1, settings)
    assert not np.allclose(with_pool, without)
    spectrum = np.abs(np.fft.rfft(with_pool - clip))  # babble of 260 Hz / 300 Hz tones, not flat white noise
    assert spectrum[200:400].max() > 20 * np.median(spectrum)


def test_each_epoch_draws_clean_or_a_view_per_clip_seeded_by_the_epoch():
    clean = CachedSplit(torch.zeros(6, 1, 2, 3), [0, 1, 0, 1, 0, 1], None)
    views = torch.arange(1, 3, dtype=torch.float32).view(1, 2, 1, 1, 1).expand(6, 2, 1, 2, 3).clone()
    dataset = AugmentedViews(clean, views, seed=5)
    served = [[int(dataset[i]["audio_layer_statistics"][0, 0, 0]) for i in range(6)]]
    for epoch in (1, 1, 2):
        dataset.set_epoch(epoch)
        served.append([int(dataset[i]["audio_layer_statistics"][0, 0, 0]) for i in range(6)])
    assert served[1] == served[2] and served[1] != served[3]
    assert {value for row in served for value in row} == {0, 1, 2}  # clean (0) and both views


@pytest.mark.usefixtures("one_torch_thread")
def test_cached_views_are_the_towers_statistics_of_make_view_and_training_uses_them(tiny_encoders, tmp_path):
    from gemo_clap.processing.audio import decode_example_audio
    from gemo_clap.train.augmented_views import babble_pools, view_keys
    from gemo_clap.train.config import TrainingConfig
    from gemo_clap.train.data import fold_splits, load_built_dataset
    from gemo_clap.train.loop import train
    from gemo_clap.train.towers import build_model_and_processor
    from safetensors.torch import load_file

    dataset_dir = build_tiny_dataset(tmp_path / "data")
    changes = {"freeze": "audio", "audio_layer_pooling": "concatenate", "speech_trim": False}
    towers = tiny_encoders("whisper")
    histories = {}
    for name, extra in (("plain", {}), ("views", {"augment_views": 2, "augment_seed": 7})):
        overrides = tiny_overrides(towers, dataset_dir, tmp_path / name, **changes, **extra)
        overrides.append(f"audio_cache_dir={tmp_path / 'cache'}")
        histories[name] = [record["train_loss"] for record in train(TrainingConfig.load(None, overrides)).history]
    assert histories["plain"] != histories["views"]

    config = TrainingConfig.load(None, overrides)
    splits = fold_splits(load_built_dataset(dataset_dir), 1, config.validation_fraction, config.seed)
    (cache_file,) = (tmp_path / "cache").glob("*.safetensors")
    entries = load_file(str(cache_file))
    settings = ViewSettings.of(config)
    keys = view_keys(splits.train, 2, settings)
    assert len([name for name in entries if "#view" in name]) == 2 * len(splits.train)
    model, processor = build_model_and_processor(str(towers[0]), str(towers[1]), audio_layer_pooling="concatenate")
    model.eval()
    pools = babble_pools(splits.train)
    for index in (0, 5):
        clip = decode_example_audio(splits.train[index]["audio"])
        pool = [decode_example_audio(splits.train[other]["audio"]) for other in pools[index]]
        clip_key = keys[index][0].split("#")[0]
        view = make_view(clip, clip_key, 2, settings, pool)
        inputs = processor(audio=[view], sampling_rate=16000)
        with torch.no_grad():
            expected = model.get_audio_layer_statistics(**inputs, all_layers=True)[0]
        torch.testing.assert_close(entries[keys[index][1]], expected, rtol=1e-4, atol=1e-5)
        assert speaker_differs(splits.train, index, pools[index])


def speaker_differs(split, index: int, pool: list[int]) -> bool:
    """Babble comes from other speakers of the clip's own fold."""
    speakers, folds = split["speaker"], split["fold"]
    return bool(pool) and all(speakers[o] != speakers[index] and folds[o] == folds[index] for o in pool)


@pytest.mark.usefixtures("one_torch_thread")
def test_bad_augmentation_settings_are_refused_in_one_line_before_any_work(tiny_encoders, tmp_path, capsys):
    dataset = build_tiny_dataset(tmp_path / "data")
    capsys.readouterr()
    base = {"freeze": "audio", "augment_views": 2}
    for changes, message in (
        ({**base, "augment_snr_db": "[-20,10]"}, "augment_snr_db must be [low, high] within [-10, 60]"),
        ({**base, "augment_rt60_s": "[0.5,4]"}, "augment_rt60_s must be [low, high] within (0.05, 3]"),
        ({**base, "augment_conditions": "noise,thunder"}, "augment_conditions must name some of"),
        ({"freeze": "none", "augment_views": 2}, "augment_views caches the frozen tower's views"),
        ({**base, "augment_cache_max_gb": 1e-9}, "need 0.00 GB of cache, above augment_cache_max_gb=1e-09"),
    ):
        overrides = tiny_overrides(tiny_encoders("whisper"), dataset, tmp_path / "run", **changes)
        assert main(["train", *overrides]) == 2
        error = capsys.readouterr().err
        last = error.strip().splitlines()[-1]
        assert last.startswith("gemo-clap train: ") and message in last
        assert not (tmp_path / "run").exists()
