"""``gemo-clap build-dataset`` in-process (gemo_clap.cli.main) and through the console script."""

import shutil
import subprocess
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
from helpers import assert_contains, write_manifest
from iemocap_tree import tone, write_iemocap_tree

from gemo_clap.cli import main


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_iemocap_tree(tmp_path_factory.mktemp("iemocap"))


def make_manifest(root: Path) -> Path:
    lines = ["path,emotion,gender,speaker"]
    for speaker, gender in (("a", "female"), ("b", "male"), ("c", "female"), ("d", "male")):
        for emotion in ("anger", "sadness", "boredom"):
            sf.write(root / f"{speaker}-{emotion}.wav", tone(0.2, 300.0), 16000, subtype="PCM_16")
            lines.append(f"{speaker}-{emotion}.wav,{emotion},{gender},{speaker}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def test_build_iemocap_prints_the_table_and_saves(release, tmp_path, capsys):
    out = tmp_path / "iemocap-4class"
    assert main(["build-dataset", "iemocap", str(release), "--output", str(out), "--num-proc", "2"]) == 0
    assert_contains(
        capsys.readouterr().out,
        "iemocap: 197 utterances",
        "emotion  gender  fold 1  fold 2  fold 3  fold 4  fold 5  total",
        "angry    female       4       3       4       4       4     19",
        "total    all         40      39      39      39      40    197",
        "dropped 240 utterances with unmapped labels: fru 40, sur 40, fea 40, dis 40, oth 40, xxx 40",
        "skipped 3 item(s):",
        "Ses03M_impro05a.txt:9",
        "  unreadable audio file: 1",
    )
    dataset = datasets.load_from_disk(str(out))
    assert len(dataset) == 197 and dataset.info.dataset_name == "iemocap"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iemocap-4class"]  # cache and staging removed


def test_strict_failure_leaves_no_output(release, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["build-dataset", "iemocap", str(release), "--output", str(out), "--strict"]) == 2
    assert "gemo-clap build-dataset: iemocap: 2 problem(s)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_manifest_options_and_existing_output(tmp_path, capsys):
    manifest = make_manifest(tmp_path)
    out = tmp_path / "built"
    argv = ["build-dataset", "manifest", str(manifest), "--output", str(out), "--folds", "2"]
    assert main([*argv, "--label-map", "anger:angry,sadness:sad", "--max-seconds", "0.1"]) == 0
    dataset = datasets.load_from_disk(str(out))
    assert dataset.features["emotion"].names == ["angry", "sad"] and len(dataset) == 8
    assert list(dataset["duration"]) == pytest.approx([0.1] * 8)
    assert "dropped 4 utterances with unmapped labels: boredom 4" in capsys.readouterr().out
    assert main(argv) == 2
    assert "output folder already exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--label-map", "anger:angry", "--keep-all"]) == 0
    assert datasets.load_from_disk(str(out)).features["emotion"].names == ["angry", "sadness", "boredom"]
    assert main(["build-dataset", "manifest", str(manifest), "--output", str(tmp_path / "other")]) == 2
    assert "cannot make 5 speaker-independent folds from 4 speakers" in capsys.readouterr().err


def test_console_script(tmp_path):
    executable = shutil.which("gemo-clap")
    if executable is None:
        pytest.skip("gemo-clap console script not installed (pip install -e .)")
    manifest = make_manifest(tmp_path)
    out = tmp_path / "built"
    result = subprocess.run(
        [executable, "build-dataset", "manifest", str(manifest), "--output", str(out), "--folds", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "manifest: 12 utterances" in result.stdout
    assert "Generating train split" in result.stderr  # the progress bar
    assert len(datasets.load_from_disk(str(out))) == 12
    failed = subprocess.run(
        [executable, "build-dataset", "manifest", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 2 and "gemo-clap build-dataset: manifest source not found" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_build_dataset_skips_nan_infinite_and_too_short_files_and_normalises_loud_float_files(tmp_path, capsys):
    loud = 1.8 * tone(0.5, 220.0).astype(np.float32) / 0.3  # peak 1.8: beyond [-1, 1]
    manifest = write_manifest(
        tmp_path / "corpus",
        {
            "all_nan.wav": np.full(8000, np.nan, dtype=np.float32),
            "some_inf.wav": np.concatenate([tone(0.4, 200.0), [np.inf]]).astype(np.float32),
            "blip.wav": tone(0.05, 300.0).astype(np.float32),
            "loud.wav": loud,
            "a_folder.wav": None,
        },
    )
    out = tmp_path / "built"
    assert main(["build-dataset", "manifest", str(manifest), "--output", str(out), "--folds", "2"]) == 0
    printed = capsys.readouterr().out
    assert "  NaN or infinite samples: 2" in printed and "all_nan.wav" in printed and "some_inf.wav" in printed
    assert "  shorter than 0.1 s: 1" in printed and "blip.wav" in printed
    assert "  folder, not an audio file: 1" in printed and "a_folder.wav" in printed
    assert "peak-normalised 1 float file(s) holding samples beyond [-1, 1]:" in printed and "loud.wav" in printed
    dataset = datasets.load_from_disk(str(out))
    assert sorted(dataset["id"]) == sorted(
        [f"{s}_{e}.wav" for s in ("f1", "m1", "f2", "m2") for e in ("happy", "sad")] + ["loud.wav"]
    )
    from gemo_clap.processing.audio import decode_example_audio

    kept = decode_example_audio(dataset[list(dataset["id"]).index("loud.wav")]["audio"])
    assert np.abs(kept).max() == pytest.approx(1.0, abs=1e-3)  # scaled, not clipped: the shape is kept
    np.testing.assert_allclose(kept, loud / np.abs(loud).max(), atol=1e-4)

    assert main(["build-dataset", "manifest", str(manifest), "--output", str(tmp_path / "b"), "--folds", "2",
                 "--min-seconds", "0.01"]) == 0  # fmt: skip
    assert "blip.wav" in datasets.load_from_disk(str(tmp_path / "b"))["id"]
