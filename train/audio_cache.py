"""Cache of a frozen audio tower's per-layer pooled statistics, so training epochs are served from it alone.

`AudioFeatureCache.fill` runs the tower once over every utterance not cached yet (batched, longest first, split
across processes, with a progress bar); afterwards `cached_split` turns a split into rows of cached tensors and
labels, so a batch needs no audio decoding, no feature extraction and no tower. Entries are keyed by a fingerprint
of the tower's weights and each utterance's cache key (id + audio hash), so a cache is never reused for another
tower or changed audio; it persists atomically as one safetensors file per tower fingerprint and layer selection,
shared by every fold and variant trained on the same tower."""

from __future__ import annotations

import hashlib
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..modeling import GEmoClapModel, GEmoClapProcessor
from ..processing.audio import SAMPLING_RATE, decode_example_audio
from ..processing.collator import example_key


def module_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's parameter and buffer names and values."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class AudioFeatureCache:
    """`GEmoClapModel.get_audio_layer_statistics` by utterance key, for one tower fingerprint and layer selection
    (`layers`: "last" or "all"); persisted in `directory` when one is given."""

    def __init__(self, tower: nn.Module, directory: str | Path | None = None, layers: str = "last"):
        self.fingerprint = module_fingerprint(tower)
        name = f"audio-{self.fingerprint}-{layers}.safetensors"
        self.path = Path(directory) / name if directory else None
        self.entries: dict[str, torch.Tensor] = {}
        if self.path is not None and self.path.exists():
            self.entries = load_file(str(self.path))

    @torch.no_grad()
    def fill(
        self,
        model: GEmoClapModel,
        processor: GEmoClapProcessor,
        splits: list[datasets.Dataset],
        accelerator: Accelerator,
        batch_size: int,
    ) -> int:
        """Compute the statistics of every utterance of `splits` not cached yet, once: longest first in batches of
        `batch_size`, the work split across processes and gathered so every process holds all of it; the main
        process saves the cache. Returns how many utterances the tower ran on."""
        todo = {}
        for split in splits:
            for index, example in enumerate(split.select_columns(["id", "audio", "duration"])):
                key = example_key(example)
                if key not in self.entries and key not in todo:
                    todo[key] = (split, index, example["duration"])
        keys = sorted(todo, key=lambda key: -todo[key][2])
        was_training = model.training
        model.eval()
        computed = []
        with accelerator.split_between_processes(keys) as mine:
            batches = [mine[start : start + batch_size] for start in range(0, len(mine), batch_size)]
            bar = tqdm(batches, desc="caching the frozen audio tower", disable=not accelerator.is_local_main_process)
            for batch in bar:
                audio = [decode_example_audio(todo[key][0][todo[key][1]]["audio"]) for key in batch]
                inputs = processor(audio=audio, sampling_rate=SAMPLING_RATE).to(model.device)
                statistics = model.get_audio_layer_statistics(**inputs).cpu()
                computed += list(zip(batch, statistics))
        model.train(was_training)
        if accelerator.num_processes > 1:
            computed = gather_object(computed)
        self.entries.update({key: statistics.clone() for key, statistics in computed})
        if keys and accelerator.is_main_process:
            self.save()
        return len(keys)

    def save(self) -> None:
        """Write the cache atomically (temp file renamed into place)."""
        if self.path is None or not self.entries:
            return
        with atomic_path(self.path, unique=True) as partial:
            save_file(self.entries, str(partial))

    def cached_split(self, split: datasets.Dataset) -> CachedSplit:
        """The rows of `split` as cached statistics and labels (every utterance must be cached: see `fill`)."""
        columns = [name for name in ("id", "audio", "emotion", "gender") if name in split.column_names]
        rows = split.select_columns(columns)
        return CachedSplit(
            torch.stack([self.entries[example_key(example)] for example in rows]),
            list(split["emotion"]),
            list(split["gender"]) if "gender" in split.column_names else None,
        )


class CachedSplit(Dataset):
    """A split as rows `{"audio_layer_statistics", "emotion", "gender"}` of cached tensors and labels."""

    def __init__(self, statistics: torch.Tensor, emotions: list[int], genders: list[int] | None):
        self.statistics, self.emotions, self.genders = statistics, emotions, genders

    def __len__(self) -> int:
        return len(self.emotions)

    def __getitem__(self, index: int) -> dict:
        row = {"audio_layer_statistics": self.statistics[index], "emotion": self.emotions[index]}
        if self.genders is not None:
            row["gender"] = self.genders[index]
        return row
