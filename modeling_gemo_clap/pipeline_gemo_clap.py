"""Zero-shot speech emotion classification with GEmo-CLAP: cosine similarity between the audio embedding and the
embeddings of one prompt per candidate label ("The emotion is {label}."). By default (`segmentation="vad"`) the
speech of an input is found with a VAD and scored as training saw its utterances, trimmed to their speech; sliding
windows inside speech give the emotion timeline (`timeline_gemo_clap`). `segmentation="fixed"` scores the whole
input in chunks, as the ASR pipeline does (`chunk_length_s`)."""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cached_property, partial
from typing import Any

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

from .audio_gemo_clap import pad_to_longest
from .driver_gemo_clap import CallOptions, Prompts, Scorer, ZeroShotDriver, flag_last, longest_first
from .labels_gemo_clap import check_return_gender, resolve_label_prompts
from .streaming_gemo_clap import EmotionStream
from .timeline_gemo_clap import ClipScores, TimelineSettings
from .vad_gemo_clap import VAD_SAMPLING_RATE

PIPELINE_TASK = "zero-shot-audio-classification"


def _allocator_trim() -> Any:
    """glibc's `malloc_trim(0)` (returns the heap's free memory to the system), or a no-op where the C library has
    none. Inputs of every length (speech spans up to the model's maximum beside fixed windows) fragment glibc's heap:
    without a trim per batch the peak memory of a long file grows with its length (from 10 to 60 minutes 1.24x with
    whisper-tiny.en, 1.31x with whisper-base; 1.05x and 1.10x with it, for about a tenth more time:
    benchmarks/README.md)."""
    library = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None
    return (lambda: trim(0)) if trim is not None else (lambda: None)


release_freed_memory = _allocator_trim()


