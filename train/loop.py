"""Train one fold of GEmo-CLAP with one readable Accelerate loop (in the style of the `no_trainer` examples).

Every `checkpoint_every_steps` optimiser steps and at each epoch end the full training state is saved with
`accelerator.save_state` into a temporary folder renamed into place, the last `keep_checkpoints` are kept, and
`resume=True` continues from the newest. The best epoch by validation UAR is saved as a Hugging Face model
folder (`<output_dir>/model`), which is evaluated zero-shot on the test fold at the end.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from ..atomic import atomic_path, remove, replace_with, staging_path
from ..modeling import VARIANTS, GEmoClapModel, GEmoClapProcessor
from ..processing.collator import GEmoClapCollator
from .audio_cache import AudioFeatureCache
from .config import TRAINING_CONFIG_NAME, TrainingConfig
from .data import fold_splits, load_built_dataset
from .evaluation.zero_shot import AUDIO_INPUTS, audio_layer_statistics, score, zero_shot_predictions
from .towers import build_model_and_processor

logger = logging.getLogger(__name__)
CHECKPOINT_PREFIX = "step_"
FAULT_ENV = "GEMO_CLAP_KILL_AFTER_CHECKPOINT"  # testing hook: SIGKILL the run right after saving this step


@dataclass
class TrainingProgress:
    """Where training stands; saved inside every checkpoint (`accelerator.register_for_checkpointing`)."""

    epoch: int = 0
    batches_done: int = 0  # batches of `epoch` already consumed
    epoch_loss: float = 0.0  # summed over those batches
    completed_steps: int = 0
    best_uar: float = -1.0
    best_epoch: int = -1
    history: list[dict] = field(default_factory=list)

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


@dataclass
class TrainResult:
    output_dir: Path
    model_dir: Path
    test_metrics: dict
    best_epoch: int
    history: list[dict]


def checkpoints(output_dir: Path) -> list[Path]:
    """Finished checkpoints, oldest first."""
    return sorted((output_dir / "checkpoints").glob(f"{CHECKPOINT_PREFIX}*"))


def _save_checkpoint(accelerator: Accelerator, output_dir: Path, progress: TrainingProgress, keep: int) -> None:
    destination = output_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{progress.completed_steps:08d}"
    if accelerator.is_main_process:
        destination.parent.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    partial = staging_path(destination)  # every process writes its own files into the same folder
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        replace_with(partial, destination)
        for stale in checkpoints(output_dir)[:-keep]:
            remove(stale)
    accelerator.wait_for_everyone()
    if os.environ.get(FAULT_ENV) == str(progress.completed_steps):
        os.kill(os.getpid(), signal.SIGKILL)


def _build_model(
    config: TrainingConfig, emotion_names: list[str], gender_names: list[str]
) -> tuple[GEmoClapModel, GEmoClapProcessor]:
    model, processor = build_model_and_processor(
        config.audio_encoder,
        config.text_encoder,
        **config.model,
        emotion_labels=emotion_names,
        gender_labels=gender_names,
    )
    if config.freeze == "audio":
        model.freeze_audio_encoder()
    elif config.freeze == "feature_encoder":
        model.freeze_feature_encoder()
    elif config.freeze == "layers":
        model.freeze_audio_layers(config.freeze_layers)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model, processor


def _trackers(config: TrainingConfig) -> list[str]:
    wanted = [name for name in config.report_to if name != "none"]
    if "tensorboard" in wanted and importlib.util.find_spec("tensorboard") is None:
        logger.warning("tensorboard is not installed: metrics go to the console only")
        wanted.remove("tensorboard")
    return wanted


def train(config: TrainingConfig, resume: bool = False) -> TrainResult:
    """Train on every fold but `config.test_fold`, choose the best epoch on validation, evaluate on the test fold."""
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with=_trackers(config) or None,
        project_dir=str(output_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
        # the text tower's pooler (first-token pooling bypasses it) and layer-dropped layers get no gradient
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(config.seed)
    variant = VARIANTS[config.variant]
    dataset = load_built_dataset(config.dataset, needs_gender=variant.needs_gender_labels)
    splits = fold_splits(dataset, config.test_fold, config.validation_fraction, config.seed)
    model, processor = _build_model(config, splits.emotion_names, splits.gender_names)
    if accelerator.is_main_process:  # only once the inputs are known good: bad input leaves no output behind
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save(output_dir / TRAINING_CONFIG_NAME)
    provenance = config.provenance(corpus=config.corpus or dataset.info.dataset_name or "custom")
    template, gender_template = model.config.prompt_template, model.config.gender_prompt_template
    collator = GEmoClapCollator(
        processor,
        splits.emotion_names,
        splits.gender_names,
        template,
        gender_template,
        with_gender_prompts=variant.needs_gender_prompts,
    )
    # its own generator: iterator seeds never draw from the global RNG, so a resumed run keeps the dropout masks
    train_loader = DataLoader(
        splits.train,
        batch_size=config.batch_size,
        shuffle=True,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(config.seed),
    )
    eval_loaders = {
        name: DataLoader(split, batch_size=config.eval_batch_size, collate_fn=collator)
        for name, split in (("validation", splits.validation), ("test", splits.test))
        if split is not None
    }
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(train_loader) / config.gradient_accumulation_steps)
    scheduler = get_linear_schedule_with_warmup(
        optimizer,
        num_warmup_steps=int(config.warmup_epochs * steps_per_epoch),
        num_training_steps=config.num_epochs * steps_per_epoch,
    )
    model, optimizer, train_loader, scheduler, *prepared = accelerator.prepare(
        model, optimizer, train_loader, scheduler, *eval_loaders.values()
    )
    eval_loaders = dict(zip(eval_loaders, prepared))
    progress = TrainingProgress()
    accelerator.register_for_checkpointing(progress)
    unwrapped = accelerator.unwrap_model(model)
    cache = None
    if config.freeze == "audio" and config.cache_audio_features:
        cache = AudioFeatureCache(
            unwrapped.audio_model,
            config.audio_cache_dir or output_dir / "audio_cache",
            layers="all" if unwrapped.config.use_weighted_layer_sum else "last",
        )

    if resume and checkpoints(output_dir):
        newest = checkpoints(output_dir)[-1]
        accelerator.print(f"resuming from {newest}")
        accelerator.load_state(str(newest))
    accelerator.init_trackers("gemo-clap", config={k: str(v) for k, v in config.to_dict().items()})

    bar = tqdm(
        total=config.num_epochs * steps_per_epoch,
        initial=progress.completed_steps,
        disable=not accelerator.is_local_main_process,
        desc="training",
    )
    model_dir = output_dir / "model"
    for epoch in range(progress.epoch, config.num_epochs):
        model.train()
        if config.freeze == "audio":
            unwrapped.audio_model.eval()  # a frozen tower runs without dropout, so its cached outputs are exact
        train_loader.set_epoch(epoch)
        batches = train_loader
        if progress.batches_done:  # resuming mid-epoch: the sampler's order for this epoch, minus what was done
            batches = accelerator.skip_first_batches(train_loader, progress.batches_done)
        epoch_started = time.monotonic()
        for batch in batches:
            with accelerator.accumulate(model):
                if cache is not None:
                    with torch.no_grad():
                        batch["audio_layer_statistics"] = audio_layer_statistics(unwrapped, batch, cache)
                    for name in AUDIO_INPUTS:
                        batch.pop(name, None)
                batch.pop("cache_keys")
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            progress.epoch_loss += loss.item()
            progress.batches_done += 1
            if accelerator.sync_gradients:
                progress.completed_steps += 1
                bar.update(1)
                if config.checkpoint_every_steps and progress.completed_steps % config.checkpoint_every_steps == 0:
                    _save_checkpoint(accelerator, output_dir, progress, config.keep_checkpoints)

        record = {
            "epoch": epoch,
            "train_loss": progress.epoch_loss / max(progress.batches_done, 1),
            "lr": scheduler.get_last_lr()[0],
            "train_seconds": time.monotonic() - epoch_started,
        }
        if "validation" in eval_loaders:
            outputs = zero_shot_predictions(
                model, processor, eval_loaders["validation"], accelerator, splits.emotion_names, template, cache
            )
            metrics = score(outputs, splits.emotion_names, splits.gender_names)
            record.update(validation_war=metrics["war"], validation_uar=metrics["uar"])
        accelerator.log(record, step=epoch)
        accelerator.print(json.dumps(record))
        progress.history.append(record)
        validation_uar = record.get("validation_uar")
        if validation_uar is None or validation_uar > progress.best_uar:  # without validation: keep the last epoch
            progress.best_uar, progress.best_epoch = validation_uar if validation_uar is not None else -1.0, epoch
            if accelerator.is_main_process:
                with atomic_path(model_dir) as folder:
                    _save_model(unwrapped, processor, folder)
                    (folder / TRAINING_CONFIG_NAME).write_text(json.dumps(provenance, indent=2))
        progress.epoch, progress.batches_done, progress.epoch_loss = epoch + 1, 0, 0.0
        _save_checkpoint(accelerator, output_dir, progress, config.keep_checkpoints)
        if cache is not None and accelerator.is_main_process:
            cache.save()
    bar.close()

    accelerator.wait_for_everyone()
    best = GEmoClapModel.from_pretrained(model_dir)
    unwrapped.load_state_dict(best.state_dict())
    outputs = zero_shot_predictions(
        model, processor, eval_loaders["test"], accelerator, splits.emotion_names, template, cache
    )
    test_metrics = {"fold": config.test_fold, **score(outputs, splits.emotion_names, splits.gender_names)}
    accelerator.log({"test_war": test_metrics["war"], "test_uar": test_metrics["uar"]})
    if accelerator.is_main_process:
        (output_dir / "test_results.json").write_text(json.dumps(test_metrics, indent=2))
        if cache is not None:
            cache.save()
    accelerator.end_training()
    return TrainResult(output_dir, model_dir, test_metrics, progress.best_epoch, progress.history)


def _save_model(model: GEmoClapModel, processor: GEmoClapProcessor, folder: Path) -> None:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
