"""The Gradio app of `gemo-clap app` (and of a Space written by `--write-space`): a file tab (upload or record; overall
scores, gender, the timeline picture, the segment table, downloads) and a live tab (the microphone, streamed: the
current label and the running timeline, updated every hop), on Gradio's queue with a stated concurrency limit.

API (`gradio_client.Client(url).predict(..., api_name=...)`):
- `/timeline` (audio file, labels, template) -> the result `gemo-clap predict --format json` gives for that file.
- `/analyse` (the same inputs) -> what the file tab shows: overall scores (gr.Label's value), gender, the timeline
  PNG, the segment table, the downloads (JSON, CSV, SRT).
Empty labels or template mean the model's own; an ONNX export takes only its exported ones. Bad input raises an error
whose message is one line (a toast in the browser, `gradio_client.exceptions.AppError` in a client).
"""

# no `from __future__ import annotations`: gr.api reads the /timeline function's type hints as objects

import functools
from collections.abc import Callable

from ..modeling.timeline_gemo_clap import TimelineSettings
from .analysis import DEFAULT_MAX_SECONDS, TABLE_HEADERS, ResultFolders, analyse_file, minutes
from .live import LiveSession
from .model import ServedModel

DEFAULT_CONCURRENCY = 1  # file analyses run at a time: one analysis already uses every core of a small machine
LIVE_STREAMS = 4  # microphone updates processed at once (each is a hop of audio: a few windows at most)
QUEUE_SIZE = 32  # requests waiting beyond the running ones; more are refused ("queue is full")
TITLE = "GEmo-CLAP speech emotion recognition"


def import_gradio():
    try:
        import gradio
    except ImportError as error:
        raise ImportError("the app needs gradio: pip install 'gemo-clap[app]'") from error
    return gradio


def shown_errors(function: Callable) -> Callable:
    """`function` with its `ValueError`s (bad input: one line) shown by Gradio: a toast in the browser, an
    `AppError` with the message in gradio_client; the app goes on serving."""
    gr = import_gradio()

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ValueError as error:
            raise gr.Error(str(error).splitlines()[0], print_exception=False) from None

    return wrapped


def describe_model(served: ServedModel) -> str:
    kind = "checkpoint" if served.editable else "ONNX export"
    gender = f"; gender: {', '.join(served.gender_labels)}" if served.gender_labels else ""
    return f"**Model** `{served.name}` ({kind}). Emotions: {', '.join(served.labels)}{gender}."


