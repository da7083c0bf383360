"""Corpora on disk -> Hugging Face ``datasets.Dataset`` with one schema for every corpus ([`dataset_features`]:
audio stored as 16-bit PCM WAV bytes at ``SAMPLING_RATE``, decoded with [`decode_example_audio`]), and the atomic
writes every layer above uses (`atomic`).

The public names below are imported on first use, as transformers' packages do: `gemo_clap.processing.atomic`
(used by `predict` and the app) stays free of `datasets` and the audio decoders.
"""

from importlib import import_module

_MODULE_OF = {  # public name -> the module that defines it
    "SAMPLING_RATE": "audio",
    "AudioDecodeError": "audio",
    "decode_example_audio": "audio",
    "encode_wav": "audio",
    "BuildReport": "builder",
    "build_corpus": "builder",
    "build_dataset": "builder",
    "dataset_features": "builder",
    "push_dataset": "builder",
    "save_dataset": "builder",
    "CORPORA": "corpora",
    "CorpusSpec": "corpora",
    "corpus_spec": "corpora",
    "scan_corpus": "corpora",
    "assign_speaker_folds": "folds",
    "FOUR_CLASS": "label_maps",
    "PRESETS": "label_maps",
    "LabelMap": "label_maps",
    "apply_label_map": "label_maps",
    "parse_label_map": "label_maps",
    "CorpusError": "records",
    "CorpusScan": "records",
    "Skipped": "records",
    "Utterance": "records",
    "format_summary": "summary",
}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_MODULE_OF[name]}", __name__), name)
