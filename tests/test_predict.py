"""`gemo-clap predict`: timelines for long files, gender for ML models, one clear line per bad file (the emotion
timeline and folders: test_timeline_pipeline.py)."""

from __future__ import annotations

import json
import shutil
from itertools import pairwise

import numpy as np
import soundfile as sf
from gemo_clap.train.config import TrainingConfig
from iemocap_tree import tone

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
            "--segment-seconds",  # chunks of 10 s over the whole signal (segmentation "fixed")
            "10",
            str(long_wav),
            str(stereo),
            str(fake),
            str(tmp_path / "missing.wav"),
        ]
    )

    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 0
    long_result, stereo_result = results
    segments = long_result["segments"]  # the chunks 0-10-20-30-35 s, neighbours with one emotion joined
    assert segments[0]["start"] == 0 and segments[-1]["end"] == 35.0
    assert all(a["end"] == b["start"] and a["label"] != b["label"] for a, b in pairwise(segments))
    assert {s["start"] for s in segments} <= {0, 10, 20, 30} and all("gender" in s for s in segments)
    assert long_result["duration"] == 35.0 == long_result["speech_seconds"] and long_result["speech"] is True
    assert long_result["gender"] in ("female", "male")
    assert abs(sum(s["score"] for s in long_result["scores"]) - 1) < 1e-6
    assert stereo_result["duration"] == 3.0 and [(s["start"], s["end"]) for s in stereo_result["segments"]] == [(0, 3)]
    errors = captured.err
    assert f"{fake}: error: not a readable audio file" in errors
    assert "missing.wav: error: file not found" in errors
    assert "predict: 4 file(s): 2 done, 0 already finished, 2 could not be used" in errors


def test_exit_code_is_nonzero_only_when_every_file_fails(tiny_checkpoint, tmp_path, capsys):
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), str(tmp_path / "a.wav")]) == 2
    (tmp_path / "b.wav").write_text("")
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), "--labels", "a,a", str(tmp_path)]) == 2
    assert "duplicates" in capsys.readouterr().err
    (tmp_path / "b.wav").unlink()
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), str(tmp_path)]) == 2
    assert f"no audio files in {tmp_path}" in capsys.readouterr().err


def test_predict_runs_a_checkpoints_own_code_only_when_asked(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "tampered-checkpoint"  # a name no other test's remote code was imported under
    shutil.copytree(tiny_checkpoint("wavlm"), folder)
    marker = tmp_path / "remote-code-ran"
    code = folder / "pipeline_gemo_clap.py"  # the code transformers runs for the checkpoint's pipeline
    code.write_text(code.read_text() + f"\nfrom pathlib import Path\nPath({str(marker)!r}).write_text('yes')\n")
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    assert main(["predict", "--model", str(folder), str(wav)]) == 0
    assert not marker.exists()  # the installed gemo_clap code scored it
    assert main(["predict", "--model", str(folder), "--trust-remote-code", str(wav)]) == 0
    assert marker.read_text() == "yes"


def test_json_outputs_end_with_a_newline(tiny_checkpoint, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    out = tmp_path / "out"
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), str(wav), "--output-dir", str(out)]) == 0
    assert (out / "a.wav.json").read_text().endswith("}\n")
    TrainingConfig().save(tmp_path / "config.json")
    assert (tmp_path / "config.json").read_text().endswith("}\n")
    assert TrainingConfig().report_to == []  # no tracker logs unless asked
