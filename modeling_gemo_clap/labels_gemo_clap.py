"""Label sets and prompt templates: the defaults, and the one resolver every entry point uses (the config, the
pipeline, `predict`, `evaluate`, `export-onnx`, the ONNX runner and the app), so a label list or a template means
the same thing everywhere. Torch-free: only the standard library."""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence

DEFAULT_EMOTION_LABELS = ("angry", "happy", "sad", "neutral")
DEFAULT_GENDER_LABELS = ("female", "male")
DEFAULT_PROMPT_TEMPLATE = "The emotion is {}."
DEFAULT_GENDER_PROMPT_TEMPLATE = "The speaker is {}."


def parse_labels(labels: str | Sequence[str] | None) -> list[str] | None:
    """A label list from a comma-separated string ("angry, sad") or a sequence; None stays None (the default)."""
    if labels is None:
        return None
    if isinstance(labels, str):
        return [label.strip() for label in labels.split(",")]
    return list(labels)


def check_labels(labels: Sequence[str], what: str = "candidate_labels") -> list[str]:
    """At least two distinct, non-empty names (a zero-shot choice among fewer is no choice); `ValueError` naming
    `what` otherwise."""
    labels = list(labels)
    if any(not isinstance(label, str) or not label.strip() for label in labels):
        raise ValueError(f"{what} must be non-empty names, got {labels!r}")
    duplicates = sorted(label for label, count in Counter(labels).items() if count > 1)
    if duplicates:
        raise ValueError(f"{what} contains duplicates: {duplicates}")
    if len(labels) < 2:
        raise ValueError(f"{what} must hold at least two labels to choose between, got {labels!r}")
    return labels


def check_template(template: str, what: str = "hypothesis_template") -> str:
    """A template with exactly one empty `{}` placeholder for the label (no other field), so each label gets its
    own prompt; `ValueError` naming `what` otherwise."""
    if not isinstance(template, str):
        raise ValueError(f"{what} must be a string with one '{{}}' placeholder, got {template!r}")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        raise ValueError(f"{what} {template!r} is not a valid template ({error})") from None
    if fields != [""]:
        raise ValueError(
            f"{what} must hold exactly one '{{}}' placeholder for the label (and no other '{{...}}'), got {template!r}"
        )
    return template


def resolve_label_prompts(
    labels: str | Sequence[str] | None,
    template: str | None,
    default_labels: Sequence[str],
    default_template: str,
    what: str = "candidate_labels",
) -> tuple[list[str], str]:
    """(labels, template) of a call: the given ones (a comma-separated string is a list) or the defaults, each
    checked (`check_labels`, `check_template`)."""
    labels = parse_labels(labels)
    labels = check_labels(default_labels if labels is None else labels, what)
    template = check_template(default_template if template is None else template)
    return labels, template


def check_return_gender(has_gender_prompts: bool, variant: str) -> None:
    """`ValueError` when gender is asked of a checkpoint (`variant`) trained without gender prompts."""
    if not has_gender_prompts:
        raise ValueError(
            f"return_gender needs a checkpoint trained with gender prompts (e.g. ML-GEmo-CLAP); this one is {variant!r}"
        )
