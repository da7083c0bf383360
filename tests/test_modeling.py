"""GEmoClapModel on tiny random towers: outputs, loss wiring, temperatures, initialisation, tower weights,
serialisation, padding invariance, Whisper's short-input path, freezing and input validation."""

import math

import pytest
import torch
from gemo_clap.modeling import (
    GEmoClapLoss,
    GEmoClapModel,
    GEmoClapProcessor,
    LossInputs,
    ml_gemo_clap_loss,
    sl_gemo_clap_loss,
)
from gemo_clap.train.global_loss import contrastive_loss
from gemo_clap.train.towers import build_model_and_processor
from gemo_clap.train.training_model import GEmoClapTrainingModel
from helpers import output_shapes
from transformers import AutoModel
from transformers.models.wavlm.modeling_wavlm import WavLMModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

KINDS = ["wavlm", "whisper"]
PROMPTS = ["The emotion is angry.", "The emotion is happy.", "The emotion is sad."]
GENDER_PROMPTS = ["The speaker is female.", "The speaker is male.", "The speaker is female."]
PROJECTION_DIM = 32


@pytest.fixture(scope="module")
def built(tiny_encoders):
    """`built(kind, **config_kwargs)` -> (model in eval mode, processor), cached for the module; do not mutate."""
    cache = {}

    def get(kind="wavlm", **config_kwargs):
        key = (kind, tuple(sorted(config_kwargs.items())))
        if key not in cache:
            model, processor = build_model_and_processor(*tiny_encoders(kind), **config_kwargs)
            cache[key] = (model.eval(), processor)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def clips(make_clip):
    return [make_clip(1.0, seed=0), make_clip(2.5, seed=1), make_clip(4.0, seed=2)]


def training_inputs(processor, clips, gender=True):
    inputs = processor(audio=clips, text=PROMPTS, sampling_rate=16000)
    inputs["emotion_labels"] = torch.tensor([0, 1, 2])
    if gender:
        inputs["gender_labels"] = torch.tensor([0, 1, 0])
        gender_tokens = processor(text=GENDER_PROMPTS)
        inputs["gender_input_ids"] = gender_tokens["input_ids"]
        inputs["gender_attention_mask"] = gender_tokens["attention_mask"]
    return inputs


