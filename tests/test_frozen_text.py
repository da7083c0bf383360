"""`freeze_text`: the text tower's prompt states are computed once per run, no training step runs the text tower, the
loss equals the one computed through the (frozen, eval-mode) tower, and only the text projection trains on the
text side."""

from __future__ import annotations

import pytest
import torch
from datasets import load_from_disk
from gemo_clap.modeling import GEmoClapModel
from gemo_clap.processing.collator import GEmoClapCollator
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.loop import FrozenPrompts, train
from gemo_clap.train.towers import build_model_and_processor
from test_training import EMOTIONS, build_tiny_dataset, tiny_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("frozen-text"))


@pytest.mark.parametrize("variant", ["sl", "ml"])
def test_frozen_prompt_states_give_the_towers_loss_and_gradients(tiny_encoders, dataset_dir, variant):
    model, processor = build_model_and_processor(*tiny_encoders("wavlm"), projection_dim=16, variant=variant)
    model.text_model.requires_grad_(False)
    model.eval()  # no dropout anywhere: the two passes must see the same network
    collator = GEmoClapCollator(processor, EMOTIONS, with_gender_prompts=variant == "ml")
    batch = collator(list(load_from_disk(str(dataset_dir)).select(range(8))))
    prompts = FrozenPrompts(model, collator)
    assert prompts.emotion.shape == (4, model.config.text_config.hidden_size) and prompts.gender.shape[0] == 2

    results = []
    for inputs in (dict(batch), prompts.apply(dict(batch))):
        model.zero_grad()
        loss = model(**inputs).loss
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    model.zero_grad()
    (loss, gradients), (frozen_loss, frozen_gradients) = results
    assert frozen_loss == pytest.approx(loss, rel=1e-6)
    assert set(frozen_gradients) == set(gradients) and not any(name.startswith("text_model.") for name in gradients)
    for name, gradient in gradients.items():
        torch.testing.assert_close(frozen_gradients[name], gradient, msg=name)


def test_training_with_a_frozen_text_tower_never_runs_it_per_step(tiny_encoders, dataset_dir, tmp_path, monkeypatch):
    calls = []
    original = build_model_and_processor

    def counting_build(*args, **kwargs):
        model, processor = original(*args, **kwargs)
        model.text_model.register_forward_hook(lambda module, args, output: calls.append(module.training))
        return model, processor

    from gemo_clap.train import loop

    monkeypatch.setattr(loop, "build_model_and_processor", counting_build)
    changes = dict(freeze="audio", freeze_text=True, variant="ml", num_epochs=2)
    config = TrainingConfig.load(None, tiny_overrides(tiny_encoders("wavlm"), dataset_dir, tmp_path, **changes))
    train(config)
    # 2 passes for the frozen prompt states (emotion, gender); then only evaluations (2 validations + the test, each
    # embedding the emotion and gender prompts once): 2 + 3 x 2, all in eval mode; 6 training steps ran none
    assert len(calls) == 8 and not any(calls)
    saved = GEmoClapModel.from_pretrained(tmp_path / "model")
    initial, _ = original(*tiny_encoders("wavlm"))
    text_weights = {n: t for n, t in initial.state_dict().items() if n.startswith("text_model.")}
    assert all(torch.equal(saved.state_dict()[name], tensor) for name, tensor in text_weights.items())
    assert not torch.equal(saved.text_projection.layers[0].weight, initial.text_projection.layers[0].weight)
