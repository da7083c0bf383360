"""Training end to end on tiny random towers and a tiny synthetic corpus (4 speakers, 32 half-second clips, 2 folds):
the saved model folder, test results, checkpoint rotation, missing-gender errors, the frozen-tower cache, and
bit-exact resume after a SIGKILL in the middle of an epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import gemo_clap.train.loop as loop
import pytest
import torch
from datasets import load_from_disk
from gemo_clap.modeling import GEmoClapModel, GEmoClapProcessor
from gemo_clap.processing.atomic import leftovers
from gemo_clap.processing.audio import SAMPLING_RATE, decode_example_audio
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.processing.synthetic import generate_corpus
from gemo_clap.train.audio_cache import example_key
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.data import fold_splits, load_built_dataset
from gemo_clap.train.evaluation.cli_evaluate import evaluate_model
from helpers import EMOTIONS, build_tiny_dataset, tiny_overrides
from safetensors.torch import load_file
from transformers import AutoModel, AutoProcessor, AutoTokenizer

CHECKPOINT_FILES = {
    "model.safetensors",
    "optimizer.bin",
    "scheduler.bin",
    "random_states_0.pkl",
    "custom_checkpoint_0.pkl",
}
REMOTE_CODE = {
    "configuration_gemo_clap.py",
    "modeling_gemo_clap.py",
    "loss_gemo_clap.py",
    "processing_gemo_clap.py",
    "pipeline_gemo_clap.py",
}
# `gemo-clap train ARGS...` whose loop is patched to SIGKILL its own process right after saving checkpoint STEP
KILLED_AFTER_CHECKPOINT = """
import os, signal, sys
from gemo_clap.train import cli_train, loop

step, sys.argv[1:] = int(sys.argv[1]), sys.argv[2:]
save_checkpoint = loop._save_checkpoint

def save_then_die(accelerator, output_dir, progress, keep):
    save_checkpoint(accelerator, output_dir, progress, keep)
    if progress.completed_steps == step:
        os.kill(os.getpid(), signal.SIGKILL)

