"""`gemo-clap predict --stream -`: live audio on standard input (a WAV stream or raw 16-bit PCM) through a pipe, one
JSON line per event flushed as it is decided, the open segment flushed at the end of the input, on a stall and on
Ctrl-C (exit 0), and bad input as one clear line."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gemo_clap.modeling import driver_gemo_clap
from helpers import EMODB_WAV as EMODB
from timeline_helpers import RATE, EnergyVad, silence, tone

from gemo_clap.cli import main
from gemo_clap.loading import load_classifier

OPTIONS = ["--window-seconds", "2", "--hop-seconds", "0.5"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ml_checkpoint(tiny_checkpoint):
    return tiny_checkpoint("wavlm", variant="ml", logit_scale_init=100.0, max_audio_seconds=6.0)


@pytest.fixture
def energy_vad(monkeypatch):
    """The pipeline's speech detector: tones count as speech."""
    monkeypatch.setattr(driver_gemo_clap, "SileroVad", EnergyVad)


def conversation() -> np.ndarray:
    return np.concatenate([silence(0.5), tone(2.5, 200), silence(1.0), tone(3.0, 440), silence(0.8)])


def wav_header(rate: int, channels: int = 1, bits: int = 16, tag: int = 1) -> bytes:
    """The header a live writer sends (RIFF and data sizes unknown: 0xFFFFFFFF), with a LIST chunk to skip."""
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    listing = b"INFOISFT\x05\x00\x00\x00test\x00\x00"
    return (
        b"RIFF\xff\xff\xff\xffWAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"LIST"
        + struct.pack("<I", len(listing))
        + listing
        + b"data\xff\xff\xff\xff"
    )


