"""Corpora on disk -> Hugging Face ``datasets.Dataset`` with one schema for every corpus.

Columns: ``id``, ``audio`` (``Audio(sampling_rate=16000, decode=False)``: 16-bit PCM WAV bytes, decode with
[`decode_example_audio`]), ``emotion`` and ``gender`` (``ClassLabel``), ``speaker``, ``fold`` (1..K), ``duration``.
"""

from .audio import SAMPLING_RATE, AudioDecodeError, decode_example_audio, encode_wav
from .builder import (
    BuildReport,
    build_corpus,
    build_dataset,
    dataset_features,
    push_dataset,
    save_dataset,
)
from .corpora import CORPORA, CorpusSpec, corpus_spec, scan_corpus
from .folds import assign_speaker_folds
from .label_maps import FOUR_CLASS, PRESETS, LabelMap, apply_label_map, parse_label_map
from .records import CorpusError, CorpusScan, Skipped, Utterance
from .summary import format_summary

__all__ = [
    "SAMPLING_RATE",
    "AudioDecodeError",
    "BuildReport",
    "CorpusError",
    "CorpusScan",
    "FOUR_CLASS",
    "LabelMap",
    "PRESETS",
    "CORPORA",
    "CorpusSpec",
    "Skipped",
    "Utterance",
    "apply_label_map",
    "assign_speaker_folds",
    "build_corpus",
    "corpus_spec",
    "build_dataset",
    "dataset_features",
    "decode_example_audio",
    "encode_wav",
    "format_summary",
    "parse_label_map",
    "push_dataset",
    "save_dataset",
    "scan_corpus",
]
