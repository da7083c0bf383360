"""Corpus -> ``datasets.Dataset``: streamed from a generator (bounded memory), optionally over several processes."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from ..modeling.audio_gemo_clap import MIN_SECONDS, InvalidAudio, read_audio, validate_audio
from ..modeling.configuration_gemo_clap import DEFAULT_MAX_AUDIO_SECONDS as DEFAULT_MAX_SECONDS
from .atomic import atomic_path
from .audio import SAMPLING_RATE, AudioDecodeError, encode_wav, out_of_range, peak_normalise
from .corpora import CORPORA, corpus_spec, scan_corpus
from .folds import with_speaker_folds
from .label_maps import LabelMap, apply_label_map, parse_label_map
from .records import GENDERS, CorpusError, Skipped, Utterance

logger = logging.getLogger(__name__)

DEFAULT_NUM_FOLDS = 5
WRITER_BATCH_SIZE = 100  # examples buffered per Arrow record batch: bounds memory with long clips


def dataset_features(emotion_names: Sequence[str]) -> datasets.Features:
    """The one schema of every built corpus."""
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=SAMPLING_RATE, decode=False),
            "emotion": datasets.ClassLabel(names=list(emotion_names)),
            "gender": datasets.ClassLabel(names=list(GENDERS)),
            "speaker": datasets.Value("string"),
            "fold": datasets.Value("int32"),
            "duration": datasets.Value("float32"),
        }
    )


@dataclass
class BuildReport:
    """What a build kept and left out."""

    corpus: str
    num_examples: int
    emotion_names: tuple[str, ...]
    skipped: list[Skipped] = field(default_factory=list)  # unusable files (and why), malformed label lines
    dropped_labels: Counter[str] = field(default_factory=Counter)  # utterances whose label the map does not cover
    normalised: list[Skipped] = field(default_factory=list)  # float files with samples beyond [-1, 1], kept scaled
    metadata: list[str] = field(default_factory=list)  # macOS "._*" metadata files passed over


def _usable_audio(path: str, max_seconds: float | None, min_seconds: float, log) -> np.ndarray | None:
    """The decoded, validated signal of one file, or None after logging why it is left out. Float files holding
    samples beyond [-1, 1] are peak-normalised (16-bit storage would clip them) and logged as such."""
    try:
        array = validate_audio(read_audio(path, SAMPLING_RATE, max_seconds), SAMPLING_RATE, path, min_seconds)
    except (AudioDecodeError, InvalidAudio) as error:
        detail = error.detail if isinstance(error, AudioDecodeError) else str(error)
        log.write(json.dumps({"kind": "skipped", "source": path, "reason": error.reason, "detail": detail}) + "\n")
        return None
    beyond = out_of_range(array)
    if beyond:
        detail = f"{beyond} samples beyond [-1, 1], peak {np.abs(array).max():.3g}"
        log.write(json.dumps({"kind": "normalised", "source": path, "reason": "peak-normalised", "detail": detail}))
        log.write("\n")
        array = peak_normalise(array)
    return array


def _generate_examples(shards: list[dict], max_seconds: float | None, min_seconds: float) -> Iterator[dict]:
    """Examples of the records of ``shards``; files left out or rescaled are written to the shard's log."""
    for shard in shards:
        with open(shard["skip_log"], "a", encoding="utf-8") as log:
            for record in shard["records"]:
                array = _usable_audio(record.path, max_seconds, min_seconds, log)
                if array is None:
                    continue
                yield {
                    "id": record.id,
                    "audio": {"bytes": encode_wav(array, SAMPLING_RATE), "path": Path(record.path).name},
                    "emotion": record.emotion,
                    "gender": record.gender,
                    "speaker": record.speaker,
                    "fold": record.fold,
                    "duration": len(array) / SAMPLING_RATE,
                }


