"""GEmoClapProcessor: sample formats, channels, resampling, validation errors, output keys and serialisation."""

import numpy as np
import pytest
import torch
from gemo_clap.modeling import GEmoClapProcessor
from transformers import AutoProcessor

PROMPTS = ["The emotion is angry.", "The emotion is sad."]


@pytest.fixture(scope="module")
def processors(tiny_encoders):
    return {kind: GEmoClapProcessor.from_encoders(*tiny_encoders(kind)) for kind in ("wavlm", "whisper")}


@pytest.fixture(scope="module")
def wavlm(processors):
    return processors["wavlm"]


@pytest.fixture(scope="module")
def whisper(processors):
    return processors["whisper"]


def tone(seconds: float, sampling_rate: int, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    time = np.arange(int(round(seconds * sampling_rate))) / sampling_rate
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


# ------------------------------------------------------------------------------------------ sample formats


def test_float32_passes_through_unchanged(wavlm, make_clip):
    clip = make_clip(1.0)
    prepared = wavlm.prepare_audio(clip, 16000)
    assert prepared.dtype == np.float32 and prepared.shape == (16000,)
    assert np.array_equal(prepared, clip)


def test_float64_becomes_float32(wavlm, make_clip):
    clip = make_clip(1.0).astype(np.float64)
    prepared = wavlm.prepare_audio(clip, 16000)
    assert prepared.dtype == np.float32
    assert np.array_equal(prepared, clip.astype(np.float32))


@pytest.mark.parametrize("dtype, scale", [(np.int16, 32768), (np.int32, 2**31)])
def test_integer_samples_are_scaled_to_unit_range(processors, make_clip, dtype, scale):
    floats = make_clip(1.0)
    integers = np.round(floats * (scale - 1)).astype(dtype)
    expected = (integers.astype(np.float64) / scale).astype(np.float32)
    prepared = processors["wavlm"].prepare_audio(integers, 16000)
    assert prepared.dtype == np.float32
    np.testing.assert_allclose(prepared, expected, rtol=0, atol=1e-7)
    assert integers.max() / scale == pytest.approx(float(prepared.max()), abs=1e-7)
    # Whisper's log-mel features are not scale invariant: integer input must match its scaled float version
    from_integers = processors["whisper"](audio=integers, sampling_rate=16000)["input_features"]
    from_floats = processors["whisper"](audio=expected, sampling_rate=16000)["input_features"]
    torch.testing.assert_close(from_integers, from_floats, rtol=0, atol=1e-5)


def test_int16_extremes(wavlm):
    prepared = wavlm.prepare_audio(np.array([-32768, 0, 16384, 32767] * 1000, dtype=np.int16), 16000)
    np.testing.assert_array_equal(prepared[:4], np.array([-1.0, 0.0, 0.5, 32767 / 32768], dtype=np.float32))


def test_torch_tensor_equals_numpy(processors, make_clip):
    clip = make_clip(1.5)
    for processor in processors.values():
        from_tensor = processor(audio=torch.from_numpy(clip), sampling_rate=16000)
        from_numpy = processor(audio=clip, sampling_rate=16000)
        assert from_tensor.keys() == from_numpy.keys()
        for key in from_numpy:
            assert torch.equal(from_tensor[key], from_numpy[key])


def test_list_of_mixed_clips(processors, make_clip):
    one_second = make_clip(1.0, seed=0)
    clips = [
        one_second,
        np.round(make_clip(0.5, seed=1) * 32767).astype(np.int16),
        torch.from_numpy(make_clip(0.75, seed=2)).double(),
        make_clip(0.25, seed=3).tolist(),
    ]
    lengths = [16000, 8000, 12000, 4000]
    wavlm_inputs = processors["wavlm"](audio=clips, sampling_rate=16000)
    assert wavlm_inputs["input_values"].shape == (4, 16000)
    assert wavlm_inputs["audio_attention_mask"].sum(dim=1).tolist() == lengths
    assert (wavlm_inputs["input_values"][1, 8000:] == 0).all()
    whisper_inputs = processors["whisper"](audio=clips, sampling_rate=16000)
    assert whisper_inputs["input_features"].shape == (4, 80, 100)  # 100 mel frames per second, no 30 s padding
    assert whisper_inputs["audio_attention_mask"].sum(dim=1).tolist() == [length // 160 for length in lengths]
    # each clip's features are computed alone: the 1 s clip's mel is the same in the batch and on its own
    alone = processors["whisper"](audio=one_second, sampling_rate=16000)["input_features"]
    assert torch.equal(whisper_inputs["input_features"][0], alone[0])


def test_single_clip_given_as_list_of_numbers(wavlm, make_clip):
    clip = make_clip(0.5)
    inputs = wavlm(audio=clip.tolist(), sampling_rate=16000)
    assert inputs["input_values"].shape == (1, 8000)


def test_a_clip_shorter_than_a_tenth_of_a_second_is_an_error_not_padded(wavlm):
    """Padding 6 ms of audio to 0.1 s gave a confident label for no speech at all (issue 11): now an error."""
    with pytest.raises(ValueError, match=r"audio item 0 lasts 0\.006 s, shorter than 0\.1 s: too short"):
        wavlm.prepare_audio(np.ones(100, dtype=np.float32), 16000)
    assert wavlm.prepare_audio(np.ones(1600, dtype=np.float32), 16000).shape == (1600,)


# ----------------------------------------------------------------------------------------------- channels


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_stereo_is_mixed_to_mono(wavlm, make_clip, layout):
    left, right = make_clip(1.0, seed=0), make_clip(1.0, seed=1)
    stereo = np.stack([left, right]) if layout == "channels_first" else np.stack([left, right], axis=1)
    assert stereo.shape == ((2, 16000) if layout == "channels_first" else (16000, 2))
    np.testing.assert_allclose(wavlm.prepare_audio(stereo, 16000), (left + right) / 2, rtol=0, atol=1e-7)


def test_eight_channels_are_accepted(wavlm, make_clip):
    channels = np.stack([make_clip(0.5, seed=seed) for seed in range(8)])
    np.testing.assert_allclose(wavlm.prepare_audio(channels, 16000), channels.mean(axis=0), rtol=0, atol=1e-7)


# --------------------------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("sampling_rate", [8000, 48000])
def test_other_rates_are_resampled_to_16_khz(processors, sampling_rate):
    seconds = 1.25
    prepared = processors["wavlm"].prepare_audio(tone(seconds, sampling_rate), sampling_rate)
    assert prepared.dtype == np.float32
    assert prepared.shape == (int(seconds * 16000),)
    reference = tone(seconds, 16000)
    middle = slice(800, -800)  # away from the resampling filter's edges
    assert np.abs(prepared[middle] - reference[middle]).max() < 0.01
    inputs = processors["whisper"](audio=tone(seconds, sampling_rate), sampling_rate=sampling_rate)
    assert inputs["input_features"].shape == (1, 80, 125)


def test_missing_sampling_rate_warns_and_assumes_16_khz(wavlm, make_clip):
    clip = make_clip(1.0)
    with pytest.warns(UserWarning, match="no sampling_rate given for the audio; assuming 16000 Hz"):
        inputs = wavlm(audio=clip)
    assert inputs["input_values"].shape == (1, 16000)


def test_long_clip_is_cut_to_max_audio_seconds_with_warning(tiny_encoders, make_clip):
    processor = GEmoClapProcessor.from_encoders(*tiny_encoders("wavlm"), max_audio_seconds=1.0)
    with pytest.warns(UserWarning, match=r"audio item 0 lasts 2\.5 s; cut to the model's max_audio_seconds=1"):
        inputs = processor(audio=make_clip(2.5), sampling_rate=16000)
    assert inputs["input_values"].shape == (1, 16000)


# -------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(0, dtype=np.float32), "audio item 1 is empty (0 samples)"),
        (np.full(16000, np.nan, dtype=np.float32), "audio item 1 contains NaN or infinite samples"),
        (np.concatenate([np.zeros(100), [np.inf]]).astype(np.float32), "audio item 1 contains NaN or infinite samples"),
        (np.zeros((2, 2, 16000), dtype=np.float32), "audio item 1 has 3 dimensions (shape (2, 2, 16000))"),
        (
            np.zeros((10, 16000), dtype=np.float32),
            "audio item 1 has shape (10, 16000): a 2-D array is read as one multi-channel clip (at most 8 channels)",
        ),
        (np.array(["a", "b"]), "audio item 1 has dtype <U1"),
        ("clip.wav", "audio item 1 must be a numpy array, torch tensor or list of samples, got str"),
    ],
)
def test_bad_items_raise_naming_the_item_and_the_reason(wavlm, make_clip, bad, message):
    with pytest.raises(ValueError) as error:
        wavlm(audio=[make_clip(1.0), bad], sampling_rate=16000)
    assert message in str(error.value)


