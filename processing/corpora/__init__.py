"""Corpus readers and what is known of each corpus: one [`CorpusSpec`] per reader, read by the dataset builder
(label map, folds), `gemo-clap push` (protocol, whether weights may go public) and the model card (licence)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..records import CorpusError, CorpusScan
from .crema_d import scan_crema_d
from .emodb import scan_emodb
from .iemocap import NUM_SESSIONS, scan_iemocap
from .manifest import scan_manifest
from .ravdess import scan_ravdess


@dataclass(frozen=True)
class CorpusSpec:
    """A corpus: its reader and the facts the builder, `push` and the model card need.

    Args:
        name: the reader's name on the command line and in a built dataset's info (`dataset_name`).
        title: the corpus's usual name.
        reader: `reader(source) -> CorpusScan`.
        default_label_map: label-map preset applied when none is given (None: keep every label).
        fixed_folds: the number of the corpus's own folds (IEMOCAP: 5); None: speaker folds are dealt.
        fold_unit: what the corpus's own folds are (IEMOCAP: sessions).
        protocol: the cross-validation protocol, with `{folds}` for the number of folds.
        licence: the corpus's licence, as the model card names it.
        redistributable: whether the corpus (and weights trained on it) may be published publicly.
    """

    name: str
    title: str
    reader: Callable[[str | Path], CorpusScan]
    default_label_map: str | None = None
    fixed_folds: int | None = None
    fold_unit: str = "speaker folds"
    protocol: str = "speaker-independent {folds}-fold cross-validation"
    licence: str = ""
    redistributable: bool = True

    def protocol_text(self, num_folds: int | None, num_labels: int) -> str:
        """The protocol sentence of the model card, e.g. "leave-one-session-out 5-fold cross-validation, 4 classes"."""
        folds = self.fixed_folds or num_folds or "k"
        return f"{self.protocol.format(folds=folds)}, {num_labels} classes"


CORPORA: dict[str, CorpusSpec] = {
    spec.name: spec
    for spec in (
        CorpusSpec(
            "iemocap",
            "IEMOCAP",
            scan_iemocap,
            default_label_map="4class",
            fixed_folds=NUM_SESSIONS,
            fold_unit="sessions",
            protocol="leave-one-session-out {folds}-fold cross-validation",
            licence="licence agreement from USC SAIL (https://sail.usc.edu/iemocap/)",
            redistributable=False,
        ),
        CorpusSpec("emodb", "EmoDB", scan_emodb, licence="CC0-1.0 (as published by audeering)"),
        CorpusSpec("ravdess", "RAVDESS", scan_ravdess, licence="CC BY-NC-SA 4.0"),
        CorpusSpec("crema-d", "CREMA-D", scan_crema_d, licence="Open Database License (ODbL)"),
        CorpusSpec("manifest", "custom", scan_manifest),
    )
}


def corpus_spec(name: str | None) -> CorpusSpec | None:
    """The spec of a corpus by reader name or title, any case (None for an unknown name)."""
    key = (name or "").lower()
    return next((spec for spec in CORPORA.values() if key in (spec.name, spec.title.lower())), None)


def scan_corpus(corpus: str, source: str | Path) -> CorpusScan:
    """Read ``source`` with the reader of ``corpus`` (one of ``CORPORA``)."""
    if corpus not in CORPORA:
        raise CorpusError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    if not Path(source).exists():
        raise CorpusError(f"{corpus} source not found: {source}")
    return CORPORA[corpus].reader(source)


__all__ = [
    "CORPORA",
    "CorpusSpec",
    "corpus_spec",
    "scan_corpus",
    "scan_crema_d",
    "scan_emodb",
    "scan_iemocap",
    "scan_manifest",
    "scan_ravdess",
]
