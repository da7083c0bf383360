"""What corpus readers produce: one record per utterance, and the files they had to skip."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..modeling.labels_gemo_clap import DEFAULT_GENDER_LABELS

GENDERS = DEFAULT_GENDER_LABELS  # the gender ClassLabel names of every built corpus


class CorpusError(ValueError):
    """A corpus on disk cannot be turned into a dataset (bad layout, column, row or label)."""


@dataclass(frozen=True)
class Utterance:
    """Metadata of one utterance; its audio stays on disk until the dataset is built."""

    id: str
    path: str  # audio file on disk
    emotion: str  # corpus label before any label map
    gender: str  # "female" or "male"
    speaker: str
    fold: int | None = None  # 1..K; None until speaker folds are assigned


@dataclass(frozen=True)
class Skipped:
    """A file or label-file line left out of the dataset, and why."""

    source: str  # file path, or "path:line" for a label-file line
    reason: str  # category, e.g. "missing audio file"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class CorpusScan:
    """Everything a corpus reader found: utterances, skipped items, and the corpus label set in its documented order."""

    corpus: str
    records: list[Utterance]
    labels: tuple[str, ...]
    skipped: list[Skipped] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)  # macOS "._*" companions: not audio, not a problem
