"""`gemo-clap app`: a Gradio web app serving a model (a checkpoint folder or Hub repo id with `--model`, an ONNX
export with `--onnx`): a file tab (upload or record; scores, gender, the timeline picture, segments, downloads) and
a live tab (the microphone), callable as an API with gradio_client (`ui`). `--write-space DIR` writes a Hugging
Face Space that starts the same app (`space`). Needs `pip install 'gemo-clap[app]'`."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from .analysis import DEFAULT_MAX_SECONDS

DEMO_MODEL = Path("gemo-clap-demo") / "run" / "model"  # what `gemo-clap demo` writes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .ui import DEFAULT_CONCURRENCY

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help=f"model folder or Hub repo id (after `gemo-clap demo`: {DEMO_MODEL})")
    source.add_argument("--onnx", help="folder written by `gemo-clap export-onnx` (labels and template fixed)")
    parser.add_argument("--host", help="address to listen on (default: Gradio's, 127.0.0.1; 0.0.0.0 for everyone)")
    parser.add_argument("--port", type=int, help="port (default: Gradio's, the first free one from 7860)")
    parser.add_argument("--share", action="store_true", help="also serve through a temporary public Gradio link")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help=f"longest file the app analyses (default {DEFAULT_MAX_SECONDS:g})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"file analyses run at once; the others wait in Gradio's queue (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--write-space", type=Path, metavar="DIR", help="write a Hugging Face Space here and exit")
    parser.add_argument(
        "--requirement", help="with --write-space: how the Space installs gemo-clap (default: gemo-clap[app,timeline])"
    )


def create_app(
    model: str | None = None,
    onnx: str | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    concurrency: int | None = None,
):
    """The app (a `gr.Blocks`, its queue set) serving a checkpoint (`model`) or an ONNX export (`onnx`)."""
    from .model import load_model
    from .ui import DEFAULT_CONCURRENCY, build_app, import_gradio

    import_gradio()  # a missing extra is reported before the model loads
    if max_seconds <= 0:
        raise ValueError(f"--max-seconds must be positive, got {max_seconds:g}")
    concurrency = DEFAULT_CONCURRENCY if concurrency is None else concurrency
    if concurrency < 1:
        raise ValueError(f"--concurrency must be >= 1, got {concurrency}")
    return build_app(load_model(model, onnx), max_seconds, concurrency)


def no_model_message() -> str:
    found = f" ({DEMO_MODEL} is here: `gemo-clap app --model {DEMO_MODEL}`)" if DEMO_MODEL.is_dir() else ""
    return (
        "no model given: --model DIR_OR_REPO (e.g. the demo's, after `gemo-clap demo`: --model "
        f"{DEMO_MODEL}) or --onnx DIR{found}"
    )


def check_port(host: str | None, port: int) -> None:
    """`OSError` naming the port when something already listens on it (before the model is loaded)."""
    with socket.socket(socket.AF_INET6 if host and ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            probe.bind((host or "127.0.0.1", port))
        except OSError as error:
            raise OSError(f"port {port} on {host or '127.0.0.1'} is not free ({error.strerror}): pick another --port")


def run(args: argparse.Namespace) -> int:
    if args.model is None and args.onnx is None:
        raise ValueError(no_model_message())
    if args.requirement is not None and args.write_space is None:
        raise ValueError("--requirement applies to --write-space")
    if args.write_space is not None:
        from .space import write_space

        if args.onnx is not None:
            raise ValueError("--write-space serves a Hub model: give --model REPO_ID, not --onnx")
        for path in write_space(args.write_space, args.model, args.max_seconds, args.concurrency, args.requirement):
            print(f"wrote {path}")
        print(f"`python app.py` in {args.write_space} starts the app; push the folder to a Space (sdk: gradio)")
        return 0
    if args.port is not None:
        check_port(args.host, args.port)
    app = create_app(args.model, args.onnx, args.max_seconds, args.concurrency)
    # quiet: Gradio's own lines name its `share=True` argument; ours name the --share flag
    app.launch(server_name=args.host, server_port=args.port, share=args.share, quiet=True, prevent_thread_lock=True)
    public = f", public link {app.share_url}" if app.share_url else " (--share: a temporary public link)"
    print(f"serving {args.model or args.onnx} at {app.local_url}{public}; Ctrl-C stops it", flush=True)
    app.block_thread()
    return 0
