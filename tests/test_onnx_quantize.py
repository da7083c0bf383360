"""int8 exports (`gemo-clap export-onnx --quantize int8`): MatMul/Gemm weights quantized, convolutions, the label
scoring and products whose inputs have outliers kept in float, recorded in the folder; the gate against the float
graph passes a real quantization and refuses a damaged one with nothing written; `predict --onnx` runs an int8
folder with the same output schema."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gemo_clap.train.towers import build_model_and_processor
from helpers import WHISPER_TINY

from gemo_clap.cli import main
from gemo_clap.onnx import quantize
from gemo_clap.onnx.export import export_onnx
from gemo_clap.onnx.runtime import CONFIG_FILE, ONNX_FILE, README_FILE, GEmoClapOnnxRunner

onnx = pytest.importorskip("onnx", reason="export-onnx needs onnx (pip install 'gemo-clap[onnx]')")
pytest.importorskip("onnxruntime", reason="the ONNX runner needs onnxruntime (pip install 'gemo-clap[onnx]')")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a large logit scale makes the random towers' probabilities peaked, as a trained model's are; at the default
# scale they score every label about equally and no probability could show a damaged graph
PEAKED = {"variant": "ml", "logit_scale_init": 100.0}
REAL_QUANTIZATION = quantize.quantize_weights


def damaged_quantization(source: Path, target: Path, keep_float: list[str]) -> None:
    """A broken quantizer: the real one, then every int8 weight matrix's values in reverse order."""
    REAL_QUANTIZATION(source, target, keep_float)
    model = onnx.load(str(target))
    for weight in model.graph.initializer:
        if weight.data_type == onnx.TensorProto.INT8 and len(weight.dims) == 2:
            values = onnx.numpy_helper.to_array(weight)
            weight.CopyFrom(onnx.numpy_helper.from_array(values.ravel()[::-1].reshape(values.shape), weight.name))
    onnx.save(model, str(target))


def operators(folder: Path) -> Counter:
    return Counter(node.op_type for node in onnx.load(str(folder / ONNX_FILE)).graph.node)


def schema(value):
    """The structure of a `predict --json` object: keys, value types and label sets, not the numbers."""
    if isinstance(value, dict):
        return {key: schema(item) if key != "label" else item for key, item in value.items()}
    if isinstance(value, list):
        items = [schema(item) for item in value]
        return sorted(items, key=json.dumps) if value and "score" in value[0] else items
    return type(value).__name__


def test_int8_export_passes_the_gate_and_predicts_like_float(tiny_checkpoint, tmp_path, make_clip, capsys):
    checkpoint = tiny_checkpoint("whisper", **PEAKED)
    float_dir, int8_dir = tmp_path / "float", tmp_path / "int8"
    assert main(["export-onnx", "--model", str(checkpoint), "--output", str(float_dir)]) == 0
    assert main(["export-onnx", "--model", str(checkpoint), "--output", str(int8_dir), "--quantize", "int8"]) == 0
    assert "int8 vs float on 48 speech-like check clips: smallest audio-embedding cosine" in capsys.readouterr().out

    assert json.loads((float_dir / CONFIG_FILE).read_text())["quantization"] is None
    recorded = json.loads((int8_dir / CONFIG_FILE).read_text())["quantization"]
    check = recorded["check"]
    assert recorded["scheme"] == "int8" and check["limits"] == quantize.LIMITS and check["clips"] == 48
    assert recorded["float_nodes"] == []  # random towers have no outlier inputs
    assert check["min_embedding_cosine"] >= 0.9 and check["max_probability_difference"] <= 0.15
    assert check["top_label_agreement"] >= 0.9 and check["clear_clips"] >= 24  # measured on clear top labels
    assert "The graph is quantized to int8" in (int8_dir / README_FILE).read_text()
    assert {path.name for path in int8_dir.iterdir()} == {path.name for path in float_dir.iterdir()}

    # the weight MatMul/Gemm nodes run on int8, the convolutions and the label and gender scoring stay float
    before, after = operators(float_dir), operators(int8_dir)
    float_graph = onnx.load(str(float_dir / ONNX_FILE))
    weights = {node.name for node in quantize.weight_products(float_graph)}
    scoring = quantize.label_scoring_nodes(float_graph)
    assert len(scoring) == 2 and not weights & set(scoring) and set(recorded["float_nodes"]) <= weights
    assert after["Conv"] == before["Conv"] == 2 and "ConvInteger" not in after
    assert after["MatMulInteger"] == len(weights) - len(recorded["float_nodes"])
    # attention's products, the label and gender scoring and the products kept float for their outliers
    assert after["MatMul"] + after["Gemm"] == before["MatMul"] + before["Gemm"] - after["MatMulInteger"]
    assert (int8_dir / ONNX_FILE).stat().st_size < 0.5 * (float_dir / ONNX_FILE).stat().st_size

    wav = tmp_path / "speech.wav"
    sf.write(wav, np.concatenate([make_clip(seconds, seed) for seed, seconds in enumerate((3.0, 4.0, 5.0))]), 16000)
    printed = []
    for folder in (float_dir, int8_dir):
        assert main(["predict", "--onnx", str(folder), "--json", "--segment-seconds", "5", str(wav)]) == 0
        printed.append(json.loads(capsys.readouterr().out))
    assert schema(printed[1]) == schema(printed[0])
    scores = [{entry["label"]: entry["score"] for entry in output["scores"]} for output in printed]
    assert max(abs(scores[1][label] - score) for label, score in scores[0].items()) <= 0.15


