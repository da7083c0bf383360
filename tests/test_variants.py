"""The variant table is the one place a GEmo-CLAP objective is declared: a toy variant registered there alone is
validated by the config, trained by the model and the training loop, and described on the model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from gemo_clap.modeling import VARIANTS, GEmoClapConfig, GEmoClapModel, LossInputs, Variant, register_variant
from gemo_clap.train.hub.model_card import render_model_card
from gemo_clap.train.towers import build_model_and_processor
from helpers import build_tiny_dataset, tiny_overrides
from torch.nn import functional as F

from gemo_clap.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def clip_loss(inputs: LossInputs, alpha: float, target_normalisation: str) -> torch.Tensor:
    """CLIP's symmetric cross-entropy with each audio's own prompt as the only positive."""
    diagonal = torch.arange(inputs.logits_per_audio.shape[0])
    return (F.cross_entropy(inputs.logits_per_audio, diagonal) + F.cross_entropy(inputs.logits_per_text, diagonal)) / 2


@pytest.fixture
def toy_variant():
    variant = register_variant(Variant("toy", "Toy-CLAP", "Toy-CLAP is CLIP's loss, registered by a test.", clip_loss))
    yield variant
    del VARIANTS["toy"]


def test_the_shipped_table_says_what_each_variant_needs():
    table = {
        name: (v.title, v.alpha_field, v.needs_gender_labels, v.needs_gender_prompts) for name, v in VARIANTS.items()
    }
    assert table == {
        "emo": ("Emo-CLAP", None, False, False),
        "sl": ("SL-GEmo-CLAP", "sl_alpha", True, False),
        "ml": ("ML-GEmo-CLAP", "ml_alpha", True, True),
    }


def test_a_toy_variant_registered_in_the_table_trains_end_to_end(toy_variant, tiny_encoders, make_clip, tmp_path):
    with pytest.raises(ValueError, match="variant must be one of"):
        GEmoClapConfig(variant="clip")
    model, processor = build_model_and_processor(*tiny_encoders("wavlm"), variant="toy", projection_dim=16)
    model.eval()
    clips = [make_clip(seconds, seed=seed) for seed, seconds in enumerate([0.5, 0.8, 0.6])]
    prompts = ["The emotion is angry.", "The emotion is sad.", "The emotion is angry."]
    inputs = processor(audio=clips, text=prompts, sampling_rate=16000)
    with torch.no_grad():
        output = model(**inputs, emotion_labels=torch.tensor([0, 2, 0]))
    expected = clip_loss(LossInputs(output.logits_per_audio, output.logits_per_text, torch.tensor([0, 2, 0])), 1, "")
    assert output.loss.item() == pytest.approx(expected.item(), rel=1e-6)

    dataset = build_tiny_dataset(tmp_path / "data")
    overrides = tiny_overrides(tiny_encoders("wavlm"), dataset, tmp_path / "cv", freeze="audio", num_epochs=1)
    overrides = [item for item in overrides if not item.startswith("variant=")] + ["model.variant=toy"]
    assert main(["cross-validate", *overrides]) == 0
    report = json.loads((tmp_path / "cv" / "results.json").read_text())
    assert list(report["variants"]) == ["toy"] and len(report["variants"]["toy"]["folds"]) == 2
    assert GEmoClapModel.from_pretrained(tmp_path / "cv" / "toy" / "fold_1" / "model").config.variant == "toy"

    card = render_model_card(
        repo_id="org/toy",
        variant="toy",
        audio_encoder="a",
        text_encoder="b",
        dataset_name="EmoDB",
        protocol="p",
        label_names=["angry", "sad"],
        results=None,
        training_args=None,
    )
    assert card.text.lstrip().startswith("# Toy-CLAP for speech emotion recognition (EmoDB)")
    assert "Toy-CLAP is CLIP's loss, registered by a test." in card.text
    assert Path(tmp_path / "cv" / "toy" / "fold_2" / "test_results.json").is_file()


def test_a_misspelt_forward_input_is_an_error_not_a_missing_loss(tiny_encoders, make_clip):
    model, processor = build_model_and_processor(*tiny_encoders("wavlm"), projection_dim=16)
    inputs = processor(audio=[make_clip(0.5)], text=["The emotion is sad."], sampling_rate=16000)
    with pytest.raises(TypeError, match="unexpected keyword argument 'labels'"):
        model(**inputs, labels=torch.tensor([2]))


def test_an_old_config_file_still_loads_and_names_the_new_keys(tmp_path):
    from gemo_clap.train.config import TrainingConfig

    old = tmp_path / "old.yaml"
    old.write_text("variant: ml\nml_alpha: 0.6\ntarget: row\nprojection_dim: 64\nlearning_rate: 1.0e-4\n")
    with pytest.warns(FutureWarning) as warned:
        config = TrainingConfig.load(old)
    assert config.model == {"variant": "ml", "ml_alpha": 0.6, "target_normalisation": "row", "projection_dim": 64}
    assert (config.variant, config.ml_alpha, config.learning_rate) == ("ml", 0.6, 1e-4)
    messages = " ".join(str(item.message) for item in warned)
    assert "now written model.variant" in messages and "now written model.target_normalisation" in messages


def test_a_dataset_with_a_single_emotion_is_rejected_before_any_training(tiny_encoders, tmp_path, capsys):
    import datasets

    from gemo_clap.cli import main

    dataset = datasets.load_from_disk(str(build_tiny_dataset(tmp_path / "data")))
    single = dataset.filter(lambda emotion: emotion == 0, input_columns="emotion", keep_in_memory=True)
    single.save_to_disk(str(tmp_path / "angry-only"))
    overrides = tiny_overrides(tiny_encoders("wavlm"), tmp_path / "angry-only", tmp_path / "run", num_epochs=1)
    assert main(["train", *overrides]) == 2
    assert "the training folds hold a single emotion ('angry')" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    one_name = single.cast_column("emotion", datasets.ClassLabel(names=["angry"]))
    one_name.save_to_disk(str(tmp_path / "one-name"))
    overrides = tiny_overrides(tiny_encoders("wavlm"), tmp_path / "one-name", tmp_path / "run", num_epochs=1)
    assert main(["train", *overrides]) == 2
    assert "single emotion" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_model_folder_records_its_corpus_without_local_paths(tiny_encoders, tmp_path):
    from gemo_clap.train.config import TrainingConfig
    from gemo_clap.train.loop import train

    dataset = build_tiny_dataset(tmp_path / "data")
    train(TrainingConfig.load(None, tiny_overrides(tiny_encoders("wavlm"), dataset, tmp_path / "run", num_epochs=1)))
    recorded = json.loads((tmp_path / "run" / "model" / "training_config.json").read_text())
    assert recorded["corpus"] == "manifest" and recorded["model"]["variant"] == "sl"
    assert not {"dataset", "output_dir", "audio_cache_dir"} & set(recorded)
