"""Deterministic synthetic emotional "speech" corpus for the offline demo and tests.

The clips written here are SYNTHETIC SIGNALS, NOT SPEECH: no words, no real speakers, no recorded emotion. Each clip
is a voiced, speech-like buzz (a harmonic glottal-like source with a spectral tilt and a moving pitch contour, cut
into syllable-like bursts and pauses, shaped by vowel-like formant resonances, plus a little noise). Emotion and
speaker gender only change the acoustic parameters (pitch level and range, loudness, spectral tilt, tempo), so a
model trained on this corpus learns those cues and nothing about real emotional speech. Use it to exercise the
pipeline end to end without downloads, never to report emotion-recognition results.

The corpus is a folder of 16-bit mono WAV files plus ``manifest.csv`` (``path,emotion,gender,speaker``, paths
relative to the manifest), the generic manifest read by ``gemo-clap build-dataset manifest``. Every clip is drawn
from its own ``numpy.random.default_rng`` seeded from ``(seed, speaker, emotion, clip)``, so files are bit-identical
across runs and do not depend on which other clips are generated or in what order.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter
from scipy.signal.windows import tukey

from .audio import SAMPLING_RATE

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("path", "emotion", "gender", "speaker")
GENDERS = {"f": "female", "m": "male"}
MIN_DURATION, MAX_DURATION = 1.5, 3.5  # seconds per clip
PEAK_LIMIT = 0.95
NOISE_FLOOR = 10 ** (-62 / 20)  # background noise standard deviation (dBFS)
CONTOUR_HOP = 0.005  # seconds between pitch-contour points before interpolation to samples


@dataclass(frozen=True)
class EmotionProfile:
    """Acoustic cues of one emotion (jittered per clip)."""

    pitch_factor: float  # multiplies the speaker's base F0
    pitch_range: float  # standard deviation of syllable pitch targets, semitones
    pitch_glide: float  # mean pitch movement within a syllable, semitones (+ rising, - falling)
    level_db: float  # RMS level of the voiced parts, dBFS
    tilt_db_per_octave: float  # source spectral tilt: closer to 0 is brighter
    syllables_per_second: float
    pause_probability: float  # chance of a long pause after a syllable
    attack: float  # Tukey taper fraction of a syllable envelope: small = abrupt onsets
    breathiness: float  # aspiration noise relative to the harmonic source


EMOTION_PROFILES: dict[str, EmotionProfile] = {
    "angry": EmotionProfile(1.30, 2.5, -0.5, -16.0, -5.0, 5.5, 0.05, 0.25, 0.03),
    "happy": EmotionProfile(1.35, 4.0, 1.5, -21.0, -9.0, 5.0, 0.08, 0.5, 0.04),
    "sad": EmotionProfile(0.88, 0.8, -1.0, -31.0, -16.0, 2.6, 0.3, 0.9, 0.12),
    "neutral": EmotionProfile(1.00, 1.5, -0.3, -25.0, -12.0, 3.8, 0.15, 0.6, 0.05),
}

# (F1, F2, F3) in Hz of a few vowels for an adult male vocal tract, and formant bandwidths in Hz.
VOWEL_FORMANTS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]], dtype=np.float64
)
FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 140.0])


@dataclass(frozen=True)
class SpeakerProfile:
    """Voice of one synthetic speaker."""

    speaker: str  # "f1", "m3", ...
    gender: str  # "female" or "male"
    base_f0: float  # Hz
    pitch_range_scale: float  # multiplies the emotion's pitch range
    formant_scale: float  # vocal-tract length factor applied to all formants
    gain_db: float  # loudness offset


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    """Generator seeded from ``seed`` and string/int keys (strings hashed with a stable CRC32)."""
    entropy = [seed] + [zlib.crc32(key.encode()) if isinstance(key, str) else key for key in keys]
    return np.random.default_rng(entropy)


def speaker_profiles(speakers_per_gender: int, seed: int = 0) -> list[SpeakerProfile]:
    """``speakers_per_gender`` female speakers ``f1..fN`` then as many male ``m1..mN``; each depends only on its id."""
    profiles = []
    for prefix, gender in GENDERS.items():
        for number in range(1, speakers_per_gender + 1):
            speaker = f"{prefix}{number}"
            rng = _rng(seed, "speaker", speaker)
            female = gender == "female"
            profiles.append(
                SpeakerProfile(
                    speaker=speaker,
                    gender=gender,
                    base_f0=rng.uniform(200.0, 230.0) if female else rng.uniform(110.0, 130.0),
                    pitch_range_scale=(1.15 if female else 1.0) * rng.uniform(0.9, 1.1),
                    formant_scale=(1.15 if female else 1.0) * rng.uniform(0.95, 1.05),
                    gain_db=rng.uniform(-2.0, 2.0),
                )
            )
    return profiles


def _syllable_spans(
    profile: EmotionProfile, n_samples: int, sampling_rate: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """(start, stop) sample indices of syllable-like bursts separated by short gaps and occasional long pauses."""
    tempo = profile.syllables_per_second * rng.uniform(0.9, 1.1)
    position = rng.uniform(0.05, 0.2)
    end = n_samples / sampling_rate - rng.uniform(0.05, 0.2)
    spans = []
    while True:
        length = 0.8 / tempo * rng.uniform(0.7, 1.3)
        if position + length > end:
            break
        spans.append((int(position * sampling_rate), int((position + length) * sampling_rate)))
        long_pause = rng.random() < profile.pause_probability
        position += length + (rng.uniform(0.15, 0.35) if long_pause else 0.2 / tempo * rng.uniform(0.5, 1.5))
    if not spans:  # a very slow clip: one syllable filling the available time
        spans.append((int(position * sampling_rate), int(end * sampling_rate)))
    return spans


def _pitch_contour(
    profile: EmotionProfile,
    speaker: SpeakerProfile,
    spans: list[tuple[int, int]],
    n_samples: int,
    sampling_rate: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """F0 in Hz per sample: syllable pitch targets with glides, declination, smoothing and slow micro-variation."""
    pitch_range = profile.pitch_range * speaker.pitch_range_scale * rng.uniform(0.85, 1.15)
    knots_x, knots_y = [], []
    for start, stop in spans:
        target = np.clip(rng.normal(0.0, pitch_range), -2.5 * pitch_range, 2.5 * pitch_range)
        glide = rng.normal(profile.pitch_glide, 0.5 * pitch_range)
        knots_x += [start, stop]
        knots_y += [target - glide / 2, target + glide / 2]
    # Shape the contour on a 5 ms grid (cheap smoothing), then interpolate it to samples.
    grid = np.arange(0, n_samples + CONTOUR_HOP * sampling_rate, CONTOUR_HOP * sampling_rate)
    semitones = np.interp(grid, knots_x, knots_y) - np.linspace(0.0, rng.uniform(0.5, 2.0), len(grid))  # declination
    semitones = gaussian_filter1d(semitones, sigma=0.02 / CONTOUR_HOP)
    semitones += gaussian_filter1d(rng.normal(0.0, 1.0, len(grid)), sigma=0.05 / CONTOUR_HOP)  # slow micro-variation
    f0 = speaker.base_f0 * profile.pitch_factor * rng.uniform(0.97, 1.03)
    return f0 * 2.0 ** (np.interp(np.arange(n_samples), grid, semitones) / 12.0)


def _harmonic_source(f0: np.ndarray, tilt_db_per_octave: float, sampling_rate: int) -> np.ndarray:
    """Sum of harmonics ``k * f0`` with amplitude ``k ** (tilt / 6.02)``, faded out below Nyquist.

    ``sin(k * phase)`` comes from the Chebyshev recurrence ``s[k+1] = 2 cos(phase) s[k] - s[k-1]``, which costs two
    array operations per harmonic instead of a ``sin`` call.
    """
    phase = 2.0 * np.pi * np.cumsum(f0) / sampling_rate
    two_cos = 2.0 * np.cos(phase)
    previous, current = np.zeros_like(phase), np.sin(phase)
    cutoff, fade = 0.45 * sampling_rate, 0.05 * sampling_rate
    exponent = tilt_db_per_octave / (20.0 * np.log10(2.0))
    source = np.zeros_like(phase)
    full_weight = int((cutoff - fade) / f0.max())  # harmonics below this stay under the fade band everywhere
    for k in range(1, int(cutoff / f0.min()) + 1):
        weight = k**exponent if k <= full_weight else k**exponent * np.clip((cutoff - k * f0) / fade, 0.0, 1.0)
        source += weight * current
        previous, current = current, two_cos * current - previous
    return source


def _formant_filter(formants: np.ndarray, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Cascade of 2nd-order resonators (unity gain at 0 Hz) as one ``(b, a)`` filter for ``lfilter``."""
    b, a = np.ones(1), np.ones(1)
    for frequency, bandwidth in zip(formants, FORMANT_BANDWIDTHS, strict=True):
        if frequency >= 0.45 * sampling_rate:
            continue
        radius = np.exp(-np.pi * bandwidth / sampling_rate)
        resonator = np.array([1.0, -2.0 * radius * np.cos(2.0 * np.pi * frequency / sampling_rate), radius**2])
        b, a = b * resonator.sum(), np.convolve(a, resonator)
    return b, a