def build_app(served: ServedModel, max_seconds: float = DEFAULT_MAX_SECONDS, concurrency: int = DEFAULT_CONCURRENCY):
    """The `gr.Blocks` app serving `served`, its queue set (`concurrency` analyses at a time, `QUEUE_SIZE` waiting)."""
    gr = import_gradio()
    from gradio.data_classes import FileData

    folders = ResultFolders()
    headers = TABLE_HEADERS if served.gender_labels else TABLE_HEADERS[:-1]

    def analyse(audio: str | None, labels: str, template: str, progress=gr.Progress()):  # noqa: B008 (Gradio's way)
        done = analyse_file(served, audio, labels, template, folders, max_seconds, progress)
        # no gender (a checkpoint without gender prompts, or no speech): None, which the API gives as an empty Label
        return done.scores, done.gender, str(done.picture), done.table, [str(path) for path in done.downloads]

    def timeline(audio: FileData, labels: str = "", template: str = "") -> dict:
        """The emotion timeline of an audio file: what `gemo-clap predict --format json` gives (`file`, `duration`,
        `speech`, `speech_seconds`, `scores`, `segments`, and `gender`/`gender_scores` for models with gender
        prompts). Empty `labels` (comma-separated) or `template` mean the model's own."""
        path = audio["path"] if isinstance(audio, dict) else audio
        result = analyse_file(served, path, labels, template, folders, max_seconds).result
        if isinstance(audio, dict) and audio.get("orig_name"):
            result["file"] = audio["orig_name"]
        return result

    def live_push(chunk, session: LiveSession | None, labels: str, template: str):
        """One chunk of the microphone (the browser sends 0.1 s at a time); the views change only with events."""
        session = session or LiveSession(served, labels, template)
        if chunk is None:
            return session, gr.skip(), gr.skip(), gr.skip()
        if session.seconds > max_seconds:
            raise ValueError(f"live recordings stop at this app's limit of {minutes(max_seconds)}: record again")
        events = session.push(*chunk)
        if not events:
            return session, gr.skip(), gr.skip(), gr.skip()
        finals = any(event["event"] == "final" for event in events)
        return session, session.label(), session.timeline_html(), session.rows() if finals else gr.skip()

    def live_stop(session: LiveSession | None):
        """The end of a recording: its open segment final; the next recording starts a new session."""
        if session is None:
            return None, gr.skip(), gr.skip(), gr.skip()
        session.close()
        return None, session.label(), session.timeline_html(), session.rows()

    fixed = " (fixed at export)" if not served.editable else ""
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"# {TITLE}\n{describe_model(served)}")
        with gr.Accordion("Labels and template", open=False):
            labels = gr.Textbox(
                ", ".join(served.labels),
                label=f"Candidate labels, comma-separated{fixed}",
                interactive=served.editable,
                elem_id="labels",
            )
            template = gr.Textbox(
                served.template,
                label=f"Prompt template, {{}} marks the label{fixed}",
                interactive=served.editable,
                elem_id="template",
            )
        with gr.Tab("File", id="file"):
            with gr.Row():
                with gr.Column():
                    audio = gr.Audio(
                        sources=["upload", "microphone"],
                        type="filepath",
                        label=f"Audio: upload a file or record (up to {minutes(max_seconds)})",
                        elem_id="file-audio",
                    )
                    button = gr.Button("Analyse", variant="primary", elem_id="analyse")
                with gr.Column():
                    scores = gr.Label(label="Overall emotion (speech only)", elem_id="scores")
                    gender = gr.Label(label="Gender", visible=served.gender_labels is not None, elem_id="gender")
            picture = gr.Image(
                label="Emotion timeline", type="filepath", format="png", show_label=False, elem_id="timeline"
            )
            table = gr.Dataframe(headers=headers, label="Segments (speech only)", interactive=False, elem_id="segments")
            downloads = gr.File(label="Downloads: JSON, CSV, SRT", file_count="multiple", elem_id="downloads")
        with gr.Tab("Live", id="live"):
            hop = TimelineSettings().hop_s
            gr.Markdown(f"Record from the microphone: the current emotion and the timeline follow every {hop:g} s.")
            with gr.Row():
                microphone = gr.Audio(
                    sources=["microphone"], type="numpy", streaming=True, label="Microphone", elem_id="live-audio"
                )
                current = gr.Label(label="Current emotion", elem_id="live-label")
            lane = gr.HTML(elem_id="live-timeline")
            live_table = gr.Dataframe(headers=headers, label="Final segments", interactive=False, elem_id="live-table")
            session = gr.State(None)
        button.click(
            shown_errors(analyse),
            [audio, labels, template],
            [scores, gender, picture, table, downloads],
            api_name="analyse",
            concurrency_limit=concurrency,
            concurrency_id="analysis",
        )
        gr.api(shown_errors(timeline), api_name="timeline", concurrency_limit=concurrency, concurrency_id="analysis")
        live = [session, current, lane, live_table]
        microphone.stream(
            shown_errors(live_push),
            [microphone, session, labels, template],
            live,
            stream_every=hop,
            show_progress="hidden",
            concurrency_limit=LIVE_STREAMS,
            concurrency_id="live",
            api_visibility="private",
        )
        microphone.stop_recording(shown_errors(live_stop), [session], live, api_visibility="private")
    app.queue(default_concurrency_limit=concurrency, max_size=QUEUE_SIZE)
    return app
