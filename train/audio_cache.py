"""Caches of a frozen audio tower's outputs, so training epochs never rerun what does not train.

Two kinds, one class:
- statistics (`freeze=audio`): each utterance's per-layer pooled statistics `[states, 2, hidden]` (of the last
  hidden state or of all); every epoch is served from them alone.
- a layer input (`freeze=layers` with `freeze_layers=k`): each utterance's hidden state k (the input of layer k,
  0-based; its real frames only, float16) and the statistics of the states below it `[k, 2, hidden]`, so only the
  top layers run in an epoch. Memory: the file is read per utterance through a memory map, so a run holds about a
  batch of it; on disk it takes utterances x frames x hidden x 2 bytes (EmoDB's 535 clips, whisper-base: 75 MB).

`AudioFeatureCache.fill` runs the tower once over every utterance not cached yet (batched, longest first, split
across processes, with a progress bar); `cached_split` then turns a split into rows of cached tensors and labels,
so a batch needs no audio decoding, no feature extraction and no frozen layer. Entries are keyed by a fingerprint
of the tower's weights and each utterance's cache key (id + audio hash), so a cache is never reused for another
tower or changed audio; it persists atomically as one safetensors file per tower fingerprint and kind, shared by
every fold and variant trained on the same tower."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..modeling import GEmoClapModel, GEmoClapProcessor
from ..modeling.modeling_gemo_clap import frame_statistics
from ..processing.atomic import atomic_path
from ..processing.audio import SAMPLING_RATE, decode_example_audio

LAYER_INPUT, LOWER_STATISTICS = "input", "lower"  # the two tensors of a layer-input entry: `<key>/input`, `<key>/lower`


def example_key(example: dict[str, Any]) -> str:
    """An utterance's cache key: its id and a hash of its audio bytes."""
    audio_bytes = example["audio"].get("bytes") or str(example["audio"].get("path")).encode()
    return f"{example['id']}:{hashlib.sha1(audio_bytes).hexdigest()[:12]}"


def module_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's parameter and buffer names and values."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class AudioFeatureCache:
    """A frozen tower's outputs by utterance key, for one tower fingerprint: per-layer statistics (`layers`: "last"
    or "all") or, with `layer_input=k`, hidden state k and the statistics below it, of each clip whole or (with
    `speech_only`) from its first speech to its last; persisted in `directory` when one is given."""

    def __init__(
        self,
        tower: nn.Module,
        directory: str | Path | None = None,
        layers: str = "last",
        layer_input: int | None = None,
        speech_only: bool = False,
    ):
        self.fingerprint, self.layers, self.layer_input = module_fingerprint(tower), layers, layer_input
        self.speech_only = speech_only
        kind = (layers if layer_input is None else f"layer{layer_input}") + ("-speech" if speech_only else "")
        self.path = Path(directory) / f"audio-{self.fingerprint}-{kind}.safetensors" if directory else None
        self.entries: dict[str, torch.Tensor] = {}  # in memory: what `fill` computed, or the whole statistics file
        self.stored: set[str] = set()  # keys held in the file (a layer-input file is read through a memory map)
        self._handle = None  # the open file, once a layer-input entry is read from it
        if self.path is not None and self.path.exists():
            if layer_input is None:
                self.entries = load_file(str(self.path))
            else:
                with safe_open(str(self.path), framework="pt") as handle:
                    self.stored = set(handle.keys())

    def __contains__(self, key: str) -> bool:
        name = key if self.layer_input is None else f"{key}/{LAYER_INPUT}"
        return name in self.entries or name in self.stored

    @torch.no_grad()
    def _compute(self, model: GEmoClapModel, inputs: dict) -> list[dict[str, torch.Tensor]]:
        """Per utterance of a batch, the tensors to cache (names relative to its key)."""
        if self.layer_input is None:
            statistics = model.get_audio_layer_statistics(**inputs, all_layers=self.layers == "all").cpu()
            return [{"": row} for row in statistics]
        audio = inputs[model.audio_tower.input_name]
        states, frame_mask = model.audio_tower.hidden_states(
            model.audio_model, audio, inputs["audio_attention_mask"], model.config.max_audio_seconds, all_layers=True
        )
        k = self.layer_input
        lower = frame_statistics(torch.stack(states[:k], dim=1), frame_mask) if k else None
        rows = []
        for index, frames in enumerate(frame_mask.sum(dim=1).tolist()):
            hidden = states[k][index, :frames].to(torch.float16).cpu()
            below = lower[index].cpu() if lower is not None else torch.zeros(0, 2, hidden.shape[-1])
            rows.append({f"/{LAYER_INPUT}": hidden, f"/{LOWER_STATISTICS}": below})
        return rows

    def fill(
        self,
        model: GEmoClapModel,
        processor: GEmoClapProcessor,
        splits: list[datasets.Dataset],
        accelerator: Accelerator,
        batch_size: int,
    ) -> int:
        """Compute the entries of every utterance of `splits` not cached yet, once (`fill_sources`). Returns how
        many utterances the tower ran on."""
        sources = {}
        for split in splits:
            for index, example in enumerate(split.select_columns(["id", "audio", "duration"])):
                key = example_key(example)
                if key not in sources:
                    sources[key] = (example["duration"], functools.partial(self._decode, split, index))
        return self.fill_sources(model, processor, sources, accelerator, batch_size)

    def _decode(self, split: datasets.Dataset, index: int) -> np.ndarray:
        return decode_example_audio(split[index]["audio"], speech_only=self.speech_only)

    @torch.no_grad()
    def fill_sources(
        self,
        model: GEmoClapModel,
        processor: GEmoClapProcessor,
        sources: dict[str, tuple[float, Callable[[], np.ndarray]]],
        accelerator: Accelerator,
        batch_size: int,
        description: str = "caching the frozen audio tower",
    ) -> int:
        """Compute the entries of the keys of `sources` (key -> (duration, a function giving its audio)) not cached
        yet: longest first in batches of `batch_size`, the work split across processes and gathered so every
        process holds all of it; the main process saves the cache. Returns how many clips the tower ran on."""
        keys = sorted((key for key in sources if key not in self), key=lambda key: -sources[key][0])
        was_training = model.training
        model.eval()
        computed = []
        with accelerator.split_between_processes(keys) as mine:
            batches = [mine[start : start + batch_size] for start in range(0, len(mine), batch_size)]
            bar = tqdm(batches, desc=description, disable=not accelerator.is_local_main_process)
            for batch in bar:
                audio = [sources[key][1]() for key in batch]
                inputs = processor(audio=audio, sampling_rate=SAMPLING_RATE).to(model.device)
                for key, tensors in zip(batch, self._compute(model, inputs)):
                    computed += [
                        (key + suffix, tensor.clone(memory_format=torch.contiguous_format))
                        for suffix, tensor in tensors.items()
                    ]
        model.train(was_training)
        if accelerator.num_processes > 1:
            computed = gather_object(computed)
        self.entries.update(computed)
        if keys and accelerator.is_main_process:
            self.save()
        return len(keys)

    def save(self) -> None:
        """Write the cache atomically (temp file renamed into place), with what an earlier file held."""
        if self.path is None or not self.entries:
            return
        entries = dict(self.entries)
        if self.stored:
            entries.update({name: self.tensor(name) for name in self.stored - set(entries)})
            self._handle = None  # the file is about to be replaced
        with atomic_path(self.path, unique=True) as partial:
            save_file(entries, str(partial))
        if self.layer_input is not None:  # from now on read through the memory map, not held in memory
            self.stored, self.entries = set(entries), {}

    def tensor(self, name: str) -> torch.Tensor:
        """One cached tensor (from memory, or read from the file through its memory map)."""
        if name in self.entries:
            return self.entries[name]
        if self._handle is None:
            self._handle = safe_open(str(self.path), framework="pt")
        return self._handle.get_tensor(name)

    def cached_split(self, split: datasets.Dataset) -> CachedSplit:
        """The rows of `split` as cached tensors and labels (every utterance must be cached: see `fill`)."""
        columns = [name for name in ("id", "audio", "emotion", "gender") if name in split.column_names]
        keys = [example_key(example) for example in split.select_columns(columns)]
        genders = list(split["gender"]) if "gender" in split.column_names else None
        if self.layer_input is None:
            return CachedSplit(torch.stack([self.entries[key] for key in keys]), list(split["emotion"]), genders)
        return CachedLayerInputs(self, keys, list(split["emotion"]), genders)