loop._save_checkpoint = save_then_die
sys.exit(cli_train.main())
"""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    different = [name for name in expected if not torch.equal(actual[name], expected[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def sl_run(tiny_encoders, dataset_dir, tmp_path_factory):
    """An SL run (2 epochs x 3 steps, a checkpoint every step, keep 2) recording the weights of every model it saves."""
    saved: list[dict[str, torch.Tensor]] = []
    original = loop._save_model

    def recording_save(model, processor, folder):
        saved.append({name: tensor.detach().clone() for name, tensor in model.state_dict().items()})
        original(model, processor, folder)

    output_dir = tmp_path_factory.mktemp("sl-run")
    config = TrainingConfig.load(
        None,
        tiny_overrides(tiny_encoders("wavlm"), dataset_dir, output_dir, checkpoint_every_steps=1, keep_checkpoints=2),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "_save_model", recording_save)
        result = loop.train(config)
    return config, result, saved


# ------------------------------------------------------------------------------------------- outputs of a run
def test_model_folder_reloads_with_remote_code_and_equals_the_best(sl_run, tiny_encoders, make_clip):
    config, result, saved = sl_run
    text_dir = tiny_encoders("wavlm")[1]
    uars = [record["validation_uar"] for record in result.history]
    assert result.best_epoch == uars.index(max(uars))  # the first epoch with the best validation UAR
    assert len(saved) == sum(uar > max(uars[:epoch], default=-1) for epoch, uar in enumerate(uars))
    model_dir = Path(config.output_dir) / "model"
    assert result.model_dir == model_dir
    files = {path.name for path in model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "processor_config.json", "tokenizer.json"} | REMOTE_CODE <= files
    mode = lambda name: (model_dir / name).stat().st_mode & 0o777
    assert mode("model.safetensors") == mode("config.json")  # safetensors writes 0600: as readable as the rest

    auto_map = json.loads((model_dir / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModel"] == "modeling_gemo_clap.GEmoClapModel"  # loadable from the folder's own code
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    assert_same_tensors(model.state_dict(), saved[-1])
    assert model.config.variant == "sl"
    assert (model.config.emotion_labels, model.config.gender_labels) == (EMOTIONS, ["female", "male"])
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    prompt = processor(text=["The emotion is sad."])["input_ids"][0].tolist()
    assert prompt == AutoTokenizer.from_pretrained(text_dir)("The emotion is sad.")["input_ids"]
    audio = processor(audio=make_clip(0.5), sampling_rate=16000)
    assert audio["input_values"].shape == audio["audio_attention_mask"].shape == (1, 8000)


def test_test_results_are_reproduced_by_the_reloaded_model(sl_run, dataset_dir):
    """test_results.json holds the metrics of the saved model on the test fold (16 clips, 4 per emotion)."""
    config, result, _ = sl_run
    results = json.loads((Path(config.output_dir) / "test_results.json").read_text())
    assert results == result.test_metrics
    assert results["fold"] == 1
    assert {"war", "uar", "macro_f1", "per_class_recall", "per_gender", "confusion_matrix"} <= results.keys()
    matrix = torch.tensor(results["confusion_matrix"])
    assert matrix.shape == (4, 4) and matrix.sum(dim=1).tolist() == [4, 4, 4, 4]
    assert results["war"] == pytest.approx(matrix.diag().sum().item() / 16)
    assert set(results["per_gender"]) == {"female", "male"}

    # the saved model, reloaded and scored by `gemo-clap evaluate` (the protocol `predict` uses), gives them back
    evaluated = evaluate_model(str(Path(config.output_dir) / "model"), str(dataset_dir), fold=1)
    assert {"fold": 1, **{key: value for key, value in evaluated.items() if key != "folds"}} == results


def test_only_the_last_checkpoints_are_kept_and_nothing_partial_is_left(sl_run):
    config, _, _ = sl_run
    output_dir = Path(config.output_dir)
    kept = sorted(path.name for path in (output_dir / "checkpoints").iterdir())
    assert kept == ["step_00000005", "step_00000006"]  # 2 epochs x 3 steps, keep_checkpoints=2
    for name in kept:
        assert CHECKPOINT_FILES <= {path.name for path in (output_dir / "checkpoints" / name).iterdir()}
    assert leftovers(output_dir) == []
    # step 6 ends the last epoch: its epoch-end checkpoint replaced the mid-epoch one of the same step
    progress = torch.load(output_dir / "checkpoints" / "step_00000006" / "custom_checkpoint_0.pkl", weights_only=True)
    assert (progress["epoch"], progress["batches_done"], progress["completed_steps"]) == (2, 0, 6)
    assert len(progress["history"]) == 2
    assert json.loads((output_dir / "training_config.json").read_text()) == config.to_dict()


# ------------------------------------------------------------------------------------------- gender column
@pytest.fixture(scope="module")
def genderless_dataset_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("genderless")
    return save_dataset(load_from_disk(str(build_tiny_dataset(root))).remove_columns("gender"), root / "no-gender")


@pytest.mark.parametrize("variant", ["sl", "ml"])
def test_gender_variants_need_a_gender_column(variant, tiny_encoders, genderless_dataset_dir, tmp_path):
    config = TrainingConfig.load(
        None, tiny_overrides(tiny_encoders("wavlm"), genderless_dataset_dir, tmp_path, variant=variant)
    )
    message = r"lacks column\(s\) \['gender'\] \(SL and ML GEmo-CLAP need each utterance's gender\)"
    with pytest.raises(ValueError, match=message):
        loop.train(config)
    assert not (tmp_path / "checkpoints").exists()


def test_emo_trains_without_a_gender_column(tiny_encoders, genderless_dataset_dir, tmp_path):
    """Emo-CLAP needs no gender: it trains and is scored, without the per-gender breakdown."""
    config = TrainingConfig.load(
        None, tiny_overrides(tiny_encoders("wavlm"), genderless_dataset_dir, tmp_path, variant="emo", num_epochs=1)
    )
    result = loop.train(config)
    results = json.loads((tmp_path / "test_results.json").read_text())
    assert "per_gender" not in results
    assert sum(map(sum, results["confusion_matrix"])) == 16
    assert result.test_metrics == results


# ------------------------------------------------------------------------------------------- frozen audio tower
def test_frozen_audio_tower_cache_is_exact_and_only_the_rest_trains(tiny_encoders, dataset_dir, tmp_path, monkeypatch):
    initial: dict[str, torch.Tensor] = {}
    original = loop.build_model_and_processor

    def recording_build(*args, **kwargs):
        model, processor = original(*args, **kwargs)
        initial.update({name: tensor.detach().clone() for name, tensor in model.state_dict().items()})
        return model, processor

    monkeypatch.setattr(loop, "build_model_and_processor", recording_build)
    config = TrainingConfig.load(
        None, tiny_overrides(tiny_encoders("whisper"), dataset_dir, tmp_path, variant="emo", freeze="audio")
    )
    loop.train(config)

    trained = GEmoClapModel.from_pretrained(tmp_path / "model").state_dict()
    tower = [name for name in initial if name.startswith("audio_model.")]
    assert tower and all(torch.equal(trained[name], initial[name]) for name in tower)
    for prefix in ("audio_projection.", "text_projection.", "text_model."):
        names = [name for name in initial if name.startswith(prefix)]
        assert any(not torch.equal(trained[name], initial[name]) for name in names), f"no {prefix}* weight changed"

    caches = list((tmp_path / "audio_cache").glob("audio-*.safetensors"))
    assert len(caches) == 1
    cached = load_file(str(caches[0]))
    splits = fold_splits(load_built_dataset(dataset_dir), 1, config.validation_fraction, config.seed)
    seen = [example_key(example) for split in (splits.train, splits.validation) for example in split]
    assert set(seen) <= set(cached)  # every training and validation clip

    # the same frozen tower, one clip at a time, each clip from its first speech to its last (speech_trim)
    fresh = GEmoClapModel.from_pretrained(tmp_path / "model").eval()
    processor = GEmoClapProcessor.from_pretrained(tmp_path / "model")
    with torch.no_grad():
        for example in splits.train.select(range(0, len(splits.train), 3)):
            audio = decode_example_audio(example["audio"], speech_only=True)
            inputs = processor(audio=audio, sampling_rate=SAMPLING_RATE)
            pooled = fresh.get_audio_pooled_output(
                input_features=inputs["input_features"], audio_attention_mask=inputs["audio_attention_mask"]
            )
            from_cache = fresh.pool_audio_statistics(cached[example_key(example)][None])
            torch.testing.assert_close(from_cache[0], pooled[0], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------- kill and resume
def test_resume_after_sigkill_mid_epoch_matches_an_uninterrupted_run(tiny_encoders, dataset_dir, tmp_path):
    """SIGKILL right after the checkpoint of step 6 (2 of 4 batches into the second and last epoch), resume, and get
    the very weights and test metrics of a run never interrupted. No validation split: the saved model is the last
    epoch's."""
    changes = dict(freeze="none", validation_fraction=0, checkpoint_every_steps=2, keep_checkpoints=2)
    resumed_dir, uninterrupted_dir = tmp_path / "resumed", tmp_path / "uninterrupted"
    arguments = [
        "--output-dir",
        str(resumed_dir),
        *tiny_overrides(tiny_encoders("wavlm"), dataset_dir, resumed_dir, **changes),
    ]
    command = [sys.executable, "-m", "gemo_clap.train.cli_train", *arguments]
    env = os.environ | {"OMP_NUM_THREADS": "1"}

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_CHECKPOINT, "6", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sorted(path.name for path in (resumed_dir / "checkpoints").iterdir()) == ["step_00000004", "step_00000006"]
    assert not (resumed_dir / "test_results.json").exists()
    assert [json.loads(line)["epoch"] for line in (resumed_dir / loop.HISTORY_FILE).read_text().splitlines()] == [0]
    saved_before_kill = load_file(str(resumed_dir / "model" / "model.safetensors"))  # epoch 0's

    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {resumed_dir / 'checkpoints' / 'step_00000006'}" in resumed.stdout
    # the console shows the resumed epoch as a line for a person; history.jsonl holds every epoch once
    assert "epoch 2/2  loss" in resumed.stdout and "epoch 1/2" not in resumed.stdout
    history = [json.loads(line) for line in (resumed_dir / loop.HISTORY_FILE).read_text().splitlines()]
    assert [record["epoch"] for record in history] == [0, 1]
    resumed_records = history[1:]

    reference_config = TrainingConfig.load(
        None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, uninterrupted_dir, **changes)
    )
    reference = loop.train(reference_config)
    assert reference.best_epoch == 1
    final = load_file(str(resumed_dir / "model" / "model.safetensors"))
    assert any(not torch.equal(final[name], saved_before_kill[name]) for name in final)
    assert_same_tensors(final, load_file(str(uninterrupted_dir / "model" / "model.safetensors")))
    assert json.loads((resumed_dir / "test_results.json").read_text()) == reference.test_metrics
    # the resumed epoch's loss averages all its batches, those before the kill included
    compared = ("epoch", "train_loss", "lr")
    assert [{key: record[key] for key in compared} for record in resumed_records] == [
        {key: record[key] for key in compared} for record in reference.history[1:]
    ]