def test_empty_inputs_raise(wavlm):
    with pytest.raises(ValueError, match="audio is an empty list"):
        wavlm(audio=[], sampling_rate=16000)
    with pytest.raises(ValueError, match="text is an empty list"):
        wavlm(text=[])
    with pytest.raises(ValueError, match="pass audio, text, or both"):
        wavlm()
    with pytest.raises(ValueError, match="sampling_rate must be positive, got 0"):
        wavlm(audio=np.zeros(1600, dtype=np.float32), sampling_rate=0)


# ------------------------------------------------------------------------------------------ keys and files


@pytest.mark.parametrize("kind, audio_key", [("wavlm", "input_values"), ("whisper", "input_features")])
def test_keys_do_not_collide(processors, make_clip, kind, audio_key):
    processor = processors[kind]
    clips = [make_clip(1.0), make_clip(0.5, seed=1)]
    inputs = processor(audio=clips, text=PROMPTS + ["The emotion is happy."], sampling_rate=16000)
    assert set(inputs) == {audio_key, "audio_attention_mask", "input_ids", "attention_mask"}
    assert processor.model_input_names == [audio_key, "audio_attention_mask", "input_ids", "attention_mask"]
    assert inputs["audio_attention_mask"].shape == (2, inputs[audio_key].shape[-1])
    assert inputs["attention_mask"].shape == inputs["input_ids"].shape and inputs["input_ids"].shape[0] == 3
    text_only = processor(text=PROMPTS)
    assert set(text_only) == {"input_ids", "attention_mask"}
    assert torch.equal(text_only["input_ids"], inputs["input_ids"][:2, : text_only["input_ids"].shape[1]])


