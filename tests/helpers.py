"""What several test files share: where the real material lives (`SHARED`: beside the repository, absent from a
user's clone, so every test using it skips or falls back without it), the tiny synthetic training setup, the
check that a saved checkpoint's own code computes its logits without gemo_clap installed, a module's output shapes
(`output_shapes`) and the substrings a text must hold (`assert_contains`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
from gemo_clap.processing.builder import build_corpus, save_dataset
from gemo_clap.processing.synthetic import generate_corpus
from gemo_clap.train.config import MODEL_SETTINGS
from iemocap_tree import tone

SHARED = Path(__file__).resolve().parents[2] / "shared"  # ../shared from the repository
EMODB = SHARED / "data" / "emodb"  # the corpus folder (`build_corpus("emodb", EMODB)`)
EMODB_WAV = EMODB / "wav"
WHISPER_TINY = SHARED / "models" / "whisper-tiny.en-encoder"

EMOTIONS = ["angry", "happy", "sad", "neutral"]


def build_tiny_dataset(root: Path) -> Path:
    """Save 2 speakers per gender x 4 emotions x 2 clips, cut to 0.5 s, in 2 speaker folds of 16 clips."""
    manifest = generate_corpus(root / "corpus", speakers_per_gender=2, clips_per_emotion=2)
    dataset, _ = build_corpus("manifest", manifest, num_folds=2, max_seconds=0.5)
    return save_dataset(dataset, root / "dataset")


def tiny_overrides(towers: tuple[Path, Path], dataset: Path, output_dir: Path, **changes) -> list[str]:
    """`key=value` overrides of a run of seconds: test fold 1, 12 training clips (3 steps of 4), 4 for validation."""
    values = {
        "audio_encoder": towers[0],
        "text_encoder": towers[1],
        "dataset": dataset,
        "output_dir": output_dir,
        "test_fold": 1,
        "variant": "sl",
        "num_epochs": 2,
        "warmup_epochs": 1,
        "batch_size": 4,
        "eval_batch_size": 8,
        "learning_rate": 1e-3,
        "projection_dim": 16,
        "validation_fraction": 0.25,
        "report_to": "none",
        "seed": 0,
    }
    values.update(changes)
    return [f"{'model.' if key in MODEL_SETTINGS else ''}{key}={value}" for key, value in values.items()]


OFFLINE = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
# a fresh process without gemo_clap (nor peft): the checkpoint's own code computes the logits of the saved inputs
REMOTE_CODE_LOGITS = """
import sys
sys.modules["gemo_clap"] = sys.modules["peft"] = None
from pathlib import Path
import numpy as np, torch
from transformers import AutoModel
work = Path(sys.argv[1])
model = AutoModel.from_pretrained(work / "model", trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
inputs = {key: torch.from_numpy(value) for key, value in np.load(work / "inputs.npz").items()}
with torch.no_grad():
    np.save(work / "logits.npy", model(**inputs).logits_per_audio.numpy())
"""


def write_manifest(root: Path, extra: dict[str, np.ndarray | None]) -> Path:
    """A manifest of 4 speakers x 2 emotions of good 0.5 s tones, plus `extra` float files (None: a folder)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["path,emotion,gender,speaker"]
    for speaker, gender in (("f1", "female"), ("m1", "male"), ("f2", "female"), ("m2", "male")):
        for emotion, frequency in (("happy", 330.0), ("sad", 165.0)):
            sf.write(root / f"{speaker}_{emotion}.wav", tone(0.5, frequency), 16000, subtype="PCM_16")
            lines.append(f"{speaker}_{emotion}.wav,{emotion},{gender},{speaker}")
    for name, signal in extra.items():
        if signal is None:
            (root / name).mkdir()
        else:
            sf.write(root / name, signal, 16000, subtype="FLOAT")
        lines.append(f"{name},happy,female,f1")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


@contextlib.contextmanager
def output_shapes(module) -> Iterator[list[tuple[int, ...]]]:
    """The shapes of `module`'s outputs, one a forward call, recorded while the block runs (its hook then removed)."""
    shapes = []
    hook = module.register_forward_hook(lambda module, args, output: shapes.append(output.shape))
    try:
        yield shapes
    finally:
        hook.remove()


def assert_contains(text: str, *pieces: str) -> None:
    """Each of `pieces` stands in `text`; a failure names every missing one."""
    missing = [piece for piece in pieces if piece not in text]
    assert not missing, f"missing {missing} in:\n{text}"
