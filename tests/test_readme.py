"""What a user reads and clones: the README's usage snippet runs as written (against a local checkpoint folder instead
of a Hub repo id), its warnings are there, and git ignores what the commands write."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
from gemo_clap.train.config import TrainingConfig

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def test_readme_usage_snippet_runs(tiny_checkpoint, make_clip, tmp_path, capsys):
    snippet = re.search(r"## Use a trained model\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    wav = tmp_path / "speech.wav"
    sf.write(wav, make_clip(2.0), 16000)
    code = snippet.replace("ORG/gemo-clap-sl", str(tiny_checkpoint("wavlm", variant="sl"))).replace(
        '"speech.wav"', repr(str(wav))
    )
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.strip().splitlines()
    single, batched = eval(printed[0]), eval(printed[1])
    assert [entry["label"] for entry in single] and abs(sum(e["score"] for e in single) - 1) < 1e-6
    assert sorted(e["label"] for e in single) == ["angry", "happy", "neutral", "sad"]
    assert len(batched) == 2 and {e["label"] for e in batched[0]} == {"angry", "calm"}
    assert type(namespace["model"]).__name__ == "GEmoClapModel"


def test_gitignore_covers_the_default_output_the_demo_and_data():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout (a copy of the tree): git check-ignore needs the repository")
    ignored = subprocess.run(
        ["git", "check-ignore", "outputs/gemo-clap/x", "gemo-clap-demo/x", "data/emodb/x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert ignored == ["outputs/gemo-clap/x", "gemo-clap-demo/x", "data/emodb/x"]
    assert TrainingConfig().output_dir == "outputs/gemo-clap"


def test_readme_warns_to_resume_only_checkpoints_you_made():
    readme = (REPO / "README.md").read_text()
    assert "only resume checkpoints you made" in readme.lower() and "pickle" in readme.lower()