# ---------------------------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("variant", ["emo", "sl", "ml"])
def test_output_fields_and_shapes(built, clips, variant):
    model, processor = built("wavlm", variant=variant, projection_dim=PROJECTION_DIM, sl_alpha=0.3, ml_alpha=0.7)
    inputs = training_inputs(processor, clips, gender=variant != "emo")
    if variant == "sl":
        del inputs["gender_input_ids"], inputs["gender_attention_mask"]
    with torch.no_grad():
        output = model(**inputs)
    assert output.logits_per_audio.shape == (3, 3) and output.logits_per_text.shape == (3, 3)
    assert output.audio_embeds.shape == (3, PROJECTION_DIM) and output.text_embeds.shape == (3, PROJECTION_DIM)
    torch.testing.assert_close(output.audio_embeds.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(output.text_embeds.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(output.logits_per_text, output.logits_per_audio.T)  # both scales start equal
    scale = math.exp(math.log(1 / 0.07))
    torch.testing.assert_close(output.logits_per_audio, scale * output.audio_embeds @ output.text_embeds.T)
    assert output.loss.shape == () and torch.isfinite(output.loss)
    emotion_logits = (output.logits_per_audio, output.logits_per_text)
    if variant == "ml":
        assert output.logits_per_audio_gender.shape == (3, 3) and output.logits_per_text_gender.shape == (3, 3)
        assert output.gender_text_embeds.shape == (3, PROJECTION_DIM)
        expected = ml_gemo_clap_loss(
            LossInputs(
                *emotion_logits,
                inputs["emotion_labels"],
                inputs["gender_labels"],
                output.logits_per_audio_gender,
                output.logits_per_text_gender,
            ),
            0.7,
        )
        torch.testing.assert_close(output.loss, expected)
    else:
        assert output.logits_per_audio_gender is None and output.logits_per_text_gender is None
        assert output.gender_text_embeds is None
    if variant == "sl":
        expected = sl_gemo_clap_loss(
            LossInputs(*emotion_logits, inputs["emotion_labels"], inputs["gender_labels"]), 0.3
        )
        torch.testing.assert_close(output.loss, expected)


def test_inference_against_candidate_prompts_has_no_loss(built, clips):
    model, processor = built("wavlm", projection_dim=PROJECTION_DIM)
    inputs = processor(audio=clips[:2], text=PROMPTS + ["The emotion is neutral."], sampling_rate=16000)
    with torch.no_grad():
        output = model(**inputs)
    assert output.loss is None
    assert output.logits_per_audio.shape == (2, 4) and output.logits_per_text.shape == (4, 2)


def test_the_feature_methods_give_the_forwards_outputs(built, clips):
    """As in transformers' CLAP: `get_audio_features`, `get_text_features` and `similarity_logits` are the forward's
    pieces (the pooled audio vector projected, the prompts' first-token states projected, scaled cosines)."""
    model, processor = built("wavlm", projection_dim=PROJECTION_DIM)
    inputs = processor(audio=clips, text=PROMPTS, sampling_rate=16000)
    with torch.no_grad():
        output = model(**inputs)
        pooled = model.get_audio_pooled_output(
            inputs["input_values"], audio_attention_mask=inputs["audio_attention_mask"]
        )
        audio_embeds = model.get_audio_features(inputs["input_values"], None, inputs["audio_attention_mask"])
        text_embeds = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
    assert pooled.shape == (3, 64)
    assert torch.equal(model.project_audio(pooled), audio_embeds) and torch.equal(output.audio_embeds, audio_embeds)
    assert torch.equal(output.text_embeds, text_embeds)
    assert torch.equal(output.logits_per_audio, model.similarity_logits(audio_embeds, text_embeds)[0])


@pytest.mark.parametrize("variant", ["emo", "sl", "ml"])
def test_the_training_model_gives_the_forwards_features_and_loss(built, clips, variant):
    """What the training loop runs (`GEmoClapTrainingModel`, the loss applied to its features) computes what the
    Hub model's `forward` computes with `return_loss`."""
    model, processor = built("wavlm", variant=variant, projection_dim=PROJECTION_DIM, sl_alpha=0.3, ml_alpha=0.7)
    batch = training_inputs(processor, clips, gender=variant != "emo")
    with torch.no_grad():
        output = model(**batch, return_loss=True)
        features = GEmoClapTrainingModel(model)(batch)
        loss = contrastive_loss(GEmoClapLoss.from_config(model.config), features, batch)
    assert torch.equal(features.audio_embeds, output.audio_embeds)
    assert torch.equal(features.text_embeds, output.text_embeds)
    assert (features.gender_text_embeds is None) == (variant == "emo")
    assert torch.equal(loss, output.loss)


@pytest.mark.parametrize("variant", ["sl", "ml"])
def test_missing_gender_labels_raise(built, clips, variant):
    model, processor = built("wavlm", variant=variant, projection_dim=PROJECTION_DIM)
    inputs = training_inputs(processor, clips)
    del inputs["gender_labels"]
    with pytest.raises(ValueError, match=f"variant '{variant}' needs gender_labels"):
        model(**inputs)


def test_missing_gender_prompts_raise_for_ml(built, clips):
    model, processor = built("wavlm", variant="ml", projection_dim=PROJECTION_DIM)
    inputs = training_inputs(processor, clips)
    del inputs["gender_input_ids"], inputs["gender_attention_mask"]
    with pytest.raises(ValueError, match="gender_input_ids"):
        model(**inputs)


def test_training_needs_one_prompt_and_one_label_per_audio(built, clips):
    model, processor = built("wavlm", projection_dim=PROJECTION_DIM)
    inputs = processor(audio=clips, text=PROMPTS[:2], sampling_rate=16000)
    with pytest.raises(ValueError, match="3 audios and 2 prompts"):
        model(**inputs, emotion_labels=torch.tensor([0, 1, 2]))
    inputs = processor(audio=clips, text=PROMPTS, sampling_rate=16000)
    with pytest.raises(ValueError, match="emotion_labels must hold one label per audio"):
        model(**inputs, emotion_labels=torch.tensor([0, 1]))


def test_gradients_reach_towers_projections_and_temperatures(tiny_encoders, make_clip):
    model, processor = build_model_and_processor(*tiny_encoders("wavlm"), variant="ml", projection_dim=PROJECTION_DIM)
    model.train()
    short_clips = [make_clip(seconds, seed=seed) for seed, seconds in enumerate([0.5, 0.3, 0.4])]
    model(**training_inputs(processor, short_clips)).loss.backward()
    named = dict(model.named_parameters())
    for name in (
        "logit_scale_a",
        "logit_scale_t",
        "audio_projection.layers.0.weight",
        "text_projection.layers.1.weight",
        "audio_model.encoder.layers.1.feed_forward.output_dense.weight",
        "text_model.encoder.layer.0.attention.self.query.weight",
    ):
        grad = named[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


# --------------------------------------------------------------------------------- temperatures and init


def test_temperatures_start_at_clip_value_and_are_clamped(tiny_encoders):
    model, _ = build_model_and_processor(*tiny_encoders("wavlm"), projection_dim=PROJECTION_DIM, logit_scale_max=50.0)
    for parameter in (model.logit_scale_a, model.logit_scale_t):
        assert parameter.item() == pytest.approx(math.log(1 / 0.07), abs=1e-6)
    scale_a, scale_t = model.logit_scales()
    assert scale_a.item() == pytest.approx(14.2857, abs=1e-4) and scale_t.item() == pytest.approx(14.2857, abs=1e-4)
    with torch.no_grad():
        model.logit_scale_a.fill_(math.log(1000.0))
        model.logit_scale_t.fill_(math.log(20.0))
    scale_a, scale_t = model.logit_scales()
    assert scale_a.item() == pytest.approx(50.0, rel=1e-6)  # clamped at logit_scale_max
    assert scale_t.item() == pytest.approx(20.0, rel=1e-6)  # below the ceiling: unchanged


def test_custom_logit_scale_init(tiny_encoders):
    model, _ = build_model_and_processor(*tiny_encoders("wavlm"), projection_dim=PROJECTION_DIM, logit_scale_init=20.0)
    assert model.logit_scale_a.item() == pytest.approx(math.log(20.0), abs=1e-6)
    assert model.logit_scales()[1].item() == pytest.approx(20.0, rel=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_projection_weights_are_initialised(built, kind):
    model, _ = built(kind)  # default projection_dim 512: 64x512 and 512x512 weights
    linears = [layer for projection in (model.audio_projection, model.text_projection) for layer in projection.layers]
    assert [tuple(layer.weight.shape) for layer in linears] == [(512, 64), (512, 512), (512, 64), (512, 512)]
    for layer in linears:
        assert layer.weight.std().item() == pytest.approx(model.config.initializer_range, rel=0.05)
        assert abs(layer.weight.mean().item()) < 0.002
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


@pytest.mark.parametrize("kind", KINDS)
def test_from_encoders_keeps_pretrained_tower_weights(built, tiny_encoders, kind):
    model, _ = built(kind)
    audio_dir, text_dir = tiny_encoders(kind)
    reference_audio = AutoModel.from_pretrained(audio_dir)
    if kind == "whisper":
        reference_audio = reference_audio.encoder
    for ours, reference in (
        (model.audio_model, reference_audio),
        (model.text_model, AutoModel.from_pretrained(text_dir)),
    ):
        assert type(ours) is type(reference)
        ours, reference = ours.state_dict(), reference.state_dict()
        assert ours.keys() == reference.keys()
        changed = [name for name in ours if not torch.equal(ours[name], reference[name])]
        assert changed == []


@pytest.mark.parametrize("kind", KINDS)
def test_from_encoders_keeps_tower_attention_implementation(built, tiny_encoders, kind):
    """The towers must run the attention they were loaded with (and will be reloaded with): building the composite
    config from their configs must not reset `_attn_implementation` to None (which silently falls back to eager)."""
    model, _ = built(kind)
    audio_dir, text_dir = tiny_encoders(kind)
    expected_audio = AutoModel.from_pretrained(audio_dir).config._attn_implementation
    expected_text = AutoModel.from_pretrained(text_dir).config._attn_implementation
    assert (model.audio_model.config._attn_implementation, model.text_model.config._attn_implementation) == (
        expected_audio,
        expected_text,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_reload_reproduces_logits_exactly(built, clips, kind, tmp_path):
    model, processor = built(kind, projection_dim=PROJECTION_DIM)
    inputs = processor(audio=clips, text=PROMPTS, sampling_rate=16000)
    model.save_pretrained(tmp_path)
    reloaded = GEmoClapModel.from_pretrained(tmp_path).eval()
    assert type(reloaded.audio_model) is (WhisperEncoder if kind == "whisper" else WavLMModel)
    assert reloaded.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(value, model.state_dict()[name]) for name, value in reloaded.state_dict().items())
    with torch.no_grad():
        before, after = model(**inputs), reloaded(**inputs)
    difference = (before.logits_per_audio - after.logits_per_audio).abs().max().item()
    print(f"{kind}: max |logits before save - after reload| = {difference:.3g}")
    assert torch.equal(before.logits_per_audio, after.logits_per_audio), f"max abs difference {difference:.3g}"


# --------------------------------------------------------------------------------------- audio inputs


@pytest.mark.parametrize("kind", KINDS)
def test_audio_embedding_does_not_depend_on_batch_padding(built, clips, kind):
    model, processor = built(kind, projection_dim=PROJECTION_DIM)
    with torch.no_grad():
        alone = model.get_audio_features(**processor(audio=clips[:1], sampling_rate=16000))
        batched = model.get_audio_features(**processor(audio=clips, sampling_rate=16000))
        middle = model.get_audio_features(**processor(audio=clips[1:2], sampling_rate=16000))
    difference = max((alone[0] - batched[0]).abs().max().item(), (middle[0] - batched[1]).abs().max().item())
    print(f"{kind}: padding invariance max abs diff {difference:.3g}")
    assert difference < 1e-5
    assert (batched[0] - batched[2]).abs().max().item() > 1e-4  # different clips do give different embeddings


def test_whisper_short_clip_is_not_padded_to_30_seconds(built, make_clip):
    model, processor = built("whisper", projection_dim=PROJECTION_DIM)
    inputs = processor(audio=make_clip(4.0), sampling_rate=16000)
    assert inputs["input_features"].shape == (1, 80, 400)
    with output_shapes(model.audio_model.layer_norm) as shapes, torch.no_grad():
        pooled = model.get_audio_pooled_output(**inputs)
    assert shapes == [(1, 200, 64)]
    assert pooled.shape == (1, 64)


def test_whisper_input_longer_than_max_audio_seconds_raises(built):
    model, _ = built("whisper", projection_dim=PROJECTION_DIM)
    assert model.config.max_audio_seconds == 14.0
    features = torch.zeros(1, 80, 1401)
    with pytest.raises(ValueError, match=r"1401 mel frames, more than max_audio_seconds=14 allows \(1400\)"):
        model.get_audio_pooled_output(input_features=features)
    with torch.no_grad():
        assert model.get_audio_pooled_output(input_features=features[..., :1400]).shape == (1, 64)


def test_wrong_rank_input_values_raise(built):
    model, _ = built("wavlm", projection_dim=PROJECTION_DIM)
    with pytest.raises(ValueError, match=r"`input_values` must have 2 dimensions, got shape \(1, 1, 16000\)"):
        model.get_audio_features(input_values=torch.zeros(1, 1, 16000))
    with pytest.raises(ValueError, match="`input_values`"):
        model(input_values=torch.zeros(16000), input_ids=torch.tensor([[2, 3]]))
    with pytest.raises(ValueError, match="needs `input_values`"):
        model.get_audio_features(input_features=torch.zeros(1, 80, 100))


def test_wrong_rank_input_features_raise_for_whisper(built):
    model, _ = built("whisper", projection_dim=PROJECTION_DIM)
    with pytest.raises(ValueError, match=r"`input_features` must have 3 dimensions, got shape \(80, 100\)"):
        model.get_audio_features(input_features=torch.zeros(80, 100))
    with pytest.raises(ValueError, match="needs `input_features`"):
        model.get_audio_features(input_values=torch.zeros(1, 16000))


def test_audio_attention_mask_shape_is_checked(built):
    model, _ = built("wavlm", projection_dim=PROJECTION_DIM)
    with pytest.raises(ValueError, match=r"audio_attention_mask has shape \(1, 8000\), expected \(1, 16000\)"):
        model.get_audio_features(input_values=torch.zeros(1, 16000), audio_attention_mask=torch.ones(1, 8000))


# ------------------------------------------------------------------------------------------------ freezing


def trainable(module) -> set[bool]:
    return {parameter.requires_grad for parameter in module.parameters()}


@pytest.mark.parametrize("kind", KINDS)
def test_freeze_audio_encoder(tiny_encoders, kind):
    model, _ = build_model_and_processor(*tiny_encoders(kind), projection_dim=PROJECTION_DIM)
    model.freeze_audio_encoder()
    assert trainable(model.audio_model) == {False}
    for module in (model.text_model, model.audio_projection, model.text_projection):
        assert trainable(module) == {True}
    assert model.logit_scale_a.requires_grad and model.logit_scale_t.requires_grad


def test_freeze_feature_encoder_wavlm(tiny_encoders):
    model, _ = build_model_and_processor(*tiny_encoders("wavlm"), projection_dim=PROJECTION_DIM)
    model.freeze_feature_encoder()
    assert trainable(model.audio_model.feature_extractor) == {False}
    assert trainable(model.audio_model.encoder) == {True}
    assert trainable(model.audio_model.feature_projection) == {True}


def test_freeze_feature_encoder_whisper(tiny_encoders):
    model, _ = build_model_and_processor(*tiny_encoders("whisper"), projection_dim=PROJECTION_DIM)
    model.freeze_feature_encoder()
    encoder = model.audio_model
    for module in (encoder.conv1, encoder.conv2, encoder.embed_positions):
        assert trainable(module) == {False}
    assert trainable(encoder.layers) == {True} and trainable(encoder.layer_norm) == {True}


@pytest.mark.parametrize("kind", KINDS)
def test_freeze_audio_layers(tiny_encoders, kind):
    model, _ = build_model_and_processor(*tiny_encoders(kind), projection_dim=PROJECTION_DIM)
    layers = model.audio_model.layers if kind == "whisper" else model.audio_model.encoder.layers
    audio = model.audio_model
    front_end = [audio.conv1, audio.conv2] if kind == "whisper" else [audio.feature_extractor]
    assert len(layers) == 2
    model.freeze_audio_layers(1)
    assert all(trainable(module) == {False} for module in front_end)
    assert trainable(layers[0]) == {False}
    assert trainable(layers[1]) == {True}
    assert trainable(model.text_model) == {True} and trainable(model.audio_projection) == {True}
    model.freeze_audio_layers(2)
    assert trainable(layers) == {False}


@pytest.mark.parametrize("num_layers", [-1, 3])
def test_freeze_audio_layers_out_of_range_raises(tiny_encoders, num_layers):
    model, _ = build_model_and_processor(*tiny_encoders("wavlm"), projection_dim=PROJECTION_DIM)
    with pytest.raises(ValueError, match=rf"num_layers must be in \[0, 2\] for this audio tower, got {num_layers}"):
        model.freeze_audio_layers(num_layers)
    assert trainable(model.audio_model) == {True}  # nothing was frozen before the error


def test_short_whisper_path_equals_the_stock_encoder_on_a_random_tower(tiny_encoders, make_clip):
    """Without ../shared: on a tiny random Whisper tower, GEmo-CLAP's own path (sliced positions, masked attention)
    with every frame real reproduces transformers' WhisperEncoder on its 30 s input, every hidden state; and a short
    clip's frames do not change when a longer clip pads its batch."""
    from gemo_clap.train.towers import build_model_and_processor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    model, processor = build_model_and_processor(*tiny_encoders("whisper"), max_audio_seconds=30.0)
    model.eval()
    stock = WhisperEncoder(model.config.audio_config).eval()
    stock.load_state_dict(model.audio_model.state_dict())
    features = torch.randn(1, 80, 3000)
    with torch.no_grad():
        expected = stock(features, output_hidden_states=True).hidden_states
        ours, mask = model.audio_tower.hidden_states(
            model.audio_model, features, torch.ones(1, 3000, dtype=torch.long), 30.0, all_layers=True
        )
    assert len(ours) == len(expected) == 3 and mask.shape == (1, 1500) and bool(mask.all())
    for index, (state, reference) in enumerate(zip(ours, expected)):
        assert (state - reference).abs().max().item() < 1e-5, f"hidden state {index}"

    short, long = make_clip(0.7), make_clip(2.3, seed=1)
    with torch.no_grad():
        alone = model.get_audio_layer_statistics(**processor(audio=short, sampling_rate=16000))
        batched = model.get_audio_layer_statistics(**processor(audio=[short, long], sampling_rate=16000))
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------- layering

WITHOUT_THE_PIPELINE = """
import sys, types
from pathlib import Path
import numpy as np, torch

code, checkpoint, work = map(Path, sys.argv[1:4])
package = types.ModuleType("hub_code")  # the checkpoint's code files as one package, as remote code loads them
package.__path__ = [str(code)]
sys.modules["hub_code"] = package
for name in ("pipeline_gemo_clap", "timeline_gemo_clap", "streaming_gemo_clap", "vad_gemo_clap"):
    sys.modules[f"hub_code.{name}"] = None  # importing any of these fails
from hub_code.modeling_gemo_clap import GEmoClapModel
from hub_code.processing_gemo_clap import GEmoClapProcessor

model = GEmoClapModel.from_pretrained(checkpoint).eval()
processor = GEmoClapProcessor.from_pretrained(checkpoint)
clips = [np.load(work / "clip.npy")]
with torch.no_grad():
    logits = model(**processor(audio=clips, text=sys.argv[4:], sampling_rate=16000)).logits_per_audio
np.save(work / "logits.npy", logits.numpy())
"""


def test_a_model_loads_and_runs_without_its_pipeline(tiny_checkpoint, make_clip, tmp_path):
    """The model's code imports the pipeline (and with it the timeline, the stream and the VAD) only when it saves a
    folder: a checkpoint loads and computes its logits with those modules impossible to import."""
    import subprocess
    import sys
    from pathlib import Path

    import gemo_clap.modeling
    import numpy as np

    with torch.random.fork_rng():  # the session's later checkpoints keep the random weights they had
        folder = tiny_checkpoint("wavlm", projection_dim=PROJECTION_DIM)
    np.save(tmp_path / "clip.npy", make_clip(1.0))
    code = Path(gemo_clap.modeling.__file__).parent
    command = [sys.executable, "-c", WITHOUT_THE_PIPELINE, str(code), str(folder), str(tmp_path), *PROMPTS]
    completed = subprocess.run(command, check=False, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    model = GEmoClapModel.from_pretrained(folder).eval()
    processor = GEmoClapProcessor.from_pretrained(folder)
    with torch.no_grad():
        expected = model(**processor(audio=[make_clip(1.0)], text=PROMPTS, sampling_rate=16000)).logits_per_audio
    assert torch.equal(torch.from_numpy(np.load(tmp_path / "logits.npy")), expected)
