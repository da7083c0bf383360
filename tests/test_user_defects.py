"""The defects a new user hit, each fixed and held by a test: corrupt audio kept by build-dataset, runs mixed in
one output folder, tracebacks and misleading errors from the CLI, noisy tower loading, public-by-default push,
remote code run without asking."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
from gemo_clap.processing.atomic import leftovers
from gemo_clap.train.config import TrainingConfig
from iemocap_tree import tone
from test_training import build_tiny_dataset, tiny_overrides

from gemo_clap.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]


def write_manifest(root: Path, extra: dict[str, np.ndarray | None]) -> Path:
    """A manifest of 4 speakers x 2 emotions of good 0.5 s tones, plus `extra` float files (None: a folder)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["path,emotion,gender,speaker"]
    for speaker, gender in (("f1", "female"), ("m1", "male"), ("f2", "female"), ("m2", "male")):
        for emotion, frequency in (("happy", 330.0), ("sad", 165.0)):
            sf.write(root / f"{speaker}_{emotion}.wav", tone(0.5, frequency), 16000, subtype="PCM_16")
            lines.append(f"{speaker}_{emotion}.wav,{emotion},{gender},{speaker}")
    for name, signal in extra.items():
        if signal is None:
            (root / name).mkdir()
        else:
            sf.write(root / name, signal, 16000, subtype="FLOAT")
        lines.append(f"{name},happy,female,f1")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("defects"))


# ------------------------------------------------------------------------------------------ never corrupt audio
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


def test_macos_metadata_files_are_counted_as_skipped(tmp_path, capsys):
    from gemo_clap.processing.corpora import scan_corpus

    wav = tmp_path / "emodb" / "wav"
    wav.mkdir(parents=True)
    for name in ("03a01Fa.wav", "08a01Wa.wav"):
        sf.write(wav / name, tone(0.5, 200.0), 16000, subtype="PCM_16")
    (wav / "._03a01Fa.wav").write_bytes(b"\x00\x05\x16\x07 Mac OS X")
    scan = scan_corpus("emodb", tmp_path / "emodb")
    assert [record.id for record in scan.records] == ["03a01Fa", "08a01Wa"]
    assert [Path(path).name for path in scan.metadata] == ["._03a01Fa.wav"] and scan.skipped == []
    from gemo_clap.processing.builder import build_corpus
    from gemo_clap.processing.summary import format_summary

    dataset, report = build_corpus("emodb", tmp_path / "emodb", num_folds=2, cache_dir=tmp_path / "cache")
    assert "skipped 1 macOS metadata file(s) (._*), not audio" in format_summary(dataset, report)


# ------------------------------------------------------------------------------------------ never mix two runs
def test_training_refuses_a_folder_holding_a_run_unless_resumed_or_overwritten(
    tiny_encoders, dataset_dir, tmp_path, capsys
):
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "run", freeze="audio", num_epochs=1)
    assert main(["train", *overrides]) == 0
    first = sorted(path.name for path in (tmp_path / "run" / "checkpoints").iterdir())
    capsys.readouterr()
    assert main(["train", *overrides]) == 2
    assert (
        "already holds a training run (checkpoints, model, training_config.json, test_results.json, history.jsonl)"
        in (capsys.readouterr().err)
    )
    assert main(["train", "--resume", *overrides]) == 0  # a finished run resumes to its end
    assert main(["train", "--overwrite", *overrides[:-1], "num_epochs=2"]) == 0
    checkpoints = sorted(path.name for path in (tmp_path / "run" / "checkpoints").iterdir())
    assert first == ["step_00000003"] and checkpoints == ["step_00000003", "step_00000006"]
    assert json.loads((tmp_path / "run" / "training_config.json").read_text())["num_epochs"] == 2
    assert (tmp_path / "run" / "audio_cache").is_dir()  # the cache of the tower is kept
    assert leftovers(tmp_path / "run") == []
    assert main(["train", "--overwrite", "--resume", *overrides]) == 2
    assert "pick one" in capsys.readouterr().err