class GEmoClapZeroShotAudioClassificationPipeline(ChunkPipeline):
    """
    `pipeline("zero-shot-audio-classification", model=..., trust_remote_code=True)` for GEmo-CLAP checkpoints.

    Inputs: file paths (decoded with soundfile, no ffmpeg; read chunk by chunk), bytes, 1-D/2-D numpy arrays or
    tensors at the model's sampling rate, `{"array"|"raw": ..., "sampling_rate": ...}` dicts, or lists of these
    (batched with `batch_size`, which counts chunks). `candidate_labels` default to the checkpoint's emotion labels,
    `hypothesis_template` to its prompt template; each label set's prompt embeddings are computed once and reused.

    `segmentation="vad"` (the default; the scoring protocol of `predict`, `evaluate` and training's test scores):
    Silero VAD finds speech (`vad_threshold`, `min_speech_s`, `min_silence_s`, `speech_pad_s`). The overall scores
    are the duration-weighted mean of speech spans scored whole: speech regions at most `span_gap_s` apart joined up
    to the model's maximum, as training pooled each utterance from its first speech to its last; an input without
    speech is scored whole. Windows of `window_s` every `hop_s` inside speech give the timeline: their scores are
    averaged where they overlap, smoothed over `smoothing_s` and merged into segments; non-speech gets no emotion.
    Returns per input `[{"label", "score"}, ...]`, sorted, scores summing to 1. `return_segments=True` gives
    `{"scores", "segments": [{"start", "end", "label", "score"[, "gender"]}, ...], "speech": bool}` (an input
    without speech: no segments, `speech` False); `return_timestamps=True` adds the windows as `"chunks"`;
    `return_embeddings=True` adds `"embeddings"` (numpy arrays of the L2-normalised audio embeddings: `file`,
    `segments`, `windows`, `window_spans`). With `return_gender=True` (checkpoints trained with gender prompts,
    ML-GEmo-CLAP) the result is a dict that also holds `"gender"` scores, computed from the same audio embeddings.

    `segmentation="fixed"` (the default when `chunk_length_s` is given, or where silero-vad is not installed: `pip
    install silero-vad onnxruntime`): the whole input in chunks of `chunk_length_s` (default: the model's
    `max_audio_seconds`); a tail shorter than half a chunk joins the previous chunk (or, where that would exceed the
    model's maximum, the two are split into equal halves). The scores are the duration-weighted mean of the chunks';
    `return_timestamps=True` gives `{"scores": [...], "chunks": [{"timestamp": (start_s, end_s), "scores": [...]},
    ...]}`.

    `stream(sampling_rate=16000, **options)` gives the timeline of live audio (`EmotionStream`: frames in, events
    out), the same segments as the offline timeline.

    Everything but the model is `driver_gemo_clap.ZeroShotDriver` (`driver`), which the ONNX runner shares: its
    options (`CALL_OPTIONS`), chunks, result and streams. `preprocess` yields an input's chunks with their features,
    `_forward` scores a batch of them with the model (`ClipScores`), `postprocess` makes the input's result.
    """

    _load_processor = True
    _load_feature_extractor = True
    _load_tokenizer = True
    _load_image_processor = False

    def __init__(self, *args, **kwargs):
        self._prompt_embeddings: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}
        super().__init__(*args, **kwargs)  # checks its call options: the attributes above first

    def __call__(self, inputs: Any, **kwargs) -> list | dict:
        """Classify one input or a list. A list of in-memory clips is run longest first (length bucketing: little
        padding per batch) and the results come back in input order."""
        if not isinstance(inputs, list):
            return super().__call__(inputs, **kwargs)
        return longest_first(inputs, self.processor.sampling_rate, partial(super().__call__, **kwargs))

    @cached_property
    def driver(self) -> ZeroShotDriver:
        """The options, speech detector, chunks, results and streams, shared with the ONNX runner."""
        resolve = lambda labels, template, gender: Prompts(*self.resolve_prompts(labels, template, gender))
        return ZeroShotDriver(self.processor.sampling_rate, self.model.config.max_audio_seconds, resolve)

    def resolve_prompts(
        self,
        candidate_labels: list[str] | str | None = None,
        hypothesis_template: str | None = None,
        return_gender: bool = False,
        what: str = "candidate_labels",
    ) -> tuple[list[str], str, tuple[list[str], str] | None]:
        """(labels, template, gender labels and template or None) of a call: the given labels and template or the
        checkpoint's (`resolve_label_prompts`; errors name the labels `what`); gender only when asked, of
        checkpoints trained with gender prompts."""
        config = self.model.config
        labels, template = resolve_label_prompts(
            candidate_labels, hypothesis_template, config.emotion_labels, config.prompt_template, what
        )
        if not return_gender:
            return labels, template, None
        check_return_gender(config.has_gender_prompts, config.variant)
        return labels, template, (list(config.gender_labels), config.gender_prompt_template)

    def check_options(self, **options: Any) -> CallOptions:
        """The checked call options (as `__call__` takes them); a `ValueError` naming the first one this checkpoint
        cannot serve, before any audio is read."""
        return self.driver.options(**options)

    def stream(self, sampling_rate: int = VAD_SAMPLING_RATE, **options: Any) -> EmotionStream:
        """The emotion timeline of live audio at `sampling_rate`: an `EmotionStream` whose `push(frames)` returns
        partial and final segment events as the audio comes. Options (`candidate_labels`, `hypothesis_template`,
        `return_gender`, `batch_size`: windows per audio-tower call, and the timeline's) as `ZeroShotDriver.stream`."""
        return self.driver.stream(self.scorer, sampling_rate, **options)

    def _sanitize_parameters(self, **options):
        call = self.driver.options(**options)
        return {"settings": call.settings}, {"prompts": call.prompts}, {"call": call}

    def preprocess(self, audio: Any, settings: TimelineSettings):
        """The chunks of one input (`ZeroShotDriver.chunks`: a file is read a chunk or a block at a time), each with
        its features computed on its clip alone (as the processor does for every clip of a batch)."""
        rate = self.processor.sampling_rate
        for (chunk, clip), is_last in flag_last(self.driver.chunks(audio, settings)):
            features = self.processor(audio=[clip], sampling_rate=rate, return_tensors="np")
            yield {"chunk": chunk, "features": features[self.processor.audio_tower.input_name][0], "is_last": is_last}

    def prompt_embeddings(self, candidate_labels: list[str], hypothesis_template: str) -> torch.Tensor:
        """`model.get_label_embeddings` of the label prompts, computed once per (labels, template)."""
        key = (tuple(candidate_labels), hypothesis_template)
        if key not in self._prompt_embeddings:
            self._prompt_embeddings[key] = self.model.get_label_embeddings(
                self.processor, candidate_labels, hypothesis_template
            )
        return self._prompt_embeddings[key]

    def audio_scores(self, inputs: dict[str, Any], prompts: Prompts) -> ClipScores:
        """The model's `ClipScores` of a batch of audio inputs (the processor's): one audio-tower pass, the
        probabilities of each head (emotion, and gender when asked) and the audio embeddings."""
        audio_embeds = self.model.get_audio_features(
            **{key: torch.as_tensor(value, device=self.device) for key, value in inputs.items()}
        )
        probabilities = lambda prompt: (
            self.model.similarity_logits(audio_embeds, self.prompt_embeddings(*prompt))[0]
            .float()
            .softmax(dim=-1)
            .cpu()
            .numpy()
        )
        gender = probabilities(prompts.gender) if prompts.gender is not None else None
        return ClipScores(probabilities((prompts.labels, prompts.template)), gender, audio_embeds.float().cpu().numpy())

    def scorer(self, prompts: Prompts) -> Scorer:
        """The model as a scorer of `prompts` (clips in, `ClipScores` out), for streams."""
        rate = self.processor.sampling_rate

        def score(clips: list[np.ndarray]) -> ClipScores:
            with torch.inference_mode():
                return self.audio_scores(self.processor(audio=clips, sampling_rate=rate, return_tensors="np"), prompts)

        return score

    def _forward(self, model_inputs, prompts: Prompts):
        features = model_inputs["features"]  # one chunk's (batch_size 1) or a list (a batch: transformers' collation)
        padding = self.processor.feature_extractor.padding_value
        batch, mask = pad_to_longest(features if isinstance(features, list) else [features], padding)
        scores = self.audio_scores(
            {self.processor.audio_tower.input_name: batch, "audio_attention_mask": mask}, prompts
        )
        release_freed_memory()
        return {"chunk": model_inputs["chunk"], "is_last": model_inputs["is_last"], **vars(scores)}

    def postprocess(self, model_outputs, call: CallOptions):
        row = lambda values: None if values is None else values[0]
        scored = [
            (output["chunk"], ClipScores(row(output["emotion"]), row(output["gender"]), row(output["embedding"])))
            for output in model_outputs
        ]
        return self.driver.result(scored, call)


__all__ = ["PIPELINE_TASK", "GEmoClapZeroShotAudioClassificationPipeline"]
