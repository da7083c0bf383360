"""Run a folder written by `gemo-clap export-onnx` with onnxruntime, without torch or transformers: the zero-shot
pipeline's call, chunking and results, from numpy features and one ONNX graph whose label prompts were embedded at
export. Needs onnxruntime, numpy and soundfile (files), and librosa only to resample other sampling rates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ..modeling.audio_gemo_clap import audio_chunks, check_chunk_length, chunk_results, longest_first, validate_audio
from .features import batch_features

# the exported folder
ONNX_FILE, CONFIG_FILE, README_FILE = "model.onnx", "gemo_clap_onnx.json", "README.md"
FORMAT_VERSION = 1
DEFAULT_OPSET = 17  # what export-onnx writes unless told otherwise: onnxruntime >= 1.14 runs it
# the graph's mask input and outputs (its feature input is named as the audio tower's: the JSON's input_name)
MASK_INPUT = "audio_attention_mask"
PROBABILITIES, AUDIO_EMBEDS, GENDER_PROBABILITIES = "probabilities", "audio_embeds", "gender_probabilities"


class GEmoClapOnnxRunner:
    """
    Zero-shot emotion scores from an exported folder, called like the zero-shot pipeline and giving the same
    results: `runner(inputs, candidate_labels=None, hypothesis_template=None, chunk_length_s=None,
    return_timestamps=False, return_gender=False, batch_size=1)`.

    Inputs: file paths (read chunk by chunk), bytes, 1-D/2-D numpy arrays at `sampling_rate`, `{"array"|"raw",
    "sampling_rate"}` dicts (resampled), or lists of these (`batch_size` counts chunks). Labels and template are
    fixed at export: `candidate_labels` (in any order) and `hypothesis_template` may only repeat them.

    Args:
        folder: the folder `gemo-clap export-onnx` wrote.
        num_threads: onnxruntime's intra-op threads (None: its default, one per core).
        providers: onnxruntime execution providers (None: those available).
    """

    def __init__(self, folder: str | Path, num_threads: int | None = None, providers: Sequence[str] | None = None):
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{folder} holds no {CONFIG_FILE}: not a folder written by gemo-clap export-onnx")
        config = json.loads((folder / CONFIG_FILE).read_text())
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{folder / CONFIG_FILE} has format_version {config.get('format_version')!r}; this runner reads "
                f"{FORMAT_VERSION}: export the model again with this gemo-clap"
            )
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("the ONNX runner needs onnxruntime: pip install onnxruntime") from error
        options = onnxruntime.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = num_threads, 1
        self.session = onnxruntime.InferenceSession(
            str(folder / ONNX_FILE), options, providers=list(providers or onnxruntime.get_available_providers())
        )
        self.config = config
        self.labels: list[str] = config["labels"]
        self.template: str = config["template"]
        self.gender_labels: list[str] | None = config["gender_labels"]
        self.sampling_rate: int = config["sampling_rate"]
        self.max_audio_seconds: float = config["max_audio_seconds"]
        self.features = config["features"]
        self.mel_filters = np.load(folder / self.features["mel_filters"]) if "mel_filters" in self.features else None

    def __call__(
        self,
        inputs: Any,
        candidate_labels: Sequence[str] | str | None = None,
        hypothesis_template: str | None = None,
        chunk_length_s: float | None = None,
        return_timestamps: bool = False,
        return_gender: bool = False,
        batch_size: int = 1,
    ) -> list | dict:
        """Per input the ranked `[{"label", "score"}, ...]` (the duration-weighted mean over its chunks); with
        `return_timestamps` or `return_gender` a dict `{"scores", "chunks"?, "gender"?}`, as the pipeline gives.
        A list of in-memory clips is run longest first; results come back in input order."""
        chunk, with_gender = self._sanitize_parameters(
            candidate_labels, hypothesis_template, chunk_length_s, return_gender
        )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

        def classify(items: list) -> list:
            return self._classify(items, chunk, with_gender, bool(return_timestamps), batch_size)

        if isinstance(inputs, list):
            return longest_first(inputs, self.sampling_rate, classify)
        return classify([inputs])[0]

    def _sanitize_parameters(
        self,
        candidate_labels: Sequence[str] | str | None = None,
        hypothesis_template: str | None = None,
        chunk_length_s: float | None = None,
        return_gender: bool = False,
    ) -> tuple[float, bool]:
        """(chunk length, whether gender is scored); a `ValueError` for options the export cannot serve (named as
        the pipeline's, so `gemo-clap predict` checks either before reading any file)."""
        if isinstance(candidate_labels, str):
            candidate_labels = [label.strip() for label in candidate_labels.split(",")]
        if candidate_labels is not None and sorted(candidate_labels) != sorted(self.labels):
            raise ValueError(
                f"labels {list(candidate_labels)!r} differ from the ones fixed at export {self.labels!r}: "
                "export the model again with `gemo-clap export-onnx --labels ...`"
            )
        if hypothesis_template is not None and hypothesis_template != self.template:
            raise ValueError(
                f"hypothesis_template {hypothesis_template!r} differs from the one fixed at export "
                f"{self.template!r}: export the model again with `gemo-clap export-onnx --template ...`"
            )
        if return_gender and self.gender_labels is None:
            raise ValueError(
                "return_gender needs a checkpoint trained with gender prompts (e.g. ML-GEmo-CLAP); this one is "
                f"{self.config['variant']!r}"
            )
        return check_chunk_length(chunk_length_s, self.max_audio_seconds), bool(return_gender)

    def model_inputs(self, clips: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's inputs for mono float32 clips at `sampling_rate` (each checked as the processor does)."""
        arrays = [validate_audio(clip, self.sampling_rate, f"audio item {index}") for index, clip in enumerate(clips)]
        features, mask = batch_features(arrays, self.features, self.mel_filters)
        return {self.config["input_name"]: features, MASK_INPUT: mask}

    def _classify(
        self, items: list, chunk_length_s: float, with_gender: bool, return_timestamps: bool, batch_size: int
    ) -> list:
        """The results of `items`, their chunks run through the graph `batch_size` at a time, in order."""
        tasks = {"scores": (PROBABILITIES, self.labels)}
        if with_gender:
            tasks["gender"] = (GENDER_PROBABILITIES, self.gender_labels)
        outputs = [output for output, _ in tasks.values()]
        spans: list[list[tuple[float, float]]] = [[] for _ in items]
        scores: list[dict[str, list[np.ndarray]]] = [{name: [] for name in tasks} for _ in items]
        pieces = (
            (index, span, clip)
            for index, item in enumerate(items)
            for span, clip in audio_chunks(item, self.sampling_rate, chunk_length_s, self.max_audio_seconds)
        )
        while batch := list(islice(pieces, batch_size)):
            results = self.session.run(outputs, self.model_inputs([clip for _, _, clip in batch]))
            for row, (index, span, _) in enumerate(batch):
                spans[index].append(span)
                for name, result in zip(tasks, results):
                    scores[index][name].append(result[row])
        return [
            chunk_results(
                spans[index], {name: (scores[index][name], tasks[name][1]) for name in tasks}, return_timestamps
            )
            for index in range(len(items))
        ]
