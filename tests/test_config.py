"""GEmoClapConfig: defaults, real sub-configs, serialisation and field validation."""

import math

import pytest
from gemo_clap.modeling import GEmoClapConfig
from transformers import AutoConfig, BertConfig, RobertaConfig, WavLMConfig, WhisperConfig

TINY_WHISPER = {"model_type": "whisper", "d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4}


def without_path(config_dict: dict) -> dict:
    """A config dict without `_name_or_path`, which records where it was loaded from."""
    return {key: value for key, value in config_dict.items() if key != "_name_or_path"}


def test_defaults():
    config = GEmoClapConfig()
    assert config.model_type == "gemo_clap"
    assert config.projection_dim == 512
    assert config.projection_layers == 2
    assert config.variant == "emo"
    assert config.target_normalisation == "softmax"
    assert config.prompt_template == "The emotion is {}."
    assert config.gender_prompt_template == "The speaker is {}."
    assert config.logit_scale_init == pytest.approx(1 / 0.07)
    assert math.log(config.logit_scale_init) == pytest.approx(2.6592600, abs=1e-6)
    assert config.logit_scale_max == 100.0
    assert config.sl_alpha == 0.8 and config.ml_alpha == 0.8
    assert config.emotion_labels == ["angry", "happy", "sad", "neutral"]
    assert config.gender_labels == ["female", "male"]
    assert config.max_audio_seconds == 14.0


def test_default_sub_configs_are_real_configs():
    config = GEmoClapConfig()
    assert isinstance(config.audio_config, WavLMConfig)
    assert isinstance(config.text_config, RobertaConfig)
    assert not config.uses_spectrogram


def test_whisper_audio_config_from_dict():
    config = GEmoClapConfig(audio_config=TINY_WHISPER, text_config={"model_type": "bert", "hidden_size": 32})
    assert isinstance(config.audio_config, WhisperConfig)
    assert config.audio_config.d_model == 64 and config.audio_config.encoder_layers == 2
    assert isinstance(config.text_config, BertConfig) and config.text_config.hidden_size == 32
    assert config.uses_spectrogram


def test_save_load_round_trip(tmp_path):
    config = GEmoClapConfig(
        audio_config=TINY_WHISPER,
        text_config={"model_type": "bert", "hidden_size": 32},
        projection_dim=48,
        projection_layers=3,
        variant="ml",
        sl_alpha=0.25,
        ml_alpha=0.6,
        target_normalisation="row",
        emotion_labels=["anger", "boredom", "neutral"],
        gender_labels=["f", "m"],
        prompt_template="Sounds {}.",
        max_audio_seconds=8.0,
    )
    config.save_pretrained(tmp_path)
    for loaded in (GEmoClapConfig.from_pretrained(tmp_path), AutoConfig.from_pretrained(tmp_path)):
        assert type(loaded) is GEmoClapConfig
        assert isinstance(loaded.audio_config, WhisperConfig) and isinstance(loaded.text_config, BertConfig)
        assert without_path(loaded.to_dict()) == without_path(config.to_dict())
        assert (loaded.variant, loaded.sl_alpha, loaded.ml_alpha, loaded.target_normalisation) == (
            "ml",
            0.25,
            0.6,
            "row",
        )
        assert loaded.emotion_labels == ["anger", "boredom", "neutral"]
        assert loaded.projection_dim == 48 and loaded.max_audio_seconds == 8.0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"variant": "clip"}, "variant"),
        ({"target_normalisation": "hard"}, "target_normalisation"),
        ({"target": "hard"}, "target_normalisation"),  # the name before the rename still works
        ({"sl_alpha": 1.5}, "sl_alpha"),
        ({"sl_alpha": -0.1}, "sl_alpha"),
        ({"ml_alpha": 1.01}, "ml_alpha"),
        ({"ml_alpha": -1.0}, "ml_alpha"),
        ({"prompt_template": "The emotion is"}, "prompt_template"),
        ({"gender_prompt_template": "A speaker."}, "gender_prompt_template"),
        ({"emotion_labels": ["angry", "sad", "angry"]}, "emotion_labels"),
        ({"emotion_labels": ["angry"]}, "emotion_labels"),
        ({"gender_labels": ["male", "male"]}, "gender_labels"),
        ({"max_audio_seconds": 0}, "max_audio_seconds"),
        ({"audio_config": {"model_type": "bert"}}, "audio_config.model_type"),
        ({"audio_config": TINY_WHISPER, "max_audio_seconds": 31.0}, "max_audio_seconds"),
    ],
)
def test_invalid_field_raises_value_error_naming_it(kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        GEmoClapConfig(**kwargs)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_bounds_are_inclusive(alpha):
    config = GEmoClapConfig(sl_alpha=alpha, ml_alpha=alpha)
    assert config.sl_alpha == alpha and config.ml_alpha == alpha


TORCH_BLOCKED = """
import json, sys
sys.modules["torch"] = None  # any `import torch` now fails
from gemo_clap.modeling.configuration_gemo_clap import GEmoClapConfig

whisper = json.loads(sys.argv[2])
config = GEmoClapConfig(audio_config=whisper, text_config={"model_type": "bert", "hidden_size": 32}, variant="ml")
config.save_pretrained(sys.argv[1])
loaded = GEmoClapConfig.from_pretrained(sys.argv[1])
errors = []
for bad in ({"variant": "clip"}, {"target_normalisation": "rows"}, {"max_audio_seconds": 31.0}):
    try:
        GEmoClapConfig(audio_config=whisper, **bad)
    except ValueError as error:
        errors.append(str(error))
try:
    GEmoClapConfig(audio_config={"model_type": "bert"})
except ValueError as error:
    errors.append(str(error))
print(json.dumps({
    "facts": [loaded.variant, loaded.has_gender_prompts, loaded.uses_spectrogram, loaded.audio_config.encoder_layers],
    "errors": errors,
    "torch_modules": sorted(name for name, module in sys.modules.items() if name.startswith("torch") and module),
}))
"""


def test_the_configuration_needs_no_torch(tmp_path):
    """Where torch cannot be imported, the configuration still builds, validates, saves and loads (its facts come
    from the torch-free `choices_gemo_clap`)."""
    import json
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-c", TORCH_BLOCKED, str(tmp_path), json.dumps(TINY_WHISPER)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["facts"] == ["ml", True, True, 2]
    assert report["torch_modules"] == []
    assert [error.split(" must ")[0] for error in report["errors"]] == [
        "variant",
        "target_normalisation",
        "max_audio_seconds",
        "audio_config.model_type",
    ]
    assert "must be <= 30 for this whisper encoder" in report["errors"][2]
