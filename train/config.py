"""Training configuration: one dataclass, read from a YAML/JSON file, overridden from the command line.

The model's own settings (variant, alphas, projection, pooling, ...) are not declared here: they are the fields of
`GEmoClapConfig`, carried as the mapping `model` and handed to it, which validates them. Files written before that
moved them, with `variant: sl` and the like at the top level, still load (with a warning naming the new key).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..modeling import GEmoClapConfig
from ..modeling.configuration_gemo_clap import RENAMED_FIELDS, current_setting

FREEZE_MODES = ("none", "feature_encoder", "layers", "audio")
PRECISIONS = ("no", "fp16", "bf16")
ATTENTIONS = ("", "eager", "sdpa", "flash_attention_2")
VALIDATION_SPLITS = ("utterances", "speakers")
SELECT_MODES = ("off", "auto")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TRAINING_CONFIG_NAME = "training_config.json"  # in a run folder (as given) and in its model folder (provenance)
CROSS_VALIDATION_FILE = "cross_validation.json"  # in a final model's folder: the cross-validation figure it quotes
LOCAL_PATH_KEYS = (
    "dataset",
    "test_dataset",
    "output_dir",
    "audio_cache_dir",
)  # paths on the training machine: not published
# GEmoClapConfig's own fields but those training fills in (the towers' configs, the dataset's label names)
MODEL_SETTINGS: dict[str, str] = {
    spec.name: spec.type
    for spec in dataclasses.fields(GEmoClapConfig)
    if spec.name in GEmoClapConfig.__annotations__
    and spec.name not in ("audio_config", "text_config", "emotion_labels", "gender_labels")
}


@dataclass
class TrainingConfig:
    """Everything a training run needs. Defaults follow the paper (section 4.2) where it says."""

    # towers and the model's settings (GEmoClapConfig fields, e.g. {"variant": "sl", "sl_alpha": 0.8})
    audio_encoder: str = "microsoft/wavlm-large"
    text_encoder: str = "roberta-base"
    model: dict[str, Any] = field(default_factory=dict)
    # data
    dataset: str = ""  # a built dataset's folder, or several separated by commas (train/multi_corpus.py)
    # several corpora: the shared label set (default: the emotions every corpus has; or a preset / src:dst,... / JSON
    # label map) and sampling every corpus equally often
    label_map: str = ""
    corpus_balanced: bool = True
    test_dataset: str = ""  # cross-corpus: train on every utterance of `dataset`, test on all of this corpus
    corpus: str = ""  # the training corpus's name for reports and the model card; default: the dataset's own
    test_fold: int | None = 1  # None (`--test-fold none`): train on every utterance, no test score
    # folds left out of the run altogether (neither trained on, validated on nor tested): a nested selection's outer
    # test fold, while it scores a candidate on `test_fold`
    exclude_folds: list[int] = field(default_factory=list)
    # "utterances": a stratified `validation_fraction` of the training folds' utterances picks the best epoch;
    # "speakers": the fold after the test fold (cyclically), speakers never trained on, does
    validation_split: str = "utterances"
    validation_fraction: float = 0.1
    # "auto": the settings of `select_space` chosen on speaker-held-out inner folds of the training folds
    # (train/selection.py), the test fold never seen; "off": the config's settings as written
    select: str = "off"
    select_space: dict[str, Any] = field(default_factory=dict)  # {key: [values]}, keys as overrides; {}: the default
    # inner folds each candidate is scored on, drawn with the seed (0: every training fold, each held out in turn)
    select_folds: int = 1
    # optimisation
    learning_rate: float = 1e-5
    # of the audio layer weights (audio_layer_pooling=weighted_sum): a few hundred steps at learning_rate barely move them
    layer_weights_learning_rate: float = 0.0  # 0: learning_rate
    weight_decay: float = 0.01
    batch_size: int = 8
    eval_batch_size: int = 16
    num_epochs: int = 50
    warmup_epochs: float = 5
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    seed: int = 42
    text_attn_implementation: str = ""  # e.g. "eager" (faster on a CPU with attention dropout); "": the tower's own
    gather_global_batch: bool = True  # with several processes, the contrastive matrix spans the global batch
    group_by_length: bool = False  # batches of similar length when the audio tower runs (not cache-served)
    # each utterance from its first speech to its last (Silero VAD, the pipeline's defaults): what the default
    # scoring protocol scores (speech spans), so clips arriving with silence around them score as training saw them
    speech_trim: bool = True
    # augmentation that stays cache-served (train/augmentation.py): same-label mixup of cached statistics
    # (freeze=audio), time masking of a cached hidden state (freeze=layers)
    mixup_alpha: float = 0.0
    time_mask_fraction: float = 0.0
    # augmented views (train/augmented_views.py, freeze=audio): K degraded views per training clip through the frozen
    # tower once, cached; each epoch serves each clip clean or as one of its views. Conditions drawn from
    # augment_conditions (noise, babble, telephone, codec, reverb, speed, tempo), SNR and RT60 uniform in the ranges
    augment_views: int = 0
    augment_conditions: list[str] = field(default_factory=lambda: ["noise", "babble", "telephone", "reverb"])
    augment_snr_db: list[float] = field(default_factory=lambda: [0.0, 20.0])
    augment_rt60_s: list[float] = field(default_factory=lambda: [0.2, 1.0])
    augment_seed: int = 0
    augment_cache_max_gb: float = 2.0  # the views' cache a run may need; more is refused before any work
    # freezing and caching
    freeze: str = "none"
    freeze_layers: int = 0
    freeze_text_embeddings: bool = False  # the text tower's token embeddings (the prompts use a few of their rows)
    # the whole text tower: each prompt's first-token state is computed once per run and no step runs the tower;
    # the text projection still trains (it can place each prompt anywhere in the shared space)
    freeze_text: bool = False
    # LoRA adapters (peft) of this rank on the text tower's / the audio tower's attention train instead of its
    # weights (0: off); merged into the weights before every save, so checkpoints load without peft
    text_lora_rank: int = 0
    audio_lora_rank: int = 0
    cache_audio_features: bool = True  # with freeze=audio: compute the tower once, serve every epoch from the cache
    audio_cache_dir: str = ""  # default: <output_dir>/audio_cache; cross-validation shares one across folds
    # outputs and checkpoints
    output_dir: str = "outputs/gemo-clap"
    checkpoint_every_steps: int = 0  # also checkpoint every N optimiser steps (0: only at epoch ends)
    checkpoint_every_epochs: int = 1  # checkpoint (and write the best model) every N epochs and after the last
    keep_checkpoints: int = 2
    # metric trackers (accelerate's names, e.g. tensorboard: <output_dir>/gemo-clap/); none by default, opt in
    report_to: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def __getattr__(self, name: str) -> Any:
        """Model settings read like fields (`config.variant`), with `GEmoClapConfig`'s defaults."""
        if name in MODEL_SETTINGS:
            return self.model.get(name, getattr(GEmoClapConfig, name))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def validate(self) -> None:
        """Raise `ValueError` naming the first field whose value is not allowed (model settings: `GEmoClapConfig`'s
        own validation)."""
        for name in self.model:
            if name not in MODEL_SETTINGS:
                raise ValueError(f"model: {_unknown(name, MODEL_SETTINGS)}")
        GEmoClapConfig(**self.model)
        choices = {
            "freeze": FREEZE_MODES,
            "mixed_precision": PRECISIONS,
            "text_attn_implementation": ATTENTIONS,
            "validation_split": VALIDATION_SPLITS,
            "select": SELECT_MODES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        positive = (
            "batch_size",
            "eval_batch_size",
            "num_epochs",
            "gradient_accumulation_steps",
            "keep_checkpoints",
            "checkpoint_every_epochs",
        )
        for name in (*positive, "test_fold"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in (
            "warmup_epochs",
            "weight_decay",
            "max_grad_norm",
            "freeze_layers",
            "checkpoint_every_steps",
            "seed",
            "layer_weights_learning_rate",
            "text_lora_rank",
            "audio_lora_rank",
            "select_folds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.text_lora_rank and (self.freeze_text or self.freeze_text_embeddings):
            raise ValueError("text_lora_rank trains adapters on the text tower: it needs freeze_text=false")
        if self.audio_lora_rank and self.freeze not in ("none", "feature_encoder"):
            raise ValueError(
                "audio_lora_rank adapts every layer of the audio tower: it needs freeze=none or freeze=feature_encoder"
            )
        if self.mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be >= 0, got {self.mixup_alpha!r}")
        if not 0 <= self.time_mask_fraction <= 0.5:
            raise ValueError(f"time_mask_fraction must be in [0, 0.5], got {self.time_mask_fraction!r}")
        if self.augment_views:
            from .augmented_views import check_settings

            check_settings(self)

    def with_model(self, **settings: Any) -> TrainingConfig:
        """A copy with some model settings changed (validated)."""
        return dataclasses.replace(self, model={**self.model, **settings})

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainingConfig:
        """Build from a mapping; unknown keys are an error that names them (with the closest known key)."""
        return cls._from_items([(key, value, source) for key, value in values.items()])

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> TrainingConfig:
        """Read a YAML/JSON file (a path, or the name of a shipped config in `train/configs/`) and apply
        `key=value` overrides (values parsed as YAML; `model.variant=ml` sets a model setting)."""
        items: list[tuple[str, Any, str]] = []
        if path is not None:
            path = resolve_config_path(path)
            loaded = _read_yaml(path) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: a config file must hold a mapping of keys to values")
            items += [(key, value, str(path)) for key, value in loaded.items()]
        for override in overrides or []:
            key, sep, raw = override.partition("=")
            if not sep:
                raise ValueError(f"override {override!r} must look like key=value")
            items.append((key.strip().replace("-", "_"), yaml.safe_load(raw), f"override {override!r}"))
        return cls._from_items(items)

    @classmethod
    def _from_items(cls, items: list[tuple[str, Any, str]]) -> TrainingConfig:
        """`(key, value, where it came from)` in order, later ones winning; errors name where the key came from."""
        known = {spec.name: spec.type for spec in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        model: dict[str, Any] = {}
        for key, value, source in items:
            if key == "model":
                if not isinstance(value, dict):
                    raise ValueError(f"{source}: model must be a mapping of model settings, got {value!r}")
                for name, setting in value.items():
                    model.update([_model_setting(name, setting, source)])
            elif key.startswith("model."):
                model.update([_model_setting(key.removeprefix("model."), value, source)])
            elif key in MODEL_SETTINGS or key in RENAMED_FIELDS:
                name, setting = _model_setting(key, value, source)
                warnings.warn(f"{source}: {key!r} is a model setting, now written model.{name}", FutureWarning)
                model[name] = setting
            elif key in known:
                values[key] = _coerce(key, known[key], value, source)
            else:
                raise ValueError(f"{source}: {_unknown(key, [*known, *MODEL_SETTINGS])}")
        return cls(**values, model=model)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def provenance(self, corpus: str) -> dict[str, Any]:
        """What a saved model records of its training (`<model>/training_config.json`, published with it): the
        settings and the corpus's name, without the paths of the training machine."""
        values = {key: value for key, value in self.to_dict().items() if key not in LOCAL_PATH_KEYS}
        return {**values, "corpus": corpus}


def _read_yaml(path: Path) -> Any:
    """A config file's contents; a file that is not YAML (or JSON) is one error naming the file and the line."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{path}{where}: not valid YAML ({problem})") from None


def resolve_config_path(path: str | Path) -> Path:
    """A config file path, or the name (with or without extension) of one shipped in `train/configs/`."""
    candidates = [Path(path), CONFIG_DIR / str(path), CONFIG_DIR / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"config {str(path)!r} not found (shipped configs: {', '.join(shipped)})")


def _unknown(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _model_setting(name: str, value: Any, source: str) -> tuple[str, Any]:
    """A model setting's current name and its checked value (a setting saved under an old name renamed, its value
    translated); unknown names are an error naming `source`."""
    current, value = current_setting(name, value)
    if current not in MODEL_SETTINGS:
        raise ValueError(f"{source}: model: {_unknown(current, MODEL_SETTINGS)}")
    return current, _coerce(name, MODEL_SETTINGS[current], value, source)


def _coerce(name: str, kind: str, value: Any, source: str) -> Any:
    """Check a value against a declared type, converting ints to floats and comma lists to lists."""
    optional, kind = kind.endswith(" | None"), kind.removesuffix(" | None")
    if optional and (value is None or str(value).lower() == "none"):
        return None
    if kind == "float" and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads "1e-5" as a string
        except (TypeError, ValueError):
            pass
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if kind == "list[int]":
        items = value.split(",") if isinstance(value, str) else [value] if isinstance(value, int) else value
        if isinstance(items, list) and all(str(item).strip().lstrip("-").isdigit() for item in items):
            return [int(item) for item in items]
    if kind == "list[float]":
        items = value.split(",") if isinstance(value, str) else value
        try:
            return [float(item) for item in items if not isinstance(item, bool)]
        except (TypeError, ValueError):
            pass
    if kind == "list[str]":
        if isinstance(value, str):
            return [item for item in value.split(",") if item] if value not in ("none", "") else []
        if isinstance(value, list):
            return [str(item) for item in value]
    if kind == "dict[str, Any]" and isinstance(value, dict):
        return value
    raise ValueError(f"{source}: {name} must be {kind}, got {value!r}")