def test_fold_splits_write_nothing_into_the_dataset_folder(tmp_path):
    import datasets
    from gemo_clap.processing.builder import save_dataset
    from gemo_clap.train.data import fold_splits

    built, _ = build_corpus(
        "manifest",
        generate_corpus(tmp_path / "c", speakers_per_gender=2, clips_per_emotion=2),
        num_folds=2,
        cache_dir=tmp_path / "cache",
    )
    folder = save_dataset(built, tmp_path / "data")
    before = sorted(p.name for p in folder.iterdir())
    splits = fold_splits(datasets.load_from_disk(str(folder)), 1, 0.25, seed=0)
    assert len(splits.train) + len(splits.validation) + len(splits.test) == len(built)
    assert set(splits.test["fold"]) == {1} and 1 not in set(splits.train["fold"]) | set(splits.validation["fold"])
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_best_epoch_between_checkpoints_is_saved_at_the_next_one(tiny_encoders, dataset_dir, tmp_path, monkeypatch):
    """With checkpoints every 3 epochs, the best epoch (0 here) waits in memory and is written at epoch 3's
    checkpoint; the test fold is scored with it, not with the last epoch's weights."""
    uars = iter([0.9, 0.5, 0.4])
    scored = []
    real_score = loop.score

    def fake_validation_score(outputs, emotions, genders):
        metrics = real_score(outputs, emotions, genders)
        if len(scored) < 3:  # the three validations; then the test fold's real score
            metrics["uar"] = next(uars)
        scored.append(metrics)
        return metrics

    snapshots = []
    real_save = loop._save_model

    def recording_save(model, processor, folder, state_dict=None):
        snapshots.append(state_dict)
        real_save(model, processor, folder, state_dict)

    monkeypatch.setattr(loop, "score", fake_validation_score)
    monkeypatch.setattr(loop, "_save_model", recording_save)
    changes = dict(num_epochs=3, checkpoint_every_epochs=3, freeze="audio")
    config = TrainingConfig.load(None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path, **changes))
    result = loop.train(config)
    assert result.best_epoch == 0 and len(snapshots) == 1 and snapshots[0] is not None  # written once, at epoch 3
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert all(torch.equal(saved[name], value) for name, value in snapshots[0].items() if name in saved)
    assert len(snapshots[0]) > 0 and set(saved) <= set(snapshots[0])
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["step_00000009"]
