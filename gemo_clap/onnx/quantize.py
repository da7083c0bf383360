"""int8 exports: onnxruntime's dynamic quantization of the exported graph's MatMul/Gemm weights (int8 per tensor;
activations quantized to uint8 per batch at run time), the convolutional front end and the label scoring on the
audio embedding kept in float32 (quantized convolutions are much slower on CPUs), behind an accuracy gate: on
speech-like check clips the int8 graph must stay within `LIMITS` of the float graph (audio-embedding cosine,
probability difference, top-label agreement), or the export is refused and nothing is written."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from .runtime import AUDIO_EMBEDS, ONNX_FILE, GEmoClapOnnxRunner, inference_session

INT8 = "int8"
QUANTIZED_OPS = ("MatMul", "Gemm")
CPU = ["CPUExecutionProvider"]  # the kernels the int8 graph is meant for
# the gate: the int8 graph against the float graph on the check clips (CHECK_CLIPS speech-like clips)
LIMITS = {
    "min_embedding_cosine": 0.9,  # every clip's audio embedding (damaged graphs: about 0, sound ones >= 0.97):
    # catches damage that probabilities near-uniform for every clip (an untrained head) cannot show
    "max_probability_difference": 0.15,  # any label's probability, any clip
    "top_label_agreement": 0.90,  # fraction of the clips whose top label (and top gender) is the float graph's,
    "clear_margin": 0.02,  # counted on the clips whose float top label leads by this much (near-ties flip anyway)
}
CHECK_CLIPS = 48  # speech-like clips of 0.5-8 s: enough for an agreement fraction in steps of about 2%
GATE_LIMITS = (
    f"audio embeddings' cosine similarity >= {LIMITS['min_embedding_cosine']:g}, largest probability difference "
    f"<= {LIMITS['max_probability_difference']:g} and top-label agreement >= {LIMITS['top_label_agreement']:g} (on "
    f"the clips whose float top label leads by >= {LIMITS['clear_margin']:g}) against the float graph on "
    f"{CHECK_CLIPS} speech-like check clips"
)
CHECK_SECONDS = (0.5, 8.0)
# a weight MatMul/Gemm stays float when its input's uint8 step (range / 255, 0 included) exceeds this fraction of the
# input's RMS on a check clip: per-tensor activation quantization cannot follow such outliers (Whisper's massive
# activations before the last layers' fc2: 0.5-0.96 x RMS there; below 0.2 everywhere else in tiny.en and base)
OUTLIER_STEP = 0.3
CHECK_BATCH_SIZE = 8
METHOD = (
    "onnxruntime dynamic quantization: MatMul/Gemm weights int8 per tensor, activations uint8 per batch at run time; "
    "convolutions, the label scoring on the audio embedding and the products whose inputs have outliers (float_nodes) "
    "in float32"
)


def speech_like_clips(sampling_rate: int, count: int = CHECK_CLIPS) -> list[np.ndarray]:
    """`count` reproducible float32 clips from `CHECK_SECONDS[0]` to `[1]` s, shortest first, that look like speech
    to an audio tower: voiced syllables (a sawtooth source on a moving pitch contour through three formant
    resonators, with an envelope) and pauses; pitch, pitch range and loudness vary from clip to clip."""
    rng = np.random.default_rng(0)
    shortest, longest = CHECK_SECONDS
    clips = []
    for seconds in np.linspace(shortest, longest, count):
        pitch, pitch_range, loudness = rng.uniform(90, 260), rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.6)
        audio = np.zeros(round(seconds * sampling_rate))
        start, cycles = int(rng.uniform(0.02, 0.1) * sampling_rate), 0.0
        while start < audio.size:
            end = min(start + int(rng.uniform(0.08, 0.35) * sampling_rate), audio.size)
            time = np.arange(start, end) / sampling_rate
            f0 = pitch * (1 + pitch_range * np.sin(2 * np.pi * rng.uniform(0.5, 3.0) * time + rng.uniform(0, 7)))
            periods = cycles + np.cumsum(f0) / sampling_rate
            cycles = periods[-1]
            syllable = 2 * (periods % 1.0) - 1 + 0.1 * rng.standard_normal(time.size)  # glottal sawtooth + breath
            for low, high, bandwidth in ((300, 850, 80), (850, 2300, 120), (2300, 3200, 160)):
                radius = np.exp(-np.pi * bandwidth / sampling_rate)
                angle = 2 * np.pi * rng.uniform(low, high) / sampling_rate
                syllable = lfilter([1 - radius], [1, -2 * radius * np.cos(angle), radius**2], syllable)
            audio[start:end] += syllable * np.sin(np.pi * np.linspace(0, 1, time.size)) ** 0.7
            start = end + int(rng.exponential(0.06) * sampling_rate)
        audio *= loudness / (np.abs(audio).max() + 1e-9)
        clips.append((audio + 0.003 * rng.standard_normal(audio.size)).astype(np.float32))
    return clips


def label_scoring_nodes(model) -> list[str]:
    """Names of the MatMul/Gemm nodes of an ONNX `model` downstream of its `audio_embeds` output: the similarity
    with the label (and gender) embeddings, small and kept in float."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    pending, seen = [AUDIO_EMBEDS], set()
    while pending:
        for node in consumers.get(pending.pop(), []):
            if node.name not in seen:
                seen.add(node.name)
                pending.extend(node.output)
    return sorted(node.name for node in model.graph.node if node.name in seen and node.op_type in QUANTIZED_OPS)


