"""`gemo-clap export-onnx`: a checkpoint as an ONNX folder that `gemo-clap predict --onnx` and `GEmoClapOnnxRunner`
run with onnxruntime, without torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..modeling.labels_gemo_clap import parse_labels
from .quantize import GATE_LIMITS, INT8, gate_line
from .runtime import DEFAULT_OPSET, ONNX_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--output", required=True, type=Path, help="folder to write (an earlier export is replaced)")
    parser.add_argument("--labels", help="comma-separated labels fixed in the graph (default: the model's emotions)")
    parser.add_argument("--template", help="prompt template with {} fixed in the graph (default: the model's)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument(
        "--quantize",
        choices=[INT8],
        help="int8: onnxruntime dynamic quantization of the MatMul/Gemm weights (convolutions stay float); refused, "
        f"nothing written, unless its {GATE_LIMITS}",
    )


def run(args: argparse.Namespace) -> int:
    from .export import export_onnx

    summary = export_onnx(args.model, args.output, parse_labels(args.labels), args.template, args.opset, args.quantize)
    size = (args.output / ONNX_FILE).stat().st_size / 2**20
    print(
        f"wrote {args.output} ({ONNX_FILE} {size:.1f} MiB, opset {summary['opset']}): labels {summary['labels']}"
        + (f", gender {summary['gender_labels']}" if summary["gender_labels"] else "")
        + f"; onnxruntime vs torch max abs difference {summary['max_abs_difference']:.1e}"
        + (f"; int8 vs float{gate_line(summary['quantization'])}" if summary["quantization"] else "")
    )
    return 0
