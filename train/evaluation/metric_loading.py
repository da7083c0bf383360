"""Load the shipped speech emotion recognition metric (``train/metrics/ser_metrics.py``) without the Hub."""

from functools import cache
from pathlib import Path

import evaluate

SER_METRIC_PATH = Path(__file__).resolve().parent / "metrics" / "ser_metrics.py"


@cache
def ser_metric() -> evaluate.EvaluationModule:
    """The shipped SER metric, loaded once per process (computing it keeps no state between calls)."""
    return load_ser_metric()


def load_ser_metric(**load_kwargs) -> evaluate.EvaluationModule:
    """``evaluate.load`` of the shipped SER metric script, by path (works offline).

    ``load_kwargs`` go to ``evaluate.load``; ``keep_in_memory`` defaults to ``True`` so that computing the metric
    writes no Arrow cache files (pass ``keep_in_memory=False`` for multi-process ``num_process > 1`` evaluation).
    """
    load_kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(SER_METRIC_PATH), **load_kwargs)