def test_cross_validate_refuses_a_folder_holding_one_unless_resumed_or_overwritten(
    tiny_encoders, dataset_dir, tmp_path, capsys
):
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "cv", freeze="audio", num_epochs=1)
    assert main(["cross-validate", "--folds", "1", *overrides]) == 0
    capsys.readouterr()
    assert main(["cross-validate", "--folds", "1", *overrides]) == 2
    assert "already holds a cross-validation (results.json, results.md" in capsys.readouterr().err
    started = (tmp_path / "cv" / "sl" / "fold_1" / "test_results.json").stat().st_mtime_ns
    assert main(["cross-validate", "--resume", "--folds", "1,2", *overrides]) == 0  # fold 1 kept, fold 2 trained
    assert (tmp_path / "cv" / "sl" / "fold_1" / "test_results.json").stat().st_mtime_ns == started
    assert len(json.loads((tmp_path / "cv" / "results.json").read_text())["variants"]["sl"]["folds"]) == 2
    assert main(["cross-validate", "--overwrite", "--folds", "2", *overrides]) == 0
    assert not (tmp_path / "cv" / "sl" / "fold_1").exists() and (tmp_path / "cv" / "sl" / "fold_2").is_dir()


def test_gitignore_covers_the_default_output_the_demo_and_data():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout (a copy of the tree): git check-ignore needs the repository")
    ignored = subprocess.run(
        ["git", "check-ignore", "outputs/gemo-clap/x", "gemo-clap-demo/x", "data/emodb/x"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert ignored == ["outputs/gemo-clap/x", "gemo-clap-demo/x", "data/emodb/x"]
    assert TrainingConfig().output_dir == "outputs/gemo-clap"


# ------------------------------------------------------------------------------------------ clear errors
def test_cross_validate_gives_the_clean_errors_train_gives(tiny_encoders, dataset_dir, tmp_path, capsys):
    no_gender = tmp_path / "no-gender"
    datasets.load_from_disk(str(dataset_dir)).remove_columns("gender").save_to_disk(str(no_gender))
    towers = tiny_encoders("wavlm")
    cases = [
        (["--dataset", str(tmp_path / "nowhere")], "not a dataset saved by `gemo-clap build-dataset`"),
        (["--dataset", str(no_gender), "--variants", "sl"], "lacks column(s) ['gender']"),
        (["--dataset", str(dataset_dir), "--folds", "9"], "test fold(s) [9] are not among the dataset's folds [1, 2]"),
    ]
    for arguments, message in cases:
        code = main(["cross-validate", *arguments, "--output-dir", str(tmp_path / "out"),
                     f"audio_encoder={towers[0]}", f"text_encoder={towers[1]}"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err
        assert err.splitlines()[-1].startswith("gemo-clap cross-validate: ")
    assert not (tmp_path / "out").exists()


def test_an_output_path_that_is_a_file_is_a_clear_error(tiny_encoders, dataset_dir, tmp_path, capsys):
    afile = tmp_path / "f"
    afile.write_text("keep me")
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, afile, num_epochs=1)
    assert main(["train", *overrides]) == 2
    assert f"output folder {afile} is a file" in capsys.readouterr().err
    manifest = write_manifest(tmp_path / "corpus", {})
    assert main(["build-dataset", "manifest", str(manifest), "--output", str(afile / "sub"), "--folds", "2"]) == 2
    assert f"--output {afile / 'sub'} would be created inside the file {afile}" in capsys.readouterr().err
    assert afile.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "f"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("warmup_epochs=-1", "warmup_epochs must be >= 0, got -1.0"),
        ("weight_decay=-0.1", "weight_decay must be >= 0"),
        ("max_grad_norm=-1", "max_grad_norm must be >= 0"),
        ("eval_batch_size=0", "eval_batch_size must be >= 1"),
        ("checkpoint_every_epochs=0", "checkpoint_every_epochs must be >= 1"),
        ("test_fold=0", "test_fold must be >= 1"),
        ("freeze_layers=-2", "freeze_layers must be >= 0"),
        ("model.projection_dim=0", "projection_dim must be an integer >= 1"),
        ("model.logit_scale_max=0", "logit_scale_max must be > 0"),
    ],
)
def test_every_numeric_field_is_range_checked(override, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        TrainingConfig.load(None, [override])


def test_a_bad_override_is_named_not_the_config_file(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 1.0e-4\n")
    with pytest.raises(ValueError, match=r"^override 'batch_size=big': batch_size must be int, got 'big'$"):
        TrainingConfig.load(config, ["batch_size=big"])
    with pytest.raises(ValueError, match=r"^override 'model\.varient=sl': model: unknown key 'varient'"):
        TrainingConfig.load(config, ["model.varient=sl"])


def test_a_mistyped_local_model_path_says_the_folder_does_not_exist(tiny_checkpoint, dataset_dir, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    typo = str(tiny_checkpoint("wavlm")) + "x"
    for command in (
        ["predict", "--model", typo, str(wav)],
        ["evaluate", "--model", typo, "--dataset", str(dataset_dir)],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"model folder {typo} does not exist" in err and "Hub" in err and "Traceback" not in err
    assert main(["train", "--dataset", str(dataset_dir), "audio_encoder=./no/such/tower"]) == 2
    assert "model folder ./no/such/tower does not exist" in capsys.readouterr().err


def test_empty_labels_are_rejected(tiny_checkpoint, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), "--labels", "", str(wav)]) == 2
    assert "--labels must be non-empty names" in capsys.readouterr().err


def test_evaluate_says_which_folds_it_scored_with_a_progress_bar(tiny_encoders, dataset_dir, tmp_path, capsys):
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path / "run", freeze="audio", num_epochs=1)
    assert main(["train", *overrides]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "run" / "model"), "--dataset", str(dataset_dir)]) == 0
    err = capsys.readouterr().err
    assert (
        "scoring 32 utterances of fold(s) [1, 2]: the whole dataset, including any folds the model was trained on"
        in err
    )
    assert "scoring: 100%" in err
    assert (
        main(["evaluate", "--model", str(tmp_path / "run" / "model"), "--dataset", str(dataset_dir), "--fold", "1"])
        == 0
    )
    err = capsys.readouterr().err
    assert "scoring 16 utterances of fold(s) [1]\n" in err and "including" not in err


