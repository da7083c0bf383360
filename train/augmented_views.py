"""Augmented views of the training clips for a frozen, cached audio tower: robustness to recording conditions at the
cost of K tower passes per training clip, once.

For each training clip and view v in 1..K (`augment_views`), the view is `make_view(clip, key, v, settings, pool)`:
one condition drawn from `augment_conditions` and its parameters, all from a generator seeded by (`augment_seed`,
the clip's cache key, v), applied to the whole clip as it was recorded (`processing.conditions`):

- "noise": white noise at an SNR uniform in `augment_snr_db`;
- "babble": 4 clips of other speakers of the clip's own corpus and fold (speakers that always train with it, never
  a test or validation clip) summed, at an SNR uniform in `augment_snr_db` (white noise when there are none);
- "telephone": 300-3400 Hz and an 8 kHz round trip, plain or through G.711 mu-law or GSM 6.10;
- "codec": a round trip through one of libsndfile's lossy encoders at 16 kHz;
- "reverb": a synthetic room with RT60 uniform in `augment_rt60_s`;
- "speed" / "tempo": 0.9-1.1 times faster (pitch with it, or kept).

With `speech_trim` the view is then trimmed from its first speech to its last by the VAD run on the degraded audio,
as the default path trims a degraded recording; its tower statistics are what training sees. They are stored in the
frozen-tower cache under `<clip key>#view<v>:<settings and babble pool hash>`, so every fold, seed and variant
sharing the cache reuses them. Each epoch draws, per clip, the clean clip or one of its K views (uniformly, seeded
by the run's seed and the epoch). Only the training split is augmented. Cost: K x training clips tower passes (and
VAD passes), once; cache: K x training clips x `view_bytes`; refused beyond `augment_cache_max_gb`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import Dataset

from ..modeling import GEmoClapModel, GEmoClapProcessor
from ..modeling.timeline_gemo_clap import trim_to_speech
from ..processing.audio import SAMPLING_RATE, decode_example_audio, speech_detector
from .audio_cache import AudioFeatureCache, CachedSplit, example_key

AUGMENTATIONS = ("noise", "babble", "telephone", "codec", "reverb", "speed", "tempo")
# fixed a priori (before any benchmark ran): the conditions users report; speed and tempo change emotional cues
DEFAULT_AUGMENTATIONS = ("noise", "babble", "telephone", "reverb")
TELEPHONE_CODECS = (None, "mulaw", "gsm610")
VIEW_CODECS = ("mp3", "vorbis", "opus", "mulaw", "adpcm")  # those that encode at 16 kHz
SPEED_FACTORS = (0.9, 1.1)
BABBLE_SPEAKERS = 4
GIGABYTE = 1e9


@dataclass(frozen=True)
class ViewSettings:
    """What a view depends on besides its clip: the conditions, their ranges and the seed."""

    conditions: tuple[str, ...] = DEFAULT_AUGMENTATIONS
    snr_db: tuple[float, float] = (0.0, 20.0)
    rt60_s: tuple[float, float] = (0.2, 1.0)
    seed: int = 0

    @classmethod
    def of(cls, config) -> ViewSettings:
        return cls(
            tuple(config.augment_conditions),
            tuple(config.augment_snr_db),
            tuple(config.augment_rt60_s),
            config.augment_seed,
        )

    def fingerprint(self) -> str:
        return hashlib.sha1(json.dumps([*self.conditions, *self.snr_db, *self.rt60_s, self.seed]).encode()).hexdigest()[
            :8
        ]


def check_settings(config) -> None:
    """Raise `ValueError` naming the first augmentation setting out of its range (see `TrainingConfig`)."""
    from ..processing.conditions import RT60_RANGE_S, SNR_RANGE_DB

    if config.augment_views < 0:
        raise ValueError(f"augment_views must be >= 0, got {config.augment_views!r}")
    if not config.augment_views:
        return
    if config.freeze != "audio" or not config.cache_audio_features:
        raise ValueError(
            "augment_views caches the frozen tower's views: it needs freeze=audio, cache_audio_features=true"
        )
    unknown = [name for name in config.augment_conditions if name not in AUGMENTATIONS]
    if unknown or not config.augment_conditions:
        raise ValueError(f"augment_conditions must name some of {AUGMENTATIONS}, got {config.augment_conditions!r}")
    for name, (low, high), open_low in (
        ("augment_snr_db", SNR_RANGE_DB, False),
        ("augment_rt60_s", RT60_RANGE_S, True),
    ):
        values = getattr(config, name)
        inside = len(values) == 2 and values[0] <= values[1]
        inside = inside and (low < values[0] if open_low else low <= values[0]) and values[1] <= high
        if not inside:
            bounds = f"{'(' if open_low else '['}{low:g}, {high:g}]"
            raise ValueError(f"{name} must be [low, high] within {bounds}, got {values!r}")
    if config.augment_cache_max_gb <= 0:
        raise ValueError(f"augment_cache_max_gb must be > 0, got {config.augment_cache_max_gb!r}")


def view_seed(seed: int, key: str, view: int) -> list[int]:
    """The generator seed of view `view` of the clip with cache key `key`."""
    return [int(seed), int(hashlib.sha1(key.encode()).hexdigest()[:12], 16), int(view)]


def make_view(
    clip: np.ndarray, key: str, view: int, settings: ViewSettings, pool: Sequence[np.ndarray] = ()
) -> np.ndarray:
    """View `view` of `clip` (cache key `key`): a condition and its parameters drawn from `view_seed` (module
    docstring); `pool` holds the clips babble is made from."""
    from ..processing import conditions as c

    rng = np.random.default_rng(view_seed(settings.seed, key, view))
    kind = settings.conditions[int(rng.integers(len(settings.conditions)))]
    if kind in ("noise", "babble"):
        snr = float(rng.uniform(*settings.snr_db))
        noise = c.babble(pool, len(clip), rng, BABBLE_SPEAKERS) if kind == "babble" and len(pool) else None
        return c.add_noise(clip, snr, rng, noise)
    if kind == "telephone":
        codecs = [codec for codec in TELEPHONE_CODECS if codec is None or codec in c.CODECS]
        return c.telephone(clip, codecs[int(rng.integers(len(codecs)))])
    if kind == "codec":
        codecs = [codec for codec in VIEW_CODECS if codec in c.CODECS]
        return c.codec_round_trip(clip, codecs[int(rng.integers(len(codecs)))])
    if kind == "reverb":
        return c.reverberate(clip, float(rng.uniform(*settings.rt60_s)), rng)
    factor = float(rng.uniform(*SPEED_FACTORS))
    return c.change_speed(clip, factor) if kind == "speed" else c.change_tempo(clip, factor)


def view_bytes(model: GEmoClapModel) -> int:
    """Bytes of one view's cached statistics `[states, 2, hidden]` (float32)."""
    states = len(model.audio_tower.layers(model.audio_model)) + 1 if model.config.pools_all_layers else 1
    return states * 2 * model.audio_model.config.hidden_size * 4


