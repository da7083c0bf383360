"""Fold splits of a built dataset: the test fold, and a validation split carved from the training folds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from torch.utils.data import Sampler
from transformers.trainer_pt_utils import get_length_grouped_indices

from ..modeling.labels_gemo_clap import DEFAULT_GENDER_LABELS
from ..processing.builder import dataset_features

OPTIONAL_COLUMNS = ("gender", "speaker")  # without genders only Emo-CLAP trains; speakers only made the folds


@dataclass
class FoldSplits:
    train: datasets.Dataset
    validation: datasets.Dataset | None
    test: datasets.Dataset

    @property
    def emotion_names(self) -> list[str]:
        return self.train.features["emotion"].names

    @property
    def gender_names(self) -> list[str]:
        return gender_names(self.train)


def gender_names(dataset: datasets.Dataset) -> list[str]:
    """The gender label names of a built dataset (the default ones when it has no gender column)."""
    return dataset.features["gender"].names if "gender" in dataset.features else list(DEFAULT_GENDER_LABELS)


def load_built_dataset(path: str | Path, needs_gender: bool = False) -> datasets.Dataset:
    """A dataset saved by `gemo-clap build-dataset`, checked for the columns of its schema (`dataset_features`)
    that training needs."""
    path = Path(path)
    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a dataset saved by `gemo-clap build-dataset` (no dataset_info.json)")
    dataset = datasets.load_from_disk(str(path))
    required = [column for column in dataset_features(()) if column not in OPTIONAL_COLUMNS]
    missing = [column for column in required if column not in dataset.column_names]
    if needs_gender and "gender" not in dataset.column_names:
        missing.append("gender")
    if missing:
        hint = " (SL and ML GEmo-CLAP need each utterance's gender)" if "gender" in missing else ""
        raise ValueError(f"dataset {path} lacks column(s) {missing}{hint}")
    return dataset


def stratified_sample(labels: list[int], fraction: float, seed: int) -> set[int]:
    """Indices of a seeded `fraction` of each label's items (at least one per label that has two or more).

    `Dataset.train_test_split(stratify_by_column=...)` would do this, but with `keep_in_memory=True` on a dataset
    loaded from disk it refuses (it also derives index cache files), and without it it writes into the dataset's
    folder."""
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    labels = np.asarray(labels)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        chosen.update(int(index) for index in members[:count])
    return chosen


def fold_splits(
    dataset: datasets.Dataset,
    test_fold: int | None,
    validation_fraction: float,
    seed: int,
    validation_split: str = "utterances",
    exclude_folds: Sequence[int] = (),
) -> FoldSplits:
    """Leave-one-fold-out: `test_fold` is the test set; the validation split that chooses the best epoch is carved
    from the other folds, so the test fold never does: a stratified `validation_fraction` of their utterances
    ("utterances"), or the fold after the test fold ("speakers": folds hold disjoint speakers, so it scores speakers
    the model never trained on). `exclude_folds` play no part at all (a nested selection's outer test fold).
    `test_fold=None`: every utterance trains (no validation split, an empty test set). Index mappings stay in memory:
    nothing is written into the dataset's folder."""
    folds = sorted(set(dataset["fold"]))
    if test_fold is None:
        if validation_split == "speakers" or validation_fraction > 0:
            raise ValueError(
                "test_fold=none trains on every utterance and keeps the last epoch: it needs validation_fraction=0 "
                "and validation_split=utterances (--select chooses num_epochs on inner folds)"
            )
        if "speaker" in dataset.column_names and len(set(dataset["speaker"])) < 2:
            raise ValueError(
                "test_fold=none on a corpus of one speaker: no score can tell how the model does on other speakers "
                "(cross-validate a corpus of two or more speakers first)"
            )
        kept = [index for index, fold in enumerate(dataset["fold"]) if fold not in exclude_folds]
        train = dataset.select(kept, keep_in_memory=True)
        return FoldSplits(train=train, validation=None, test=train.select([], keep_in_memory=True))
    if test_fold not in folds:
        raise ValueError(f"test_fold {test_fold} is not one of the dataset's folds {folds}")
    unknown = sorted(set(exclude_folds) - set(folds))
    if unknown or test_fold in exclude_folds:
        raise ValueError(
            f"exclude_folds {list(exclude_folds)} must name folds of the dataset {folds} other than test_fold"
        )
    if exclude_folds:
        kept = [index for index, fold in enumerate(dataset["fold"]) if fold not in exclude_folds]
        dataset = dataset.select(kept, keep_in_memory=True)
        folds = [fold for fold in folds if fold not in exclude_folds]
    fold_column = list(dataset["fold"])
    validation_fold = folds[(folds.index(test_fold) + 1) % len(folds)] if validation_split == "speakers" else None
    if validation_fold is not None and len(folds) < 3:
        raise ValueError(f"validation_split=speakers needs 3 or more folds, the dataset has {folds}")
    test = dataset.select([i for i, fold in enumerate(fold_column) if fold == test_fold], keep_in_memory=True)
    rest = [i for i, fold in enumerate(fold_column) if fold not in (test_fold, validation_fold)]
    train = dataset.select(rest, keep_in_memory=True)
    validation = None
    if validation_fold is not None:
        rows = [i for i, fold in enumerate(fold_column) if fold == validation_fold]
        validation = dataset.select(rows, keep_in_memory=True)
    elif validation_fraction > 0:
        held_out = stratified_sample(train["emotion"], validation_fraction, seed)
        kept = [index for index in range(len(train)) if index not in held_out]
        train, validation = (train.select(rows, keep_in_memory=True) for rows in (kept, sorted(held_out)))
    if len(set(train["emotion"])) < 2:
        names = train.features["emotion"].names
        raise ValueError(
            f"the training folds hold a single emotion ({names[train['emotion'][0]]!r}): training needs two or more"
        )
    return FoldSplits(train=train, validation=validation, test=test)


class LengthGroupedSampler(Sampler[int]):
    """Random order with batches of similar length (transformers' `get_length_grouped_indices`, as the Trainer's
    `group_by_length`: shuffled mega-batches, sorted by length within), re-seeded by `set_epoch` so every process
    and a resumed run draw the same order."""

    def __init__(self, lengths: Sequence[float], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = list(lengths), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


def padding_fraction(lengths: Sequence[float], order: Sequence[int], batch_size: int) -> float:
    """The fraction of a padded epoch that is padding: batches of `batch_size` in `order`, each padded to its
    longest item."""
    padded = real = 0.0
    for start in range(0, len(order), batch_size):
        batch = [lengths[index] for index in order[start : start + batch_size]]
        padded += max(batch) * len(batch)
        real += sum(batch)
    return 1 - real / padded if padded else 0.0