@contextmanager
def _without_preprocessing_hint() -> Iterator[None]:
    """Silence onnxruntime's hint to run its quantization pre-processing (its symbolic shape inference cannot
    follow these graphs' dynamic lengths, and without it the quantized graph measured as fast)."""

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def weight_products(model) -> list:
    """The MatMul/Gemm nodes of an ONNX `model` that multiply by a stored weight (not attention's products), the
    label scoring excluded."""
    weights, scoring = {tensor.name for tensor in model.graph.initializer}, set(label_scoring_nodes(model))
    return [
        node
        for node in model.graph.node
        if node.op_type in QUANTIZED_OPS and weights & set(node.input) and node.name not in scoring
    ]


def outlier_nodes(model, feeds: Iterable[dict[str, np.ndarray]]) -> list[str]:
    """Names of the weight products of an ONNX `model` whose input, on one of the input `feeds` (one clip each, to
    bound memory), has outliers: a uint8 step (range / 255, 0 included) above `OUTLIER_STEP` times its RMS."""
    import onnx

    nodes = weight_products(model)
    inputs = list(dict.fromkeys(node.input[0] for node in nodes))  # q, k and v projections share theirs
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in inputs)
    session = inference_session(probe.SerializeToString(), 1, CPU)
    steps = dict.fromkeys(inputs, 0.0)
    for feed in feeds:
        for name, values in zip(inputs, session.run(inputs, feed)):
            step = (values.max() - min(values.min(), 0.0)) / 255 / np.sqrt(np.square(values).mean())
            steps[name] = max(steps[name], float(step))
    return [node.name for node in nodes if steps[node.input[0]] > OUTLIER_STEP]


def quantize_weights(source: Path, target: Path, keep_float: list[str]) -> None:
    """Write `target`: `source` with its MatMul/Gemm weights in int8 (dynamic quantization) but those of the nodes
    `keep_float`; every other op (convolutions included) left in float."""
    from onnxruntime.quantization import quantize_dynamic

    with _without_preprocessing_hint():
        quantize_dynamic(source, target, op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=keep_float)


