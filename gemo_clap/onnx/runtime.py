"""Run a folder written by `gemo-clap export-onnx` with onnxruntime, without torch or transformers: one ONNX graph
(whose label prompts were embedded at export) fed numpy features is the scorer behind the zero-shot driver the
pipeline uses (`ZeroShotDriver`: the call's options, chunking, the emotion timeline with the export's copy of Silero
VAD, results and streams). Needs onnxruntime, numpy and soundfile (files), and librosa only to resample other
sampling rates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..modeling.audio_gemo_clap import validate_audio
from ..modeling.driver_gemo_clap import CallOptions, Prompts, Scorer, ZeroShotDriver
from ..modeling.labels_gemo_clap import check_return_gender, parse_labels
from ..modeling.streaming_gemo_clap import EmotionStream
from ..modeling.timeline_gemo_clap import ClipScores
from ..modeling.vad_gemo_clap import VAD_MODEL_FILE, VAD_SAMPLING_RATE
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
    results: `runner(inputs, batch_size=1, **options)` with the pipeline's options (`driver_gemo_clap.CALL_OPTIONS`:
    `candidate_labels`, `hypothesis_template`, `chunk_length_s`, `return_timestamps`, `return_gender`,
    `segmentation`, `return_segments`, `return_embeddings`, `window_s`, `hop_s`, ...), checked by the same
    `ZeroShotDriver`. The emotion timeline (segmentation="vad") runs the export's copy of Silero VAD
    (`silero_vad_16k_sequence.onnx`, written by `export-onnx`) with onnxruntime.

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
        vad_path = folder / VAD_MODEL_FILE if (folder / VAD_MODEL_FILE).is_file() else None
        self.driver = ZeroShotDriver(self.sampling_rate, self.max_audio_seconds, self.resolve_prompts, vad_path)

    def __call__(self, inputs: Any, batch_size: int = 1, **options: Any) -> list | dict:
        """Per input what the pipeline gives with the same options: the ranked `[{"label", "score"}, ...]`, or with
        `return_timestamps`, `return_gender`, `return_segments` or `return_embeddings` a dict (`scores`, `chunks`,
        `gender`, `segments`, `speech`, `embeddings`). A list of in-memory clips is run longest first; results come
        back in input order."""
        call = self.driver.options(**options)
        return self.driver.classify(inputs, call, self.scorer(call.prompts), batch_size)

    def stream(self, sampling_rate: int = VAD_SAMPLING_RATE, **options: Any) -> EmotionStream:
        """The emotion timeline of live audio, as the pipeline's `stream()`: an `EmotionStream` at `sampling_rate`
        whose `push(frames)` returns partial and final segment events; the same options and events."""
        return self.driver.stream(self.scorer, sampling_rate, **options)

    def check_options(self, **options: Any) -> CallOptions:
        """The checked call options; a `ValueError` for options the export cannot serve (named as the pipeline's,
        so `gemo-clap predict` checks either before reading any file)."""
        return self.driver.options(**options)

    def resolve_prompts(
        self, candidate_labels: Sequence[str] | str | None, hypothesis_template: str | None, return_gender: bool
    ) -> Prompts:
        """The export's prompts: `candidate_labels` and `hypothesis_template` may only repeat the ones fixed at
        export (the labels in any order); gender only of checkpoints trained with gender prompts."""
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
        if not return_gender:
            return Prompts(self.labels, self.template)
        check_return_gender(self.gender_labels is not None, self.config["variant"])
        return Prompts(self.labels, self.template, (self.gender_labels, self.config.get("gender_template")))

    def model_inputs(self, clips: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's inputs for mono float32 clips at `sampling_rate` (each checked as the processor does)."""
        arrays = [validate_audio(clip, self.sampling_rate, f"audio item {index}") for index, clip in enumerate(clips)]
        features, mask = batch_features(arrays, self.features, self.mel_filters)
        return {self.config["input_name"]: features, MASK_INPUT: mask}

    def scorer(self, prompts: Prompts) -> Scorer:
        """The graph as a scorer (clips in, `ClipScores` out) of `prompts` (the export's: they only say whether
        gender is scored)."""
        names = [PROBABILITIES, AUDIO_EMBEDS] + ([GENDER_PROBABILITIES] if prompts.gender is not None else [])

        def score(clips: list[np.ndarray]) -> ClipScores:
            outputs = dict(zip(names, self.session.run(names, self.model_inputs(clips))))
            return ClipScores(outputs[PROBABILITIES], outputs.get(GENDER_PROBABILITIES), outputs[AUDIO_EMBEDS])

        return score