def synthesize_clip(
    speaker: SpeakerProfile, emotion: str, rng: np.random.Generator, sampling_rate: int = SAMPLING_RATE
) -> np.ndarray:
    """One synthetic clip (float64 in [-1, 1], 1.5-3.5 s) of ``speaker`` with the cues of ``emotion``."""
    profile = EMOTION_PROFILES[emotion]
    n_samples = int(rng.uniform(MIN_DURATION, MAX_DURATION) * sampling_rate)
    spans = _syllable_spans(profile, n_samples, sampling_rate, rng)
    f0 = _pitch_contour(profile, speaker, spans, n_samples, sampling_rate, rng)
    tilt = profile.tilt_db_per_octave + rng.uniform(-1.0, 1.0)
    source = _harmonic_source(f0, tilt, sampling_rate)
    source /= np.sqrt(np.mean(source**2))
    source += profile.breathiness * rng.uniform(0.7, 1.3) * rng.standard_normal(n_samples)

    tail = int(0.03 * sampling_rate)  # let the resonances ring out after each syllable
    signal = np.zeros(n_samples + tail)
    voiced = np.zeros(n_samples, dtype=bool)
    attack = np.clip(profile.attack * rng.uniform(0.8, 1.2), 0.05, 1.0)
    for start, stop in spans:
        envelope = tukey(stop - start, attack) * 10 ** (rng.normal(0.0, 2.0) / 20)
        vowel = VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))]
        b, a = _formant_filter(vowel * speaker.formant_scale * rng.uniform(0.97, 1.03, 3), sampling_rate)
        burst = np.concatenate([source[start:stop] * envelope, np.zeros(tail)])
        signal[start : stop + tail] += lfilter(b, a, burst)
        voiced[start:stop] = True
    signal = signal[:n_samples]

    level_db = profile.level_db + speaker.gain_db + rng.uniform(-1.5, 1.5)
    signal *= 10 ** (level_db / 20) / np.sqrt(np.mean(signal[voiced] ** 2))
    signal += NOISE_FLOOR * rng.standard_normal(n_samples)
    peak = np.abs(signal).max()
    return signal * (PEAK_LIMIT / peak) if peak > PEAK_LIMIT else signal


