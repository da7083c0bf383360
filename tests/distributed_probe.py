"""`gemo-clap train` under `accelerate launch`, recording on every rank what the training loop does not report:
the example ids the rank's data loaders collated, a digest of the rank's own model weights at every checkpoint,
the loss of every step and the progress bar's total. Each rank writes `<output_dir>/probe-rank<R>.json`;
tests/test_distributed.py reads them.

    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 tests/distributed_probe.py \
        --dataset DIR --test-fold 1 --output-dir OUT key=value ...
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sys
from pathlib import Path

from accelerate import Accelerator, PartialState
from gemo_clap.modeling import GEmoClapLoss
from gemo_clap.train import cli_train, loop
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's parameter and buffer names and values."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def ddp_wrappers() -> int:
    """How many DistributedDataParallel wrappers are alive in this process."""
    return sum(isinstance(obj, DistributedDataParallel) for obj in gc.get_objects())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    cli_train.add_arguments(parser)
    args = parser.parse_args()
    collated: list[str] = []  # ids collated on this rank since the previous checkpoint
    checkpoints: list[dict] = []
    models: list[nn.Module] = []

    losses: list[float] = []
    bar_totals: list[int] = []
    wrappers_at_end: list[int] = []  # DDP wrappers alive when the process group is destroyed

    class RecordingCollator(loop.GEmoClapCollator):
        def __call__(self, examples):
            collated.extend(example["id"] for example in examples if "id" in example)
            return super().__call__(examples)

    variant_loss = GEmoClapLoss.loss  # the loop applies it to the training model's features

    def recording_loss(criterion, inputs):
        loss = variant_loss(criterion, inputs)
        losses.append(loss.item())
        return loss

    class RecordingBar(loop.tqdm):
        def __init__(self, *args, **kwargs):
            bar_totals.append(kwargs["total"])
            super().__init__(*args, **kwargs)

    build_model_and_processor, save_checkpoint = loop.build_model_and_processor, loop._save_checkpoint

    def recording_build(*build_args, **build_kwargs):
        model, processor = build_model_and_processor(*build_args, **build_kwargs)
        models.append(model)
        return model, processor

    def recording_save(accelerator, output_dir, progress, keep):
        checkpoints.append(
            {
                "step": progress.completed_steps,
                "epoch": progress.epoch,
                "collated": list(collated),
                "weights": weights_digest(models[0]),
                "ddp_wrappers": ddp_wrappers(),
            }
        )
        collated.clear()
        save_checkpoint(accelerator, output_dir, progress, keep)

    loop.GEmoClapCollator, loop.build_model_and_processor, loop._save_checkpoint = (
        RecordingCollator,
        recording_build,
        recording_save,
    )
    end_training = Accelerator.end_training

    def recording_end_training(accelerator):
        wrappers_at_end.append(ddp_wrappers())
        end_training(accelerator)

    GEmoClapLoss.loss, loop.tqdm, Accelerator.end_training = recording_loss, RecordingBar, recording_end_training
    code = cli_train.run(args)
    state = PartialState()
    record = {
        "rank": state.process_index,
        "num_processes": state.num_processes,
        "backend": state.backend,
        "checkpoints": checkpoints,
        "after_training": {"weights": weights_digest(models[0])},
        "losses": losses,
        "bar_total": bar_totals[0],
        "ddp_wrappers_at_end_training": wrappers_at_end,
    }
    (Path(args.output_dir) / f"probe-rank{state.process_index}.json").write_text(json.dumps(record, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
