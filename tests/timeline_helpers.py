"""Test helpers for the emotion timeline: a speech detector that needs no model, and tones and silences."""

from __future__ import annotations

import numpy as np

RATE = 16000
FRAME = 512


class EnergyVad:
    """A stand-in for `SileroVad` (taking its optional model path): a frame is speech (0.9) when its RMS exceeds
    0.01, else 0.05."""

    def __init__(self, path=None):
        pass

    def stream(self):
        return EnergyStream()


class EnergyStream:
    def __init__(self):
        self.pending = np.zeros(0, dtype=np.float32)

    def push(self, samples):
        signal = np.concatenate([self.pending, samples])
        whole = signal.size // FRAME * FRAME
        self.pending = signal[whole:]
        return self._probabilities(signal[:whole].reshape(-1, FRAME))

    def finish(self):
        if not self.pending.size:
            return np.zeros(0)
        frame = np.zeros((1, FRAME), dtype=np.float32)
        frame[0, : self.pending.size] = self.pending
        self.pending = np.zeros(0, dtype=np.float32)
        return self._probabilities(frame)

    @staticmethod
    def _probabilities(frames):
        return np.where(np.sqrt((frames**2).mean(axis=1)) > 0.01, 0.9, 0.05)


def tone(seconds: float, frequency: float = 220.0) -> np.ndarray:
    time = np.arange(round(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.float32)


def scored_result(scored, labels, gender_labels, settings, **flags):
    """`ZeroShotDriver.result` of `(Chunk, ClipScores)` pairs at `RATE` (a model of 14 s), for `labels` (and
    `gender_labels`, or None) and the output `flags` (`return_segments`, ...)."""
    from gemo_clap.modeling.driver_gemo_clap import CallOptions, Prompts, ZeroShotDriver

    prompts = Prompts(list(labels), "{}", None if gender_labels is None else (list(gender_labels), "{}"))
    return ZeroShotDriver(RATE, 14.0, lambda *_: prompts).result(scored, CallOptions(prompts, settings, **flags))
