"""Cache-served augmentation: same-label mixup of cached statistics and time masking of a cached hidden state, their
values checked by hand, their seeding, and the configurations that cannot serve them refused up front."""

from __future__ import annotations

import pytest
import torch
from gemo_clap.train.augmentation import mask_frames, mix_statistics, same_label_partners
from helpers import build_tiny_dataset, tiny_overrides

from gemo_clap.cli import main


def test_partners_share_the_label_and_lone_items_keep_themselves():
    keys = torch.tensor([0, 1, 0, 2, 0, 1])
    for seed in range(20):
        partners = same_label_partners(keys, torch.Generator().manual_seed(seed))
        assert torch.equal(keys[partners], keys)
        assert partners[3] == 3  # the only 2


def test_mixup_is_a_convex_combination_within_emotion_and_gender():
    statistics = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 2, 2, 3).clone()
    batch = {
        "audio_layer_statistics": statistics,
        "emotion_labels": torch.tensor([0, 0, 0, 1, 1, 1]),
        "gender_labels": torch.tensor([0, 0, 1, 1, 1, 0]),
    }
    mixed = mix_statistics(batch, 0.4, torch.Generator().manual_seed(0), with_gender=True)["audio_layer_statistics"]
    assert mixed[2].unique().tolist() == [2.0] and mixed[5].unique().tolist() == [5.0]  # alone in their group
    assert 0.0 <= float(mixed[0, 0, 0, 0]) <= 1.0 and 0.0 <= float(mixed[1, 0, 0, 0]) <= 1.0  # between items 0 and 1
    assert 3.0 <= float(mixed[3, 0, 0, 0]) <= 4.0 and 3.0 <= float(mixed[4, 0, 0, 0]) <= 4.0
    assert torch.equal(mixed, mixed[:, :1, :1, :1].expand_as(mixed))  # one weight per utterance
    again = mix_statistics(batch, 0.4, torch.Generator().manual_seed(0), with_gender=True)["audio_layer_statistics"]
    assert torch.equal(mixed, again)
    across_genders = mix_statistics(batch, 0.4, torch.Generator().manual_seed(3), with_gender=False)
    assert torch.equal(across_genders["emotion_labels"], batch["emotion_labels"])


def test_time_masking_drops_the_fraction_in_spans_and_keeps_a_frame():
    mask = torch.zeros(3, 100, dtype=torch.long)
    mask[0, :100], mask[1, :40], mask[2, :2] = 1, 1, 1
    masked = mask_frames({"audio_frame_mask": mask}, 0.2, torch.Generator().manual_seed(1))["audio_frame_mask"]
    kept = masked.sum(dim=1).tolist()
    assert 70 <= kept[0] <= 80 and 28 <= kept[1] <= 32 and kept[2] >= 1
    assert not masked[1, 40:].any() and torch.equal(masked <= mask, torch.ones_like(mask, dtype=torch.bool))
    runs = (masked[0, 1:] != masked[0, :-1]).sum().item()  # spans: few switches, not scattered frames
    assert runs <= 2 * 10 + 1


@pytest.mark.usefixtures("one_torch_thread")
def test_augmentations_that_the_cache_cannot_serve_are_refused_before_any_work(tiny_encoders, tmp_path, capsys):
    dataset = build_tiny_dataset(tmp_path / "data")
    for changes, message in (
        ({"freeze": "none", "mixup_alpha": 0.4}, "mixup_alpha mixes cached statistics"),
        ({"freeze": "audio", "time_mask_fraction": 0.1}, "time_mask_fraction masks a cached hidden state"),
    ):
        overrides = tiny_overrides(tiny_encoders("whisper"), dataset, tmp_path / "run", **changes)
        assert main(["train", *overrides]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("one_torch_thread")
def test_training_with_both_augmentations_runs_cache_served(tiny_encoders, tmp_path):
    from gemo_clap.train.config import TrainingConfig
    from gemo_clap.train.loop import train

    dataset = build_tiny_dataset(tmp_path / "data")
    histories = []
    for name, changes in (
        ("mixup", {"freeze": "audio", "mixup_alpha": 0.4, "audio_layer_pooling": "concatenate"}),
        ("plain", {"freeze": "audio", "audio_layer_pooling": "concatenate"}),
        ("masked", {"freeze": "layers", "freeze_layers": 1, "time_mask_fraction": 0.2}),
    ):
        config = TrainingConfig.load(
            None, tiny_overrides(tiny_encoders("whisper"), dataset, tmp_path / name, **changes)
        )
        histories.append([record["train_loss"] for record in train(config).history])
    assert histories[0] != histories[1]  # the mixed statistics changed what trained
    assert all(len(history) == 2 for history in histories)