class CachedSplit(Dataset):
    """A split as rows `{"audio_layer_statistics", "emotion", "gender"}` of cached tensors and labels."""

    def __init__(self, statistics: torch.Tensor, emotions: list[int], genders: list[int] | None):
        self.statistics, self.emotions, self.genders = statistics, emotions, genders

    def __len__(self) -> int:
        return len(self.emotions)

    def labels(self, index: int) -> dict:
        row = {"emotion": self.emotions[index]}
        if self.genders is not None:
            row["gender"] = self.genders[index]
        return row

    def __getitem__(self, index: int) -> dict:
        return {"audio_layer_statistics": self.statistics[index], **self.labels(index)}


class CachedLayerInputs(CachedSplit):
    """A split as rows `{"audio_layer_input", "audio_lower_statistics", "emotion", "gender"}`, read from a layer-input
    cache one utterance at a time."""

    def __init__(self, cache: AudioFeatureCache, keys: list[str], emotions: list[int], genders: list[int] | None):
        super().__init__(torch.empty(0), emotions, genders)
        self.cache, self.keys = cache, keys

    def __getitem__(self, index: int) -> dict:
        key = self.keys[index]
        return {
            "audio_layer_input": self.cache.tensor(f"{key}/{LAYER_INPUT}").float(),
            "audio_lower_statistics": self.cache.tensor(f"{key}/{LOWER_STATISTICS}"),
            **self.labels(index),
        }


def collate_cached(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor] | None:
    """The audio part of a batch of cache rows: `audio_layer_statistics` stacked (`CachedSplit`), or each
    `audio_layer_input` padded to the longest with its `audio_frame_mask` and the `audio_lower_statistics` stacked
    (`CachedLayerInputs`); None for rows that are not a cache's."""
    if "audio_layer_statistics" in rows[0]:
        return {"audio_layer_statistics": torch.stack([row["audio_layer_statistics"] for row in rows])}
    if "audio_layer_input" in rows[0]:
        states = [row["audio_layer_input"] for row in rows]
        return {
            "audio_layer_input": nn.utils.rnn.pad_sequence(states, batch_first=True),
            "audio_frame_mask": nn.utils.rnn.pad_sequence(
                [torch.ones(len(state), dtype=torch.long) for state in states], batch_first=True
            ),
            "audio_lower_statistics": torch.stack([row["audio_lower_statistics"] for row in rows]),
        }
    return None
