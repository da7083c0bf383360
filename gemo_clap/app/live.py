"""The live tab of `gemo-clap app`: one microphone's audio, streamed from the browser, through the served model's
`EmotionStream` (`classifier.stream()`): the current label at every hop and the running timeline (final segments,
and the segment in progress as it stands). Gradio-free: the UI passes the browser's (rate, samples) chunks."""

from __future__ import annotations

import html

import numpy as np

from ..timeline.plot import NON_SPEECH, colours
from .analysis import segment_rows
from .model import BATCH_SIZE, ServedModel

SHOWN_SECONDS = 60.0  # the running timeline shows the last minute (the table keeps every segment)
MIN_SHOWN_SECONDS = 10.0
LISTENING = "listening: no speech yet"


class LiveSession:
    """The timeline of one recording: the model's stream (made at the first chunk, at the browser's sampling rate),
    the final segments so far, the segment in progress and the latest event."""

    def __init__(self, served: ServedModel, labels: str | None, template: str | None):
        self.served = served
        self.labels, self.template = served.resolve(labels, template)
        self.stream = None
        self.sampling_rate: int | None = None
        self.segments: list[dict] = []
        self.partial: dict | None = None
        self.current: dict | None = None
        self.seconds = 0.0  # audio received

    def push(self, sampling_rate: int, samples: np.ndarray) -> list[dict]:
        """Feed the next chunk of the recording; the events it decided."""
        if self.stream is None:
            self.stream = self.served.classifier.stream(
                sampling_rate=sampling_rate,
                candidate_labels=self.labels,
                hypothesis_template=self.template,
                return_gender=self.served.gender_labels is not None,
                batch_size=BATCH_SIZE,
            )
            self.sampling_rate = sampling_rate
        elif sampling_rate != self.sampling_rate:
            raise ValueError(f"the microphone changed from {self.sampling_rate} to {sampling_rate} Hz: record again")
        self.seconds += len(samples) / sampling_rate
        return self.apply(self.stream.push(samples))

    def close(self) -> list[dict]:
        """End the recording: the open segment becomes final; the events of the end."""
        events = self.apply(self.stream.close()) if self.stream is not None else []
        self.partial = None
        return events

    def apply(self, events: list[dict]) -> list[dict]:
        for event in events:
            entry = {key: value for key, value in event.items() if key != "event"}
            if event["event"] == "final":
                self.segments.append(entry)
                self.partial = None  # a final ends the segment a partial stood for; the next partial is the next one
            else:
                self.partial = entry
            self.current = entry
        return events

    def label(self) -> dict[str, float] | str:
        """gr.Label's value: the latest label and its score."""
        if self.current is None:
            return LISTENING
        return {self.current["label"]: float(self.current["score"])}

    def rows(self) -> list[list]:
        """The final segments as table rows (start, end, emotion, score[, gender])."""
        return segment_rows(self.segments, self.served.gender_labels is not None)

    def timeline_html(self) -> str:
        """The running timeline: the last minute as a lane of coloured segments (the one in progress paler)."""
        end = max(self.seconds, MIN_SHOWN_SECONDS)
        start = max(0.0, end - SHOWN_SECONDS)
        palette = colours(self.labels)
        bars = []
        shown = self.segments + ([self.partial] if self.partial else [])
        for segment in shown:
            left, right = max(segment["start"], start), min(segment["end"], end)
            if right <= left:
                continue
            kind = "partial" if segment is self.partial else "final"
            gender = f", {segment['gender']}" if segment.get("gender") else ""
            title = f"{segment['label']} {segment['score']:.2f}{gender}: {segment['start']:.1f}-{segment['end']:.1f} s"
            style = (
                f"position:absolute;top:0;bottom:0;left:{100 * (left - start) / (end - start):.3f}%;"
                f"width:{100 * (right - left) / (end - start):.3f}%;background:{palette.get(segment['label'], '#333')};"
                "color:white;font-size:12px;line-height:36px;text-align:center;overflow:hidden;white-space:nowrap;"
                + ("opacity:0.55;" if kind == "partial" else "")
            )
            bars.append(
                f'<div class="segment {kind}" data-label="{html.escape(segment["label"])}" '
                f'title="{html.escape(title)}" style="{style}">{html.escape(segment["label"])}</div>'
            )
        return (
            f'<div id="live-lane" style="position:relative;height:36px;background:{NON_SPEECH};border-radius:4px">'
            + "".join(bars)
            + '</div><div style="display:flex;justify-content:space-between;font-size:12px">'
            f"<span>{start:.0f} s</span><span>{end:.1f} s</span></div>"
        )
