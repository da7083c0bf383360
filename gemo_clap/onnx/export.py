"""Export a GEmo-CLAP checkpoint's audio side to ONNX: one graph from the audio tower's features and mask to the
label probabilities and the normalised audio embedding (and, for checkpoints trained with gender prompts, the
gender probabilities), the label prompts' embeddings computed once here and stored in the graph as constants."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..loading import load_classifier
from ..modeling.vad_gemo_clap import VAD_LICENSE_FILE, copy_vad_files
from ..processing.atomic import atomic_path, check_folder_path
from .features import feature_settings
from .quantize import INT8, quantize_export, readme_note
from .runtime import (
    AUDIO_EMBEDS,
    CONFIG_FILE,
    DEFAULT_OPSET,
    FORMAT_VERSION,
    GENDER_PROBABILITIES,
    MASK_INPUT,
    ONNX_FILE,
    PROBABILITIES,
    README_FILE,
    GEmoClapOnnxRunner,
)

TRACE_SECONDS = (1.3, 0.9)  # the example batch the graph is traced on: two lengths, so padding and masks are in it
CHECK_SECONDS = (0.6, 2.1, 1.7)  # the check after export: other lengths and batch size than the trace
CHECK_TOLERANCE = 1e-4  # largest difference of a probability between onnxruntime and torch that export accepts
MIN_OPSET = 14  # the towers' scaled-dot-product attention exports from opset 14 on


class ZeroShotAudioGraph(nn.Module):
    """The pipeline's forward with fixed prompts: audio features and mask -> (label probabilities, normalised audio
    embedding[, gender probabilities]), `softmax(scale * audio_embeds @ label_embeds.T)` as `similarity_logits`."""

    def __init__(self, model: nn.Module, label_embeds: torch.Tensor, gender_embeds: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.register_buffer("label_embeds", label_embeds)
        self.register_buffer("gender_embeds", gender_embeds)

    def forward(self, features: torch.Tensor, audio_attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs = {self.model.audio_tower.input_name: features, "audio_attention_mask": audio_attention_mask}
        audio_embeds = self.model.get_audio_features(**inputs)
        outputs = [self.model.similarity_logits(audio_embeds, self.label_embeds)[0].softmax(dim=-1), audio_embeds]
        if self.gender_embeds is not None:
            outputs.append(self.model.similarity_logits(audio_embeds, self.gender_embeds)[0].softmax(dim=-1))
        return tuple(outputs)


def _clips(seconds: tuple[float, ...], sampling_rate: int) -> list[np.ndarray]:
    """Reproducible noisy tones of the given lengths (example and check inputs)."""
    rng = np.random.default_rng(0)
    clips = []
    for index, length in enumerate(seconds):
        time = np.arange(round(length * sampling_rate)) / sampling_rate
        tone = 0.3 * np.sin(2 * np.pi * (180 + 60 * index) * time) + 0.05 * rng.standard_normal(time.size)
        clips.append(tone.astype(np.float32))
    return clips


def export_onnx(
    model: str | Path,
    output: str | Path,
    labels: list[str] | None = None,
    template: str | None = None,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
) -> dict:
    """Write `model.onnx`, `gemo_clap_onnx.json` (labels, template, sampling rate, feature settings,
    `max_audio_seconds`), the mel filter bank of Whisper towers and a README into the folder `output`, then run the
    graph with onnxruntime beside torch on clips of other lengths than the trace. Returns the JSON's contents plus
    `max_abs_difference` (that check). `labels`/`template` default to the checkpoint's; an existing export at
    `output` is replaced, any other non-empty folder refused. `quantize="int8"` writes the int8 graph instead
    (`quantize.py`), refused with nothing written unless it passes the gate against the float graph."""
    missing = [package for package in ("onnx", "onnxruntime") if importlib.util.find_spec(package) is None]
    if missing:
        raise ImportError(f"export-onnx needs {' and '.join(missing)}: pip install 'gemo-clap[onnx]'")
    if quantize not in (None, INT8):
        raise ValueError(f"quantize must be {INT8!r} or None, got {quantize!r}")
    from torch.onnx._constants import ONNX_MAX_OPSET  # the newest opset this torch writes (no public name)

    if not MIN_OPSET <= opset <= ONNX_MAX_OPSET:
        raise ValueError(f"--opset must be from {MIN_OPSET} to {ONNX_MAX_OPSET} (what this torch exports), got {opset}")
    output = Path(output)
    check_folder_path(output, "--output")
    if output.is_dir() and any(output.iterdir()) and not (output / CONFIG_FILE).is_file():
        raise FileExistsError(f"--output {output} is a non-empty folder that holds no ONNX export; choose another")
    classifier = load_classifier(str(model), trust_remote_code=False)
    net, processor, config = classifier.model.eval(), classifier.processor, classifier.model.config
    labels, template, gender = classifier.resolve_prompts(labels, template, config.has_gender_prompts, what="labels")
    tower = net.audio_tower
    settings, mel_filters = feature_settings(processor.feature_extractor, tower.input_name)
    with torch.no_grad():
        graph = ZeroShotAudioGraph(
            net,
            classifier.prompt_embeddings(labels, template),
            classifier.prompt_embeddings(*gender) if gender is not None else None,
        ).eval()
    output_names = [PROBABILITIES, AUDIO_EMBEDS] + ([GENDER_PROBABILITIES] if gender is not None else [])
    length_axis = tower.input_ndim - 1
    dynamic_axes = {
        tower.input_name: {0: "batch", length_axis: "length"},
        MASK_INPUT: {0: "batch", 1: "length"},
        **{name: {0: "batch"} for name in output_names},
    }
    example = processor(audio=_clips(TRACE_SECONDS, processor.sampling_rate), sampling_rate=processor.sampling_rate)
    summary = {
        "format_version": FORMAT_VERSION,
        "source": Path(model).name if Path(model).exists() else str(model),
        "variant": config.variant,
        "labels": list(labels),
        "template": template,
        "gender_labels": list(gender[0]) if gender is not None else None,
        "gender_template": gender[1] if gender is not None else None,
        "sampling_rate": processor.sampling_rate,
        "max_audio_seconds": config.max_audio_seconds,
        "input_name": tower.input_name,
        "outputs": output_names,
        "embedding_dim": config.projection_dim,
        "opset": opset,
        "features": settings,
        "quantization": None,
    }
    with atomic_path(output, unique=True) as staged:
        staged.mkdir()
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter (deprecated for dynamo) traces these towers with dynamic shapes; its tracer
            # warns of the length checks it freezes, which the runner's chunking and the check below cover
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            try:
                torch.onnx.export(
                    graph,
                    (example[tower.input_name], example["audio_attention_mask"].long()),
                    str(staged / ONNX_FILE),
                    input_names=[tower.input_name, MASK_INPUT],
                    output_names=output_names,
                    dynamic_axes=dynamic_axes,
                    opset_version=opset,
                    dynamo=False,
                )
            except torch.onnx.OnnxExporterError as error:
                reason = str(error).split(" [Caused by")[0].strip()
                raise ValueError(f"torch cannot export this model at opset {opset}: {reason}") from error
        if mel_filters is not None:
            np.save(staged / settings["mel_filters"], mel_filters)
        summary["vad_model"] = copy_vad_files(staged)  # the timeline's speech detector, when silero-vad is installed
        _describe(staged, summary)
        difference = _check(graph, GEmoClapOnnxRunner(staged, num_threads=1), processor)
        if difference > CHECK_TOLERANCE:
            raise RuntimeError(
                f"the exported graph differs from torch by {difference:.2e} (> {CHECK_TOLERANCE:g}) on clips of "
                f"{CHECK_SECONDS} s; the export was not written"
            )
        if quantize is not None:  # the gate: the int8 graph near the float graph, or nothing is written
            summary["quantization"] = quantize_export(staged)
            _describe(staged, summary)
    return {**summary, "max_abs_difference": difference}


def _describe(folder: Path, summary: dict) -> None:
    """Write the export's JSON and README into `folder`."""
    (folder / CONFIG_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    (folder / README_FILE).write_text(folder_readme(summary))


def _check(graph: ZeroShotAudioGraph, runner: GEmoClapOnnxRunner, processor) -> float:
    """Largest absolute difference of any output between onnxruntime (numpy features) and torch (the processor)
    on a padded batch of `CHECK_SECONDS` clips."""
    clips = _clips(CHECK_SECONDS, processor.sampling_rate)
    inputs = processor(audio=clips, sampling_rate=processor.sampling_rate)
    with torch.no_grad():
        expected = graph(inputs[graph.model.audio_tower.input_name], inputs["audio_attention_mask"].long())
    actual = runner.session.run(runner.config["outputs"], runner.model_inputs(clips))
    return max(float(np.abs(ours - theirs.numpy()).max()) for ours, theirs in zip(actual, expected))


def folder_readme(summary: dict) -> str:
    """The README of an exported folder: how to run it, and the graph's inputs and outputs for other runtimes."""
    rate, seconds = summary["sampling_rate"], summary["max_audio_seconds"]
    features = summary["features"]
    if features["kind"] == "log-mel":
        shape, steps = "`[batch, mel bins, frames]`", "frames"
        recipe = (
            f"Whisper's log-mel spectrogram of each {rate} Hz mono clip alone (not padded to 30 s): centred STFT "
            f"with reflect padding, n_fft {features['n_fft']}, hop {features['hop_length']}, periodic Hann window; "
            f"power; the filter bank `{features['mel_filters']}` (`[n_fft / 2 + 1, {features['num_mel_bins']}]`); "
            "log10 of max(x, 1e-10); max(x, clip peak - 8); (x + 4) / 4; the last frame dropped. Clips are "
            "zero-padded to the longest of the batch."
        )
    else:
        shape, steps = "`[batch, samples]`", "samples"
        normalise = "zero mean and unit variance (variance + 1e-7) per clip, then " if features["do_normalize"] else ""
        recipe = (
            f"The {rate} Hz mono waveform: {normalise}padded with {features['padding_value']:g} to the longest of "
            "the batch."
        )
    gender = summary["gender_labels"]
    gender_call = f'runner("speech.wav", return_gender=True)  # also "gender": {gender}\n' if gender is not None else ""
    gender_output = (
        f", `{GENDER_PROBABILITIES}` `[batch, {len(gender)}]` (in the order {gender})" if gender is not None else ""
    )
    vad_files = (
        f"- `{summary['vad_model']}` and `{VAD_LICENSE_FILE}`: Silero VAD (MIT), the speech detector of the emotion "
        "timeline (`runner(..., return_segments=True)`), run with onnxruntime.\n"
        if summary.get("vad_model")
        else ""
    )
    return f"""# GEmo-CLAP speech emotion recognition, exported to ONNX

Exported from `{summary["source"]}` (variant `{summary["variant"]}`) by `gemo-clap export-onnx`. It runs with
onnxruntime, numpy and soundfile: no torch, no transformers (librosa only to resample audio not at {rate} Hz).

Labels, fixed at export: {summary["labels"]}; prompt template `{summary["template"]}`.
{readme_note(summary.get("quantization"))}
## Run it

```bash
pip install onnxruntime numpy soundfile
pip install --no-deps gemo-clap   # the runner, without torch (from a checkout: pip install --no-deps .)
gemo-clap predict --onnx THIS_FOLDER speech.wav --json
```

```python
from gemo_clap.onnx.runtime import GEmoClapOnnxRunner

runner = GEmoClapOnnxRunner("THIS_FOLDER")
runner("speech.wav")  # [{{"label": ..., "score": ...}}, ...] sorted, summing to 1
runner(["a.wav", "b.wav"], batch_size=8)  # one list per input
runner("long.wav", return_timestamps=True)  # {{"scores": [...], "chunks": [...]}}, a chunk:
# {{"timestamp": (start_s, end_s), "scores": [...]}}
{gender_call}```

Inputs are file paths, mono numpy arrays at {rate} Hz or `{{"array", "sampling_rate"}}` dicts. Inputs longer
than {seconds:g} s (`max_audio_seconds`; `chunk_length_s` for shorter chunks) are split into chunks and scored by
the duration-weighted mean of the chunks, as the gemo-clap pipeline does.

## Files

- `{ONNX_FILE}` (opset {summary["opset"]}): inputs `{summary["input_name"]}` (float32 {shape}) and `{MASK_INPUT}`
  (int64 `[batch, {steps}]`, 1 on real {steps}), batch and length dynamic, at most {seconds:g} s of audio per row;
  outputs `{PROBABILITIES}` `[batch, {len(summary["labels"])}]` (softmax over the labels, in their order),
  `{AUDIO_EMBEDS}` `[batch, {summary["embedding_dim"]}]` (L2-normalised){gender_output}.
- `{CONFIG_FILE}`: labels, template, sampling rate, feature settings, `max_audio_seconds`.
{vad_files}
## Features, for other runtimes

{recipe}
"""
