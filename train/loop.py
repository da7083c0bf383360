"""Train one fold of GEmo-CLAP with one readable Accelerate loop (in the style of the `no_trainer` examples).

Training costs only what it must: with the audio tower frozen (`freeze=audio`) its pooled statistics are computed
once per utterance (a cache shared by every fold and variant) and every epoch is served from them; otherwise the
tower runs each batch, with batches of similar length when `group_by_length` is set. The text tower encodes each
distinct prompt of a batch once. What Accelerate prepares (and DDP wraps) is `GEmoClapTrainingModel`, which turns a
batch into features; the loss is applied to them outside it. Under `accelerate launch` with several processes it
spans the global batch (`gather_global_batch`, on by default), as one process would compute it.

Every `checkpoint_every_steps` optimiser steps, every `checkpoint_every_epochs` epochs and after the last one the
full training state is saved with
`accelerator.save_state` into a temporary folder renamed into place, the last `keep_checkpoints` are kept, and
`resume=True` continues from the newest. An output folder that already holds a run is refused unless the run is
resumed or `overwrite=True` replaces it. The best epoch by validation UAR is saved as a Hugging Face model folder
(`<output_dir>/model`), which is evaluated zero-shot on the test fold at the end.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.utils import logging as hf_logging

from ..modeling import VARIANTS, GEmoClapLoss, GEmoClapModel, GEmoClapProcessor
from ..processing.atomic import atomic_path, check_folder_path, discard, remove, replace_with, staging_path
from .audio_cache import AudioFeatureCache
from .augmentation import mask_frames, mix_statistics
from .augmented_views import augmented_split, check_cache_size
from .collator import GEmoClapCollator
from .config import TRAINING_CONFIG_NAME, TrainingConfig
from .data import FoldSplits, LengthGroupedSampler
from .evaluation.zero_shot import per_corpus_scores, pipeline_predictions, score, zero_shot_predictions
from .global_loss import contrastive_loss
from .lora import add_lora, merge_lora, mergeable
from .multi_corpus import balanced_sampler, run_splits
from .selection import SELECTION_FILE, selected_config, write_selection
from .standardisation import fit_audio_standardisation
from .towers import build_model_and_processor, classifier_of
from .training_model import FrozenPrompts, GEmoClapTrainingModel

logger = logging.getLogger(__name__)
CHECKPOINT_PREFIX = "step_"
TRACKER_PROJECT = "gemo-clap"  # the trackers' folder inside the output folder
HISTORY_FILE = "history.jsonl"  # one JSON line per epoch, for scripts (the console gets one line for a person)
RUN_FILES = (
    "checkpoints",
    "model",
    TRAINING_CONFIG_NAME,
    "test_results.json",
    TRACKER_PROJECT,
    HISTORY_FILE,
    SELECTION_FILE,
)


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


def existing_run(output_dir: Path) -> list[str]:
    """The files of a training run already in `output_dir` (checkpoints, model, config, results, logs)."""
    return [name for name in RUN_FILES if (output_dir / name).exists()]


def claim_output_dir(
    folder: Path,
    found: list[str],
    resume: bool,
    overwrite: bool,
    holds: str = "a training run",
    resumes: str = "continue it",
) -> None:
    """Refuse to mix two runs in one folder: a folder holding `found` (a run's files) needs `resume` or `overwrite`."""
    if resume and overwrite:
        raise ValueError(f"--resume would {resumes} and --overwrite replace it: pick one")
    check_folder_path(folder, "output folder")
    if found and not (resume or overwrite):
        raise FileExistsError(
            f"{folder} already holds {holds} ({', '.join(found)}): pass --resume to {resumes} or --overwrite to "
            "replace it"
        )


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
    configure_training(model, config)
    return model, processor


def configure_training(model: GEmoClapModel, config: TrainingConfig) -> None:
    """Freeze what the config freezes; the text attention, LoRA adapters and gradient checkpointing it asks for."""
    if config.freeze == "audio":
        model.freeze_audio_encoder()
    elif config.freeze == "feature_encoder":
        model.freeze_feature_encoder()
    elif config.freeze == "layers":
        model.freeze_audio_layers(config.freeze_layers)
    if config.freeze_text:
        model.text_model.requires_grad_(False)
    elif config.freeze_text_embeddings:
        model.text_model.get_input_embeddings().requires_grad_(False)
    if config.text_attn_implementation:
        model.text_model.set_attn_implementation(config.text_attn_implementation)
    if config.text_lora_rank:
        add_lora(model, "text_model", config.text_lora_rank)
    if config.audio_lora_rank:
        add_lora(model, "audio_model", config.audio_lora_rank)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()


def _parameter_groups(model: GEmoClapModel, config: TrainingConfig) -> list[dict]:
    """The trainable parameters; the audio layer weights, if any, with their own learning rate and no decay."""
    layer_weights = model.audio_layer_weights
    rest = [p for p in model.parameters() if p.requires_grad and p is not layer_weights]
    if layer_weights is None:
        return [{"params": rest}]
    rate = config.layer_weights_learning_rate or config.learning_rate
    return [{"params": rest}, {"params": [layer_weights], "lr": rate, "weight_decay": 0.0}]


def _trackers(config: TrainingConfig) -> list[str]:
    wanted = [name for name in config.report_to if name != "none"]
    if "tensorboard" in wanted and importlib.util.find_spec("tensorboard") is None:
        logger.warning("tensorboard is not installed: metrics go to the console only")
        wanted.remove("tensorboard")
    return wanted


def _data_loaders(
    config: TrainingConfig,
    splits: FoldSplits,
    collator: GEmoClapCollator,
    model: GEmoClapModel,
    processor: GEmoClapProcessor,
    accelerator: Accelerator,
    output_dir: Path,
) -> tuple[DataLoader, dict[str, DataLoader]]:
    """The training loader and the validation loaders: rows of cached tower statistics when the frozen tower
    is cached (it runs here, once per utterance not cached yet), else rows of audio (length-grouped if asked).
    The evaluation loaders include "train_in_order": the training split unshuffled (for the standardisation)."""
    named_splits = {"train": splits.train, "validation": splits.validation}  # the test fold: `_test_scores`
    named_splits = {name: split for name, split in named_splits.items() if split is not None}
    layer_input = _cached_layer_input(config, model)
    cached = config.cache_audio_features and (config.freeze == "audio" or layer_input is not None)
    if cached:  # the frozen tower (or its frozen bottom) runs once per utterance; every epoch is served from the cache
        cache = AudioFeatureCache(
            model.audio_model,
            config.audio_cache_dir or output_dir / "audio_cache",
            layers="all" if model.config.pools_all_layers else "last",
            layer_input=layer_input,
            speech_only=config.speech_trim,
        )
        cache.fill(model, processor, list(named_splits.values()), accelerator, config.eval_batch_size)
        named_splits = {name: cache.cached_split(split) for name, split in named_splits.items()}
    train_split = named_splits["train"]
    if cached and config.augment_views:  # only the training split: validation and test stay clean
        train_split = augmented_split(config, cache, model, processor, splits.train, train_split, accelerator)
    sampler = balanced_sampler(config, splits.train)  # with several corpora
    if sampler is None and config.group_by_length and not cached:
        sampler = LengthGroupedSampler(list(splits.train["duration"]), config.batch_size, config.seed)
    # its own generator: iterator seeds never draw from the global RNG, so a resumed run keeps the dropout masks
    train_loader = DataLoader(
        train_split,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(config.seed),
    )
    named_splits["train_in_order"] = named_splits.pop("train")
    eval_loaders = {
        name: DataLoader(split, batch_size=config.eval_batch_size, collate_fn=collator)
        for name, split in named_splits.items()
    }
    return train_loader, eval_loaders


def _cached_layer_input(config: TrainingConfig, model: GEmoClapModel) -> int | None:
    """With `freeze=layers`, the hidden state a cache serves (the input of the first trainable layer), when the
    tower can run from it and some layer trains; else None (the tower runs every batch)."""
    if config.freeze != "layers" or not config.cache_audio_features:
        return None
    if not model.audio_tower.supports_layer_inputs:
        logger.info("%s towers run every batch with freeze=layers", model.config.audio_config.model_type)
        return None
    if config.freeze_layers >= len(model.audio_tower.layers(model.audio_model)):
        return None
    return config.freeze_layers


@dataclass
class _Run:
    """What the stages of one training run share."""

    config: TrainingConfig
    output_dir: Path
    accelerator: Accelerator
    splits: FoldSplits
    model: torch.nn.Module  # the prepared `GEmoClapTrainingModel` (DDP-wrapped with several processes)
    unwrapped: GEmoClapModel
    criterion: GEmoClapLoss  # applied to the prepared model's features (`contrastive_loss`)
    processor: GEmoClapProcessor
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_loader: DataLoader
    eval_loaders: dict[str, DataLoader]
    progress: TrainingProgress
    provenance: dict
    steps_per_epoch: int
    best_weights: dict | None = None  # the best epoch's weights (on the CPU)
    unsaved: bool = False  # whether the model folder lags behind `best_weights`

    @property
    def model_dir(self) -> Path:
        return self.output_dir / "model"

    def predictions(self, split: str) -> dict:
        """Zero-shot scores of a split's utterances with the model as it stands."""
        outputs = zero_shot_predictions(
            self.unwrapped,
            self.processor,
            self.eval_loaders[split],
            self.accelerator,
            self.splits.emotion_names,
            self.unwrapped.config.prompt_template,
            self.splits.gender_names,
        )
        return score(outputs, self.splits.emotion_names, self.splits.gender_names)


def _prepare(config: TrainingConfig, resume: bool, overwrite: bool) -> _Run:
    """Accelerator, data, model (standardisation measured on the training split), optimiser, schedule, and the
    state of a resumed run."""
    output_dir = Path(config.output_dir)
    claim_output_dir(output_dir, existing_run(output_dir), resume, overwrite)
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
    dataset, splits = run_splits(config, variant.needs_gender_labels)  # one corpus, several, or cross-corpus
    model, processor = _build_model(config, splits.emotion_names, splits.gender_names)
    if config.mixup_alpha and not (config.freeze == "audio" and config.cache_audio_features):
        raise ValueError("mixup_alpha mixes cached statistics: it needs freeze=audio with cache_audio_features=true")
    if config.time_mask_fraction and _cached_layer_input(config, model) is None:
        raise ValueError(
            "time_mask_fraction masks a cached hidden state: it needs freeze=layers (fewer than all layers) with "
            "cache_audio_features=true and a Whisper tower"
        )
    if config.augment_views:
        check_cache_size(config, model, len(splits.train))
    if accelerator.is_main_process:  # only once the inputs are known good: bad input leaves no output behind
        if overwrite:  # the old run's files, not the cache it may hold
            discard([output_dir / name for name in existing_run(output_dir)], output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save(output_dir / TRAINING_CONFIG_NAME)
    accelerator.wait_for_everyone()
    collator = GEmoClapCollator(
        processor,
        splits.emotion_names,
        splits.gender_names,
        model.config.prompt_template,
        model.config.gender_prompt_template,
        with_gender_prompts=variant.needs_gender_prompts,
        speech_only=config.speech_trim,
    )
    train_loader, eval_loaders = _data_loaders(config, splits, collator, model, processor, accelerator, output_dir)
    if model.config.audio_standardisation:  # a resumed run's checkpoint restores the same values
        fit_audio_standardisation(model, eval_loaders.pop("train_in_order"))
    else:
        eval_loaders.pop("train_in_order")
    training_model = GEmoClapTrainingModel(model, FrozenPrompts(model, collator) if config.freeze_text else None)
    optimizer = torch.optim.AdamW(  # fused: one kernel over all parameters (several times faster on a CPU)
        _parameter_groups(model, config), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
    )
    # on the whole epoch, before sharding: accelerate steps a prepared scheduler once per process
    global_steps_per_epoch = math.ceil(len(train_loader) / config.gradient_accumulation_steps)
    scheduler = get_linear_schedule_with_warmup(
        optimizer,
        num_warmup_steps=int(config.warmup_epochs * global_steps_per_epoch),
        num_training_steps=config.num_epochs * global_steps_per_epoch,
    )
    prepared_model, optimizer, train_loader, scheduler, *prepared = accelerator.prepare(
        training_model, optimizer, train_loader, scheduler, *eval_loaders.values()
    )
    progress = TrainingProgress()
    accelerator.register_for_checkpointing(progress)
    if resume and checkpoints(output_dir):
        newest = checkpoints(output_dir)[-1]
        accelerator.print(f"resuming from {newest}")
        accelerator.load_state(str(newest))
    accelerator.init_trackers(TRACKER_PROJECT, config={k: str(v) for k, v in config.to_dict().items()})
    unwrapped = accelerator.unwrap_model(prepared_model).model
    return _Run(
        config=config,
        output_dir=output_dir,
        accelerator=accelerator,
        splits=splits,
        model=prepared_model,
        unwrapped=unwrapped,
        criterion=GEmoClapLoss.from_config(unwrapped.config),
        processor=processor,
        optimizer=optimizer,
        scheduler=scheduler,
        train_loader=train_loader,
        eval_loaders=dict(zip(eval_loaders, prepared)),
        progress=progress,
        provenance=config.provenance(corpus=config.corpus or dataset.info.dataset_name or "custom"),
        steps_per_epoch=math.ceil(len(train_loader) / config.gradient_accumulation_steps),  # this process's share
    )


def _train_epoch(run: _Run, epoch: int, bar: tqdm) -> dict:
    """One pass over the training batches (the rest of it, when resuming mid-epoch); returns the epoch's record."""
    config, accelerator, model, progress = run.config, run.accelerator, run.model, run.progress
    model.train()
    if config.freeze == "audio":
        run.unwrapped.audio_model.eval()  # a frozen tower runs without dropout, so its cached outputs are exact
    if config.freeze_text:
        run.unwrapped.text_model.eval()  # likewise the frozen text tower and its prompt states
    run.train_loader.set_epoch(epoch)
    batches = run.train_loader
    if progress.batches_done:  # resuming mid-epoch: the sampler's order for this epoch, minus what was done
        batches = accelerator.skip_first_batches(run.train_loader, progress.batches_done)
    started, padded, audio_frames = time.monotonic(), 0, 0
    for batch in batches:
        batch = _augmented(run, batch, epoch)
        with accelerator.accumulate(model):
            if "audio_attention_mask" in batch:
                padded += int((batch["audio_attention_mask"] == 0).sum())
                audio_frames += batch["audio_attention_mask"].numel()
            with accelerator.autocast():  # mixed precision covers the loss too, as in open_clip's loop
                loss = contrastive_loss(run.criterion, model(batch), batch, config.gather_global_batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients and config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad()
        progress.epoch_loss += loss.item()
        progress.batches_done += 1
        if accelerator.sync_gradients:
            progress.completed_steps += 1
            bar.update(1)
            if config.checkpoint_every_steps and progress.completed_steps % config.checkpoint_every_steps == 0:
                _save_checkpoint(accelerator, run.output_dir, progress, config.keep_checkpoints)
    record = {
        "epoch": epoch,
        "train_loss": progress.epoch_loss / max(progress.batches_done, 1),
        "lr": run.scheduler.get_last_lr()[0],
        "train_seconds": time.monotonic() - started,
    }
    if audio_frames:
        record["audio_padding"] = padded / audio_frames  # this process's share of the epoch
    return record


def _augmented(run: _Run, batch: dict, epoch: int) -> dict:
    """The batch with the configured cache-served augmentation, drawn from a generator seeded by the run's seed,
    the epoch and the batch (a resumed run draws what an uninterrupted one would)."""
    config = run.config
    if not (config.mixup_alpha or config.time_mask_fraction):
        return batch
    seed = (config.seed * 100_003 + epoch) * 100_003 + run.progress.batches_done
    generator = torch.Generator().manual_seed(seed)
    if config.mixup_alpha:
        with_gender = VARIANTS[config.variant].needs_gender_labels
        batch = mix_statistics(batch, config.mixup_alpha, generator, with_gender)
    if config.time_mask_fraction:
        batch = mask_frames(batch, config.time_mask_fraction, generator)
    return batch


def _end_epoch(run: _Run, epoch: int, record: dict) -> None:
    """Validation, the best epoch's weights, logging, and the model folder and checkpoint when one is due."""
    config, accelerator, progress = run.config, run.accelerator, run.progress
    if "validation" in run.eval_loaders:
        metrics = run.predictions("validation")
        record.update(validation_war=metrics["war"], validation_uar=metrics["uar"])
    accelerator.log(record, step=epoch)
    progress.history.append(record)
    if accelerator.is_main_process:  # rewritten whole: a resumed run's file holds the epochs its checkpoint holds
        with atomic_path(run.output_dir / HISTORY_FILE, unique=True) as partial:
            partial.write_text("".join(json.dumps(entry) + "\n" for entry in progress.history))
    if accelerator.is_local_main_process:
        tqdm.write(epoch_line(record, config.num_epochs))
    validation_uar = record.get("validation_uar")
    improved = validation_uar is None or validation_uar > progress.best_uar  # no validation: the last epoch
    if improved:
        progress.best_uar, progress.best_epoch = validation_uar if validation_uar is not None else -1.0, epoch
        run.best_weights = {
            name: value.detach().to("cpu", copy=True) for name, value in run.unwrapped.state_dict().items()
        }
        run.unsaved = True
    progress.epoch, progress.batches_done, progress.epoch_loss = epoch + 1, 0, 0.0
    checkpoint_now = progress.epoch == config.num_epochs or progress.epoch % config.checkpoint_every_epochs == 0
    if checkpoint_now and run.unsaved:  # the model folder always belongs with the newest checkpoint
        if accelerator.is_main_process:
            with atomic_path(run.model_dir) as folder:
                if improved:
                    _save_model(run.unwrapped, run.processor, folder)
                else:
                    _save_model(run.unwrapped, run.processor, folder, run.best_weights)
                (folder / TRAINING_CONFIG_NAME).write_text(json.dumps(run.provenance, indent=2) + "\n")
        run.unsaved = False
    if checkpoint_now:
        _save_checkpoint(accelerator, run.output_dir, progress, config.keep_checkpoints)


def epoch_line(record: dict, num_epochs: int) -> str:
    """An epoch's record as one line for a person, e.g. `epoch 3/50  loss 0.812  validation WAR 85.3 UAR 84.1  (1.2 s)`."""
    line = f"epoch {record['epoch'] + 1}/{num_epochs}  loss {record['train_loss']:.3f}"
    if "validation_uar" in record:
        line += f"  validation WAR {100 * record['validation_war']:.1f} UAR {100 * record['validation_uar']:.1f}"
    return line + f"  ({record['train_seconds']:.1f} s)"


def _finish(run: _Run, selection: dict | None = None) -> TrainResult:
    """The best epoch's weights scored on the test fold (none with `test_fold=None`); `test_results.json`, with the
    selection's record when settings were selected (also kept in the model folder); the processes released."""
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    if run.best_weights is not None:
        run.unwrapped.load_state_dict(run.best_weights)
    merge_lora(run.unwrapped)  # training is over: the test fold is scored by the model the folder holds
    if run.best_weights is None:  # a resumed run whose best epoch came before the resume: from the model folder
        run.unwrapped.load_state_dict(GEmoClapModel.from_pretrained(run.model_dir).state_dict())
    test_metrics = {"selection": selection} if selection else {}
    if run.config.test_fold is not None:
        test_metrics = {"fold": run.config.test_fold, **_test_scores(run), **test_metrics}
        accelerator.log({"test_war": test_metrics["war"], "test_uar": test_metrics["uar"]})
    if accelerator.is_main_process:
        if selection:
            write_selection(run.model_dir, selection)
        if run.config.test_fold is not None:
            with atomic_path(run.output_dir / "test_results.json", unique=True) as partial:
                partial.write_text(json.dumps(test_metrics, indent=2) + "\n")
    # The DDP wrapper goes first, so the process group's last reference is torch's registry (emptied by
    # end_training), whose release lets go of the GIL: released from DDP's reducer, a gloo group joins its worker
    # threads holding the GIL, and a worker still dropping the last gather's tensors needs it (a deadlock).
    accelerator.free_memory()  # accelerate's references to it
    run.model = None  # and ours
    accelerator.end_training()
    progress = run.progress
    return TrainResult(run.output_dir, run.model_dir, test_metrics, progress.best_epoch, progress.history)


def _test_scores(run: _Run) -> dict:
    """The test fold's metrics, each clip scored through the zero-shot pipeline as `gemo-clap predict` and `gemo-clap
    evaluate` score it (the scoring protocol users meet), with the protocol recorded."""
    run.unwrapped.eval()
    classifier = classifier_of(run.unwrapped, run.processor)
    labels, genders = run.splits.emotion_names, run.splits.gender_names
    template = run.unwrapped.config.prompt_template
    outputs, protocol = pipeline_predictions(
        classifier,
        run.splits.test,
        labels,
        template,
        genders,
        batch_size=run.config.eval_batch_size,
        accelerator=run.accelerator,
        progress=False,
    )
    scores = score(outputs, labels, genders)
    return {"scoring_protocol": protocol, **scores, **per_corpus_scores(outputs, run.splits.test, labels, genders)}


def train(config: TrainingConfig, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Train on every fold but `config.test_fold` (every utterance with `test_fold=None`), choose the best epoch on
    validation, evaluate on the test fold; with `select: auto`, with the settings chosen on inner folds first."""
    selection = None
    if config.select == "auto":  # the folder is checked before the search, the search before anything is written
        output_dir = Path(config.output_dir)
        claim_output_dir(output_dir, existing_run(output_dir), resume, overwrite)
        config, selection = selected_config(config, output_dir if resume else None)
    run = _prepare(config, resume, overwrite)
    if selection and run.accelerator.is_main_process:
        write_selection(run.output_dir, selection)
    bar = tqdm(
        total=config.num_epochs * run.steps_per_epoch,
        initial=run.progress.completed_steps,
        disable=not run.accelerator.is_local_main_process,
        desc="training",
    )
    for epoch in range(run.progress.epoch, config.num_epochs):
        _end_epoch(run, epoch, _train_epoch(run, epoch, bar))
    bar.close()
    return _finish(run, selection)


def _save_model(
    model: GEmoClapModel, processor: GEmoClapProcessor, folder: Path, state_dict: dict | None = None
) -> None:
    """A Hugging Face model folder of `model` (or of `state_dict`, weights it held earlier; adapters merged) and
    its processor, without transformers' "Writing model shards" bar (the training bar is the one a person follows)."""
    model, state_dict = mergeable(model, state_dict)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(folder, state_dict=None if state_dict is None else dict(state_dict))  # it empties it
        processor.save_pretrained(folder)
        mode = stat.S_IMODE((Path(folder) / "config.json").stat().st_mode)
        for weights in Path(folder).glob("*.safetensors"):  # safetensors writes 0600: as readable as the rest
            weights.chmod(mode)
    finally:
        if shown:
            hf_logging.enable_progress_bar()
