"""The model a `gemo-clap app` serves: a checkpoint (folder or Hub repo id) through the zero-shot pipeline, or a
folder written by `gemo-clap export-onnx` through the onnxruntime runner, behind one small interface: its labels
and template (editable for a checkpoint, fixed at export for ONNX), whether it scores gender, and one call that
gives a file's emotion timeline as `gemo-clap predict` does. Imports no gradio (the UI lives in `ui`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..loading import load_classifier, load_onnx_runner
from ..modeling.labels_gemo_clap import resolve_label_prompts
from ..timeline.result import predict_file

BATCH_SIZE = 8  # windows per audio-tower call


class ProgressVad:
    """The timeline's speech detector with a progress report: the pipeline and the ONNX runner read a file in
    order through the VAD, so the samples it has seen over the file's length is how far the analysis got (to
    within one 30 s block). `report` is per thread: each request sets its own (`reporting`)."""

    def __init__(self, vad):
        self.vad = vad
        self.local = threading.local()

    def stream(self):
        stream = self.vad.stream()
        report = getattr(self.local, "report", None)
        if report is None:
            return stream
        push, seen = stream.push, [0]

        def counted(samples):
            seen[0] += len(samples)
            report(seen[0])
            return push(samples)

        stream.push = counted
        return stream


@dataclass
class ServedModel:
    """A loaded model and what the app shows of it."""

    classifier: Any  # the zero-shot pipeline, or the ONNX runner (called the same way)
    name: str
    kind: str  # "checkpoint" or "onnx"
    labels: list[str]
    template: str
    gender_labels: list[str] | None
    sampling_rate: int
    vad: ProgressVad

    @property
    def editable(self) -> bool:
        """Labels and template can change per request (a checkpoint); an ONNX export embedded its prompts."""
        return self.kind == "checkpoint"

    def resolve(self, labels: str | None, template: str | None) -> tuple[list[str], str]:
        """(labels, template) of a request: the given ones (comma-separated labels) or the model's, checked; for an
        ONNX export they may only repeat the exported ones. `ValueError` naming what is wrong."""
        labels = labels if labels and labels.strip() else None
        template = template if template and template.strip() else None
        resolved = resolve_label_prompts(labels, template, self.labels, self.template, what="labels")
        if not self.editable and (sorted(resolved[0]) != sorted(self.labels) or resolved[1] != self.template):
            raise ValueError(
                "this ONNX export's labels and template were fixed at export: export it again to change them"
            )
        return resolved

    def analyse(
        self, path: str, labels: list[str], template: str, report: Callable[[int], None] | None = None
    ) -> tuple[dict, dict]:
        """(the `predict --format json` result, the full output with the windows' scores) of one file; `report`
        gets the number of 16 kHz samples analysed so far."""
        self.vad.local.report = report
        try:
            return predict_file(
                self.classifier,
                path,
                BATCH_SIZE,
                candidate_labels=labels,
                hypothesis_template=template,
                return_gender=self.gender_labels is not None,
                return_timestamps=True,
            )
        finally:
            self.vad.local.report = None


def load_model(model: str | None = None, onnx: str | None = None) -> ServedModel:
    """The `ServedModel` of a checkpoint (`model`: folder or Hub repo id) or an ONNX export folder (`onnx`)."""
    if onnx is not None:
        runner = load_onnx_runner(onnx, trust_remote_code=False)
        served = (runner, str(onnx), "onnx", runner.labels, runner.template, runner.gender_labels, runner.sampling_rate)
    else:
        classifier = load_classifier(model, trust_remote_code=False)
        config = classifier.model.config
        gender = list(config.gender_labels) if config.has_gender_prompts else None
        labels, template = list(config.emotion_labels), config.prompt_template
        served = (classifier, str(model), "checkpoint", labels, template, gender, classifier.processor.sampling_rate)
    # the pipeline and the runner both keep their speech detector in their driver (a missing silero-vad fails here)
    driver = served[0].driver
    vad = driver.vad = ProgressVad(driver.vad)
    return ServedModel(*served, vad)