def test_products_whose_inputs_have_outliers_are_found():
    """Two products x @ wa and z @ wb; z holds one massive value (as Whisper's input of some fc2s does), x none."""
    rng = np.random.default_rng(0)
    helper = onnx.helper
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "wa"], ["ya"], name="a"),
            helper.make_node("MatMul", ["z", "wb"], ["yb"], name="b"),
        ],
        "outliers",
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["rows", 16]) for name in ("x", "z")],
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["rows", 16]) for name in ("ya", "yb")],
        [onnx.numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), name) for name in ("wa", "wb")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x, z = rng.standard_normal((2, 1500, 16)).astype(np.float32)
    assert quantize.outlier_nodes(model, [{"x": x, "z": z}]) == []
    z[700, 3] = 1000.0  # the uint8 step becomes about 0.5 x the RMS
    assert quantize.outlier_nodes(model, [{"x": x, "z": z}]) == ["b"]


@pytest.mark.skipif(not WHISPER_TINY.is_dir(), reason=f"needs the pretrained encoder {WHISPER_TINY}")
def test_whisper_tiny_en_keeps_its_outlier_product_float(tiny_encoders, tmp_path):
    model, processor = build_model_and_processor(WHISPER_TINY, tiny_encoders("wavlm")[1], logit_scale_init=50.0)
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    summary = export_onnx(tmp_path / "model", tmp_path / "int8", quantize="int8")
    # the pretrained encoder's massive activations before the last layer's fc2 (step 0.96 x RMS; < 0.2 elsewhere)
    assert summary["quantization"]["float_nodes"] == ["/layers.3/fc2/MatMul"]
    kept = [node.op_type for node in onnx.load(str(tmp_path / "int8" / ONNX_FILE)).graph.node if "/fc2/" in node.name]
    assert kept.count("MatMul") == 1 and kept.count("MatMulInteger") == 3


def test_the_gate_refuses_a_damaged_quantization_and_writes_nothing(
    tiny_checkpoint, tmp_path, monkeypatch, capsys, make_clip
):
    checkpoint = tiny_checkpoint("wavlm", **PEAKED)  # a waveform tower: a convolutional feature encoder
    output = tmp_path / "exports" / "int8"
    args = ["export-onnx", "--model", str(checkpoint), "--output", str(output), "--quantize", "int8"]
    monkeypatch.setattr(quantize, "quantize_weights", damaged_quantization)
    assert main(args) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # after the checkpoint's progress bars
    assert error.startswith("gemo-clap export-onnx: the int8 graph is too far from the float graph on 48 speech-like")
    assert "nothing was written: export without --quantize for the float graph" in error
    cosine = float(error.split("smallest audio-embedding cosine ")[1].split()[0])
    assert cosine < 0.5
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").iterdir())

    # an earlier export at --output is left as it was
    export_onnx(checkpoint, output)
    kept = {path.name: path.read_bytes() for path in output.iterdir()}
    assert main(args) == 2
    assert {path.name: path.read_bytes() for path in output.iterdir()} == kept
    assert [path.name for path in output.parent.iterdir()] == ["int8"]

    monkeypatch.setattr(quantize, "quantize_weights", REAL_QUANTIZATION)
    assert main(args) == 0
    assert json.loads((output / CONFIG_FILE).read_text())["quantization"]["scheme"] == "int8"
    assert operators(output)["Conv"] == 8 and "ConvInteger" not in operators(output)
    result = GEmoClapOnnxRunner(output, num_threads=1)(make_clip(2.0))
    assert sorted(entry["label"] for entry in result) == ["angry", "happy", "neutral", "sad"]

    with pytest.raises(ValueError, match="quantize must be 'int8' or None, got 'int4'"):
        export_onnx(checkpoint, tmp_path / "int4", quantize="int4")
    with pytest.raises(SystemExit):
        main([*args[:-1], "int4"])