def test_building_from_a_full_whisper_checkpoint_reports_no_unused_decoder(tiny_encoders, caplog, capfd):
    from gemo_clap.train.towers import build_model_and_processor

    audio, text = tiny_encoders("whisper")  # a WhisperModel folder: encoder and decoder weights
    with caplog.at_level(logging.INFO):
        model, _ = build_model_and_processor(audio, text)
    printed = capfd.readouterr()
    assert "LOAD REPORT" not in caplog.text + printed.out + printed.err
    assert type(model.audio_model).__name__ == "WhisperEncoder"


# ------------------------------------------------------------------------------------------ security and privacy
def make_run(folder: Path, checkpoint: Path, corpus: str) -> Path:
    model = folder / "model"
    shutil.copytree(checkpoint, model)
    (model / "training_config.json").write_text(
        json.dumps({"corpus": corpus, "audio_encoder": "a", "text_encoder": "b"})
    )
    return model


def test_push_of_a_model_trained_on_iemocap_is_private_unless_public_is_asked(
    mock_hub, tiny_checkpoint, tmp_path, capsys
):
    model = make_run(tmp_path / "iemocap-run", tiny_checkpoint("wavlm", variant="sl"), "iemocap")
    assert main(["push", "--model", str(model), "--repo-id", "org/iemocap-sl"]) == 0
    err = capsys.readouterr().err
    assert "trained on IEMOCAP, whose licence forbids redistribution: creating org/iemocap-sl as private" in err
    assert mock_hub.repos[("model", "org/iemocap-sl")].private is True
    card = mock_hub.last_commit.files["README.md"].decode()
    assert "leave-one-session-out" in card and "IEMOCAP\nlicence agreement" in card
    assert main(["push", "--model", str(model), "--repo-id", "org/iemocap-public", "--public"]) == 0
    assert mock_hub.repos[("model", "org/iemocap-public")].private is False
    emodb = make_run(tmp_path / "emodb-run", tiny_checkpoint("wavlm", variant="sl"), "emodb")
    assert main(["push", "--model", str(emodb), "--repo-id", "org/emodb-sl"]) == 0
    assert mock_hub.repos[("model", "org/emodb-sl")].private is False
    assert "EmoDB" in mock_hub.last_commit.files["README.md"].decode()


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


