"""The audio tower's input features in numpy, equal to what the processor computes with transformers' extractors
(`WaveformTower.features`, `WhisperTower.features`): each clip's features computed alone, then padded to the
batch's longest with a mask. Imports only numpy and the torch-free audio helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..modeling.audio_gemo_clap import pad_to_longest

WAVEFORM, LOG_MEL = "waveform", "log-mel"
MEL_FILTERS_FILE = "mel_filters.npy"
LOG_MEL_FLOOR = 1e-10  # Whisper: power floor under log10, dynamic range 8 (80 dB), then (x + 4) / 4


def feature_settings(feature_extractor: Any, input_name: str) -> tuple[dict, np.ndarray | None]:
    """(JSON-ready settings, mel filter bank or None) that `batch_features` needs to reproduce `feature_extractor`
    (a Wav2Vec2FeatureExtractor for `input_values`, a WhisperFeatureExtractor for `input_features`)."""
    rate = int(feature_extractor.sampling_rate)
    if input_name == "input_features":
        if getattr(feature_extractor, "dither", 0.0):
            raise ValueError(
                f"the feature extractor adds random dither ({feature_extractor.dither}); the ONNX runner computes "
                "deterministic features only: save the processor with dither=0.0"
            )
        settings = {
            "kind": LOG_MEL,
            "sampling_rate": rate,
            "n_fft": int(feature_extractor.n_fft),
            "hop_length": int(feature_extractor.hop_length),
            "num_mel_bins": int(feature_extractor.feature_size),
            "mel_filters": MEL_FILTERS_FILE,
        }
        return settings, np.asarray(feature_extractor.mel_filters, dtype=np.float64)
    if getattr(feature_extractor, "feature_size", 1) != 1:
        raise ValueError(f"waveform features need feature_size=1, got {feature_extractor.feature_size}")
    settings = {
        "kind": WAVEFORM,
        "sampling_rate": rate,
        "do_normalize": bool(feature_extractor.do_normalize),
        "padding_value": float(feature_extractor.padding_value),
    }
    return settings, None


def normalised_waveform(array: np.ndarray, do_normalize: bool) -> np.ndarray:
    """Wav2Vec2FeatureExtractor on one clip: zero mean and unit variance (variance floor 1e-7) when `do_normalize`."""
    if not do_normalize:
        return array
    return (array - array.mean()) / np.sqrt(array.var() + 1e-7)


def log_mel(array: np.ndarray, n_fft: int, hop_length: int, mel_filters: np.ndarray) -> np.ndarray:
    """WhisperFeatureExtractor's log-mel spectrogram of one clip, unpadded: `[mel bins, samples // hop_length]`.
    A centred STFT (reflect padding, periodic Hann window), power, mel filters, log10 floored 8 below the clip's
    peak, scaled to (x + 4) / 4; the last STFT frame is dropped, as Whisper does."""
    padded = np.pad(array.astype(np.float64), n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    window = np.hanning(n_fft + 1)[:-1]
    power = np.abs(np.fft.rfft(frames[:-1] * window, axis=-1)) ** 2
    log_spec = np.log10(np.maximum(mel_filters.T @ power.T, LOG_MEL_FLOOR))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def batch_features(
    arrays: Sequence[np.ndarray], settings: dict, mel_filters: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(features `[batch, samples]` or `[batch, mel bins, frames]`, int64 mask `[batch, samples or frames]`) of mono
    float32 clips at the model's rate, each computed alone and padded to the longest."""
    if settings["kind"] == LOG_MEL:
        mels = [log_mel(array, settings["n_fft"], settings["hop_length"], mel_filters) for array in arrays]
        return pad_to_longest(mels)
    clips = [normalised_waveform(array, settings["do_normalize"]) for array in arrays]
    return pad_to_longest(clips, settings["padding_value"])