def test_prompt_tokens_are_case_insensitive(wavlm):
    """The tiny towers' word-level prompt tokenizer: every default prompt starts with a capital "The", and a label
    written "Angry" must not collapse to [UNK] (which would give every capitalised label the same prompt)."""
    tokens = wavlm(text=["The emotion is Angry.", "the emotion is angry."])
    vocab = wavlm.tokenizer.get_vocab()
    expected = [
        vocab[token] for token in ["[CLS]", "the", "emotion", "is", "angry", "[UNK]", "[SEP]"]
    ]  # "." is unknown
    assert tokens["input_ids"].tolist() == [expected, expected]
    assert tokens["attention_mask"].tolist() == [[1] * 7, [1] * 7]


@pytest.mark.parametrize("kind", ["wavlm", "whisper"])
def test_save_and_load_round_trip(tiny_encoders, make_clip, tmp_path, kind):
    processor = GEmoClapProcessor.from_encoders(*tiny_encoders(kind), max_audio_seconds=3.0)
    processor.save_pretrained(tmp_path)
    clips = [make_clip(1.0), make_clip(0.4, seed=1)]
    expected = processor(audio=clips, text=PROMPTS, sampling_rate=16000)
    for loaded in (GEmoClapProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is GEmoClapProcessor
        assert loaded.max_audio_seconds == 3.0
        assert type(loaded.feature_extractor) is type(processor.feature_extractor)
        assert loaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
        got = loaded(audio=clips, text=PROMPTS, sampling_rate=16000)
        assert got.keys() == expected.keys()
        for key in expected:
            assert torch.equal(got[key], expected[key]), key
