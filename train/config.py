"""Training configuration: one dataclass, read from a YAML/JSON file, overridden from the command line."""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..modeling.configuration_gemo_clap import TARGET_NORMALISATIONS, VARIANTS

FREEZE_MODES = ("none", "feature_encoder", "layers", "audio")
PRECISIONS = ("no", "fp16", "bf16")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class TrainingConfig:
    """Everything a training run needs. Defaults follow the paper (section 4.2) where it says."""

    # model
    audio_encoder: str = "microsoft/wavlm-large"
    text_encoder: str = "roberta-base"
    variant: str = "sl"
    sl_alpha: float = 0.8
    ml_alpha: float = 0.8
    projection_dim: int = 512
    projection_layers: int = 2
    target: str = "softmax"
    max_audio_seconds: float = 14.0
    # data
    dataset: str = ""
    test_fold: int = 1
    validation_fraction: float = 0.1
    # optimisation
    learning_rate: float = 1e-5
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
    # freezing and caching
    freeze: str = "none"
    freeze_layers: int = 0
    cache_audio_features: bool = True
    audio_cache_dir: str = ""  # default: <output_dir>/audio_cache; cross-validation shares one across folds
    # outputs and checkpoints
    output_dir: str = "outputs/gemo-clap"
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 2
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `ValueError` naming the first field whose value is not allowed."""
        choices = {
            "variant": VARIANTS,
            "target": TARGET_NORMALISATIONS,
            "freeze": FREEZE_MODES,
            "mixed_precision": PRECISIONS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("sl_alpha", "ml_alpha"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        for name in ("batch_size", "eval_batch_size", "num_epochs", "gradient_accumulation_steps", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainingConfig:
        """Build from a mapping; unknown keys are an error that names them (with the closest known key)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{source}: unknown key {key!r}{hint}")
        return cls(**{key: _coerce(known[key], value, source) for key, value in values.items()})

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> TrainingConfig:
        """Read a YAML/JSON file (a path, or the name of a shipped config in `train/configs/`) and apply
        `key=value` overrides (values parsed as YAML)."""
        values: dict[str, Any] = {}
        if path is not None:
            path = resolve_config_path(path)
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: a config file must hold a mapping of keys to values")
            values.update(loaded)
        for override in overrides or []:
            key, sep, raw = override.partition("=")
            if not sep:
                raise ValueError(f"override {override!r} must look like key=value")
            values[key.strip().replace("-", "_")] = yaml.safe_load(raw)
        return cls.from_dict(values, source=str(path or "overrides"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))


def resolve_config_path(path: str | Path) -> Path:
    """A config file path, or the name (with or without extension) of one shipped in `train/configs/`."""
    candidates = [Path(path), CONFIG_DIR / str(path), CONFIG_DIR / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"config {str(path)!r} not found (shipped configs: {', '.join(shipped)})")


def _coerce(spec: dataclasses.Field, value: Any, source: str) -> Any:
    """Check a value against the field's declared type, converting ints to floats and scalars to lists."""
    kind = spec.type if isinstance(spec.type, str) else spec.type.__name__
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
    if kind == "list[str]":
        if isinstance(value, str):
            return [item for item in value.split(",") if item] if value not in ("none", "") else []
        if isinstance(value, list):
            return [str(item) for item in value]
    raise ValueError(f"{source}: {spec.name} must be {kind}, got {value!r}")