def test_readme_warns_to_resume_only_checkpoints_you_made():
    readme = (REPO / "README.md").read_text()
    assert "only resume checkpoints you made" in readme.lower() and "pickle" in readme.lower()


def test_leftovers_finds_what_an_interrupted_write_leaves(tmp_path):
    """The check the run tests rely on: it sees staged, replaced and discarded files, and nothing else."""
    from gemo_clap.processing.atomic import atomic_path, staging_path

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / ".config.json.partial-12").write_text("{")
    (tmp_path / ".model.old-7").mkdir()
    (tmp_path / ".discarded.partial-3").mkdir()
    (tmp_path / ".hidden").write_text("kept")
    (tmp_path / "results.partial.json").write_text("a name, not a staging file")
    assert [path.name for path in leftovers(tmp_path)] == [
        ".discarded.partial-3",
        ".model.old-7",
        ".config.json.partial-12",
    ]
    assert staging_path(tmp_path / "x").name == ".x.partial"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out" / "file.json", unique=True) as partial:
        partial.write_text("half")
        raise RuntimeError("crash while writing")
    assert not (tmp_path / "out" / "file.json").exists() and leftovers(tmp_path / "out") == []


# ------------------------------------------------------------------------------ a fresh machine (issue 28)
def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"gemo-clap {command}: ") and err.count("\n") == 1, err
    return err


def test_a_hub_id_without_a_network_is_one_quick_line(tmp_path, capsys, monkeypatch):
    """One request for the repo's config.json, no retries; offline, the local cache is asked instead."""
    import httpx2
    import huggingface_hub
    from huggingface_hub import constants

    requests = []

    def unreachable(url, timeout):
        requests.append((url, timeout))
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", unreachable)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    assert main(["predict", "--model", "no-org/no-model-here", str(wav)]) == 2
    err = one_line_error(capsys, "predict")
    assert "cannot reach the Hugging Face Hub" in err and "pass a local folder or set HF_HUB_OFFLINE=1" in err
    assert len(requests) == 1 and requests[0][0].endswith("no-org/no-model-here/resolve/main/config.json")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["export-onnx", "--model", "no-org/no-model-here", "--output", str(tmp_path / "out")]) == 2
    assert "not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in one_line_error(capsys, "export-onnx")
    assert len(requests) == 1


def test_a_folder_that_is_not_a_model_is_named_so(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    for command, args in (("predict", [str(wav)]), ("export-onnx", ["--output", str(tmp_path / "out")])):
        assert main([command, "--model", str(tmp_path), *args]) == 2
        err = one_line_error(capsys, command)
        assert f"{tmp_path} is not a gemo-clap model folder: no config.json with model_type gemo_clap" in err


def test_bad_export_options_are_one_line_naming_the_option(tiny_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnx", reason="export-onnx needs onnx (pip install 'gemo-clap[onnx]')")
    args = ["export-onnx", "--model", str(tiny_checkpoint("wavlm")), "--output", str(tmp_path / "out")]
    for opset in ("5", "99"):
        assert main([*args, "--opset", opset]) == 2
        assert "--opset must be from 14 to " in one_line_error(capsys, "export-onnx")
    assert not (tmp_path / "out").exists()


def test_json_outputs_end_with_a_newline(tiny_checkpoint, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(1.0, 220.0), 16000)
    out = tmp_path / "out"
    assert main(["predict", "--model", str(tiny_checkpoint("wavlm")), str(wav), "--output-dir", str(out)]) == 0
    assert (out / "a.wav.json").read_text().endswith("}\n")
    TrainingConfig().save(tmp_path / "config.json")
    assert (tmp_path / "config.json").read_text().endswith("}\n")
    assert TrainingConfig().report_to == []  # no tracker logs unless asked
