"""`gemo-clap demo`, the README's main command, end to end as a user runs it (console script, fresh process): it
beats chance, says what to try next, reruns in the same folder, and `predict` runs on what it left."""

from __future__ import annotations

import json
import os
import re
import subprocess

# one thread: tiny models train several times faster so on a shared CPU (as conftest.py says)
ENV = {"HF_HUB_OFFLINE": "1", "PATH": os.environ["PATH"], "OMP_NUM_THREADS": "1"}


def gemo_clap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["gemo-clap", *args], capture_output=True, text=True, timeout=900, env=ENV)


def test_demo_runs_offline_and_beats_chance_on_held_out_speakers(tmp_path):
    output = tmp_path / "demo"
    completed = gemo_clap("demo", "--output-dir", str(output))
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
    # the best epoch as the epoch lines count them (from 1), the one with the best validation UAR
    history = [json.loads(line) for line in (output / "run" / "history.jsonl").read_text().splitlines()]
    uars = [record["validation_uar"] for record in history]
    assert f"saved the best epoch by validation UAR ({uars.index(max(uars)) + 1} of 12)" in out
    assert not re.search(r"Generating|Saving the dataset|Filter|Loading weights", completed.stderr)
    assert not (output / "run" / "gemo-clap").exists()  # no TensorBoard logs unless asked (report_to)
    model, examples = output / "run" / "model", output / "examples"
    assert f"next: gemo-clap predict --model {model} {examples}" in out and f"gemo-clap app --model {model}" in out
    assert sorted(path.name for path in examples.iterdir()) == sorted(line.split()[0][4:] for line in predicted)

    predict = gemo_clap("predict", "--model", str(model), str(examples), "--format", "json")
    assert predict.returncode == 0, predict.stderr[-2000:]
    results = [json.loads(line) for line in predict.stdout.splitlines()]
    assert len(results) == 6 and all(result["scores"] for result in results)
    assert "Loading weights" not in predict.stderr

    rerun = gemo_clap("demo", "--output-dir", str(output), "--epochs", "1")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"replacing the previous demo run in {output / 'run'}" in rerun.stdout
    assert len((output / "run" / "history.jsonl").read_text().splitlines()) == 1
