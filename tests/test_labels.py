"""The one resolver of label lists and prompt templates that every entry point uses."""

from __future__ import annotations

import pytest
from gemo_clap.modeling.labels_gemo_clap import check_template, parse_labels, resolve_label_prompts

DEFAULTS = (["angry", "sad"], "The emotion is {}.")


def test_defaults_and_comma_lists():
    assert resolve_label_prompts(None, None, *DEFAULTS) == (["angry", "sad"], "The emotion is {}.")
    assert resolve_label_prompts(" calm , tense", "Sounds {}.", *DEFAULTS) == (["calm", "tense"], "Sounds {}.")
    assert parse_labels(["a", "b"]) == ["a", "b"] and parse_labels(None) is None


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("", "must be non-empty names"),
        ("calm,", "must be non-empty names"),
        ("calm,calm", r"contains duplicates: \['calm'\]"),
        ("calm", "must hold at least two labels"),
        ([1, "b"], "must be non-empty names"),
    ],
)
def test_bad_label_lists_name_the_option(labels, message):
    with pytest.raises(ValueError, match=f"--labels {message}"):
        resolve_label_prompts(labels, None, *DEFAULTS, what="--labels")


@pytest.mark.parametrize(
    "template", ["The emotion is", "The emotion is {x}.", "{} and {}", "The {0} emotion", "The emotion is {", 3]
)
def test_templates_need_exactly_one_empty_placeholder(template):
    with pytest.raises(ValueError, match="hypothesis_template"):
        check_template(template)


def test_a_good_template_gives_each_label_its_own_prompt():
    labels, template = resolve_label_prompts("calm,tense", "It sounds {}, really.", *DEFAULTS)
    prompts = [template.format(label) for label in labels]
    assert prompts == ["It sounds calm, really.", "It sounds tense, really."] and len(set(prompts)) == 2
