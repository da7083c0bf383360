"""Model cards and Hub publishing, against the offline mock Hub of tests/hub_mock.py."""

import hashlib
import json
import socket
from pathlib import Path

import pytest
import torch
from gemo_clap.train.hub.model_card import render_model_card
from gemo_clap.train.hub.publish import files_to_publish, push_model_folder
from helpers import assert_contains
from hub_mock import MOCK_TOKEN, MOCK_USER, UnexpectedHubRequest
from huggingface_hub import HfApi, ModelCard, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

LABELS = ["anger", "happiness", "sadness", "neutral"]
SUMMARY = {
    "war": {"mean": 0.83164, "std": 0.012},
    "uar": {"mean": 0.81431, "std": 0.02},
    "macro_f1": {"mean": 0.8, "std": 0.01},
    "per_gender": {"female": {"war": {"mean": 0.85, "std": 0.01}, "uar": {"mean": 0.84, "std": 0.0}}},
}


def card_kwargs(**overrides):
    kwargs = {
        "repo_id": "mock-user/gemo-clap-sl",
        "variant": "sl",
        "audio_encoder": "openai/whisper-tiny.en",
        "text_encoder": "../shared/models/local-text-encoder",
        "dataset_name": "EmoDB",
        "protocol": "leave-one-speaker-out 10-fold cross-validation",
        "label_names": LABELS,
        "results": SUMMARY,
        "training_args": {"learning_rate": 1e-05, "num_train_epochs": 40},
    }
    return {**kwargs, **overrides}


def test_model_card_metadata_round_trip():
    card = ModelCard(str(render_model_card(**card_kwargs())))
    data = card.data
    assert data.license == "apache-2.0"
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "zero-shot-audio-classification"
    assert data.base_model == ["openai/whisper-tiny.en"]  # the local text-encoder path is no Hub model id
    assert "sl-gemo-clap" in data.tags and "speech-emotion-recognition" in data.tags
    assert data.model_name == "gemo-clap-sl"
    results = {result.metric_type: result for result in data.eval_results}
    assert sorted(results) == ["accuracy", "f1", "recall"]
    assert results["accuracy"].metric_value == 0.8316
    assert results["accuracy"].metric_name == "WAR (weighted average recall)"
    assert results["recall"].metric_value == 0.8143
    assert results["recall"].metric_name == "UAR (unweighted average recall)"
    assert results["recall"].metric_config == "macro"
    assert (results["f1"].metric_value, results["f1"].metric_config) == (0.8, "macro")
    for result in data.eval_results:
        assert (result.task_type, result.dataset_name, result.dataset_type) == (
            "zero-shot-audio-classification",
            "EmoDB",
            "EmoDB",
        )
        assert result.dataset_args == {"protocol": "leave-one-speaker-out 10-fold cross-validation"}


def test_model_card_text():
    text = ModelCard(str(render_model_card(**card_kwargs()))).text
    assert_contains(
        text,
        'AutoModel.from_pretrained("mock-user/gemo-clap-sl", trust_remote_code=True)',
        'pipeline("zero-shot-audio-classification", model="mock-user/gemo-clap-sl", trust_remote_code=True)',
        "candidate_labels=['anger', 'happiness', 'sadness', 'neutral']",
        "| WAR (weighted average recall) | 83.16 ± 1.20 |",
        "| UAR (unweighted average recall) | 81.43 ± 2.00 |",
        "| WAR (female) | 85.00 ± 1.00 |",
        "| learning_rate | 1e-05 |",
        "| num_train_epochs | 40 |",
        "arXiv:2306.07848",
        "@article{pan2023gemoclap",
        "Protocol: leave-one-speaker-out 10-fold cross-validation.",
    )
    assert "IEMOCAP licence agreement" not in text


@pytest.mark.parametrize(("variant", "title"), [("emo", "Emo-CLAP"), ("sl", "SL-GEmo-CLAP"), ("ml", "ML-GEmo-CLAP")])
def test_model_card_variants(variant, title):
    card = render_model_card(**card_kwargs(variant=variant))
    assert card.text.lstrip().startswith(f"# {title} for speech emotion recognition (EmoDB)")
    assert title.lower() in card.data.tags


