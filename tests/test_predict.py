"""`gemo-clap predict`: timelines for long files, gender for ML models, one clear line per bad file."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from gemo_clap.cli import main


def test_long_file_timeline_gender_and_bad_files(tiny_checkpoint, make_clip, tmp_path, capsys):
    model = tiny_checkpoint("wavlm", variant="ml")
    long_wav, stereo = tmp_path / "long.wav", tmp_path / "stereo48k.wav"
    sf.write(long_wav, np.tile(make_clip(5.0), 7), 16000)  # 35 s > max_audio_seconds (14)
    sf.write(stereo, np.stack([make_clip(3.0, 1, 48000)] * 2, axis=1), 48000)
    fake = tmp_path / "notes.wav"
    fake.write_text("not audio")

    code = main(
        [
            "predict",
            "--model",
            str(model),
            "--json",
            "--segment-seconds",
            "10",
            str(long_wav),
            str(stereo),
            str(fake),
            str(tmp_path / "missing.wav"),
            str(tmp_path),
        ]
    )

    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 0
    long_result, stereo_result = results
    assert [(w["start"], w["end"]) for w in long_result["timeline"]] == [(0, 10), (10, 20), (20, 30), (30, 35)]
    assert long_result["duration"] == 35.0 and long_result["gender"] in ("female", "male")
    assert abs(sum(s["score"] for s in long_result["scores"]) - 1) < 1e-6
    weighted = sum((w["end"] - w["start"]) for w in long_result["timeline"])
    assert weighted == 35.0
    assert stereo_result["duration"] == 3.0 and len(stereo_result["timeline"]) == 1
    errors = captured.err
    assert f"{fake}: error: not a readable audio file" in errors
    assert "missing.wav: error: file not found" in errors
    assert f"{tmp_path}: error: is a directory" in errors


def test_exit_code_is_nonzero_only_when_every_file_fails(tiny_checkpoint, tmp_path, capsys):
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), str(tmp_path / "a.wav")]) == 1
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), "--labels", "a,a", str(tmp_path)]) == 2
    assert "duplicates" in capsys.readouterr().err
