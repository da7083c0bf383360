"""Publish a saved GEmo-CLAP model folder to the Hugging Face Hub (safetensors only, never pickles)."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, ModelCard
from huggingface_hub.utils import filter_repo_objects
from safetensors import SafetensorError, safe_open

# Weights, configs (model, generation, processor, tokenizer), remote code, tokenizer vocabularies, the card.
UPLOAD_PATTERNS = [
    "*.safetensors",
    "*.json",
    "*.py",
    "README.md",
    "vocab.txt",
    "merges.txt",
    "*.model",
    "*.tiktoken",
    "*.jinja",
]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"


def _weight_files(folder: Path, files: list[str]) -> list[str]:
    """The safetensors weight files of a model folder (single file or sharded with an index)."""
    if WEIGHTS_NAME in files:
        return [WEIGHTS_NAME]
    if WEIGHTS_INDEX_NAME in files:
        shards = sorted(set(json.loads((folder / WEIGHTS_INDEX_NAME).read_text())["weight_map"].values()))
        missing = [shard for shard in shards if shard not in files]
        if missing:
            raise ValueError(f"{folder / WEIGHTS_INDEX_NAME} lists shards missing from the folder: {missing}")
        return shards
    raise ValueError(
        f"{folder} holds no {WEIGHTS_NAME} (nor {WEIGHTS_INDEX_NAME}): save the model with save_pretrained"
    )


def files_to_publish(folder: str | Path) -> list[str]:
    """Relative paths of the files of ``folder`` that ``push_model_folder`` uploads, after checking the folder.

    Raises ``ValueError`` if the folder holds pickle-based files (``*.bin``, ``*.pt``, ``*.pkl``...), lacks
    ``config.json`` or safetensors weights, or if a weight file is not valid safetensors.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory")
    files = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    pickles = [name for name in files if name.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ValueError(
            f"refusing to publish {folder}: it holds pickle-based files {pickles}, which can run code when loaded; "
            "save the model with save_pretrained (safetensors) and remove them"
        )
    if "config.json" not in files:
        raise ValueError(f"{folder} holds no config.json: save the model with save_pretrained")
    for name in _weight_files(folder, files):
        try:
            with safe_open(folder / name, framework="np"):
                pass
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{folder / name} is not a valid safetensors file: {error}") from error
    return list(filter_repo_objects(files, allow_patterns=UPLOAD_PATTERNS))


def push_model_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload GEmo-CLAP model",
    model_card: ModelCard | None = None,
) -> CommitInfo:
    """Create ``repo_id`` if needed and commit the publishable files of ``folder`` (see ``files_to_publish``).

    ``model_card``, when given, is uploaded as ``README.md`` in place of any README in the folder.
    """
    folder = Path(folder)
    files = files_to_publish(folder)
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=folder / name)
        for name in files
        if not (model_card is not None and name == "README.md")
    ]
    if model_card is not None:
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(model_card).encode()))
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
    return api.create_commit(repo_id=repo_url.repo_id, operations=operations, commit_message=commit_message)
