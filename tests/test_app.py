"""`gemo-clap app` without a browser: the API through gradio_client (the same numbers as the pipeline, the file
tab's outputs, one-line errors after which the app keeps serving), ONNX exports with fixed labels, the live tab's
session logic, progress, the command line's errors, and a Space folder whose `python app.py` serves the same app.
The browser tests are in test_app_browser.py."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from app_server import free_port, serving, speech_file

gradio = pytest.importorskip("gradio", reason="the app needs gradio (pip install 'gemo-clap[app]')")
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from gemo_clap.app.analysis import ResultFolders, analyse_file, segment_rows
from gemo_clap.app.live import LiveSession
from gemo_clap.app.model import load_model
from gemo_clap.app.ui import build_app
from gemo_clap.cli import main
from gemo_clap.timeline.result import predict_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MAX_SECONDS = 20.0  # the served app's limit (small, so a file over it is small too)


@pytest.fixture(scope="module")
def served(tiny_checkpoint):
    """A tiny random ML-GEmo-CLAP checkpoint (gender prompts) loaded as the app loads it."""
    return load_model(str(tiny_checkpoint("wavlm", variant="ml")))


@pytest.fixture(scope="module")
def client(served):
    with serving(build_app(served, max_seconds=MAX_SECONDS)) as url:
        yield Client(url, verbose=False)


def expected(served, path) -> dict:
    """What `gemo-clap predict --format json` gives for `path`, named as the app names it."""
    result, _ = predict_file(served.classifier, str(path), 8, return_gender=True)
    return {**result, "file": path.name}


def test_timeline_api_gives_the_pipelines_result(served, client, tmp_path):
    path = speech_file(tmp_path)
    result = client.predict(handle_file(str(path)), "", "", api_name="/timeline")
    want = expected(served, path)
    assert result["file"] == path.name and result["segments"] == want["segments"]
    assert [entry["label"] for entry in result["scores"]] == [entry["label"] for entry in want["scores"]]
    assert [entry["score"] for entry in result["scores"]] == pytest.approx([entry["score"] for entry in want["scores"]])
    assert result["gender"] == want["gender"]
    assert {key: result[key] for key in ("duration", "speech", "speech_seconds")} == {
        key: want[key] for key in ("duration", "speech", "speech_seconds")
    }
    # other labels and template (a checkpoint's are editable): the pipeline's scores for them
    relabelled = client.predict(handle_file(str(path)), "calm, tense", "The voice is {}.", api_name="/timeline")
    want, _ = predict_file(
        served.classifier,
        str(path),
        8,
        candidate_labels=["calm", "tense"],
        hypothesis_template="The voice is {}.",
        return_gender=True,
    )
    assert [entry["label"] for entry in relabelled["scores"]] == [entry["label"] for entry in want["scores"]]
    assert {s["label"] for s in relabelled["segments"]} <= {"calm", "tense"}


def test_analyse_api_gives_what_the_file_tab_shows(served, client, tmp_path):
    path = speech_file(tmp_path)
    scores, gender, picture, table, downloads = client.predict(handle_file(str(path)), "", "", api_name="/analyse")
    want = expected(served, path)
    assert scores["label"] == want["scores"][0]["label"]
    assert {c["label"]: c["confidence"] for c in scores["confidences"]} == pytest.approx(
        {entry["label"]: entry["score"] for entry in want["scores"]}
    )
    assert gender["label"] == want["gender"]
    assert Path(picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert table["headers"] == ["start (s)", "end (s)", "emotion", "score", "gender"]
    assert table["data"] == segment_rows(want["segments"], with_gender=True)
    files = {Path(name).name: Path(name) for name in downloads}
    assert set(files) == {f"{path.name}.json", f"{path.name}.csv", f"{path.name}.srt"}
    assert json.loads(files[f"{path.name}.json"].read_text())["segments"] == want["segments"]
    rows = list(csv.DictReader(io.StringIO(files[f"{path.name}.csv"].read_text())))
    assert [(float(r["start"]), r["label"], r["gender"]) for r in rows] == [
        (s["start"], s["label"], s["gender"]) for s in want["segments"]
    ]
    assert files[f"{path.name}.srt"].read_text().count(" --> ") == len(want["segments"])


def test_analyse_api_gives_null_gender_for_a_checkpoint_without_gender_prompts(tiny_checkpoint, tmp_path):
    sl = load_model(str(tiny_checkpoint("wavlm", variant="sl")))
    with serving(build_app(sl, max_seconds=MAX_SECONDS)) as url:
        outputs = Client(url, verbose=False).predict(
            handle_file(str(speech_file(tmp_path))), "", "", api_name="/analyse"
        )
    assert outputs[1] == {} and outputs[0]["label"] in sl.labels  # Gradio's empty Label, not an update marker


def test_bad_input_is_a_one_line_error_and_the_app_keeps_serving(client, make_clip, tmp_path):
    notes, empty, short, long = (tmp_path / name for name in ("notes.wav", "empty.wav", "short.wav", "long.wav"))
    notes.write_text("these are notes, not audio")
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    sf.write(short, make_clip(0.05), 16000)
    sf.write(long, np.zeros(int((MAX_SECONDS + 1) * 16000), dtype=np.int16), 16000)
    cases = [
        (notes, "", "notes.wav is not a readable audio file"),
        (empty, "", "empty.wav is empty: it holds no audio"),
        (short, "", "short.wav lasts 0.050 s, shorter than 0.1 s: too short to hold speech"),
        (long, "", "long.wav lasts 0:21, longer than this app's limit of 0:20"),
        (speech_file(tmp_path), "angry, angry", "labels contains duplicates: ['angry']"),
    ]
    for path, labels, message in cases:
        for endpoint in ("/timeline", "/analyse"):
            with pytest.raises(AppError) as error:
                client.predict(handle_file(str(path)), labels, "", api_name=endpoint)
            assert message in str(error.value) and "\n" not in str(error.value)
    speech = handle_file(str(speech_file(tmp_path)))
    with pytest.raises(AppError, match=re.escape("exactly one '{}' placeholder")):
        client.predict(speech, "", "no placeholder", api_name="/timeline")
    assert client.predict(speech, "", "", api_name="/timeline")["scores"]


def test_onnx_export_is_served_with_its_labels_fixed(tiny_checkpoint, tmp_path):
    pytest.importorskip("onnx", reason="export-onnx needs onnx (pip install 'gemo-clap[onnx]')")
    from gemo_clap.onnx.export import export_onnx

    folder = tmp_path / "export"
    export_onnx(tiny_checkpoint("wavlm", variant="ml"), folder)
    served = load_model(onnx=str(folder))
    app = build_app(served)
    fields = {c["props"].get("elem_id"): c["props"] for c in app.config["components"]}
    assert fields["labels"]["interactive"] is False and fields["template"]["interactive"] is False
    assert fields["labels"]["value"] == ", ".join(served.labels)
    path = speech_file(tmp_path)
    with serving(app) as url:
        api = Client(url, verbose=False)
        result = api.predict(handle_file(str(path)), "", "", api_name="/timeline")
        assert result["segments"] == expected(served, path)["segments"]
        reordered = ", ".join(reversed(served.labels))  # the exported labels in another order are the same labels
        assert (
            api.predict(handle_file(str(path)), reordered, "", api_name="/timeline")["segments"] == result["segments"]
        )
        with pytest.raises(AppError, match="labels and template were fixed at export"):
            api.predict(handle_file(str(path)), "calm, tense", "", api_name="/timeline")


def test_live_session_gives_the_offline_segments(served, tmp_path):
    path = speech_file(tmp_path)
    samples, rate = sf.read(path, dtype="int16")  # the browser sends 16-bit chunks of 0.1 s
    session = LiveSession(served, "", "")
    assert session.label() == "listening: no speech yet"
    events = []
    for start in range(0, len(samples), rate // 10):
        events += session.push(rate, samples[start : start + rate // 10])
    events += session.close()
    want = expected(served, path)
    assert session.rows() == segment_rows(want["segments"], with_gender=True)
    assert [e for e in events if e["event"] == "final"] and {e["label"] for e in events} <= set(served.labels)
    last = session.current
    assert session.label() == {last["label"]: pytest.approx(last["score"])}
    html = session.timeline_html()
    assert html.count('class="segment final"') == len(want["segments"]) and 'class="segment partial"' not in html


def test_progress_follows_the_file(served, make_clip, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(make_clip(5.0), 9), 16000)  # 45 s: read in two 30 s blocks
    reported = []
    analyse_file(served, str(path), "", "", ResultFolders(), progress=lambda f, desc: reported.append((f, desc)))
    fractions = [fraction for fraction, _ in reported]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 0.9
    assert any(0.5 < fraction < 0.7 for fraction in fractions)  # 30 s of 45 s read: 0.9 * 2/3
    assert reported[-1][1] == "drawing the timeline"


def test_command_line_errors(tiny_checkpoint, tmp_path, capsys):
    def error(*argv) -> str:
        assert main(["app", *argv]) == 2
        message = capsys.readouterr().err
        assert message.startswith("gemo-clap app: ") and message.count("\n") == 1
        return message

    assert "no model given: --model DIR_OR_REPO" in error() and "gemo-clap-demo/run/model" in error()
    assert f"{tmp_path} is not a gemo-clap model folder" in error("--model", str(tmp_path))
    (tmp_path / "gemo_clap_onnx.json").write_text("{}")
    assert "(an ONNX export: use --onnx)" in error("--model", str(tmp_path))
    assert "does not exist" in error("--model", str(tmp_path / "missing"))
    model = str(tiny_checkpoint("wavlm", variant="ml"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert f"port {port} on 127.0.0.1 is not free" in error("--model", model, "--port", str(port))
    assert "--max-seconds must be positive" in error("--model", model, "--max-seconds", "0")
    assert "--write-space needs --model REPO_ID" in error("--model", model, "--write-space", str(tmp_path / "s"))
    assert "not --onnx" in error("--onnx", str(tmp_path), "--write-space", str(tmp_path / "s"))
    assert "--requirement applies to --write-space" in error("--model", model, "--requirement", "x")


def hub_cache(folder, repo_id: str, model_dir) -> None:
    """A Hugging Face cache in `folder` holding `model_dir` as the snapshot of `repo_id` (loads offline)."""
    repo = folder / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in model_dir.iterdir():
        (snapshot / file.name).symlink_to(file)


def test_space_folder_serves_the_same_app(served, tiny_checkpoint, tmp_path, capsys):
    space, repo_id = tmp_path / "space", "mock-user/gemo-clap-tiny"
    assert main(["app", "--write-space", str(space), "--model", repo_id, "--max-seconds", "30"]) == 0
    assert f"wrote {space / 'app.py'}" in capsys.readouterr().out
    readme = (space / "README.md").read_text()
    front = yaml.safe_load(readme.split("---\n")[1])
    assert front["sdk"] == "gradio" and front["sdk_version"] == gradio.__version__
    assert front["app_file"] == "app.py" and front["models"] == [repo_id]
    assert 'api_name="/timeline"' in readme
    assert (space / "requirements.txt").read_text().startswith("gemo-clap[app,timeline]==")
    assert f"create_app(model={repo_id!r}, max_seconds=30.0" in (space / "app.py").read_text()

    hub_cache(tmp_path / "hub", repo_id, tiny_checkpoint("wavlm", variant="ml"))  # the Space downloads it so
    port = free_port()
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": str(port)}
    env.update(GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, process.stderr.read()[-2000:]
            try:
                urllib.request.urlopen(url, timeout=10).close()
                break
            except OSError:  # not listening yet
                assert time.monotonic() < deadline, "the Space's app.py did not start serving"
                time.sleep(1)
        api = Client(url, verbose=False)
        path = speech_file(tmp_path)
        result = api.predict(handle_file(str(path)), "", "", api_name="/timeline")
        assert result["segments"] == expected(served, path)["segments"]
        assert {"/timeline", "/analyse"} <= set(api.view_api(print_info=False, return_format="dict")["named_endpoints"])
    finally:
        process.terminate()
        process.wait(timeout=30)
