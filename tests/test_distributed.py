"""Two training processes on CPU (gloo), launched the way the docs say:

    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \
        --dynamo_backend no -m gemo_clap.train.cli_train ...

(`accelerate launch --cpu --num_processes 2` would silently start ONE process.) The launched script is
tests/distributed_probe.py, which runs `gemo-clap train` while recording on each rank the examples it collated and
a digest of its own weights at every checkpoint: the ranks must train on disjoint halves of every epoch, hold the
same weights at every checkpoint, and the test metrics must count every test clip exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest
from distributed_probe import weights_digest
from gemo_clap.modeling import GEmoClapLoss, GEmoClapModel
from gemo_clap.train import loop
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.data import fold_splits, load_built_dataset
from helpers import build_tiny_dataset, tiny_overrides

PROBE = Path(__file__).resolve().parent / "distributed_probe.py"
LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "--main_process_port",
    "0",
]


def test_two_cpu_processes_train_on_disjoint_shards_and_keep_identical_weights(tiny_encoders, tmp_path):
    dataset_dir = build_tiny_dataset(tmp_path / "data")
    output_dir = tmp_path / "run"
    # 12 training clips in batches of 2: 3 batches per rank and epoch; 16 test clips in batches of 3 (uneven shards)
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset_dir, output_dir, batch_size=2, eval_batch_size=3)
    ranks, run = launch_probe(overrides, output_dir, tmp_path)
    identities = [(probe["rank"], probe["num_processes"], probe["backend"]) for probe in ranks]
    assert identities == [(0, 2, "gloo"), (1, 2, "gloo")]
    assert [[checkpoint["step"] for checkpoint in probe["checkpoints"]] for probe in ranks] == [[3, 6], [3, 6]]
    # trained through DDP, whose wrapper is gone before the process group is destroyed: the group's last reference
    # is then torch's registry, whose release frees the GIL (from DDP's reducer, teardown could deadlock at exit)
    assert [[checkpoint["ddp_wrappers"] for checkpoint in probe["checkpoints"]] for probe in ranks] == [[1, 1], [1, 1]]
    assert [probe["ddp_wrappers_at_end_training"] for probe in ranks] == [[0], [0]]

    splits = fold_splits(load_built_dataset(dataset_dir), 1, 0.25, 0)
    train_ids = set(splits.train["id"])
    shards = [
        [[name for name in checkpoint["collated"] if name in train_ids] for checkpoint in probe["checkpoints"]]
        for probe in ranks
    ]  # shards[rank][epoch]: the training clips that rank saw in that epoch
    for epoch in (0, 1):
        first, second = shards[0][epoch], shards[1][epoch]
        assert len(first) == len(second) == 6
        assert set(first).isdisjoint(second) and set(first) | set(second) == train_ids
    assert set(shards[0][0]) != set(shards[0][1])  # reshuffled every epoch

    weights = [[checkpoint["weights"] for checkpoint in probe["checkpoints"]] for probe in ranks]
    assert weights[0] == weights[1]  # identical weights on both ranks after every epoch
    assert weights[0][0] != weights[0][1]  # ... which did train
    summary = json.loads(next(line for line in run.stdout.splitlines() if line.startswith('{"model"')))
    best = weights[0][summary["best_epoch"]]
    assert weights_digest(GEmoClapModel.from_pretrained(output_dir / "model")) == best
    assert [probe["after_training"]["weights"] for probe in ranks] == [best, best]  # both end on the saved best

    results = json.loads((output_dir / "test_results.json").read_text())
    assert sum(map(sum, results["confusion_matrix"])) == len(splits.test) == 16  # gathered without the padding
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {
        path.name for path in (output_dir / "checkpoints" / "step_00000006").iterdir()
    }


def launch_probe(
    overrides: list[str], output_dir: Path, tmp_path: Path
) -> tuple[list[dict], subprocess.CompletedProcess]:
    """Run tests/distributed_probe.py in two gloo processes: the two ranks' records, and the launch's output."""
    env = os.environ | {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf-home")}
    # (HF_HOME: no user accelerate config file)
    command = [*LAUNCH, str(PROBE), "--output-dir", str(output_dir), *overrides]
    with subprocess.Popen(command, env=env, stdout=PIPE, stderr=PIPE, text=True, start_new_session=True) as launch:
        try:
            stdout, stderr = launch.communicate(timeout=300)  # a run takes about 20 s
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, signal.SIGKILL)  # the launcher and both ranks: nothing left running
            stdout, stderr = launch.communicate()
            pytest.fail(f"the two-process run did not finish in 300 s:\n{stderr[-3000:]}")
    run = subprocess.CompletedProcess(command, launch.returncode, stdout, stderr)
    errors = list(dict.fromkeys(line for line in run.stderr.splitlines() if "Error" in line))
    assert run.returncode == 0, "\n".join(errors[:8]) or run.stderr[-3000:]
    return [json.loads((output_dir / f"probe-rank{rank}.json").read_text()) for rank in (0, 1)], run


@pytest.mark.parametrize("variant", ["emo", "sl", "ml"])
def test_two_processes_train_on_the_global_batch_loss_of_one_process(variant, tiny_encoders, tmp_path):
    """2 processes x batch 2 and 1 process x batch 4 see the same global batches (the seedable sampler's order):
    with the contrastive matrix gathered over processes, every step's loss (and so every update) is the same."""
    dataset_dir = build_tiny_dataset(tmp_path / "data")
    towers = tiny_encoders("wavlm")
    changes = {"variant": variant, "freeze": "audio", "eval_batch_size": 8}  # frozen tower: no dropout anywhere
    ranks, _ = launch_probe(
        tiny_overrides(towers, dataset_dir, tmp_path / "two", batch_size=2, **changes), tmp_path / "two", tmp_path
    )
    assert [rank["bar_total"] for rank in ranks] == [6, 6]  # 2 epochs x 3 steps of each process, not x 2 processes

    losses: list[float] = []
    variant_loss = GEmoClapLoss.loss

    def recording_loss(criterion, inputs):
        loss = variant_loss(criterion, inputs)
        losses.append(loss.item())
        return loss

    config = TrainingConfig.load(None, tiny_overrides(towers, dataset_dir, tmp_path / "one", batch_size=4, **changes))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GEmoClapLoss, "loss", recording_loss)
        loop.train(config)
    assert len(losses) == len(ranks[0]["losses"]) == len(ranks[1]["losses"]) == 6
    assert ranks[0]["losses"] == pytest.approx(ranks[1]["losses"], abs=1e-7)  # each process computes the global loss
    assert max(abs(a - b) for a, b in zip(losses, ranks[0]["losses"])) < 1e-5
    assert len({round(loss, 4) for loss in losses}) > 1  # the steps did train