def check_cache_size(config, model: GEmoClapModel, clips: int) -> float:
    """The views' cache size in GB for `clips` training clips; `ValueError` beyond `augment_cache_max_gb`."""
    size = config.augment_views * clips * view_bytes(model) / GIGABYTE
    if size > config.augment_cache_max_gb:
        raise ValueError(
            f"augment_views={config.augment_views} of {clips} training clips need {size:.2f} GB of cache, above "
            f"augment_cache_max_gb={config.augment_cache_max_gb:g}: lower augment_views or raise the limit"
        )
    return size


def babble_pools(split: datasets.Dataset) -> list[list[int]]:
    """Per clip of `split`, the indices of the clips of its corpus and fold by other speakers (other clips when
    there are no speakers)."""
    columns = split.column_names
    folds = list(split["fold"])
    corpora = list(split["corpus"]) if "corpus" in columns else [""] * len(split)
    speakers = list(split["speaker"]) if "speaker" in columns else list(range(len(split)))
    groups: dict[tuple, list[int]] = {}
    for index, group in enumerate(zip(corpora, folds)):
        groups.setdefault(group, []).append(index)
    return [
        [other for other in groups[(corpora[i], folds[i])] if speakers[other] != speakers[i]] for i in range(len(split))
    ]


def view_keys(split: datasets.Dataset, views: int, settings: ViewSettings) -> list[list[str]]:
    """Per clip of `split`, the cache keys of its views 1..`views`."""
    keys = [example_key(example) for example in split.select_columns(["id", "audio"])]
    pools = babble_pools(split)
    names = []
    for index, key in enumerate(keys):
        pool = hashlib.sha1("|".join(sorted(keys[other] for other in pools[index])).encode()).hexdigest()[:8]
        names.append([f"{key}#view{view}:{settings.fingerprint()}:{pool}" for view in range(1, views + 1)])
    return names


