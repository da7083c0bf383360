"""IEMOCAP (``IEMOCAP_full_release/``): consensus labels of ``dialog/EmoEvaluation/*.txt``, folds = sessions.

Layout read: ``Session{1..5}/dialog/EmoEvaluation/<dialog>.txt`` (a ``%`` header, then per utterance a line
``[start - end]<TAB><utterance id><TAB><label><TAB>[V, A, D]`` followed by ``C-``/``A-`` evaluator lines) and
``Session{1..5}/sentences/wav/<dialog>/<utterance id>.wav``. The ``Categorical/``, ``Attribute/`` and
``Self-evaluation/`` sub-folders (per-evaluator labels) and macOS ``._*`` files are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..records import CorpusError, CorpusScan, Skipped, Utterance
from .common import APPLE_DOUBLE

LABELS = ("neu", "fru", "ang", "sad", "hap", "exc", "sur", "fea", "dis", "oth", "xxx")
NUM_SESSIONS = 5
_UTTERANCE_LINE = re.compile(r"^\[\d+(?:\.\d+)? - \d+(?:\.\d+)?\]\s+(\S+)\s+(\S+)\s+\[[^\]]*\]$")
_UTTERANCE_ID = re.compile(r"^Ses0[1-5][FM]_\w+_[FM]\d+$")
_IGNORED_LINE_PREFIXES = ("%", "C-", "A-")


def gender_from_utterance_id(utterance_id: str) -> str:
    """Speaker gender: first letter of the last ``_`` field (``Ses01F_impro01_M000`` is male)."""
    if not _UTTERANCE_ID.match(utterance_id):
        raise CorpusError(f"not an IEMOCAP utterance id: {utterance_id!r}")
    return "female" if utterance_id.rsplit("_", 1)[1][0] == "F" else "male"


def parse_emo_evaluation(path: str | Path) -> tuple[list[tuple[str, str]], list[Skipped]]:
    """``(utterance id, label)`` pairs of one EmoEvaluation file, and its lines that do not parse (``file:line``)."""
    path = Path(path)
    pairs, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(_IGNORED_LINE_PREFIXES):
            continue
        match = _UTTERANCE_LINE.match(line)
        if match is None:
            problems.append(Skipped(f"{path}:{number}", "malformed label line", repr(line[:80])))
        elif match.group(2) not in LABELS or not _UTTERANCE_ID.match(match.group(1)):
            problems.append(Skipped(f"{path}:{number}", "unknown label or utterance id", repr(line[:80])))
        else:
            pairs.append((match.group(1), match.group(2)))
    return pairs, problems


def scan_iemocap(root: str | Path) -> CorpusScan:
    """All labelled utterances of ``IEMOCAP_full_release/``; fold = session, speaker = ``Ses0<n><F|M>``."""
    root = Path(root)
    sessions = [n for n in range(1, NUM_SESSIONS + 1) if (root / f"Session{n}").is_dir()]
    if not sessions:
        raise CorpusError(f"no Session1..Session{NUM_SESSIONS} folders in {root} (expected IEMOCAP_full_release/)")
    records, skipped, metadata, seen = [], [], [], set()
    for session in sessions:
        label_dir = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        label_files = sorted(p for p in label_dir.glob("*.txt") if not p.name.startswith(APPLE_DOUBLE))
        metadata += sorted(str(p) for p in label_dir.glob(f"{APPLE_DOUBLE}*.txt"))
        if not label_files:
            raise CorpusError(f"no label files in {label_dir}")
        for label_file in label_files:
            pairs, problems = parse_emo_evaluation(label_file)
            skipped += problems
            wav_dir = root / f"Session{session}" / "sentences" / "wav" / label_file.stem
            for utterance_id, label in pairs:
                wav = wav_dir / f"{utterance_id}.wav"
                if utterance_id in seen:
                    skipped.append(Skipped(str(label_file), "duplicate utterance id", utterance_id))
                elif not wav.is_file():
                    skipped.append(Skipped(str(wav), "missing audio file"))
                else:
                    gender = gender_from_utterance_id(utterance_id)
                    speaker = f"Ses{session:02d}{gender[0].upper()}"
                    records.append(Utterance(utterance_id, str(wav), label, gender, speaker, fold=session))
                seen.add(utterance_id)
    return CorpusScan("iemocap", records, LABELS, skipped, metadata)
