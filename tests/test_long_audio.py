"""Long audio through the standard pipeline (`chunk_length_s`, `return_timestamps`, the ASR pipeline's conventions),
gender from the same audio pass (`return_gender`), and clips too short to hold speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from gemo_clap.modeling.audio_gemo_clap import chunk_bounds
from transformers import pipeline

TASK = "zero-shot-audio-classification"
RATE = 16000


@pytest.fixture(scope="module")
def whisper_pipe(tiny_checkpoint):
    return pipeline(TASK, model=str(tiny_checkpoint("whisper", logit_scale_init=100.0)), trust_remote_code=True)


@pytest.fixture(scope="module")
def ml_pipe(tiny_checkpoint):
    folder = tiny_checkpoint("wavlm", variant="ml", logit_scale_init=100.0, max_audio_seconds=4.0)
    return pipeline(TASK, model=str(folder), trust_remote_code=True)


@pytest.fixture(scope="module")
def long_clip(make_clip):
    """70 s of changing tones: 5 clips of 14 s of different seeds."""
    return np.concatenate([make_clip(14.0, seed=seed) for seed in range(5)])


def test_chunk_bounds_numbers():
    assert chunk_bounds(100, 30, 30) == [(0, 30), (30, 60), (60, 80), (80, 100)]  # tail 10 < 15: last two halved
    assert chunk_bounds(100, 30, 45) == [(0, 30), (30, 60), (60, 100)]  # the model takes 40: the tail joins
    assert chunk_bounds(105, 30, 30) == [(0, 30), (30, 60), (60, 90), (90, 105)]  # tail 15 = half a chunk: kept
    assert chunk_bounds(20, 30, 30) == [(0, 20)]
    for total in range(31, 400, 7):
        bounds = chunk_bounds(total, 30, 30)
        assert bounds[0][0] == 0 and bounds[-1][1] == total
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert all(15 <= end - start <= 30 for start, end in bounds)
    with pytest.raises(ValueError, match="chunk length"):
        chunk_bounds(100, 40, 30)


def test_a_ten_minute_array_is_chunked_to_the_models_maximum(whisper_pipe, make_clip):
    ten_minutes = np.tile(make_clip(10.0, seed=3), 60)
    result = whisper_pipe(ten_minutes, segmentation="fixed", return_timestamps=True)
    spans = [chunk["timestamp"] for chunk in result["chunks"]]
    assert spans[0][0] == 0 and spans[-1][1] == pytest.approx(600.0)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert max(end - start for start, end in spans) == pytest.approx(14.0)  # the model's max_audio_seconds
    assert len(spans) == 43  # 42 chunks of 14 s and the 12 s tail, which is more than half a chunk
    default = whisper_pipe(ten_minutes)
    assert isinstance(default, list) and [set(item) for item in default] == [{"label", "score"}] * 4
    assert default == result["scores"]


def test_overall_scores_are_the_duration_weighted_mean_of_the_chunks(whisper_pipe, long_clip):
    result = whisper_pipe(long_clip, chunk_length_s=10, return_timestamps=True)
    spans = [chunk["timestamp"] for chunk in result["chunks"]]
    assert spans == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 40.0), (40.0, 50.0), (50.0, 60.0), (60.0, 70.0)]
    labels = [item["label"] for item in result["scores"]]
    per_chunk = [
        [{e["label"]: e["score"] for e in chunk["scores"]}[label] for label in labels] for chunk in result["chunks"]
    ]
    expected = np.average(np.asarray(per_chunk), axis=0, weights=[end - start for start, end in spans])
    np.testing.assert_allclose([item["score"] for item in result["scores"]], expected, atol=1e-7)
    assert sum(item["score"] for item in result["scores"]) == pytest.approx(1.0, abs=1e-6)
    # each chunk scores like the chunk given alone
    alone = whisper_pipe(long_clip[30 * RATE : 40 * RATE])
    assert {e["label"]: e["score"] for e in alone} == pytest.approx(
        {e["label"]: e["score"] for e in result["chunks"][3]["scores"]}, abs=1e-6
    )
    # a short tail joins the previous chunk (or they are split in halves where the model's maximum forbids it)
    tail = whisper_pipe(long_clip[: 33 * RATE], chunk_length_s=10, return_timestamps=True)
    assert [chunk["timestamp"] for chunk in tail["chunks"]] == [(0.0, 10.0), (10.0, 20.0), (20.0, 33.0)]
    halves = whisper_pipe(long_clip[: 33 * RATE], chunk_length_s=14, return_timestamps=True)
    assert [chunk["timestamp"] for chunk in halves["chunks"]] == [(0.0, 14.0), (14.0, 23.5), (23.5, 33.0)]


def test_a_file_is_read_chunk_by_chunk_with_the_same_result(whisper_pipe, long_clip, tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, long_clip, RATE, subtype="PCM_24")
    from_file = whisper_pipe(str(path), chunk_length_s=10, return_timestamps=True, batch_size=3)
    from_array = whisper_pipe(sf.read(path, dtype="float32")[0], chunk_length_s=10, return_timestamps=True)
    assert [c["timestamp"] for c in from_file["chunks"]] == [c["timestamp"] for c in from_array["chunks"]]
    for ours, theirs in zip(from_file["chunks"], from_array["chunks"]):
        assert {e["label"]: e["score"] for e in ours["scores"]} == pytest.approx(
            {e["label"]: e["score"] for e in theirs["scores"]}, abs=1e-6
        )


def test_the_heap_is_trimmed_after_every_scored_batch(whisper_pipe, long_clip, monkeypatch):
    """Inputs of every length fragment glibc's heap: the pipeline hands freed memory back after each batch it scores
    (a long file's peak memory stays flat: benchmarks/README.md), without changing any score."""
    import sys

    module = sys.modules[type(whisper_pipe).__module__]  # the checkpoint's copy of the pipeline code
    if sys.platform.startswith("linux"):
        assert module.release_freed_memory() in (0, 1)  # glibc's malloc_trim(0)
    calls = []
    monkeypatch.setattr(module, "release_freed_memory", lambda: calls.append(1))
    result = whisper_pipe(long_clip, chunk_length_s=10, return_timestamps=True, batch_size=3)
    assert len(calls) == -(-len(result["chunks"]) // 3)  # one per batch of 3 chunks
    monkeypatch.undo()
    again = whisper_pipe(long_clip, chunk_length_s=10, return_timestamps=True, batch_size=3)
    assert [c["scores"] for c in again["chunks"]] == [c["scores"] for c in result["chunks"]]


def test_gender_comes_from_the_same_audio_pass(ml_pipe, long_clip):
    calls = []
    hook = ml_pipe.model.audio_model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(1), with_kwargs=True
    )
    try:
        result = ml_pipe(
            long_clip[: 22 * RATE], segmentation="fixed", return_gender=True, return_timestamps=True, batch_size=4
        )
    finally:
        hook.remove()
    assert len(result["chunks"]) == 6  # 22 s in chunks of 4 s (the model's maximum); the 2 s tail stays
    assert len(calls) == 2  # one audio-tower pass per batch of 4 chunks, for emotion and gender together
    assert [item["label"] for item in result["gender"]] != [] and {g["label"] for g in result["gender"]} == {
        "female",
        "male",
    }
    for chunk in result["chunks"]:
        assert {g["label"] for g in chunk["gender"]} == {"female", "male"}
        assert sum(g["score"] for g in chunk["gender"]) == pytest.approx(1.0, abs=1e-6)
    genders = [[{g["label"]: g["score"] for g in c["gender"]}["female"]] for c in result["chunks"]]
    weights = [c["timestamp"][1] - c["timestamp"][0] for c in result["chunks"]]
    female = {g["label"]: g["score"] for g in result["gender"]}["female"]
    assert female == pytest.approx(float(np.average(np.asarray(genders)[:, 0], weights=weights)), abs=1e-7)
    without_timestamps = ml_pipe(long_clip[: 3 * RATE], return_gender=True)
    assert set(without_timestamps) == {"scores", "gender"}


def test_gender_needs_a_checkpoint_trained_with_gender_prompts(whisper_pipe, make_clip):
    with pytest.raises(ValueError, match="return_gender needs a checkpoint trained with gender prompts"):
        whisper_pipe(make_clip(1.0), return_gender=True)


@pytest.mark.parametrize("seconds", [0.0005, 0.05, 0.099])
def test_a_clip_too_short_for_speech_is_an_error(whisper_pipe, seconds):
    clip = np.full(max(1, int(seconds * RATE)), 0.1, dtype=np.float32)
    with pytest.raises(ValueError, match=r"shorter than 0.1 s: too short to hold a frame of speech"):
        whisper_pipe(clip)
    with pytest.raises(ValueError, match="too short"):
        whisper_pipe.processor(audio=clip, sampling_rate=RATE)


def test_chunk_length_must_fit_the_model(whisper_pipe, make_clip):
    for bad in (0, -1, 14.5):
        with pytest.raises(ValueError, match=r"chunk_length_s must be in \(0, 14\]"):
            whisper_pipe(make_clip(1.0), chunk_length_s=bad)


def test_a_processor_built_beside_the_model_does_not_limit_the_pipeline(tiny_encoders, make_clip):
    """A processor without `max_audio_seconds` (built from the towers) and a 10-minute input: chunks, not an error."""
    from gemo_clap.modeling import GEmoClapProcessor, GEmoClapZeroShotAudioClassificationPipeline
    from gemo_clap.train.towers import build_model_and_processor

    model, _ = build_model_and_processor(*tiny_encoders("whisper"))
    processor = GEmoClapProcessor.from_encoders(*tiny_encoders("whisper"))
    assert processor.max_audio_seconds is None
    pipe = GEmoClapZeroShotAudioClassificationPipeline(
        model=model.eval(),
        processor=processor,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )
    with torch.no_grad():
        result = pipe(np.tile(make_clip(10.0), 60), segmentation="fixed", return_timestamps=True)
    # the model's own limit (14 s) cuts the 600 s into contiguous chunks, and the scores are their weighted mean
    bounds = [chunk["timestamp"] for chunk in result["chunks"]]
    assert bounds[0][0] == 0.0 and bounds[-1][1] == pytest.approx(600.0)
    assert all(end - start <= model.config.max_audio_seconds + 1e-6 for start, end in bounds)
    assert all(previous[1] == pytest.approx(following[0]) for previous, following in zip(bounds, bounds[1:]))
    weights = np.array([end - start for start, end in bounds]) / 600.0
    for entry in result["scores"]:
        per_chunk = [
            next(s["score"] for s in chunk["scores"] if s["label"] == entry["label"]) for chunk in result["chunks"]
        ]
        assert entry["score"] == pytest.approx(float(weights @ np.array(per_chunk)), abs=1e-5)
