"""Write a fake ``IEMOCAP_full_release/`` tree with the real layout; clips are short tones, not speech.

Each of the 5 sessions has 4 dialogs (``Ses0<n>F_impro01``, ``Ses0<n>M_impro05a``, ``Ses0<n>F_script01_1``,
``Ses0<n>M_script01_1b``). Every dialog holds, ``repeats`` times, one utterance per label of ``labels`` for each
gender, alternating female and male (``<dialog>_F000``, ``<dialog>_M000``, ``<dialog>_F001``, ...). Label files have
the ``%`` header, evaluator ``C-``/``A-`` lines, and sit beside ``Categorical/``, ``Attribute/`` and
``Self-evaluation/`` decoy sub-folders and macOS ``._*`` files. With ``defects`` the tree also has (all with
4-class labels): a listed utterance without wav (``MISSING_WAV``), a malformed label line (``MALFORMED_LINE``),
an unreadable wav (``UNREADABLE_WAV``); and one 15 s utterance (``LONG_UTTERANCE``).

With the defaults (``labels=ALL_LABELS``, ``repeats=1``, ``defects=True``) the 4-class protocol keeps 197
utterances: angry 39, happy 80, sad 39, neutral 39; female 98, male 99; sessions 40, 39, 39, 39, 40.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

ALL_LABELS = ("neu", "fru", "ang", "sad", "hap", "exc", "sur", "fea", "dis", "oth", "xxx")
DIALOG_SUFFIXES = ("F_impro01", "M_impro05a", "F_script01_1", "M_script01_1b")
SAMPLING_RATE = 16000
HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
MISSING_WAV = "Ses02F_impro01_F002"  # ang, female, session 2
MALFORMED_LINE = "Ses03M_impro05a_M000"  # neu, male, session 3: its label line is broken (line 9 of its file)
UNREADABLE_WAV = "Ses04F_script01_1_F003"  # sad, female, session 4: garbage bytes
LONG_UTTERANCE = "Ses05M_script01_1b_F004"  # hap, female, session 5: 15 s long
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02\x00\x00\x00\t\x00\x00\x002\x00\x00\x0e\xb0"


def tone(seconds: float, frequency: float, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """A quiet sine tone with a fade in/out."""
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    return (0.3 * np.sin(2 * np.pi * frequency * t) * np.minimum(1.0, np.minimum(t, t[::-1]) * 20)).astype(np.float32)


def _label_block(start: float, utterance_id: str, label: str) -> list[str]:
    return [
        f"[{start:.4f} - {start + 1.5:.4f}]\t{utterance_id}\t{label}\t[2.5000, 3.0000, 2.5000]",
        "C-E2:\tNeutral;\t()",
        "C-F1:\tNeutral;\t(curious)",
        "A-E3:\tval 3; act 2; dom  2;\t()",
        "A-F1:\tval 3; act 3; dom  3;\t()",
        "",
    ]


def write_iemocap_tree(
    root: str | Path,
    *,
    labels: tuple[str, ...] = ALL_LABELS,
    repeats: int = 1,
    seconds: float | Callable[[int], float] = 0.5,
    defects: bool = True,
) -> Path:
    """Write the tree under ``root`` and return ``root/IEMOCAP_full_release``.

    ``seconds`` is a clip length, or a function of the running utterance index giving one.
    """
    release = Path(root) / "IEMOCAP_full_release"
    clip_seconds = seconds if callable(seconds) else (lambda index: seconds)
    index = 0
    for session in range(1, 6):
        session_dir = release / f"Session{session}"
        label_dir = session_dir / "dialog" / "EmoEvaluation"
        for sub in ("Categorical", "Attribute", "Self-evaluation"):
            (label_dir / sub).mkdir(parents=True, exist_ok=True)
        for suffix in DIALOG_SUFFIXES:
            dialog = f"Ses{session:02d}{suffix}"
            wav_dir = session_dir / "sentences" / "wav" / dialog
            wav_dir.mkdir(parents=True, exist_ok=True)
            lines, decoys, counters = [HEADER, ""], [], {"F": 0, "M": 0}
            for _ in range(repeats):
                for label in labels:
                    for gender in "FM":
                        utterance_id = f"{dialog}_{gender}{counters[gender]:03d}"
                        counters[gender] += 1
                        block = _label_block(2.0 * index, utterance_id, label)
                        if defects and utterance_id == MALFORMED_LINE:
                            block[0] = f"[{2.0 * index:.4f} - ]\t{utterance_id}\t{label}"
                        lines += block
                        decoys.append(f"{utterance_id} :Anger; ()")
                        wav = wav_dir / f"{utterance_id}.wav"
                        if defects and utterance_id == UNREADABLE_WAV:
                            wav.write_bytes(b"this is not a wav file")
                        elif not (defects and utterance_id == MISSING_WAV):
                            length = 15.0 if defects and utterance_id == LONG_UTTERANCE else clip_seconds(index)
                            frequency = 150.0 + 20.0 * ALL_LABELS.index(label) + (80.0 if gender == "F" else 0.0)
                            sf.write(wav, tone(length, frequency), SAMPLING_RATE, subtype="PCM_16")
                        (wav_dir / f"._{utterance_id}.wav").write_bytes(APPLE_DOUBLE)
                        index += 1
            (label_dir / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
            (label_dir / f"._{dialog}.txt").write_bytes(APPLE_DOUBLE + "\n".join(lines[2:8]).encode())
            (label_dir / "Categorical" / f"{dialog}_e2_cat.txt").write_text("\n".join(decoys) + "\n")
            (label_dir / "Attribute" / f"{dialog}_e3_atr.txt").write_text("\n".join(decoys) + "\n")
            # Same format as the consensus file but other labels: read by mistake, it would change the counts.
            (label_dir / "Self-evaluation" / f"{dialog}.txt").write_text(
                "\n".join(line.replace("\tneu\t", "\tang\t") for line in lines) + "\n"
            )
    return release


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(write_iemocap_tree(args.root, repeats=args.repeats))
