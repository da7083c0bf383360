"""Zero-shot speech emotion classification with GEmo-CLAP: cosine similarity between the audio embedding and the
embeddings of one prompt per candidate label ("The emotion is {label}."). By default (`segmentation="vad"`) the
speech of an input is found with a VAD and scored as training saw its utterances, trimmed to their speech; sliding
windows inside speech give the emotion timeline (`timeline_gemo_clap`). `segmentation="fixed"` scores the whole
input in chunks, as the ASR pipeline does (`chunk_length_s`)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from transformers.pipelines.base import ChunkPipeline
from transformers.utils import logging

from .audio_gemo_clap import longest_first
from .labels_gemo_clap import check_return_gender, resolve_label_prompts
from .streaming_gemo_clap import EmotionStream, WindowScorer
from .timeline_gemo_clap import (
    SPAN_KEYS,
    VAD_OPTIONS,
    TimelineSettings,
    chunk_output,
    input_chunks,
    timeline_result,
    timeline_settings,
)
from .vad_gemo_clap import INSTALL_HINT, SileroVad, vad_installed

PIPELINE_TASK = "zero-shot-audio-classification"
logger = logging.get_logger(__name__)


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
    """

    _load_processor = True
    _load_feature_extractor = True
    _load_tokenizer = True
    _load_image_processor = False

    def __init__(self, *args, **kwargs):
        self._prompt_embeddings: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}
        self._vad: SileroVad | None = None
        self._warned_no_vad = False
        super().__init__(*args, **kwargs)  # checks its call options: the attributes above first

    def __call__(self, inputs: Any, **kwargs) -> list | dict:
        """Classify one input or a list. A list of in-memory clips is run longest first (length bucketing: little
        padding per batch) and the results come back in input order."""
        if not isinstance(inputs, list):
            return super().__call__(inputs, **kwargs)
        return longest_first(inputs, self.processor.sampling_rate, partial(super().__call__, **kwargs))

    @property
    def vad(self) -> SileroVad:
        """The speech detector (Silero VAD from the installed `silero-vad` wheel), loaded when first needed."""
        if self._vad is None:
            self._vad = SileroVad()
        return self._vad

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

    def check_options(self, **options: Any) -> None:
        """A `ValueError` naming the first call option (as `__call__` takes them) this checkpoint cannot serve,
        before any audio is read."""
        self._sanitize_parameters(**options)

    def _sanitize_parameters(
        self,
        candidate_labels=None,
        hypothesis_template=None,
        chunk_length_s=None,
        return_timestamps=None,
        return_gender=None,
        segmentation=None,
        return_segments=None,
        return_embeddings=None,
        window_s=None,
        hop_s=None,
        smoothing_s=None,
        vad_threshold=None,
        min_speech_s=None,
        min_silence_s=None,
        speech_pad_s=None,
        span_gap_s=None,
        **kwargs,
    ):
        config = self.model.config
        labels, template, gender = self.resolve_prompts(candidate_labels, hypothesis_template, bool(return_gender))
        vad_available = self._vad is not None or vad_installed()
        if segmentation is None and not vad_available and not self._warned_no_vad:
            logger.warning(f"no speech detector installed: scoring whole inputs ({INSTALL_HINT} to score speech)")
            self._warned_no_vad = True
        settings = timeline_settings(
            config.max_audio_seconds,
            self.processor.sampling_rate,
            segmentation,
            vad_available,
            chunk_length_s,
            window_s=window_s,
            hop_s=hop_s,
            smoothing_s=smoothing_s,
            vad_threshold=vad_threshold,
            min_speech_s=min_speech_s,
            min_silence_s=min_silence_s,
            speech_pad_s=speech_pad_s,
            span_gap_s=span_gap_s,
        )
        if settings.segmentation == "vad" and self._vad is None:
            self._vad = SileroVad()  # a missing silero-vad is reported before any input is read
        forward = {
            "candidate_labels": labels,
            "hypothesis_template": template,
            "gender": gender,
            "return_embeddings": bool(return_embeddings),
        }
        postprocess = {
            "candidate_labels": labels,
            "gender": gender,
            "settings": settings,
            "return_timestamps": bool(return_timestamps),
            "return_segments": bool(return_segments),
            "return_embeddings": bool(return_embeddings),
        }
        return {"settings": settings}, forward, postprocess

    def preprocess(self, audio: Any, settings: TimelineSettings):
        """The chunks (segmentation="fixed") or speech windows and spans ("vad") of one input (`input_chunks`); a
        file is read a chunk or a block at a time."""
        rate = self.processor.sampling_rate
        yield from input_chunks(audio, rate, settings, self.model.config.max_audio_seconds, lambda: self.vad)

    def prompt_embeddings(self, candidate_labels: list[str], hypothesis_template: str) -> torch.Tensor:
        """`model.get_label_embeddings` of the label prompts, computed once per (labels, template)."""
        key = (tuple(candidate_labels), hypothesis_template)
        if key not in self._prompt_embeddings:
            self._prompt_embeddings[key] = self.model.get_label_embeddings(
                self.processor, candidate_labels, hypothesis_template
            )
        return self._prompt_embeddings[key]

    def audio_scores(
        self, clips: list, heads: dict[str, tuple[list[str], str]]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(the audio embeddings of `clips`, each head's similarity logits): one audio-tower pass for every head;
        `heads` maps a name to its (labels, template)."""
        inputs = self.processor(audio=clips, sampling_rate=self.processor.sampling_rate)
        audio_embeds = self.model.get_audio_features(**inputs.to(self.device))
        logits = {
            name: self.model.similarity_logits(audio_embeds, self.prompt_embeddings(*prompts))[0]
            for name, prompts in heads.items()
        }
        return audio_embeds, logits

    def stream(
        self,
        sampling_rate: int = 16000,
        candidate_labels: list[str] | str | None = None,
        hypothesis_template: str | None = None,
        return_gender: bool = False,
        batch_size: int = 8,
        **timeline_options: float | None,
    ) -> EmotionStream:
        """The emotion timeline of live audio at `sampling_rate` (resampled to the model's when different): an
        `EmotionStream` whose `push(frames)` returns partial and final segment events as the audio comes. Options
        as the call's (`window_s`, `hop_s`, `smoothing_s`, `vad_threshold`, `min_speech_s`, `min_silence_s`,
        `speech_pad_s`); `batch_size` windows per audio-tower call."""
        unknown = sorted(set(timeline_options) - set(VAD_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected stream option(s) {unknown}; known: {list(VAD_OPTIONS)}")
        preprocess, forward, _ = self._sanitize_parameters(
            candidate_labels=candidate_labels,
            hypothesis_template=hypothesis_template,
            return_gender=return_gender,
            segmentation="vad",
            return_segments=True,
            **timeline_options,
        )
        heads = {"logits": (forward["candidate_labels"], forward["hypothesis_template"])}
        if forward["gender"] is not None:
            heads["gender_logits"] = forward["gender"]

        def score(clips: list) -> tuple:
            with torch.inference_mode():
                _, logits = self.audio_scores(clips, heads)
            probabilities = {name: value.float().softmax(dim=-1).cpu().numpy() for name, value in logits.items()}
            return probabilities["logits"], probabilities.get("gender_logits")

        gender_labels = forward["gender"][0] if forward["gender"] is not None else None
        scorer = WindowScorer(score, forward["candidate_labels"], gender_labels, self.processor.sampling_rate)
        return EmotionStream(scorer, self.vad, preprocess["settings"], sampling_rate, batch_size)

    def _forward(self, model_inputs, candidate_labels, hypothesis_template, gender, return_embeddings):
        clips = model_inputs["audio"]
        clips = clips if isinstance(clips, list) else [clips]
        outputs = {key: model_inputs[key] for key in (*SPAN_KEYS, "is_last")}
        heads = {"logits": (candidate_labels, hypothesis_template)}
        if gender is not None:
            heads["gender_logits"] = gender
        audio_embeds, logits = self.audio_scores(clips, heads)
        outputs.update(logits)
        if return_embeddings:
            outputs["audio_embeds"] = audio_embeds
        return outputs

    def postprocess(
        self, model_outputs, candidate_labels, gender, settings, return_timestamps, return_segments, return_embeddings
    ):
        outputs = []
        for output in model_outputs:
            probabilities = {
                key: output[key][0].float().softmax(dim=-1).cpu().numpy()
                for key in ("logits", "gender_logits")
                if key in output
            }
            embedding = output["audio_embeds"][0].float().cpu().numpy() if return_embeddings else None
            outputs.append(chunk_output(output, probabilities["logits"], probabilities.get("gender_logits"), embedding))
        return timeline_result(
            outputs,
            candidate_labels,
            gender[0] if gender is not None else None,
            settings,
            self.processor.sampling_rate,
            return_timestamps=return_timestamps,
            return_segments=return_segments,
            return_embeddings=return_embeddings,
        )


__all__ = ["PIPELINE_TASK", "GEmoClapZeroShotAudioClassificationPipeline"]