def fill_views(
    cache: AudioFeatureCache,
    model: GEmoClapModel,
    processor: GEmoClapProcessor,
    split: datasets.Dataset,
    views: int,
    settings: ViewSettings,
    accelerator: Accelerator,
    batch_size: int,
) -> list[list[str]]:
    """Compute the views of `split` not cached yet (see the module docstring); returns their keys per clip."""
    names = view_keys(split, views, settings)
    keys = [example_key(example) for example in split.select_columns(["id", "audio"])]
    pools = babble_pools(split)
    durations = list(split["duration"])
    decoded: dict[int, np.ndarray] = {}

    def clip(index: int) -> np.ndarray:
        if index not in decoded:
            decoded[index] = decode_example_audio(split[index]["audio"])
        return decoded[index]

    def load(index: int, view: int):
        def audio() -> np.ndarray:
            pool = [clip(other) for other in pools[index]] if "babble" in settings.conditions else []
            degraded = make_view(clip(index), keys[index], view, settings, pool)
            return trim_to_speech(degraded, SAMPLING_RATE, speech_detector()) if cache.speech_only else degraded

        return audio

    sources = {
        names[index][view - 1]: (durations[index], load(index, view))
        for index in range(len(split))
        for view in range(1, views + 1)
    }
    cache.fill_sources(model, processor, sources, accelerator, batch_size, "caching augmented views")
    return names


class AugmentedViews(Dataset):
    """A cached training split whose rows serve, per epoch, the clean statistics or one of K views' (drawn
    uniformly per clip, seeded by `seed` and the epoch: `set_epoch`, called by the loader)."""

    def __init__(self, clean: CachedSplit, views: torch.Tensor, seed: int):
        self.clean, self.views, self.seed = clean, views, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        self.choice = torch.randint(self.views.shape[1] + 1, (len(self.clean),), generator=generator)

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, index: int) -> dict:
        view = int(self.choice[index])
        statistics = self.clean.statistics[index] if view == 0 else self.views[index, view - 1]
        return {"audio_layer_statistics": statistics, **self.clean.labels(index)}


def augmented_split(
    config,
    cache: AudioFeatureCache,
    model: GEmoClapModel,
    processor: GEmoClapProcessor,
    train: datasets.Dataset,
    clean: CachedSplit,
    accelerator: Accelerator,
) -> AugmentedViews:
    """The training split `train` (cached as `clean`) with `config.augment_views` views per clip, filled where
    missing."""
    names = fill_views(
        cache,
        model,
        processor,
        train,
        config.augment_views,
        ViewSettings.of(config),
        accelerator,
        config.eval_batch_size,
    )
    views = torch.stack([torch.stack([cache.entries[name] for name in row]) for row in names])
    return AugmentedViews(clean, views, config.seed)
