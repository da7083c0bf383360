"""Label maps: corpus emotion labels onto a common label set (preset name, inline ``src:dst,...`` or JSON file)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .records import CorpusError, Utterance


@dataclass(frozen=True)
class LabelMap:
    """``mapping`` sends corpus labels to the target ``names`` (the ``emotion`` ClassLabel order)."""

    mapping: dict[str, str]
    names: tuple[str, ...]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], origin: str = "label map") -> LabelMap:
        """Map from ``(source, target)`` pairs; target names keep their order of first appearance."""
        mapping: dict[str, str] = {}
        for source, target in pairs:
            source, target = str(source).strip(), str(target).strip()
            if not source or not target:
                raise CorpusError(f"{origin}: empty label in pair {source!r}:{target!r}")
            if mapping.get(source, target) != target:
                raise CorpusError(f"{origin}: label {source!r} mapped to both {mapping[source]!r} and {target!r}")
            mapping[source] = target
        if not mapping:
            raise CorpusError(f"{origin}: no label pairs")
        return cls(mapping, tuple(dict.fromkeys(mapping.values())))


FOUR_CLASS = LabelMap.from_pairs(
    [
        # IEMOCAP
        ("ang", "angry"), ("hap", "happy"), ("exc", "happy"), ("sad", "sad"), ("neu", "neutral"),
        # EmoDB
        ("anger", "angry"), ("happiness", "happy"), ("sadness", "sad"), ("neutral", "neutral"),
        # RAVDESS ("angry", "happy", "sad", "neutral") and CREMA-D ("anger", "happy", "sad", "neutral")
        ("angry", "angry"), ("happy", "happy"),
    ]
)  # fmt: skip
PRESETS: dict[str, LabelMap] = {"4class": FOUR_CLASS}


def parse_label_map(spec: str | LabelMap) -> LabelMap:
    """A preset name (``4class``), an inline ``src:dst,src:dst`` list, or a JSON file holding ``{"src": "dst"}``."""
    if isinstance(spec, LabelMap):
        return spec
    if spec in PRESETS:
        return PRESETS[spec]
    if spec.endswith(".json") or Path(spec).is_file():
        path = Path(spec)
        try:
            mapping = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CorpusError(f"cannot read label map file {path}: {error}") from error
        if not isinstance(mapping, dict):
            raise CorpusError(f"label map file {path} must hold a JSON object {{'src': 'dst'}}")
        return LabelMap.from_pairs(mapping.items(), origin=str(path))
    pairs = []
    for item in spec.split(","):
        if item.count(":") != 1:
            raise CorpusError(
                f"label map item {item!r} is not 'src:dst' (label map {spec!r}; presets: {', '.join(PRESETS)})"
            )
        pairs.append(tuple(item.split(":")))
    return LabelMap.from_pairs(pairs, origin=f"label map {spec!r}")


def apply_label_map(
    records: Sequence[Utterance], labels: Sequence[str], label_map: LabelMap | None, keep_all: bool = False
) -> tuple[list[Utterance], tuple[str, ...], Counter[str]]:
    """Map record emotions; return kept records, the emotion names, and counts of dropped (unmapped) labels.

    Without a map every record and every corpus label (``labels``, in order) is kept. With a map, unmapped labels are
    dropped, or with ``keep_all`` kept unchanged and appended to the names in corpus order.
    """
    if label_map is None:
        return list(records), tuple(labels), Counter()
    if not set(label_map.mapping) & set(labels):
        raise CorpusError(f"label map {label_map.mapping} matches none of the corpus labels {list(labels)}")
    names = label_map.names + tuple(
        label for label in labels if label not in label_map.mapping and label not in label_map.names
    )
    kept, dropped = [], Counter()
    for record in records:
        if record.emotion in label_map.mapping:
            kept.append(replace(record, emotion=label_map.mapping[record.emotion]))
        elif keep_all:
            kept.append(record)
        else:
            dropped[record.emotion] += 1
    return kept, (names if keep_all else label_map.names), dropped
