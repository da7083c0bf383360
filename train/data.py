"""Fold splits of a built dataset: the test fold, and a validation split carved from the training folds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

REQUIRED_COLUMNS = ("id", "audio", "emotion", "fold")


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
        return self.train.features["gender"].names if "gender" in self.train.features else ["female", "male"]


def load_built_dataset(path: str | Path, needs_gender: bool = False) -> datasets.Dataset:
    """A dataset saved by `gemo-clap build-dataset`, checked for the columns training needs."""
    path = Path(path)
    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a dataset saved by `gemo-clap build-dataset` (no dataset_info.json)")
    dataset = datasets.load_from_disk(str(path))
    missing = [column for column in REQUIRED_COLUMNS if column not in dataset.column_names]
    if needs_gender and "gender" not in dataset.column_names:
        missing.append("gender")
    if missing:
        hint = " (SL and ML GEmo-CLAP need each utterance's gender)" if "gender" in missing else ""
        raise ValueError(f"dataset {path} lacks column(s) {missing}{hint}")
    return dataset


def fold_splits(dataset: datasets.Dataset, test_fold: int, validation_fraction: float, seed: int) -> FoldSplits:
    """Leave-one-fold-out: `test_fold` is the test set; a stratified `validation_fraction` of the other folds
    chooses the best epoch, so the test fold never does."""
    folds = sorted(set(dataset["fold"]))
    if test_fold not in folds:
        raise ValueError(f"test_fold {test_fold} is not one of the dataset's folds {folds}")
    fold_column = dataset["fold"]
    test = dataset.select([i for i, fold in enumerate(fold_column) if fold == test_fold])
    train = dataset.select([i for i, fold in enumerate(fold_column) if fold != test_fold])
    validation = None
    if validation_fraction > 0:
        parts = train.train_test_split(test_size=validation_fraction, stratify_by_column="emotion", seed=seed)
        train, validation = parts["train"], parts["test"]
    return FoldSplits(train=train, validation=validation, test=test)
