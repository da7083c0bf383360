"""One scoring protocol: training pools each clip from its first speech to its last, and the pipeline's default
path (`predict`, `evaluate`, training's test scores) scores the same speech spans, so silence around a clip
changes nothing; quiet speech is still found, silence is not."""

from __future__ import annotations

from pathlib import Path

import datasets
import gemo_clap.processing.audio as audio_module
import numpy as np
import pytest
import torch
from accelerate import Accelerator
from gemo_clap.modeling import GEmoClapModel, GEmoClapProcessor, driver_gemo_clap, timeline_gemo_clap
from gemo_clap.modeling.timeline_gemo_clap import TimelineSettings, speech_regions
from gemo_clap.modeling.vad_gemo_clap import FRAME_SAMPLES
from gemo_clap.processing.audio import SAMPLING_RATE, decode_example_audio, encode_wav, speech_detector
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.processing.synthetic import generate_corpus, speaker_profiles, synthesize_clip
from gemo_clap.train.audio_cache import AudioFeatureCache
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.loop import train
from helpers import EMODB_WAV, tiny_overrides
from timeline_helpers import EnergyVad

from gemo_clap.loading import load_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RATE = SAMPLING_RATE


def speech(seed: int = 0, emotion: str = "angry") -> np.ndarray:
    """A speech-like utterance of the demo corpus (Silero VAD takes it for speech)."""
    voice = speaker_profiles(1)[0]
    return synthesize_clip(voice, emotion, np.random.default_rng(seed), RATE).astype(np.float32)


def padded(clip: np.ndarray, seed: int = 0, before: float = 1.2, after: float = 0.8) -> np.ndarray:
    """`clip` with faint noise (std 3e-4) before and after it, as calls and most corpora arrive."""
    rng = np.random.default_rng(seed)
    noise = lambda seconds: rng.normal(0.0, 3e-4, round(seconds * RATE)).astype(np.float32)
    return np.concatenate([noise(before), clip, noise(after)])


def test_training_pools_the_speech_span_the_pipeline_scores(tiny_checkpoint):
    """The same clip (with silence around it): training's cache and the pipeline's span see the same samples and
    the same pooled statistics."""
    clip = speech(1)
    wav = encode_wav(padded(clip))
    trimmed = decode_example_audio({"bytes": wav}, speech_only=True)
    whole = decode_example_audio({"bytes": wav})
    assert clip.size / 2 < trimmed.size < whole.size - 1.5 * RATE  # the 2 s of noise are gone, the speech is not

    settings = TimelineSettings()
    driver = driver_gemo_clap.ZeroShotDriver(RATE, 14.0, resolve_prompts=None)
    driver.vad = speech_detector()
    spans = [clip for chunk, clip in driver.chunks(wav, settings) if chunk.kind == "span"]
    assert len(spans) == 1 and np.array_equal(spans[0], trimmed)

    folder = tiny_checkpoint("whisper", audio_layer_pooling="weighted_sum")
    model, processor = GEmoClapModel.from_pretrained(folder).eval(), GEmoClapProcessor.from_pretrained(folder)
    split = datasets.Dataset.from_dict(
        {"id": ["u1"], "audio": [{"bytes": wav, "path": None}], "duration": [whole.size / RATE]}
    ).cast_column("audio", datasets.Audio(sampling_rate=RATE, decode=False))  # as the dataset builder stores it
    cache = AudioFeatureCache(model.audio_model, layers="all", speech_only=True)
    cache.fill(model, processor, [split], Accelerator(cpu=True), batch_size=1)
    with torch.no_grad():
        inputs = processor(audio=[spans[0]], sampling_rate=RATE)
        expected = model.get_audio_layer_statistics(**inputs, all_layers=True)[0]
    cached = next(iter(cache.entries.values()))
    torch.testing.assert_close(cached, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not EMODB_WAV.is_dir(), reason=f"needs real speech: {EMODB_WAV} is absent")
def test_quiet_speech_is_found(monkeypatch):
    """An EmoDB utterance at a -40 dBFS peak: the VAD hears nothing at that level; the second search (the input
    raised to a 0.25 peak for the VAD only) finds it, where the loud clip has it."""
    clip = decode_example_audio({"path": str(EMODB_WAV / "09a01Fa.wav")})
    quiet = (clip * 0.01 / np.abs(clip).max()).astype(np.float32)
    vad, settings = speech_detector(), TimelineSettings()
    loud, found = speech_regions(clip, RATE, vad, settings), speech_regions(quiet, RATE, vad, settings)
    assert len(found) == 1 and loud[0][0] - 0.1 * RATE < found[0][0] < found[0][1] < loud[-1][1] + 0.1 * RATE
    monkeypatch.setattr(timeline_gemo_clap, "MAX_VAD_GAIN", 1.0)  # without the second search: missed
    assert speech_regions(quiet, RATE, vad, settings) == []


def test_silence_and_noise_are_not_speech():
    vad, settings, rng = speech_detector(), TimelineSettings(), np.random.default_rng(0)
    for level in (0.0, 1e-5, 3e-4, 1e-2):  # digital silence and faint to clear white noise, searched twice
        assert speech_regions(rng.normal(0.0, level, 5 * RATE).astype(np.float32), RATE, vad, settings) == []


@pytest.fixture(scope="module")
def trained_toy_model(tiny_encoders, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny SL model trained (frozen tower, speech-trimmed clips) on the demo corpus, fold 1 held out; speech is
    found by the energy detector of the timeline tests (Silero finds only parts of the synthetic voices)."""
    root = tmp_path_factory.mktemp("protocol")
    manifest = generate_corpus(root / "corpus", speakers_per_gender=2, clips_per_emotion=2)
    dataset, _ = build_corpus("manifest", manifest, num_folds=2)
    dataset_dir = save_dataset(dataset, root / "dataset")
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, root / "run", freeze="audio", num_epochs=6)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(audio_module, "speech_detector", EnergyVad)
        patch.setattr(driver_gemo_clap, "SileroVad", EnergyVad)
        result = train(TrainingConfig.load(None, overrides))
    assert result.test_metrics["scoring_protocol"] == {"segmentation": "vad", "no_speech_clips": 0}
    return result.model_dir, manifest


def test_a_padded_clip_gets_the_label_of_the_clip(trained_toy_model, monkeypatch):
    """Silence around a clip changes neither its label nor (beyond float noise) its scores. The padding before it is
    a whole number of VAD frames, so both see the same frame grid (a shifted grid moves a boundary by up to 32 ms)."""
    model_dir, manifest = trained_toy_model
    monkeypatch.setattr(driver_gemo_clap, "SileroVad", EnergyVad)
    classifier = load_classifier(str(model_dir))
    clips = [decode_example_audio({"path": str(path)}) for path in sorted((manifest.parent / "wav").glob("*.wav"))]
    plain = classifier(clips)
    frames = lambda seconds: round(seconds * RATE / FRAME_SAMPLES) * FRAME_SAMPLES / RATE
    around = classifier([padded(clip, seed, frames(1.2)) for seed, clip in enumerate(clips)])
    assert [result[0]["label"] for result in around] == [result[0]["label"] for result in plain]
    for ours, theirs in zip(around, plain):
        assert [e["score"] for e in ours] == pytest.approx([e["score"] for e in theirs], abs=5e-3)
    # scored whole, the silence moves the scores: what the protocol protects users from
    whole = classifier([padded(clip, seed, frames(1.2)) for seed, clip in enumerate(clips)], segmentation="fixed")
    moved = [abs(a[0]["score"] - b[0]["score"]) for a, b in zip(whole, plain)]
    assert max(moved) > 0.02