def test_model_card_without_results_and_single_run_results():
    card = ModelCard(str(render_model_card(**card_kwargs(results=None, training_args=None))))
    assert card.data.eval_results is None
    assert "No evaluation results were recorded" in card.text
    assert "Training hyperparameters were not recorded" in card.text

    single = render_model_card(**card_kwargs(results={"war": 0.5, "uar": 0.25}))
    assert {r.metric_type: r.metric_value for r in single.data.eval_results} == {"accuracy": 0.5, "recall": 0.25}
    assert "| WAR (weighted average recall) | 50.00 |" in single.text


def test_model_card_iemocap_licence_note():
    card = ModelCard(str(render_model_card(**card_kwargs(dataset_name="IEMOCAP", license="cc-by-nc-4.0"))))
    assert card.data.license == "cc-by-nc-4.0"
    assert "fall under the terms of the IEMOCAP\nlicence agreement" in card.text


def test_model_card_unknown_variant():
    with pytest.raises(ValueError, match=r"unknown GEmo-CLAP variant 'gemo'; expected one of \['emo', 'ml', 'sl'\]"):
        render_model_card(**card_kwargs(variant="gemo"))


@pytest.fixture
def model_folder(tmp_path):
    """A saved model folder: publishable files plus files that must stay local."""
    folder = tmp_path / "model"
    (folder / ".cache" / "huggingface").mkdir(parents=True)
    save_file({"proj.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4)}, folder / "model.safetensors")
    contents = {
        "config.json": '{"model_type": "gemo_clap"}',
        "modeling_gemo_clap.py": "# remote code\n",
        "preprocessor_config.json": '{"sampling_rate": 16000}',
        "tokenizer.json": '{"version": "1.0"}',
        "tokenizer_config.json": "{}",
        "vocab.txt": "[PAD]\n[UNK]\n",
        "README.md": "---\nlicense: apache-2.0\n---\n# local card\n",
        "training_log.txt": "step 1 loss 3.2\n",
        "train_config.yaml": "lr: 0.001\n",
        ".cache/huggingface/upload.lock": "",
    }
    for name, text in contents.items():
        (folder / name).write_text(text)
    return folder


PUBLISHED = {
    "model.safetensors",
    "config.json",
    "modeling_gemo_clap.py",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "README.md",
}


def test_push_model_folder_commits_exactly_the_publishable_files(mock_hub, model_folder):
    info = push_model_folder(model_folder, "gemo-clap-sl", commit_message="Add SL-GEmo-CLAP")
    commit = mock_hub.last_commit
    assert len(mock_hub.commits) == 1
    assert (commit.repo_id, commit.repo_type, commit.revision) == (f"{MOCK_USER}/gemo-clap-sl", "model", "main")
    assert commit.message == "Add SL-GEmo-CLAP" and commit.token == MOCK_TOKEN
    assert commit.paths == PUBLISHED
    assert commit.lfs_paths == {"model.safetensors"}
    weights = (model_folder / "model.safetensors").read_bytes()
    assert mock_hub.lfs_uploads == [hashlib.sha256(weights).hexdigest()]  # sent once through the LFS protocol
    for name in PUBLISHED:
        assert commit.files[name] == (model_folder / name).read_bytes(), name
    assert info.oid == commit.oid
    assert info.commit_url == f"https://huggingface.co/{MOCK_USER}/gemo-clap-sl/commit/{commit.oid}"
    assert mock_hub.repos[("model", f"{MOCK_USER}/gemo-clap-sl")].private is False


def test_push_model_folder_with_card_token_and_existing_private_repo(mock_hub, model_folder):
    card = render_model_card(**card_kwargs(repo_id="lab/gemo-clap-sl"))
    push_model_folder(model_folder, "lab/gemo-clap-sl", private=True, token="hf_explicit")
    push_model_folder(model_folder, "lab/gemo-clap-sl", private=True, token="hf_explicit", model_card=card)
    assert len(mock_hub.commits) == 2  # the second push reuses the existing repo (exist_ok)
    assert mock_hub.repos[("model", "lab/gemo-clap-sl")].private is True
    commit = mock_hub.last_commit
    assert commit.token == "hf_explicit"
    assert commit.paths == PUBLISHED
    assert commit.files["README.md"].decode() == str(card)
    assert mock_hub.repo_files("lab/gemo-clap-sl")["README.md"].decode() == str(card)


def test_files_to_publish_sharded_checkpoint(tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for index, shard in enumerate(shards):
        save_file({f"w{index}": torch.zeros(2)}, folder / shard)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w0": shards[0], "w1": shards[1]}}))
    assert files_to_publish(folder) == ["config.json", *shards, "model.safetensors.index.json"]
    (folder / shards[1]).unlink()
    with pytest.raises(ValueError, match=r"lists shards missing from the folder: \['model-00002-of-00002"):
        files_to_publish(folder)


@pytest.mark.parametrize(
    ("write", "remove", "message"),
    [
        ({"pytorch_model.bin": b"\x80\x04pickle"}, None, r"pickle-based files \['pytorch_model.bin'\]"),
        ({"ckpt/optimizer.pt": b"\x80\x04pickle"}, None, r"pickle-based files \['ckpt/optimizer.pt'\]"),
        ({}, "model.safetensors", "holds no model.safetensors"),
        ({}, "config.json", "holds no config.json"),
        ({"model.safetensors": b"not safetensors"}, None, "model.safetensors is not a valid safetensors file"),
    ],
)
def test_push_model_folder_refuses_bad_folders(mock_hub, model_folder, write, remove, message):
    for name, content in write.items():
        (model_folder / name).parent.mkdir(exist_ok=True)
        (model_folder / name).write_bytes(content)
    if remove:
        (model_folder / remove).unlink()
    with pytest.raises(ValueError, match=message):
        push_model_folder(model_folder, "gemo-clap-sl")
    assert mock_hub.requests == [] and mock_hub.commits == []


def test_transformers_push_to_hub_goes_through_the_mock(mock_hub, tmp_path):
    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, vocab_size=99)
    model = BertModel(config)
    model.save_pretrained(tmp_path / "local")
    model.push_to_hub("tiny-bert")

    commit = mock_hub.last_commit
    assert commit.repo_id == f"{MOCK_USER}/tiny-bert"
    assert commit.paths == {"model.safetensors", "config.json", "README.md"}
    assert not any(path.endswith(".bin") for path in commit.paths)
    assert commit.lfs_paths == {"model.safetensors"}
    assert commit.files["model.safetensors"] == (tmp_path / "local" / "model.safetensors").read_bytes()
    assert json.loads(commit.files["config.json"])["hidden_size"] == 32

    reloaded = BertModel.from_pretrained(f"{MOCK_USER}/tiny-bert")  # downloads from the mock into a temporary cache
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name


def test_mock_hub_is_loud_about_unknown_requests_and_real_network(mock_hub):
    message = "mock_hub: unexpected request GET https://huggingface.co/api/models/a/b/refs"
    with pytest.raises(UnexpectedHubRequest, match=message):
        HfApi().list_repo_refs("a/b")
    assert mock_hub.unexpected == [message]
    mock_hub.unexpected.clear()  # otherwise the fixture fails the test at teardown
    with pytest.raises(OSError, match="real network access to 'example.com' is blocked"):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(RepositoryNotFoundError):  # committing needs the repo to exist
        HfApi().upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=f"{MOCK_USER}/missing")


def test_mock_hub_serves_seeded_repos(mock_hub):
    files = {"config.json": b"{}", "model.safetensors": b"weights", "processor/vocab.txt": b"a\nb\n"}
    mock_hub.add_repo("lab/seeded", files)
    folder = snapshot_download("lab/seeded")
    assert {path: (Path(folder) / path).read_bytes() for path in files} == files
    assert sorted(HfApi().list_repo_files("lab/seeded")) == sorted(files)