def build_dataset(
    records: Sequence[Utterance],
    emotion_names: Sequence[str],
    *,
    corpus: str = "custom",
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    min_seconds: float = MIN_SECONDS,
    num_proc: int = 1,
    strict: bool = False,
    cache_dir: str | Path | None = None,
) -> tuple[datasets.Dataset, list[Skipped], list[Skipped]]:
    """Decode, trim (first ``max_seconds``), resample to 16 kHz and store ``records`` as a [`datasets.Dataset`].

    Records must have their ``fold`` set and an emotion in ``emotion_names``. Files that cannot be decoded, hold NaN
    or infinite samples or last less than ``min_seconds`` are left out; float files with samples beyond [-1, 1] are
    peak-normalised. Examples are streamed to Arrow files in ``cache_dir`` (the `datasets` cache by default) by
    ``num_proc`` processes. Returns the dataset, the files left out (with ``strict`` those raise [`CorpusError`]
    instead) and the files peak-normalised.
    """
    if not records:
        raise CorpusError(f"{corpus}: no utterances to build")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    if min_seconds < 0 or (max_seconds is not None and min_seconds > max_seconds):
        raise ValueError(f"min_seconds must be in [0, max_seconds], got {min_seconds}")
    unknown = sorted({r.emotion for r in records} - set(emotion_names))
    if unknown or any(r.fold is None for r in records):
        raise CorpusError(f"{corpus}: records with labels {unknown} outside {list(emotion_names)} or without a fold")
    num_shards = max(1, min(num_proc, len(records)))
    # The audio column is generated as a plain struct: `datasets.Audio.encode_example` needs torchcodec.
    features = dataset_features(emotion_names)
    generation_features = features.copy()
    generation_features["audio"] = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    with tempfile.TemporaryDirectory(prefix="gemo-clap-skips-") as skip_dir:
        bounds = [len(records) * i // num_shards for i in range(num_shards + 1)]  # contiguous: keeps record order
        shards = [
            {"records": list(records[start:stop]), "skip_log": os.path.join(skip_dir, f"shard-{i}.jsonl")}
            for i, (start, stop) in enumerate(zip(bounds, bounds[1:]))
        ]
        try:
            dataset = datasets.Dataset.from_generator(
                _generate_examples,
                features=generation_features,
                gen_kwargs={"shards": shards, "max_seconds": max_seconds, "min_seconds": min_seconds},
                num_proc=num_shards if num_shards > 1 else None,
                cache_dir=str(cache_dir) if cache_dir is not None else None,
                fingerprint=uuid.uuid4().hex,  # always decode again: the skip logs come from the generator
                writer_batch_size=WRITER_BATCH_SIZE,
            )
        except ValueError as error:  # `datasets` refuses to build a split without examples
            skipped, _ = _read_logs(shards)
            if len(skipped) < len(records):
                raise
            message = f"{corpus}: none of the {len(records)} audio files could be decoded: {_listing(skipped)}"
            raise CorpusError(message) from error
        skipped, normalised = _read_logs(shards)
    if strict and skipped:
        raise CorpusError(f"{corpus}: {len(skipped)} audio file(s) could not be decoded: {_listing(skipped)}")
    dataset = dataset.cast_column("audio", features["audio"])
    dataset.info.dataset_name = corpus
    dataset.info.description = (
        f"{corpus} speech emotion corpus built by gemo-clap build-dataset: 16 kHz mono 16-bit audio"
        + (f" trimmed to the first {max_seconds:g} s" if max_seconds else "")
        + f"; folds {sorted(set(dataset['fold']))}."
    )
    return dataset, skipped, normalised


def build_corpus(
    corpus: str,
    source: str | Path,
    *,
    label_map: str | LabelMap | None = None,
    keep_all: bool = False,
    num_folds: int | None = None,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    min_seconds: float = MIN_SECONDS,
    num_proc: int = 1,
    strict: bool = False,
    cache_dir: str | Path | None = None,
) -> tuple[datasets.Dataset, BuildReport]:
    """Build the dataset of a corpus on disk: read, map labels, assign folds, decode.

    ``corpus`` is a name of ``CORPORA``. A corpus's spec gives its default label map (IEMOCAP: ``4class``; others
    keep all labels unless ``label_map`` is given) and its fixed folds (IEMOCAP: its five sessions); other corpora
    get ``num_folds`` (default 5) speaker-independent folds unless a manifest has a ``fold`` column. With
    ``strict``, any skipped file or malformed label line is an error.
    """
    scan = scan_corpus(corpus, source)
    spec = CORPORA[corpus]
    if strict and scan.skipped:
        raise CorpusError(f"{corpus}: {len(scan.skipped)} problem(s) in {source}: {_listing(scan.skipped)}")
    if label_map is None:
        label_map = spec.default_label_map
    mapping = parse_label_map(label_map) if label_map is not None else None
    records, names, dropped = apply_label_map(scan.records, scan.labels, mapping, keep_all)
    if not records:
        raise CorpusError(
            f"{corpus}: no utterances left in {source} ({len(scan.records)} found, {len(scan.skipped)} skipped, "
            f"dropped by the label map: {dict(dropped)})"
        )
    if spec.fixed_folds is not None:
        if num_folds not in (None, spec.fixed_folds):
            raise CorpusError(
                f"{spec.title} folds are its {spec.fixed_folds} {spec.fold_unit}; got num_folds={num_folds}"
            )
    elif records[0].fold is None:
        records = with_speaker_folds(records, num_folds or DEFAULT_NUM_FOLDS)
    elif num_folds is not None:
        raise CorpusError(f"{source} has a 'fold' column; do not pass num_folds={num_folds}")
    logger.info("%s: building %d utterances (%d skipped while reading)", corpus, len(records), len(scan.skipped))
    dataset, decode_skipped, normalised = build_dataset(
        records,
        names,
        corpus=corpus,
        max_seconds=max_seconds,
        min_seconds=min_seconds,
        num_proc=num_proc,
        strict=strict,
        cache_dir=cache_dir,
    )
    report = BuildReport(corpus, len(dataset), names, scan.skipped + decode_skipped, dropped, normalised, scan.metadata)
    return dataset, report


def save_dataset(dataset: datasets.Dataset, output_dir: str | Path, overwrite: bool = False) -> Path:
    """``save_to_disk`` into a temporary folder beside ``output_dir``, then rename it into place: never half-written."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"output folder already exists: {output_dir} (pass overwrite=True / --overwrite)")
    with atomic_path(output_dir, unique=True) as staging:
        dataset.save_to_disk(str(staging))
    return output_dir


def push_dataset(dataset: datasets.Dataset, repo_id: str, private: bool = True, **kwargs):
    """``dataset.push_to_hub`` that defaults to a private repository and warns when the corpus's licence forbids
    redistributing it (IEMOCAP)."""
    spec = corpus_spec(dataset.info.dataset_name)
    if spec is not None and not spec.redistributable:
        message = (
            f"{spec.title}'s licence forbids redistributing the corpus: keep this dataset private and share it only "
            f"with people who have signed the {spec.title} release agreement."
        )
        message += "" if private else f" Pushing it PUBLICLY to {repo_id} breaks it."
        warnings.warn(message, UserWarning, stacklevel=2)
    return dataset.push_to_hub(repo_id, private=private, **kwargs)


def _read_logs(shards: list[dict]) -> tuple[list[Skipped], list[Skipped]]:
    """(files left out, files peak-normalised) from the shards' logs."""
    entries = [
        json.loads(line)
        for shard in shards
        if os.path.exists(shard["skip_log"])
        for line in Path(shard["skip_log"]).read_text(encoding="utf-8").splitlines()
    ]
    kinds = {"skipped": [], "normalised": []}
    for entry in entries:
        kinds[entry.pop("kind")].append(Skipped(**entry))
    return kinds["skipped"], kinds["normalised"]


def _listing(skipped: Sequence[Skipped], limit: int = 5) -> str:
    shown = "; ".join(str(item) for item in skipped[:limit])
    return shown + (f"; ... and {len(skipped) - limit} more" if len(skipped) > limit else "")
