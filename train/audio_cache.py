"""Cache of a frozen audio tower's pooled outputs, so epochs after the first skip the tower.

Entries are keyed by a fingerprint of the tower's weights and each utterance's key (id + audio hash, from the
collator), so a cache is
never reused for another tower or changed audio; it persists as one safetensors file per tower fingerprint
(shared by every fold and variant trained on the same tower)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def module_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's parameter and buffer names and values."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class AudioFeatureCache:
    """Pooled audio-tower outputs by utterance key, for one tower fingerprint; optionally persisted in `directory`."""

    def __init__(self, tower: nn.Module, directory: str | Path | None = None):
        self.fingerprint = module_fingerprint(tower)
        self.path = Path(directory) / f"audio-{self.fingerprint}.safetensors" if directory else None
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.partial")
        save_file(self.entries, str(partial))
        os.replace(partial, self.path)
        self._dirty = False
