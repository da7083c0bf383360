"""`gemo-clap push` through the real huggingface_hub client against the offline mock Hub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from huggingface_hub import ModelCard

from gemo_clap.cli import main


def test_push_commits_weights_code_processor_and_card(mock_hub, tiny_checkpoint, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset_info.json").write_text(json.dumps({"dataset_name": "iemocap"}))
    folder = tmp_path / "run" / "model"
    shutil.copytree(tiny_checkpoint("wavlm", variant="sl"), folder)
    (folder.parent / "training_config.json").write_text(
        json.dumps({"audio_encoder": "microsoft/wavlm-large", "text_encoder": "roberta-base", "dataset": str(data)})
    )
    results = tmp_path / "test_results.json"
    results.write_text(
        json.dumps(
            {"fold": 1, "war": 0.7, "uar": 0.65, "macro_f1": 0.6, "per_class_recall": {}, "confusion_matrix": [[1]]}
        )
    )

    code = main(
        ["push", "--model", str(folder), "--repo-id", "org/gemo-clap-sl", "--private", "--results", str(results)]
    )

    assert code == 0
    commit = mock_hub.last_commit
    assert commit.repo_id == "org/gemo-clap-sl"
    assert mock_hub.repos[("model", "org/gemo-clap-sl")].private is True
    expected = {
        "model.safetensors",
        "config.json",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "configuration_gemo_clap.py",
        "modeling_gemo_clap.py",
        "processing_gemo_clap.py",
        "pipeline_gemo_clap.py",
        "loss_gemo_clap.py",
    }
    assert expected <= commit.paths
    assert not [path for path in commit.paths if path.endswith((".bin", ".pt", ".pkl"))]
    card = ModelCard(commit.files["README.md"].decode())
    metrics = {m["type"]: m["value"] for m in card.data.to_dict()["model-index"][0]["results"][0]["metrics"]}
    assert metrics["accuracy"] == 70.0 or metrics["accuracy"] == 0.7
    assert "trust_remote_code=True" in card.text
    assert "leave-one-session-out" in card.text and "IEMOCAP" in card.text


def test_push_refuses_a_folder_without_weights(mock_hub, tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemo_clap"}))
    assert main(["push", "--model", str(tmp_path), "--repo-id", "org/x"]) == 2
    assert "gemo-clap push:" in capsys.readouterr().err
    assert mock_hub.commits == []


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