def pcm(signal: np.ndarray) -> bytes:
    return (np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.fixture
def stdin_pipe(monkeypatch):
    """`feed(data, pieces=20, pause=0.01, close=True)`: standard input becomes a pipe that a thread writes `data`
    into, piece by piece (then closes, unless told not to: a stalled producer)."""
    threads = []

    def feed(data: bytes, pieces: int = 20, pause: float = 0.01, close: bool = True):
        read_end, write_end = os.pipe()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(read_end, "rb")))

        def write():
            with os.fdopen(write_end, "wb", buffering=0) as pipe:
                step = max(1, -(-len(data) // pieces))
                for start in range(0, len(data), step):
                    pipe.write(data[start : start + step])
                    time.sleep(pause)
                if not close:
                    time.sleep(3.0)

        threads.append(threading.Thread(target=write, daemon=True))
        threads[-1].start()

    yield feed
    for thread in threads:
        thread.join()


def events_of(output: str) -> list[dict]:
    events = [json.loads(line) for line in output.splitlines()]
    assert all(list(e) == ["event", "start", "end", "label", "score", "gender"] for e in events)
    return events


def offline(checkpoint: Path, audio) -> list[dict]:
    pipe = load_classifier(str(checkpoint), False)
    result = pipe(audio, return_segments=True, return_gender=True, window_s=2.0, hop_s=0.5)
    return [{**s, "start": round(s["start"], 3), "end": round(s["end"], 3)} for s in result["segments"]]


def assert_finals(events: list[dict], expected: list[dict]) -> None:
    finals = [{k: v for k, v in e.items() if k != "event"} for e in events if e["event"] == "final"]
    assert [(s["start"], s["end"], s["label"], s["gender"]) for s in finals] == [
        (s["start"], s["end"], s["label"], s["gender"]) for s in expected
    ]
    assert [s["score"] for s in finals] == pytest.approx([s["score"] for s in expected], abs=1e-5)


def test_wav_stream_on_stdin_prints_json_lines(ml_checkpoint, energy_vad, stdin_pipe, capsys):
    signal = conversation()
    mono = np.frombuffer(pcm(signal), "<i2")
    stdin_pipe(wav_header(RATE, channels=2) + np.stack([mono, mono], axis=1).tobytes())  # stereo, interleaved
    assert main(["predict", "--model", str(ml_checkpoint), "--stream", "-", *OPTIONS]) == 0
    captured = capsys.readouterr()
    events = events_of(captured.out)
    assert {e["event"] for e in events} == {"partial", "final"}
    assert_finals(events, offline(ml_checkpoint, mono.astype(np.float32) / 32768))
    assert f"predict: stream ended (end of input) after {signal.size / RATE:.2f} s of audio" in captured.err


def test_raw_pcm_at_another_rate_and_a_truncated_last_sample(ml_checkpoint, energy_vad, stdin_pipe, capsys):
    import librosa

    signal = librosa.resample(conversation(), orig_sr=RATE, target_sr=8000)
    data = pcm(signal)
    stdin_pipe(data + b"\x01")  # the stream ends mid-sample
    assert main(["predict", "--model", str(ml_checkpoint), "--stream", "-", "--sampling-rate", "8000", *OPTIONS]) == 0
    captured = capsys.readouterr()
    expected = offline(ml_checkpoint, {"array": np.frombuffer(data, "<i2"), "sampling_rate": 8000})
    assert_finals(events_of(captured.out), expected)
    assert "the input ended mid-sample: its last 1 byte(s) were ignored" in captured.err


def test_a_stalled_input_flushes_the_open_segment(ml_checkpoint, energy_vad, stdin_pipe, capsys):
    signal = np.concatenate([silence(0.5), tone(3.0, 300)])  # speech still going when the producer stalls
    stdin_pipe(pcm(signal), close=False)
    started = time.monotonic()
    command = ["predict", "--model", str(ml_checkpoint), "--stream", "-", "--sampling-rate", "16000", *OPTIONS]
    assert main([*command, "--stall-seconds", "0.5"]) == 0
    assert time.monotonic() - started < 3.0  # before the producer's pipe closes
    captured = capsys.readouterr()
    events = events_of(captured.out)
    assert events[-1]["event"] == "final" and events[-1]["end"] == signal.size / RATE
    assert "stream ended (no input for 0.5 s (stalled))" in captured.err


@pytest.mark.parametrize(
    "data, arguments, message",
    [
        (pcm(tone(1.0)), [], "the input is not a WAV stream (it starts with"),
        (
            wav_header(RATE, bits=16, tag=2) + pcm(tone(1.0)),
            [],
            "the input's WAV format is not supported (format tag 2",
        ),
        (wav_header(RATE) + pcm(tone(1.0)), ["--sampling-rate", "8000"], "--sampling-rate 8000 but the input's WAV"),
        (wav_header(RATE)[:30], [], "the input ended inside its WAV header (30 bytes)"),
        (b"", ["in.wav"], "--stream follows live audio: give no files"),
        (b"", ["--format", "srt"], "--format applies to files; --stream prints one JSON line per event"),
        (b"", ["--segmentation", "fixed"], "--stream follows speech as it comes: --segmentation vad only"),
        (b"", ["--sampling-rate", "0"], "--sampling-rate must be a positive number of Hz, got 0"),
        (b"", ["--window-seconds", "2", "--hop-seconds", "3"], "--hop-seconds (3) must not exceed --window-seconds"),
    ],
)
def test_bad_stream_input_is_one_clear_line(ml_checkpoint, energy_vad, stdin_pipe, capsys, data, arguments, message):
    stdin_pipe(data)
    assert main(["predict", "--model", str(ml_checkpoint), "--stream", "-", *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_files_and_stream_options_stay_apart(ml_checkpoint, capsys, tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0), RATE)
    assert main(["predict", "--model", str(ml_checkpoint), "--sampling-rate", "16000", str(wav)]) == 2
    assert "--sampling-rate applies to --stream" in capsys.readouterr().err
    assert main(["predict", "--model", str(ml_checkpoint)]) == 2
    assert "give audio files or folders, or --stream - for live audio" in capsys.readouterr().err


@pytest.mark.skipif(not EMODB.is_dir(), reason=f"needs real speech: {EMODB} is absent")
@pytest.mark.skipif(importlib.util.find_spec("silero_vad") is None, reason="silero-vad is not installed")
def test_a_pipe_into_a_separate_process_sees_each_event_and_ctrl_c_flushes(ml_checkpoint):
    """A producer writing real speech in real-time-sized pieces into `gemo-clap predict --stream -`: the final
    event of the first utterance is read from the pipe while the input is still open; Ctrl-C then ends the stream,
    flushing the utterance in progress, and the exit code is 0."""
    first, second = (sf.read(EMODB / name, dtype="float32")[0] for name in ("03a01Fa.wav", "03a02Wc.wav"))
    command = [sys.executable, "-c", "import sys; from gemo_clap.cli import main; sys.exit(main())"]
    command += ["predict", "--model", str(ml_checkpoint), "--stream", "-", "--sampling-rate", "16000"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment
    )
    try:
        data = pcm(np.concatenate([silence(0.5), first, silence(1.5)]))
        for start in range(0, len(data), 6400):  # 0.2 s pieces
            process.stdin.write(data[start : start + 6400])
            process.stdin.flush()
        lines = []
        while not any(json.loads(line)["event"] == "final" for line in lines):
            line = process.stdout.readline()
            assert line, process.stderr.read().decode()
            lines.append(line)
        finals = [json.loads(line) for line in lines if json.loads(line)["event"] == "final"]
        assert finals[0]["start"] == pytest.approx(0.5, abs=0.2)
        assert finals[-1]["end"] == pytest.approx(0.5 + first.size / RATE, abs=0.3)
        process.stdin.write(pcm(second))  # an utterance in progress when Ctrl-C comes
        process.stdin.flush()
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)  # the input stays open: the stream ends on Ctrl-C
        process.wait(timeout=60)
        rest, error = process.stdout.read(), process.stderr.read()
    finally:
        process.kill()
        process.stdin.close()
    assert process.returncode == 0, error.decode()
    events = [json.loads(line) for line in rest.decode().splitlines()]
    assert events[-1]["event"] == "final" and events[-1]["start"] > finals[-1]["end"]
    assert "stream ended (interrupted)" in error.decode()