def compare(reference: GEmoClapOnnxRunner, session, clips: list[np.ndarray]) -> dict[str, float]:
    """An onnxruntime `session` of the same graph against the `reference` runner's, on `clips` in batches of 8:
    `min_embedding_cosine` (audio embeddings), and the worst over the probability outputs of
    `max_probability_difference` and of `top_label_agreement` on the `clear_clips` whose reference top label leads
    the runner-up by `LIMITS["clear_margin"]` or more (1.0 when none does)."""
    names = reference.config["outputs"]
    ours, theirs = {name: [] for name in names}, {name: [] for name in names}
    for start in range(0, len(clips), CHECK_BATCH_SIZE):
        inputs = reference.model_inputs(clips[start : start + CHECK_BATCH_SIZE])
        for outputs, results in ((theirs, reference.session.run(names, inputs)), (ours, session.run(names, inputs))):
            for name, result in zip(names, results):
                outputs[name].append(result)
    ours, theirs = ({name: np.concatenate(arrays) for name, arrays in outputs.items()} for outputs in (ours, theirs))
    check = {
        "min_embedding_cosine": float((ours[AUDIO_EMBEDS] * theirs[AUDIO_EMBEDS]).sum(axis=1).min()),
        "max_probability_difference": 0.0,
        "top_label_agreement": 1.0,
        "clear_clips": len(clips),
    }
    for name in (name for name in names if name.endswith("probabilities")):
        ranked = np.sort(theirs[name], axis=1)
        clear = ranked[:, -1] - ranked[:, -2] >= LIMITS["clear_margin"]
        agrees = ours[name].argmax(axis=1) == theirs[name].argmax(axis=1)
        difference = float(np.abs(ours[name] - theirs[name]).max())
        check["max_probability_difference"] = max(check["max_probability_difference"], difference)
        if clear.any():
            check["top_label_agreement"] = min(check["top_label_agreement"], float(agrees[clear].mean()))
        check["clear_clips"] = min(check["clear_clips"], int(clear.sum()))
    return check


def quantize_export(folder: Path) -> dict:
    """Replace `folder`'s float `model.onnx` (a finished export) by its int8 quantization if it passes the gate;
    returns what the folder's JSON records of it. A `ValueError` (the folder untouched) beyond the limits."""
    import onnx

    float_file, int8_file = folder / ONNX_FILE, folder / f"{INT8}-{ONNX_FILE}"
    reference = GEmoClapOnnxRunner(folder, num_threads=1)
    clips = speech_like_clips(reference.sampling_rate)
    model = onnx.load(str(float_file))
    outliers = outlier_nodes(model, (reference.model_inputs([clip]) for clip in clips))
    quantize_weights(float_file, int8_file, label_scoring_nodes(model) + outliers)
    session = inference_session(str(int8_file), 1, CPU)
    check = compare(reference, session, clips)
    record = {
        "scheme": INT8,
        "method": METHOD,
        "float_nodes": outliers,  # weight products kept float for their inputs' outliers
        "check": {"clips": CHECK_CLIPS, **check, "limits": LIMITS},
    }
    if (
        check["min_embedding_cosine"] < LIMITS["min_embedding_cosine"]
        or check["max_probability_difference"] > LIMITS["max_probability_difference"]
        or check["top_label_agreement"] < LIMITS["top_label_agreement"]
    ):
        int8_file.unlink()
        raise ValueError(
            f"the int8 graph is too far from the float graph{gate_line(record)}; nothing was written: export without "
            "--quantize for the float graph"
        )
    os.replace(int8_file, float_file)
    return record


def gate_line(quantization: dict) -> str:
    """What the gate measured, against its limits, as a clause: " on N speech-like check clips: ..."."""
    check, limits = quantization["check"], quantization["check"]["limits"]
    return (
        f" on {check['clips']} speech-like check clips: smallest audio-embedding cosine "
        f"{check['min_embedding_cosine']:.4f} (limit {limits['min_embedding_cosine']:g}), largest probability "
        f"difference {check['max_probability_difference']:.3f} (limit {limits['max_probability_difference']:g}), "
        f"top-label agreement {check['top_label_agreement']:.3f} (limit {limits['top_label_agreement']:g}) on the "
        f"{check['clear_clips']} whose float top label leads by >= {limits['clear_margin']:g}"
    )


def readme_note(quantization: dict | None) -> str:
    """The exported folder README's paragraph on the graph's quantization ("" for a float graph)."""
    if quantization is None:
        return ""
    return (
        f"\nThe graph is quantized to {quantization['scheme']} ({quantization['method']}). Against the float graph "
        f"at export,{gate_line(quantization)}. onnxruntime's CPU kernels run it (`MatMulInteger`, "
        "`DynamicQuantizeLinear`).\n"
    )
