"""Settings chosen on the user's own training folds (`select: auto`): a small staged search over the settings that
matter, each candidate scored on speaker-held-out inner folds of the training folds only, so the test fold is never
seen (neither its utterances nor its speakers).

The search is coordinate-wise (as `benchmarks/select_cpu_configs.py`): starting from the config's own settings, each
key of the space in turn tries its values with the others fixed at what was kept so far; a value is kept when its
mean inner UAR beats the kept one by more than `IMPROVEMENT` (ties keep the config's own setting). A candidate
trains from the frozen-tower cache (`freeze=audio`, shared with every run on the same tower: `audio_cache_dir`)
with the training loop's steps, model, loss, optimiser and schedule, but in memory (no checkpoint, no model folder;
on the CPU, every process doing the same); its inner fold is scored from the cached features of the same
speech-trimmed clips (what the default scoring protocol scores on clean clips). Candidates share the loaded towers
and start from the same seeded projections. Cost: candidates x `select_folds` trainings of a head over cached
features (the default space: 7 candidates, a few seconds each on a CPU core)."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup

from ..modeling import VARIANTS, GEmoClapLoss, GEmoClapModel
from .audio_cache import AudioFeatureCache, CachedSplit
from .augmentation import mix_statistics
from .collator import GEmoClapCollator
from .config import TrainingConfig
from .data import fold_splits, gender_names
from .evaluation.zero_shot import score, zero_shot_predictions
from .global_loss import contrastive_loss
from .multi_corpus import dataset_paths, load_corpora
from .standardisation import fit_audio_standardisation
from .training_model import FrozenPrompts, GEmoClapTrainingModel

# the default search space, searched in this order; the variant's own alpha is added for SL and ML
DEFAULT_SPACE: dict[str, list] = {"learning_rate": [1e-4, 3e-4, 1e-3], "num_epochs": [25, 50, 100]}
ALPHAS = {"sl": "model.sl_alpha", "ml": "model.ml_alpha"}
ALPHA_VALUES = [0.6, 0.8, 0.9]
# what a candidate may not change: the data, the towers and their cache, where runs go, the selection itself
FIXED_KEYS = (
    "audio_encoder",
    "text_encoder",
    "dataset",
    "corpus",
    "test_fold",
    "exclude_folds",
    "seed",
    "freeze",
    "freeze_layers",
    "cache_audio_features",
    "audio_cache_dir",
    "speech_trim",
    "output_dir",
    "select",
    "select_space",
    "select_folds",
    "model.max_audio_seconds",
)
SELECTION_FILE = "selection.json"  # the record, in a run folder and in its model folder
IMPROVEMENT = 0.005  # a value replaces the kept one when it gains more than this mean inner UAR


def search_space(config: TrainingConfig) -> dict[str, list]:
    """The space to search (`select_space`, or the default one with the variant's alpha), checked: known keys in
    override syntax, none the search must keep fixed, each a non-empty list of values the config accepts (returned
    as the config holds them: "3e-4" from YAML as 0.0003)."""
    space = dict(config.select_space) or {
        **DEFAULT_SPACE,
        **({ALPHAS[config.variant]: ALPHA_VALUES} if config.variant in ALPHAS else {}),
    }
    for key, values in space.items():
        if key in FIXED_KEYS:
            raise ValueError(f"select_space: {key!r} cannot be searched (the data, towers and cache stay fixed)")
        if not isinstance(values, list) or not values:
            raise ValueError(f"select_space: {key!r} needs a non-empty list of values, got {values!r}")
        # unknown keys and bad values: one error naming them
        space[key] = [current_value(with_setting(config, {key: value}), key) for value in values]
    return space


def checked_space(config: TrainingConfig) -> dict[str, list]:
    """`search_space`, after checking the config can be searched (its candidates train from the frozen-tower cache)."""
    if config.freeze != "audio" or not config.cache_audio_features or config.text_lora_rank:
        raise ValueError(
            "select: auto trains its candidates from the frozen-tower cache: it needs freeze=audio, "
            "cache_audio_features=true and text_lora_rank=0 (the CPU configs)"
        )
    return search_space(config)


def with_setting(config: TrainingConfig, settings: dict[str, Any]) -> TrainingConfig:
    """`config` with `settings` (keys in override syntax, e.g. `model.sl_alpha`) applied and validated."""
    values = {key: value for key, value in config.to_dict().items() if key != "model"}
    model = {f"model.{key}": value for key, value in config.model.items()}
    return TrainingConfig.from_dict({**values, **model, **settings}, source="select_space")


def current_value(config: TrainingConfig, key: str) -> Any:
    """The config's value of a space key."""
    return getattr(config, key.removeprefix("model."))


def inner_pool(dataset: datasets.Dataset, config: TrainingConfig) -> datasets.Dataset:
    """The utterances the selection may see: the training folds (not the test fold, nor `exclude_folds`), without
    any utterance of a test-fold speaker; with a `row` column (the utterance's position in the pool)."""
    folds = np.asarray(dataset["fold"])
    held = {config.test_fold, *config.exclude_folds} - {None}
    kept = ~np.isin(folds, list(held))
    if "speaker" in dataset.column_names and held:
        speakers = np.asarray(dataset["speaker"])
        kept &= ~np.isin(speakers, speakers[np.isin(folds, list(held))])
    pool = dataset.select(np.flatnonzero(kept).tolist(), keep_in_memory=True)
    return pool.add_column("row", list(range(len(pool))))


def inner_folds(pool: datasets.Dataset, config: TrainingConfig) -> list[int]:
    """The inner folds each candidate is scored on (each held out in turn): every fold of the pool, or a seeded
    `select_folds` of them; an error when fewer than two folds (speaker groups) remain."""
    folds = sorted(set(pool["fold"]))
    if len(folds) < 2:
        where = "" if config.test_fold is None else f" once test fold {config.test_fold} is held out"
        raise ValueError(
            f"select: auto needs 2 or more speaker-held-out folds among the training data{where}, the dataset "
            f"leaves {folds}: build it with more folds (speakers) or train without --select"
        )
    if config.select_folds and config.select_folds < len(folds):
        chosen = np.random.default_rng(config.seed).choice(folds, config.select_folds, replace=False)
        folds = sorted(int(fold) for fold in chosen)
    return folds


class _Candidates:
    """What every candidate shares: the pool, its cached statistics, the loaded towers and their processor."""

    def __init__(self, config: TrainingConfig, pool: datasets.Dataset, accelerator: Accelerator):
        from .loop import _build_model  # the loop imports this module

        self.config, self.pool, self.accelerator = config, pool, accelerator
        self.emotion_names, self.gender_names = pool.features["emotion"].names, gender_names(pool)
        set_seed(config.seed)
        self.base, self.processor = _build_model(config, self.emotion_names, self.gender_names)
        cache = AudioFeatureCache(
            self.base.audio_model,
            config.audio_cache_dir or f"{config.output_dir}/audio_cache",
            layers="all",
            speech_only=config.speech_trim,
        )
        cache.fill(self.base, self.processor, [pool], accelerator, config.eval_batch_size)
        self.statistics = cache.cached_split(pool).statistics  # [pool, states, 2, hidden]
        self.emotions = list(pool["emotion"])
        self.genders = list(pool["gender"]) if "gender" in pool.column_names else None

    def split(self, rows: list[int], model: GEmoClapModel) -> CachedSplit:
        statistics = self.statistics[rows]
        if not model.config.pools_all_layers:
            statistics = statistics[:, -1:]
        genders = [self.genders[row] for row in rows] if self.genders is not None else None
        return CachedSplit(statistics, [self.emotions[row] for row in rows], genders)

    def model(self, config: TrainingConfig) -> GEmoClapModel:
        """A fresh model of the candidate's settings around the shared towers (the text tower copied if it trains)."""
        from .loop import configure_training

        set_seed(config.seed)
        text_model = self.base.text_model if config.freeze_text else copy.deepcopy(self.base.text_model)
        model = GEmoClapModel.from_towers(
            self.base.audio_model,
            text_model,
            **config.model,
            emotion_labels=self.emotion_names,
            gender_labels=self.gender_names,
        )
        configure_training(model, config)
        return model

    def scores(self, config: TrainingConfig, fold: int) -> dict:
        """The candidate trained on the pool but `fold` (its best epoch on its own validation split when it has
        one, else the last), scored on `fold` from the cache."""
        from .loop import _parameter_groups

        splits = fold_splits(self.pool, fold, config.validation_fraction, config.seed, config.validation_split)
        model = self.model(config)
        variant = VARIANTS[config.variant]
        collator = GEmoClapCollator(
            self.processor,
            self.emotion_names,
            self.gender_names,
            model.config.prompt_template,
            model.config.gender_prompt_template,
            with_gender_prompts=variant.needs_gender_prompts,
        )
        train, test = (self.split(split["row"], model) for split in (splits.train, splits.test))
        validation = self.split(splits.validation["row"], model) if splits.validation is not None else None

        def evaluate(split: CachedSplit) -> dict:
            loader = DataLoader(split, batch_size=config.eval_batch_size, collate_fn=collator)
            outputs = zero_shot_predictions(
                model,
                self.processor,
                loader,
                self.accelerator,
                self.emotion_names,
                model.config.prompt_template,
                self.gender_names,
            )
            return score(outputs, self.emotion_names, self.gender_names)

        if model.config.audio_standardisation:
            fit_audio_standardisation(model, DataLoader(train, batch_size=config.eval_batch_size, collate_fn=collator))
        training_model = GEmoClapTrainingModel(model, FrozenPrompts(model, collator) if config.freeze_text else None)
        optimizer = torch.optim.AdamW(
            _parameter_groups(model, config), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
        )
        loader = DataLoader(
            train,
            batch_size=config.batch_size,
            shuffle=True,
            collate_fn=collator,
            generator=torch.Generator().manual_seed(config.seed),
        )
        accumulation = config.gradient_accumulation_steps
        steps_per_epoch = math.ceil(len(loader) / accumulation)
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(config.warmup_epochs * steps_per_epoch), config.num_epochs * steps_per_epoch
        )
        criterion = GEmoClapLoss.from_config(model.config)
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]

        def training_mode() -> None:  # frozen towers run without dropout, as in the loop
            training_model.train()
            model.audio_model.eval()
            if config.freeze_text:
                model.text_model.eval()

        best_uar, result = -1.0, None
        training_mode()
        for epoch in range(config.num_epochs):
            for index, batch in enumerate(loader):
                if config.mixup_alpha:
                    generator = torch.Generator().manual_seed((config.seed * 100_003 + epoch) * 100_003 + index)
                    batch = mix_statistics(batch, config.mixup_alpha, generator, variant.needs_gender_labels)
                loss = contrastive_loss(criterion, training_model(batch), batch, False) / accumulation
                loss.backward()
                if (index + 1) % accumulation == 0 or index + 1 == len(loader):
                    if config.max_grad_norm > 0:
                        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
            if validation is not None:
                validation_uar = evaluate(validation)["uar"]
                if validation_uar > best_uar:  # the inner fold scored with the best epoch's weights
                    best_uar, result = validation_uar, evaluate(test)
                training_mode()
        return result if result is not None else evaluate(test)


