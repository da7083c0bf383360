"""The zero-shot inference driver shared by the torch pipeline and the ONNX runner, without torch: a call's options
(one table, `CALL_OPTIONS`, checked once), the speech detector, the chunks of an input to score, batching, the
result of an input from its chunks' scores, and the live stream. The backend is only a *scorer*: clips in (mono
float32 at the model's rate), `ClipScores` out (emotion and gender probabilities and embeddings, named arrays).

    inputs -> `ZeroShotDriver.chunks` -> (`Chunk`, clip) -> scorer -> (`Chunk`, `ClipScores`) -> `ZeroShotDriver.result`

The ONNX runner runs the whole line with `ZeroShotDriver.classify`; the pipeline runs the same steps as transformers
pipelines do (`preprocess`: the chunks and their features, `_forward`: the model, `postprocess`: the result).
Times are sample indices (a chunk's `rate`) until the result reports seconds. Imports numpy and the standard
library (and the timeline, streaming, VAD and audio modules).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .audio_gemo_clap import audio_chunks, audio_spans
from .streaming_gemo_clap import EmotionStream, WindowScorer
from .timeline_gemo_clap import (
    VAD_OPTIONS,
    ClipScores,
    TimelineAccumulator,
    TimelineSettings,
    found_speech_windows,
    segment_entry,
    timeline_settings,
    utterance_spans,
)
from .vad_gemo_clap import INSTALL_HINT, VAD_SAMPLING_RATE, SileroVad, vad_installed

logger = logging.getLogger(__name__)

# what a chunk is scored for: a timeline window (segments), a speech span or a chunk of the whole input (the overall
# scores: "chunk" under segmentation="fixed", "whole" under "vad" when no speech was found)
CHUNK_KINDS = ("window", "span", "chunk", "whole")
Scorer = Callable[[list[np.ndarray]], ClipScores]  # clips in (mono float32 at the model's rate), scores out
Item = TypeVar("Item")


@dataclass(frozen=True)
class Prompts:
    """What a call scores against: the emotion labels and template, and the gender labels and template when gender
    is asked (else None)."""

    labels: list[str]
    template: str
    gender: tuple[list[str], str] | None = None

    @property
    def gender_labels(self) -> list[str] | None:
        return None if self.gender is None else self.gender[0]


@dataclass(frozen=True)
class CallOptions:
    """The checked options of one call: its prompts, the timeline's settings and what the result holds. The fields
    after `settings` are the output options (`OUTPUT_OPTIONS`): one field here is one option of both backends."""

    prompts: Prompts
    settings: TimelineSettings
    return_timestamps: bool = False
    return_segments: bool = False
    return_embeddings: bool = False


# every option of a call, for the pipeline and the runner alike: the prompts' (each backend resolves them), the
# timeline's (`TimelineSettings`) and the result's (`CallOptions`)
PROMPT_OPTIONS = ("candidate_labels", "hypothesis_template", "return_gender")
OUTPUT_OPTIONS = tuple(field.name for field in fields(CallOptions))[2:]
CALL_OPTIONS = (*PROMPT_OPTIONS, "segmentation", "chunk_length_s", *VAD_OPTIONS, *OUTPUT_OPTIONS)
# (candidate_labels, hypothesis_template, return_gender) -> Prompts; a ValueError naming what it cannot serve
PromptResolver = Callable[[Any, Any, bool], Prompts]


@dataclass(frozen=True)
class Chunk:
    """One piece of an input to score: its `kind` (`CHUNK_KINDS`) and sample bounds at `rate` (the model's, or a
    file's own for the fixed chunks of a file at another rate); a window also has its region's start, where the
    region's scores are final before (`release`) and the region's end when it is the region's last (else None)."""

    kind: str
    start: int
    end: int
    rate: int
    region_start: int | None = None
    release: int | None = None
    region_end: int | None = None

    @property
    def seconds(self) -> tuple[float, float]:
        return self.start / self.rate, self.end / self.rate


Scored = tuple[Chunk, ClipScores]  # a chunk and its scores (1-D arrays)


def flag_last(items: Iterable[Item]) -> Iterator[tuple[Item, bool]]:
    """`(item, is_last)` of each item (one item of look-ahead), as a ChunkPipeline's `preprocess` yields chunks."""
    iterator = iter(items)
    previous = next(iterator)
    for item in iterator:
        yield previous, False
        previous = item
    yield previous, True


def in_memory_seconds(item: Any, sampling_rate: int) -> float | None:
    """Duration of an in-memory clip (array, tensor or audio dict); None for files and anything else."""
    if isinstance(item, dict):
        array, rate = item.get("array", item.get("raw")), item.get("sampling_rate") or sampling_rate
    else:
        array, rate = item, sampling_rate
    shape = getattr(array, "shape", None)
    return max(shape) / rate if shape else None


def longest_first(items: list, sampling_rate: int, classify: Callable[[list], list]) -> list:
    """`classify(items)` with a list of in-memory clips run longest first (length bucketing: little padding per
    batch), the results given back in input order."""
    durations = [in_memory_seconds(item, sampling_rate) for item in items]
    if len(durations) < 2 or None in durations:
        return classify(items)
    order = sorted(range(len(items)), key=lambda index: -durations[index])
    results = classify([items[index] for index in order])
    ordered = [None] * len(items)
    for position, index in enumerate(order):
        ordered[index] = results[position]
    return ordered


class ZeroShotDriver:
    """
    Everything of a zero-shot call but the scoring, for a model taking `sampling_rate` audio of at most
    `max_seconds`: the options (`options`), the speech detector (`vad`), an input's chunks (`chunks`), batching
    (`classify`), the result (`result`) and live streams (`stream`).

    Args:
        sampling_rate: the model's sampling rate.
        max_seconds: the longest clip the model takes.
        resolve_prompts: the backend's prompts of a call (`PromptResolver`).
        vad_path: the Silero VAD model file (an ONNX export's copy); None: the installed `silero-vad` wheel's.
    """

    def __init__(
        self, sampling_rate: int, max_seconds: float, resolve_prompts: PromptResolver, vad_path: Path | None = None
    ):
        self.sampling_rate, self.max_seconds = sampling_rate, max_seconds
        self.resolve_prompts, self.vad_path = resolve_prompts, vad_path
        self._vad: Any = None
        self._warned_no_vad = False

    @property
    def vad(self) -> Any:
        """The speech detector (`SileroVad`), loaded when first needed; settable (any object with `stream()`)."""
        if self._vad is None:
            self._vad = SileroVad(self.vad_path)
        return self._vad

    @vad.setter
    def vad(self, detector: Any) -> None:
        self._vad = detector

    def options(self, **options: Any) -> CallOptions:
        """The checked options of a call (`CALL_OPTIONS`, None or absent: the default): a `TypeError` for an unknown
        name, a `ValueError` naming the first option this model cannot serve, before any audio is read (the speech
        detector is loaded here when the call needs it)."""
        unknown = sorted(set(options) - set(CALL_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected option(s) {unknown}; known: {list(CALL_OPTIONS)}")
        prompts = self.resolve_prompts(
            options.get("candidate_labels"), options.get("hypothesis_template"), bool(options.get("return_gender"))
        )
        segmentation = options.get("segmentation")
        vad_available = self._vad is not None or self.vad_path is not None or vad_installed()
        if segmentation is None and not vad_available and not self._warned_no_vad:
            logger.warning(f"no speech detector installed: scoring whole inputs ({INSTALL_HINT} to score speech)")
            self._warned_no_vad = True
        settings = timeline_settings(
            self.max_seconds,
            self.sampling_rate,
            segmentation,
            vad_available,
            options.get("chunk_length_s"),
            **{name: options.get(name) for name in VAD_OPTIONS},
        )
        if settings.segmentation == "vad" and self._vad is None:
            self._vad = SileroVad(self.vad_path)  # a missing silero-vad is reported before any input is read
        return CallOptions(prompts, settings, **{name: bool(options.get(name)) for name in OUTPUT_OPTIONS})

    def chunks(self, audio: Any, settings: TimelineSettings) -> Iterator[tuple[Chunk, np.ndarray]]:
        """The chunks of one input to score and their clips, in order. segmentation="fixed": the input's chunks of
        `chunk_length_s`. segmentation="vad": the timeline's windows, then the speech spans (`utterance_spans`)
        that give the overall scores; an input without speech is scored whole instead (chunks of the model's
        maximum, kind "whole"). A file is read a chunk or a block at a time."""
        if settings.segmentation == "fixed":
            yield from self._whole(audio, settings.chunk_length_s, "chunk")
            return
        rate, regions = self.sampling_rate, []
        for window in found_speech_windows(audio, rate, settings, self.vad):
            if window.region_end is not None:
                regions.append((window.region_start, window.region_end))
            region = (window.region_start, window.release, window.region_end)
            yield Chunk("window", window.start, window.end, rate, *region), window.audio
        if not regions:
            yield from self._whole(audio, self.max_seconds, "whole")
            return
        spans = utterance_spans(regions, int(self.max_seconds * rate), round(settings.span_gap_s * rate))
        for (start, end), clip in zip(spans, audio_spans(audio, rate, spans)):
            yield Chunk("span", start, end, rate), clip

    def _whole(self, audio: Any, chunk_length_s: float, kind: str) -> Iterator[tuple[Chunk, np.ndarray]]:
        for (start, end, rate), clip in audio_chunks(audio, self.sampling_rate, chunk_length_s, self.max_seconds):
            yield Chunk(kind, start, end, rate), clip

    def classify(self, inputs: Any, call: CallOptions, scorer: Scorer, batch_size: int) -> list | dict:
        """The result of one input, or of each of a list (in-memory clips run longest first, results in input
        order): the inputs' chunks scored `batch_size` at a time, in order, across inputs."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

        def run(items: list) -> list:
            scored: list[list[Scored]] = [[] for _ in items]
            pending = (
                (index, *chunk) for index, item in enumerate(items) for chunk in self.chunks(item, call.settings)
            )
            while batch := list(islice(pending, batch_size)):
                for (index, chunk, _), scores in zip(batch, scorer([clip for _, _, clip in batch]).rows()):
                    scored[index].append((chunk, scores))
            return [self.result(chunks, call) for chunks in scored]

        if isinstance(inputs, list):
            return longest_first(inputs, self.sampling_rate, run)
        return run([inputs])[0]

    def stream(
        self,
        scorer: Callable[[Prompts], Scorer],
        sampling_rate: int = VAD_SAMPLING_RATE,
        candidate_labels: Sequence[str] | str | None = None,
        hypothesis_template: str | None = None,
        return_gender: bool = False,
        batch_size: int = 8,
        **timeline_options: float | None,
    ) -> EmotionStream:
        """The emotion timeline of live audio at `sampling_rate` (resampled to the model's when different): an
        `EmotionStream` whose `push(frames)` returns partial and final segment events as the audio comes, windows
        scored `batch_size` at a time by `scorer(prompts)`. Options as a call's (`window_s`, `hop_s`, `smoothing_s`,
        `vad_threshold`, `min_speech_s`, `min_silence_s`, `speech_pad_s`)."""
        unknown = sorted(set(timeline_options) - set(VAD_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected stream option(s) {unknown}; known: {list(VAD_OPTIONS)}")
        call = self.options(
            candidate_labels=candidate_labels,
            hypothesis_template=hypothesis_template,
            return_gender=return_gender,
            segmentation="vad",
            **timeline_options,
        )
        prompts = call.prompts
        window_scorer = WindowScorer(scorer(prompts), prompts.labels, prompts.gender_labels, self.sampling_rate)
        return EmotionStream(window_scorer, self.vad, call.settings, sampling_rate, batch_size)

    def result(self, scored: Sequence[Scored], call: CallOptions) -> list[dict] | dict:
        """The result of one input from its chunks' scores, in order.

        The overall scores (and gender and file embedding) are the duration-weighted mean of the chunks scored for
        them: the speech spans (segmentation="vad"; the whole input when it has no speech) or the input's chunks
        ("fixed"). Returns the ranked overall scores (a list) when nothing else is asked; else a dict with `scores`,
        `gender` (with `return_gender`; also per segment), `chunks` (`return_timestamps`: each window's `timestamp`
        and ranked scores; under "vad" also `spans`, those of the spans), `embeddings` (`return_embeddings`: numpy
        arrays `file`, `segments`, `windows`, `window_spans`), `segments` and `speech` (`return_segments`). With
        segmentation="fixed" the chunks are the windows and every sample counts as speech; with "vad" the segments
        come from the windows inside speech, and an input without speech has no segments and `speech` False."""
        prompts, embeddings = call.prompts, call.return_embeddings
        overall = [(chunk, scores) for chunk, scores in scored if chunk.kind != "window"]
        durations = [chunk.seconds[1] - chunk.seconds[0] for chunk, _ in overall]
        result: dict[str, Any] = {
            "scores": _ranked(_weighted([s.emotion for _, s in overall], durations), prompts.labels)
        }
        if prompts.gender is not None:
            genders = _weighted([s.gender for _, s in overall], durations)
            result["gender"] = _ranked(genders, prompts.gender_labels)
        if call.settings.segmentation == "fixed":
            windows = overall
            segments = _chunk_segments(windows, prompts, embeddings)
            result["chunks"] = _chunk_list(windows, prompts)
        else:
            windows = [(chunk, scores) for chunk, scores in scored if chunk.kind == "window"]
            segments = self._window_segments(windows, prompts, call.settings, embeddings)
            result["chunks"], result["spans"] = _chunk_list(windows, prompts), _chunk_list(overall, prompts)
        if embeddings:
            dimension = len(overall[0][1].embedding)
            result["embeddings"] = {
                "file": _normalised(_weighted([s.embedding for _, s in overall], durations)),
                "segments": np.stack([s.pop("embedding") for s in segments]) if segments else np.zeros((0, dimension)),
                "windows": np.asarray([s.embedding for _, s in windows], dtype=np.float32).reshape(-1, dimension),
                "window_spans": np.asarray([c.seconds for c, _ in windows], dtype=np.float64).reshape(-1, 2),
            }
        if not call.return_timestamps:
            result.pop("chunks")
            result.pop("spans", None)
        if call.return_segments:
            result["segments"] = segments
            result["speech"] = bool(windows)
        if call.return_timestamps or call.return_segments or embeddings or prompts.gender is not None:
            return result
        return result["scores"]

    def _window_segments(
        self, windows: Sequence[Scored], prompts: Prompts, settings: TimelineSettings, with_embeddings: bool
    ) -> list[dict]:
        """segmentation="vad": the segments of the windows through `TimelineAccumulator`."""
        if not windows:
            return []
        first = windows[0][1]
        genders = len(prompts.gender_labels or ())
        dimension = len(first.embedding) if with_embeddings else 0
        accumulator = TimelineAccumulator.for_settings(
            settings, self.sampling_rate, len(prompts.labels), genders, dimension
        )
        for chunk, scores in windows:
            accumulator.add(chunk.start, chunk.end, chunk.region_start, chunk.release, chunk.region_end, scores)
        segments = []
        for segment in accumulator.merger.finished:
            means = accumulator.means(segment)
            entry = segment_entry(segment, means, prompts.labels, prompts.gender_labels, self.sampling_rate)
            if with_embeddings:
                entry["embedding"] = _normalised(means.embedding)
            segments.append(entry)
        return segments


def _weighted(chunk_scores: Sequence[np.ndarray], durations: Sequence[float]) -> np.ndarray:
    """The duration-weighted mean of per-chunk score vectors (float64)."""
    weights = np.asarray(durations, dtype=np.float64)
    return (np.asarray(chunk_scores, dtype=np.float64) * weights[:, None]).sum(axis=0) / weights.sum()


def _ranked(scores: Sequence[float], labels: Sequence[str]) -> list[dict]:
    """`[{"label", "score"}, ...]` sorted by decreasing score."""
    ordered = sorted(zip(np.asarray(scores, dtype=np.float64), labels), key=lambda pair: -pair[0])
    return [{"label": label, "score": float(score)} for score, label in ordered]


def _normalised(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def _chunk_list(scored: Sequence[Scored], prompts: Prompts) -> list[dict]:
    """Each chunk's `timestamp` (s) and ranked `scores` (and `gender`)."""
    chunks = []
    for chunk, scores in scored:
        entry = {"timestamp": chunk.seconds, "scores": _ranked(scores.emotion, prompts.labels)}
        if prompts.gender is not None:
            entry["gender"] = _ranked(scores.gender, prompts.gender_labels)
        chunks.append(entry)
    return chunks


def _chunk_segments(chunks: Sequence[Scored], prompts: Prompts, with_embeddings: bool) -> list[dict]:
    """segmentation="fixed": each chunk labelled by its most likely emotion, neighbours with one label joined."""
    runs: list[list[Scored]] = []
    for chunk, scores in chunks:
        label = int(np.argmax(scores.emotion))
        if runs and int(np.argmax(runs[-1][-1][1].emotion)) == label and runs[-1][-1][0].end == chunk.start:
            runs[-1].append((chunk, scores))
        else:
            runs.append([(chunk, scores)])
    segments = []
    for run in runs:
        durations = [chunk.seconds[1] - chunk.seconds[0] for chunk, _ in run]
        emotion = _weighted([scores.emotion for _, scores in run], durations)
        label = int(np.argmax(run[0][1].emotion))
        segment = {
            "start": run[0][0].seconds[0],
            "end": run[-1][0].seconds[1],
            "label": prompts.labels[label],
            "score": float(emotion[label]),
        }
        if prompts.gender is not None:
            gender = _weighted([scores.gender for _, scores in run], durations)
            segment["gender"] = prompts.gender_labels[int(np.argmax(gender))]
        if with_embeddings:
            segment["embedding"] = _normalised(_weighted([scores.embedding for _, scores in run], durations))
        segments.append(segment)
    return segments


__all__ = [
    "CALL_OPTIONS",
    "CHUNK_KINDS",
    "OUTPUT_OPTIONS",
    "PROMPT_OPTIONS",
    "CallOptions",
    "Chunk",
    "Prompts",
    "Scorer",
    "ZeroShotDriver",
    "flag_last",
    "longest_first",
]