def generate_corpus(
    output_dir: str | Path,
    *,
    speakers_per_gender: int = 4,
    clips_per_emotion: int = 6,
    emotions: tuple[str, ...] = ("angry", "happy", "sad", "neutral"),
    sampling_rate: int = SAMPLING_RATE,
    seed: int = 0,
) -> Path:
    """Write a synthetic corpus (``wav/<speaker>_<emotion>_<clip>.wav`` + ``manifest.csv``); return the manifest path.

    Speakers are ``f1..fN`` (female) and ``m1..mN`` (male) with ``N = speakers_per_gender``; each speaker gets
    ``clips_per_emotion`` clips of every emotion in ``emotions`` (names from ``EMOTION_PROFILES``).
    """
    unknown = [emotion for emotion in emotions if emotion not in EMOTION_PROFILES]
    if unknown or not emotions or len(set(emotions)) != len(emotions):
        raise ValueError(
            f"emotions must be distinct names from {sorted(EMOTION_PROFILES)}, got {list(emotions)}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
    for name, value, minimum in (
        ("speakers_per_gender", speakers_per_gender, 1),
        ("clips_per_emotion", clips_per_emotion, 1),
        ("sampling_rate", sampling_rate, 8000),
        ("seed", seed, 0),
    ):
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")

    output_dir = Path(output_dir)
    (output_dir / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for speaker in speaker_profiles(speakers_per_gender, seed):
        for emotion in emotions:
            for clip in range(clips_per_emotion):
                path = f"wav/{speaker.speaker}_{emotion}_{clip:02d}.wav"
                audio = synthesize_clip(speaker, emotion, _rng(seed, speaker.speaker, emotion, clip), sampling_rate)
                sf.write(output_dir / path, audio, sampling_rate, subtype="PCM_16")
                rows.append({"path": path, "emotion": emotion, "gender": speaker.gender, "speaker": speaker.speaker})

    manifest = output_dir / MANIFEST_NAME
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest
