"""`gemo-clap app --write-space DIR --model REPO_ID`: a folder that runs as a Hugging Face Space (Gradio SDK):
`app.py` (starts the same app as `gemo-clap app`), `requirements.txt` and `README.md` with the Space's front matter
(`sdk: gradio`, `sdk_version`, `app_file`, `models:`). Each file is written atomically; other files in DIR (a
cloned Space's `.git`) are kept."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import yaml
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .. import __version__
from ..processing.atomic import atomic_path, check_folder_path

APP_FILE = "app.py"
APP_TEMPLATE = '''"""A Hugging Face Space serving {model} with gemo-clap's app
(written by `gemo-clap app --write-space`).

`python app.py` starts it; GRADIO_SERVER_NAME and GRADIO_SERVER_PORT (set by Spaces) say where it listens."""

from gemo_clap.app import create_app

demo = create_app(model={model!r}, max_seconds={max_seconds!r}, concurrency={concurrency!r})

if __name__ == "__main__":
    demo.launch()
'''
README_BODY = """
# {title}

Speech emotion recognition with [GEmo-CLAP](https://arxiv.org/abs/2306.07848), serving the model `{model}` with
the app of `gemo-clap app`.

- **File**: upload or record audio (up to {max_seconds:g} s): the overall emotion of its speech, gender for models
  trained with gender prompts, the emotion timeline as a picture and a table of segments, and the timeline as JSON,
  CSV and SRT downloads. Candidate labels and the prompt template can be changed.
- **Live**: the microphone, streamed: the current emotion and the running timeline.

API, with `gradio_client`:

```python
from gradio_client import Client, handle_file

client = Client("OWNER/SPACE")
result = client.predict(handle_file("speech.wav"), "", "", api_name="/timeline")  # labels, template: "" = the model's
print(result["scores"][0], result["segments"])
```

`/analyse` takes the same inputs and returns what the file tab shows. Requests wait in Gradio's queue (concurrency
limit: {concurrency} analyses at once).
"""


def default_requirement() -> str:
    return f"gemo-clap[app,timeline]=={__version__}"


def check_repo_id(model: str) -> None:
    """The Space downloads its model: `model` must be a Hub repo id, not a local folder."""
    try:
        validate_repo_id(model)
        local = Path(model).exists() or model.startswith((".", "/", "~"))
    except HFValidationError:
        local = True
    if local:
        raise ValueError(
            f"--write-space needs --model REPO_ID (a Hub repo the Space downloads), got {model!r}: push a model "
            "folder first with `gemo-clap push`"
        )


def space_files(model: str, max_seconds: float, concurrency: int, requirement: str | None = None) -> dict[str, str]:
    """{file name: text} of a Space serving the Hub model `model`."""
    check_repo_id(model)
    try:
        gradio_version = importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError as error:
        raise ImportError("writing a Space pins the installed gradio: pip install 'gemo-clap[app]'") from error
    from .ui import TITLE

    front = {
        "title": "GEmo-CLAP speech emotion",
        "emoji": "🎙️",
        "colorFrom": "indigo",
        "colorTo": "red",
        "sdk": "gradio",
        "sdk_version": gradio_version,
        "app_file": APP_FILE,
        "pinned": False,
        "license": "apache-2.0",
        "models": [model],
        "short_description": "Speech emotion timelines with GEmo-CLAP",
    }
    readme = README_BODY.format(title=TITLE, model=model, max_seconds=max_seconds, concurrency=concurrency)
    return {
        APP_FILE: APP_TEMPLATE.format(model=model, max_seconds=max_seconds, concurrency=concurrency),
        "requirements.txt": f"{requirement or default_requirement()}\n",
        "README.md": f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n{readme}",
    }


def write_space(
    folder: str | Path, model: str, max_seconds: float, concurrency: int, requirement: str | None = None
) -> list[Path]:
    """Write the Space's files into `folder` (created if needed); the paths written."""
    files = space_files(model, max_seconds, concurrency, requirement)
    folder = Path(folder)
    check_folder_path(folder, "--write-space")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        with atomic_path(folder / name) as staged:
            staged.write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written
