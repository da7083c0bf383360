"""Test helpers for `gemo-clap app`: serve an app on a free localhost port (in this process, on Gradio's server
thread), and the speech the tests upload (a real EmoDB recording when ../shared has it, else synthetic speech-like
utterances that Silero VAD detects as speech)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
from gemo_clap.processing.synthetic import speaker_profiles, synthesize_clip
from helpers import EMODB_WAV

EMODB_CLIPS = ("03a01Wa.wav", "03a01Fa.wav")  # speaker 03: angry, happy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app) -> Iterator[str]:
    """The URL of `app` (a `gr.Blocks`) served on a free localhost port until the block ends."""
    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield app.local_url
    finally:
        app.close()


def speech_file(folder: Path) -> Path:
    """A speech recording: EmoDB's 03a01Fa.wav when ../shared has it, else `synthetic_speech()` written to `folder`."""
    if EMODB_WAV.is_dir():
        return EMODB_WAV / EMODB_CLIPS[1]
    path = folder / "generated.wav"
    sf.write(path, synthetic_speech(), 16000, subtype="PCM_16")
    return path


def synthetic_speech(rate: int = 16000) -> np.ndarray:
    """Two speech-like utterances of the demo's synthetic corpus (a male angry, a female happy voice: voiced syllables
    through vowel formants, which Silero VAD takes for speech) between silences, deterministic: about 6.5 s."""
    voices = {profile.speaker: profile for profile in speaker_profiles(1)}
    silence = np.zeros(int(0.4 * rate))
    parts = [silence]
    for seed, (speaker, emotion) in enumerate((("m1", "angry"), ("f1", "happy"))):
        parts += [synthesize_clip(voices[speaker], emotion, np.random.default_rng(seed), rate), silence]
    return np.concatenate(parts).astype(np.float32)


def conversation(path: Path) -> Path:
    """Two EmoDB utterances between silences (0.8 s), written to `path`: what the fake microphone plays."""
    rate = 16000
    silence = np.zeros(int(0.8 * rate), dtype=np.float32)
    parts = [silence]
    for name in EMODB_CLIPS:
        parts += [sf.read(EMODB_WAV / name, dtype="float32")[0], silence]
    sf.write(path, np.concatenate(parts), rate, subtype="PCM_16")
    return path
