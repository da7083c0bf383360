"""Run a folder written by `gemo-clap export-onnx` with onnxruntime, without torch or transformers: the zero-shot
pipeline's call, chunking and results, from numpy features and one ONNX graph whose label prompts were embedded at
export, and the emotion timeline with the export's copy of Silero VAD. Needs onnxruntime, numpy and soundfile (files),
and librosa only to resample other sampling rates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ..modeling.audio_gemo_clap import longest_first, validate_audio
from ..modeling.labels_gemo_clap import check_return_gender, parse_labels
from ..modeling.streaming_gemo_clap import EmotionStream, WindowScorer
from ..modeling.timeline_gemo_clap import (
    TimelineSettings,
    chunk_output,
    input_chunks,
    timeline_result,
    timeline_settings,
)
from ..modeling.vad_gemo_clap import VAD_MODEL_FILE, SileroVad, vad_installed
from .features import batch_features

# the exported folder
ONNX_FILE, CONFIG_FILE, README_FILE = "model.onnx", "gemo_clap_onnx.json", "README.md"
FORMAT_VERSION = 1
DEFAULT_OPSET = 17  # what export-onnx writes unless told otherwise: onnxruntime >= 1.14 runs it
# the graph's mask input and outputs (its feature input is named as the audio tower's: the JSON's input_name)
MASK_INPUT = "audio_attention_mask"
PROBABILITIES, AUDIO_EMBEDS, GENDER_PROBABILITIES = "probabilities", "audio_embeds", "gender_probabilities"


def inference_session(model: str | bytes, num_threads: int | None = None, providers: Sequence[str] | None = None):
    """An onnxruntime session of `model` (a path or serialised bytes) with `num_threads` intra-op threads (None:
    onnxruntime's choice) and one inter-op thread, on `providers` (default: every available one)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("the ONNX runner needs onnxruntime: pip install onnxruntime") from error
    options = onnxruntime.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads, options.inter_op_num_threads = num_threads, 1
    return onnxruntime.InferenceSession(
        model, options, providers=list(providers or onnxruntime.get_available_providers())
    )


class GEmoClapOnnxRunner:
    """
    Zero-shot emotion scores from an exported folder, called like the zero-shot pipeline and giving the same
    results: `runner(inputs, candidate_labels=None, hypothesis_template=None, chunk_length_s=None,
    return_timestamps=False, return_gender=False, batch_size=1, segmentation=None, return_segments=False,
    return_embeddings=False, window_s=..., hop_s=..., ...)`. The emotion timeline (segmentation="vad") runs the
    export's copy of Silero VAD (`silero_vad_16k_sequence.onnx`, written by `export-onnx`) with onnxruntime.

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
        self.session = inference_session(str(folder / ONNX_FILE), num_threads, providers)
        self.config = config
        self.labels: list[str] = config["labels"]
        self.template: str = config["template"]
        self.gender_labels: list[str] | None = config["gender_labels"]
        self.sampling_rate: int = config["sampling_rate"]
        self.max_audio_seconds: float = config["max_audio_seconds"]
        self.features = config["features"]
        self.mel_filters = np.load(folder / self.features["mel_filters"]) if "mel_filters" in self.features else None
        self.vad_path = folder / VAD_MODEL_FILE if (folder / VAD_MODEL_FILE).is_file() else None
        self._vad: SileroVad | None = None

    def __call__(
        self,
        inputs: Any,
        candidate_labels: Sequence[str] | str | None = None,
        hypothesis_template: str | None = None,
        chunk_length_s: float | None = None,
        return_timestamps: bool = False,
        return_gender: bool = False,
        batch_size: int = 1,
        segmentation: str | None = None,
        return_segments: bool = False,
        return_embeddings: bool = False,
        **timeline_options: float | None,
    ) -> list | dict:
        """Per input what the pipeline gives with the same options: the ranked `[{"label", "score"}, ...]`, or with
        `return_timestamps`, `return_gender`, `return_segments` or `return_embeddings` a dict (`scores`, `chunks`,
        `gender`, `segments`, `speech`, `embeddings`). `timeline_options`: the pipeline's `window_s`, `hop_s`,
        `smoothing_s`, `vad_threshold`, `min_speech_s`, `min_silence_s`, `speech_pad_s`. A list of in-memory clips
        is run longest first; results come back in input order."""
        settings, with_gender = self.check_options(
            candidate_labels,
            hypothesis_template,
            chunk_length_s,
            return_gender,
            segmentation=segmentation,
            **timeline_options,
        )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        asked = {
            "return_timestamps": bool(return_timestamps),
            "return_segments": bool(return_segments),
            "return_embeddings": bool(return_embeddings),
        }

        def classify(items: list) -> list:
            return self._classify(items, settings, with_gender, batch_size, **asked)

        if isinstance(inputs, list):
            return longest_first(inputs, self.sampling_rate, classify)
        return classify([inputs])[0]

    def stream(
        self,
        sampling_rate: int = 16000,
        candidate_labels: Sequence[str] | str | None = None,
        hypothesis_template: str | None = None,
        return_gender: bool = False,
        batch_size: int = 8,
        **timeline_options: float | None,
    ) -> EmotionStream:
        """The emotion timeline of live audio, as the pipeline's `stream()`: an `EmotionStream` at `sampling_rate`
        whose `push(frames)` returns partial and final segment events; the same options and events."""
        settings, with_gender = self.check_options(
            candidate_labels,
            hypothesis_template,
            return_gender=return_gender,
            segmentation="vad",
            **timeline_options,
        )
        names = [PROBABILITIES] + ([GENDER_PROBABILITIES] if with_gender else [])

        def score(clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
            outputs = self.session.run(names, self.model_inputs(clips))
            return outputs[0], outputs[1] if with_gender else None

        scorer = WindowScorer(score, self.labels, self.gender_labels if with_gender else None, self.sampling_rate)
        return EmotionStream(scorer, self.vad, settings, sampling_rate, batch_size)

    @property
    def vad(self) -> SileroVad:
        """The speech detector: the export's own copy of Silero VAD, else the installed `silero-vad` wheel's."""
        if self._vad is None:
            self._vad = SileroVad(self.vad_path)
        return self._vad

    def check_options(
        self,
        candidate_labels: Sequence[str] | str | None = None,
        hypothesis_template: str | None = None,
        chunk_length_s: float | None = None,
        return_gender: bool = False,
        segmentation: str | None = None,
        **timeline_options: float | None,
    ) -> tuple[TimelineSettings, bool]:
        """(timeline settings, whether gender is scored); a `ValueError` for options the export cannot serve (named
        as the pipeline's, so `gemo-clap predict` checks either before reading any file)."""
        candidate_labels = parse_labels(candidate_labels)
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
        if return_gender:
            check_return_gender(self.gender_labels is not None, self.config["variant"])
        settings = timeline_settings(
            self.max_audio_seconds,
            self.sampling_rate,
            segmentation,
            self._vad is not None or self.vad_path is not None or vad_installed(),
            chunk_length_s,
            **timeline_options,
        )
        if settings.segmentation == "vad" and self._vad is None:
            self._vad = SileroVad(self.vad_path)  # a missing speech detector is reported before any input is read
        return settings, bool(return_gender)

    def model_inputs(self, clips: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's inputs for mono float32 clips at `sampling_rate` (each checked as the processor does)."""
        arrays = [validate_audio(clip, self.sampling_rate, f"audio item {index}") for index, clip in enumerate(clips)]
        features, mask = batch_features(arrays, self.features, self.mel_filters)
        return {self.config["input_name"]: features, MASK_INPUT: mask}

    def _classify(
        self,
        items: list,
        settings: TimelineSettings,
        with_gender: bool,
        batch_size: int,
        return_timestamps: bool,
        return_segments: bool,
        return_embeddings: bool,
    ) -> list:
        """The results of `items`, their chunks run through the graph `batch_size` at a time, in order."""
        names = [PROBABILITIES] + ([GENDER_PROBABILITIES] if with_gender else []) + [AUDIO_EMBEDS]
        outputs: list[list[dict]] = [[] for _ in items]
        chunks = (
            (index, chunk)
            for index, item in enumerate(items)
            for chunk in input_chunks(item, self.sampling_rate, settings, self.max_audio_seconds, lambda: self.vad)
        )
        while batch := list(islice(chunks, batch_size)):
            rows = zip(*self.session.run(names, self.model_inputs([chunk["audio"] for _, chunk in batch])))
            for (index, chunk), row in zip(batch, rows):
                gender = row[1] if with_gender else None
                outputs[index].append(chunk_output(chunk, row[0], gender, row[-1] if return_embeddings else None))
        return [
            timeline_result(
                output,
                self.labels,
                self.gender_labels if with_gender else None,
                settings,
                self.sampling_rate,
                return_timestamps=return_timestamps,
                return_segments=return_segments,
                return_embeddings=return_embeddings,
            )
            for output in outputs
        ]
