"""Several built corpora in one run: `dataset: A,B` trains on them together, `test_dataset: B` scores a corpus the
model never trained on (cross-corpus).

- Labels: a shared label set, by default the emotions present in every corpus (in the first corpus's order), or
  `label_map` (a preset such as `4class`, inline `src:dst,...` or a JSON file, as `build-dataset` takes) applied to
  each corpus's names; utterances outside it are dropped. Disjoint label sets, a shared set of fewer than two labels
  and a map that drops every utterance of a corpus are refused, naming the corpus.
- Folds: each corpus keeps its own speaker-independent folds; test fold k holds out fold k of every corpus together
  (a corpus without a fold k trains in full), so no speaker is ever both trained on and tested.
- Sampling: with `corpus_balanced` each training epoch draws its utterances with replacement so that every corpus
  is drawn equally often (seeded by the run's seed and the epoch); the epoch keeps its length.
- Reports: a `corpus` column names each utterance's corpus; test results hold per-corpus scores (`per_corpus`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
import torch
from torch.utils.data import Sampler

from .data import FoldSplits, fold_splits, load_built_dataset, stratified_sample

SHARED_COLUMNS = ("id", "audio", "emotion", "gender", "speaker", "fold", "duration")


def dataset_paths(spec: str) -> list[str]:
    """The dataset folders of a `dataset` setting: one path, or several separated by commas."""
    return [part.strip() for part in str(spec).split(",") if part.strip()]


def corpus_name(dataset: datasets.Dataset, path: str) -> str:
    return dataset.info.dataset_name or Path(path).name


def unique_names(names: Sequence[str]) -> list[str]:
    """`names` with repeated ones numbered (`manifest-1`, `manifest-2`)."""
    counts = {name: names.count(name) for name in names}
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(f"{name}-{seen[name]}" if counts[name] > 1 else name)
    return unique


def shared_labels(names_by_corpus: dict[str, Sequence[str]], label_map: str) -> tuple[list[str], list[dict[str, str]]]:
    """(the shared emotion names, per corpus the map of its names onto them)."""
    if label_map:
        from ..processing.label_maps import parse_label_map
        from ..processing.records import CorpusError

        try:
            parsed = parse_label_map(label_map)
        except CorpusError as error:
            raise ValueError(str(error)) from None
        maps = [
            {name: parsed.mapping[name] for name in names if name in parsed.mapping}
            for names in names_by_corpus.values()
        ]
        used = {target for mapping in maps for target in mapping.values()}
        return [name for name in parsed.names if name in used], maps
    corpora = list(names_by_corpus.items())
    shared = [name for name in corpora[0][1] if all(name in names for _, names in corpora[1:])]
    if not shared:
        listed = "; ".join(f"{corpus}: {', '.join(names)}" for corpus, names in corpora)
        raise ValueError(f"the datasets have disjoint label sets ({listed}): pass label_map to map them onto one set")
    if len(shared) < 2:
        raise ValueError(f"the datasets share a single emotion ({shared[0]!r}): training needs two or more")
    return shared, [{name: name for name in names if name in shared} for names in names_by_corpus.values()]


def load_corpora(paths: Sequence[str], needs_gender: bool = False, label_map: str = "") -> datasets.Dataset:
    """One built dataset, or several joined on a shared label set with a `corpus` column (module docstring)."""
    loaded = [load_built_dataset(path, needs_gender=needs_gender) for path in paths]
    if len(loaded) == 1 and not label_map:
        return loaded[0]
    if len(set(map(str, paths))) < len(paths):
        raise ValueError(f"datasets {list(paths)}: a dataset is given twice")
    names = unique_names([corpus_name(dataset, path) for dataset, path in zip(loaded, paths)])
    labels, maps = shared_labels({name: d.features["emotion"].names for name, d in zip(names, loaded)}, label_map)
    if len(labels) < 2:
        raise ValueError(f"label_map {label_map!r} keeps fewer than two emotions of the datasets: {labels}")
    columns = [c for c in SHARED_COLUMNS if all(c in dataset.column_names for dataset in loaded)]
    features = datasets.Features({c: loaded[0].features[c] for c in columns})
    features["emotion"] = datasets.ClassLabel(names=labels)
    features["corpus"] = datasets.Value("string")
    parts = []
    for dataset, name, mapping in zip(loaded, names, maps):
        source = dataset.features["emotion"].names
        kept = [i for i, emotion in enumerate(dataset["emotion"]) if source[emotion] in mapping]
        if not kept:
            raise ValueError(
                f"the shared labels {labels} drop every utterance of corpus {name!r} (its labels: {', '.join(source)})"
            )
        part = dataset.select(kept, keep_in_memory=True).select_columns(columns)
        values = {"emotion": [labels.index(mapping[source[emotion]]) for emotion in part["emotion"]]}
        if "gender" in columns:
            gender_names = dataset.features["gender"].names
            values["gender"] = [features["gender"].names.index(gender_names[g]) for g in part["gender"]]
        if "speaker" in columns:
            values["speaker"] = [f"{name}/{speaker}" for speaker in part["speaker"]]
        values["corpus"] = [name] * len(kept)
        part = part.remove_columns([column for column in values if column in columns])
        for column, column_values in values.items():  # columns replaced whole: the audio is never re-encoded
            part = part.add_column(column, column_values, feature=features[column])
        parts.append(part.select_columns(list(features)).cast(features))
    joined = datasets.concatenate_datasets(parts)
    joined.info.dataset_name = "+".join(names)
    return joined


def run_splits(config, needs_gender: bool) -> tuple[datasets.Dataset, FoldSplits]:
    """The run's data and splits: fold splits of `config.dataset` (one corpus or several), or, with
    `config.test_dataset`, every utterance of the training corpora trains (less a validation split carved from
    them) and every utterance of the test corpus is the test set."""
    paths = dataset_paths(config.dataset)
    if not config.test_dataset:
        dataset = load_corpora(paths, needs_gender, config.label_map)
        splits = fold_splits(
            dataset,
            config.test_fold,
            config.validation_fraction,
            config.seed,
            config.validation_split,
            config.exclude_folds,
        )
        return dataset, splits
    if config.validation_split != "utterances":
        raise ValueError("a cross-corpus run (test_dataset) carves its validation split by utterances")
    if config.test_dataset in paths:
        raise ValueError(f"test_dataset {config.test_dataset} is also a training dataset: a corpus never trained on")
    dataset = load_corpora([*paths, config.test_dataset], needs_gender, config.label_map)
    corpora = list(dataset["corpus"])
    test_name = corpora[-1]
    dataset.info.dataset_name = "+".join(name for name in dict.fromkeys(corpora) if name != test_name)
    train = dataset.select([i for i, c in enumerate(corpora) if c != test_name], keep_in_memory=True)
    test = dataset.select([i for i, c in enumerate(corpora) if c == test_name], keep_in_memory=True)
    validation = None
    if config.validation_fraction > 0:
        held_out = stratified_sample(train["emotion"], config.validation_fraction, config.seed)
        kept = [index for index in range(len(train)) if index not in held_out]
        train, validation = (train.select(rows, keep_in_memory=True) for rows in (kept, sorted(held_out)))
    return dataset, FoldSplits(train=train, validation=validation, test=test)


class CorpusBalancedSampler(Sampler[int]):
    """An epoch of `len(corpora)` draws with replacement, each corpus drawn equally often in expectation (weights
    1 / its size), re-seeded by `set_epoch`."""

    def __init__(self, corpora: Sequence[str], seed: int):
        counts = {name: list(corpora).count(name) for name in set(corpora)}
        self.weights = torch.tensor([1.0 / counts[name] for name in corpora], dtype=torch.float64)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist())


def balanced_sampler(config, train: datasets.Dataset) -> CorpusBalancedSampler | None:
    """The corpus-balanced sampler of a training split holding several corpora (None otherwise)."""
    if not config.corpus_balanced or "corpus" not in train.column_names or len(set(train["corpus"])) < 2:
        return None
    return CorpusBalancedSampler(list(train["corpus"]), config.seed)


def per_corpus_rows(results: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Report rows `<row> on <corpus>` from the per-corpus scores of each fold result (keeping fold and seed)."""
    rows: dict[str, list[dict]] = {}
    for name, folds in results.items():
        for result in folds:
            for corpus, scores in result.get("per_corpus", {}).items():
                keys = {key: result[key] for key in ("fold", "seed") if key in result}
                rows.setdefault(f"{name} on {corpus}", []).append({**keys, **scores})
    return rows
