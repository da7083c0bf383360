"""Shared fixtures: tiny random GEmo-CLAP towers and checkpoints (built once per test session) and the tiny synthetic
dataset; shared helpers and constants are in `helpers`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["hub_mock"]

SAMPLING_RATE = 16000


def _clip(seconds: float, seed: int = 0, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """A reproducible float32 test clip: a 220 Hz tone plus noise, `seconds` long."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(round(seconds * sampling_rate))) / sampling_rate
    tone = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * time)
    return (tone + 0.05 * rng.standard_normal(time.size)).astype(np.float32)


@pytest.fixture(scope="session")
def make_clip():
    """`make_clip(seconds, seed=0, sampling_rate=16000)` -> a reproducible float32 clip."""
    return _clip


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory):
    """`tiny_encoders(kind)` -> (audio_dir, text_dir) of small random towers saved in Hugging Face layout."""
    from gemo_clap.train.tiny_towers import save_tiny_encoders

    built: dict[str, tuple[Path, Path]] = {}

    def get(kind: str = "wavlm") -> tuple[Path, Path]:
        if kind not in built:
            built[kind] = save_tiny_encoders(tmp_path_factory.mktemp(f"towers-{kind}"), kind)
        return built[kind]

    return get


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_encoders, tmp_path_factory):
    """`tiny_checkpoint(kind, **config_kwargs)` -> a folder holding a saved GEmo-CLAP model and its processor."""
    from gemo_clap.train.towers import build_model_and_processor

    built: dict[tuple, Path] = {}

    def get(kind: str = "wavlm", **config_kwargs) -> Path:
        key = (kind, tuple(sorted(config_kwargs.items())))
        if key not in built:
            model, processor = build_model_and_processor(*tiny_encoders(kind), **config_kwargs)
            folder = tmp_path_factory.mktemp(f"checkpoint-{kind}")
            model.save_pretrained(folder)
            processor.save_pretrained(folder)
            built[key] = folder
        return built[key]

    return get


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    """The tiny synthetic training dataset (`helpers.build_tiny_dataset`), built once per test session (read only)."""
    from helpers import build_tiny_dataset

    return build_tiny_dataset(tmp_path_factory.mktemp("tiny-dataset"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train several times faster on one thread on a shared CPU (subprocesses get OMP_NUM_THREADS=1)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
