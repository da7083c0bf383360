"""`gemo-clap demo`, the README's main command, end to end as a user runs it (console script, fresh process)."""

from __future__ import annotations

import json
import subprocess


def test_demo_runs_offline_and_beats_chance_on_held_out_speakers(tmp_path):
    output = tmp_path / "demo"
    completed = subprocess.run(
        ["gemo-clap", "demo", "--output-dir", str(output)],
        capture_output=True,
        text=True,
        timeout=900,
        env={"HF_HUB_OFFLINE": "1", "PATH": __import__("os").environ["PATH"], "OMP_NUM_THREADS": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    out = completed.stdout
    assert "SYNTHETIC" in out and "not speech" in out
    assert "reloaded with AutoModel (GEmoClapModel) and pipeline (GEmoClapZeroShotAudioClassificationPipeline)" in out
    metrics = json.loads((output / "run" / "test_results.json").read_text())
    assert metrics["war"] >= 0.5 and metrics["uar"] >= 0.5  # chance is 0.25 for 4 balanced classes
    assert f"| WAR | {100 * metrics['war']:.1f}% |" in out
    model_files = {path.name for path in (output / "run" / "model").iterdir()}
    assert {"model.safetensors", "config.json", "modeling_gemo_clap.py", "pipeline_gemo_clap.py"} <= model_files
    assert not any(name.endswith(".bin") for name in model_files)
    predicted = [line for line in out.splitlines() if " predicted " in line]
    assert len(predicted) == 6
