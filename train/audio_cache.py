"""Cache of a frozen audio tower's per-layer pooled statistics, so epochs after the first skip the tower.

Entries are keyed by a fingerprint of the tower's weights and each utterance's cache key (id + audio hash, from the
collator), so a cache is never reused for another tower or changed audio; it persists as one safetensors file per
tower fingerprint (shared by every fold and variant trained on the same tower)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_path


def module_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's parameter and buffer names and values."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class AudioFeatureCache:
    """Audio-tower statistics by utterance key, for one tower fingerprint; optionally persisted in `directory`."""

    def __init__(self, tower: nn.Module, directory: str | Path | None = None, layers: str = "last"):
        self.fingerprint = module_fingerprint(tower)
        name = f"audio-{self.fingerprint}-{layers}.safetensors"  # statistics of the last layer, or of all layers
        self.path = Path(directory) / name if directory else None
        self.entries: dict[str, torch.Tensor] = {}
        if self.path is not None and self.path.exists():
            self.entries = load_file(str(self.path))
        self.hits = self.misses = 0
        self._dirty = False

    def lookup(self, keys: list[str]) -> torch.Tensor | None:
        """The stacked outputs when every key is cached, else None."""
        if all(key in self.entries for key in keys):
            self.hits += len(keys)
            return torch.stack([self.entries[key] for key in keys])
        self.misses += len(keys)
        return None

    def store(self, keys: list[str], pooled: torch.Tensor) -> None:
        for key, row in zip(keys, pooled.detach().cpu()):
            self.entries[key] = row.clone()
        self._dirty = True

    def save(self) -> None:
        """Write the cache atomically (temp file renamed into place) when it has new entries."""
        if self.path is None or not self._dirty or not self.entries:
            return
        with atomic_path(self.path, unique=True) as partial:
            save_file(self.entries, str(partial))
        self._dirty = False