def _summary(settings: dict[str, Any], folds: list[dict]) -> dict:
    """A candidate's record: its settings and its inner folds' mean WAR, UAR and gender gap (WAR points)."""
    record = {
        "settings": settings,
        "war": float(np.mean([fold["war"] for fold in folds])),
        "uar": float(np.mean([fold["uar"] for fold in folds])),
        "folds": [{"war": fold["war"], "uar": fold["uar"]} for fold in folds],
    }
    gaps = [fold["gender_gap"]["war"] for fold in folds if "war" in fold.get("gender_gap", {})]
    if gaps:
        record["gender_gap_war"] = float(np.mean(gaps))
    return record


def choose_settings(config: TrainingConfig) -> tuple[TrainingConfig, dict]:
    """(`config` with the chosen settings, the selection's record: chosen settings, every candidate's inner scores,
    the inner folds, its cost). Bad input (the space, too few folds, no frozen-tower cache) raises before any work."""
    space = checked_space(config)
    started = time.monotonic()
    needs_gender = VARIANTS[config.variant].needs_gender_labels
    dataset = load_corpora(dataset_paths(config.dataset), needs_gender, config.label_map)  # one corpus or several
    pool = inner_pool(dataset, config)
    folds = inner_folds(pool, config)
    # the state a later run's Accelerator shares; candidates (a head over cached features) stay on the CPU
    candidates = _Candidates(config, pool, Accelerator(mixed_precision=config.mixed_precision))
    scored: dict[str, dict] = {}

    def evaluate(settings: dict[str, Any]) -> dict:
        key = repr(sorted(settings.items()))
        if key not in scored:
            candidate = with_setting(config, settings)
            scored[key] = _summary(settings, [candidates.scores(candidate, fold) for fold in folds])
        return scored[key]

    kept: dict[str, Any] = {}
    best = evaluate(kept)
    for key, values in space.items():
        for value in values:
            if value == current_value(with_setting(config, kept), key):
                continue
            entry = evaluate({**kept, key: value})
            if entry["uar"] > best["uar"] + IMPROVEMENT:
                best = entry
        kept = dict(best["settings"])
    record = {
        "chosen": {key: current_value(with_setting(config, kept), key) for key in space},
        "changed": kept,
        "inner_war": best["war"],
        "inner_uar": best["uar"],
        "test_fold": config.test_fold,
        "inner_folds": folds,
        "space": space,
        "candidates": list(scored.values()),
        "seconds": time.monotonic() - started,
    }
    return with_setting(config, kept), record


def selection_line(record: dict) -> str:
    """The selection in one line for reports and model cards."""
    chosen = ", ".join(
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}" for key, value in record["chosen"].items()
    )
    return (
        f"{chosen} (inner WAR {100 * record['inner_war']:.1f} / UAR {100 * record['inner_uar']:.1f} on inner folds "
        f"{record['inner_folds']}; {len(record['candidates'])} candidates, {record['seconds']:.0f} s)"
    )


def selected_config(config: TrainingConfig, resumed: Path | None = None) -> tuple[TrainingConfig, dict]:
    """`choose_settings`, or the choice a resumed run (`resumed`: its folder) already made."""
    recorded = resumed / SELECTION_FILE if resumed is not None else None
    if recorded is not None and recorded.is_file():
        record = json.loads(recorded.read_text())
        return with_setting(config, record["changed"]), record
    return choose_settings(config)


def write_selection(folder: Path, record: dict) -> None:
    """The selection's record as `<folder>/selection.json`."""
    from ..processing.atomic import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / SELECTION_FILE, unique=True) as partial:
        partial.write_text(json.dumps(record, indent=2) + "\n")
