"""The zero-shot-audio-classification pipeline, loaded from a saved checkpoint folder with trust_remote_code=True."""

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import pipeline

TASK = "zero-shot-audio-classification"
KINDS = ["wavlm", "whisper"]
# a large temperature spreads the scores of the random tiny model, so score comparisons are not trivially ~1/4
CHECKPOINT_KWARGS = {"logit_scale_init": 100.0, "projection_dim": 32}


def build_pipeline(tiny_checkpoint, kind):
    return pipeline(TASK, model=str(tiny_checkpoint(kind, **CHECKPOINT_KWARGS)), trust_remote_code=True)


@pytest.fixture(scope="module")
def pipes(tiny_checkpoint):
    return {kind: build_pipeline(tiny_checkpoint, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def pipe(pipes):
    return pipes["wavlm"]


def as_scores(result) -> dict[str, float]:
    return {item["label"]: item["score"] for item in result}


def max_score_difference(first, second) -> float:
    first, second = as_scores(first), as_scores(second)
    assert first.keys() == second.keys()
    return max(abs(first[label] - second[label]) for label in first)


def check_result(result, labels):
    """A ranked result: one entry per label, sorted by decreasing score, scores summing to 1."""
    assert [set(item) for item in result] == [{"label", "score"}] * len(labels)
    assert sorted(item["label"] for item in result) == sorted(labels)
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-6)
    assert all(0.0 < score < 1.0 for score in scores)


def expected_scores(pipe, clip, labels, template) -> dict[str, float]:
    """The scores computed with the model's own methods, outside the pipeline."""
    model, processor = pipe.model, pipe.processor
    with torch.no_grad():
        tokens = processor(text=[template.format(label) for label in labels])
        text = model.get_text_features(tokens["input_ids"], tokens["attention_mask"])  # normalised, as CLAP's
        audio_inputs = processor(audio=clip, sampling_rate=16000)
        audio = model.get_audio_features(**audio_inputs)
        scores = (model.logit_scales()[0] * audio @ text.T).softmax(dim=-1)[0]
    return dict(zip(labels, scores.tolist()))


# ------------------------------------------------------------------------------------------------- inputs


def test_pipeline_is_the_checkpoint_remote_code(pipe):
    assert type(pipe).__name__ == "GEmoClapZeroShotAudioClassificationPipeline"
    assert type(pipe).__module__.startswith("transformers_modules.")
    assert pipe.model.config.logit_scale_init == 100.0


def test_numpy_input_uses_default_labels_and_template(pipe, make_clip):
    clip = make_clip(1.5)
    result = pipe(clip)
    labels = pipe.model.config.emotion_labels
    assert labels == ["angry", "happy", "sad", "neutral"]
    check_result(result, labels)
    expected = expected_scores(pipe, clip, labels, "The emotion is {}.")
    assert max(abs(score - expected[label]) for label, score in as_scores(result).items()) < 1e-6
    assert max(expected.values()) - min(expected.values()) > 1e-3  # the scores are not all equal


def test_file_path_input(pipe, make_clip, tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, make_clip(2.0), 16000, subtype="PCM_16")
    decoded, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    result = pipe(str(path))
    check_result(result, pipe.model.config.emotion_labels)
    assert max_score_difference(result, pipe(decoded)) < 1e-6
    assert max_score_difference(pipe(path), result) < 1e-6  # a pathlib.Path works too


def test_file_at_another_rate_is_resampled(pipe, make_clip, tmp_path):
    clip_8k = make_clip(2.0, sampling_rate=8000)
    path = tmp_path / "clip_8k.wav"
    sf.write(path, clip_8k, 8000, subtype="FLOAT")
    resampled = librosa.resample(clip_8k, orig_sr=8000, target_sr=16000)
    assert max_score_difference(pipe(str(path)), pipe(resampled)) < 1e-5


def test_dict_input_at_8_khz(pipe, make_clip):
    clip_8k = make_clip(2.0, sampling_rate=8000)
    result = pipe({"array": clip_8k, "sampling_rate": 8000})
    check_result(result, pipe.model.config.emotion_labels)
    resampled = librosa.resample(clip_8k, orig_sr=8000, target_sr=16000)
    assert resampled.shape == (32000,)
    assert max_score_difference(result, pipe(resampled)) < 1e-5
    assert max_score_difference(pipe({"raw": clip_8k, "sampling_rate": 8000}), result) == 0.0


def test_list_input_with_batch_size(pipe, make_clip):
    clips = [make_clip(seconds, seed=seed) for seed, seconds in enumerate([1.0, 0.5, 2.0, 1.5, 3.0])]
    results = pipe(clips, batch_size=2)
    assert len(results) == 5
    for result in results:
        check_result(result, pipe.model.config.emotion_labels)


def test_mixed_list_of_files_arrays_and_dicts(pipe, make_clip, tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, make_clip(1.5, seed=5), 16000, subtype="FLOAT")
    items = [
        make_clip(3.0, seed=6),
        str(path),
        {"array": make_clip(1.0, seed=7, sampling_rate=8000), "sampling_rate": 8000},
    ]
    batched = pipe(items, batch_size=2)
    assert len(batched) == 3
    for item, result in zip(items, batched):
        assert max_score_difference(result, pipe(item)) < 1e-4


def test_custom_labels_and_template(pipe, make_clip):
    clip = make_clip(1.0, seed=4)
    labels = ["calm", "bored", "angry"]
    result = pipe(clip, candidate_labels=labels, hypothesis_template="A {} speaker.")
    check_result(result, labels)
    expected = expected_scores(pipe, clip, labels, "A {} speaker.")
    assert max(abs(score - expected[label]) for label, score in as_scores(result).items()) < 1e-6
    default_template = expected_scores(pipe, clip, labels, "The emotion is {}.")
    assert max(abs(expected[label] - default_template[label]) for label in labels) > 1e-4  # the template is used


def test_candidate_labels_as_comma_separated_string(pipe, make_clip):
    clip = make_clip(1.0)
    from_string, from_list = pipe(clip, candidate_labels="sad, happy"), pipe(clip, candidate_labels=["sad", "happy"])
    assert max_score_difference(from_string, from_list) == 0.0


# ------------------------------------------------------------------------------------------------ batching


@pytest.mark.parametrize("kind", KINDS)
def test_batched_results_equal_one_at_a_time(pipes, make_clip, kind):
    pipe = pipes[kind]
    clips = [make_clip(seconds, seed=seed) for seed, seconds in enumerate([1.0, 2.5, 4.0])]
    batched = pipe(clips, batch_size=3)
    single = [pipe(clip) for clip in clips]
    difference = max(max_score_difference(b, s) for b, s in zip(batched, single))
    print(f"{kind}: batched vs one-at-a-time max abs score difference {difference:.3g}")
    assert difference < 1e-4
    spread = max(max(as_scores(result).values()) - min(as_scores(result).values()) for result in single)
    assert spread > 1e-3  # scores differ between labels, so the comparison is not vacuous
    between_clips = min(max_score_difference(single[i], single[j]) for i, j in [(0, 1), (0, 2), (1, 2)])
    assert between_clips > 10 * max(difference, 1e-6)  # a result returned for the wrong clip would be caught


def test_prompts_are_encoded_once_per_label_set(tiny_checkpoint, make_clip):
    pipe = build_pipeline(tiny_checkpoint, "wavlm")  # a fresh pipeline: empty prompt cache
    calls = []
    hook = pipe.model.text_model.register_forward_hook(lambda module, args, output: calls.append(1))
    try:
        clips = [make_clip(0.5, seed=seed) for seed in range(5)]
        pipe(clips, batch_size=2)
        assert len(calls) == 1
        pipe(clips[0])
        assert len(calls) == 1
        pipe(clips, candidate_labels=["calm", "angry"], batch_size=2)
        assert len(calls) == 2
        pipe(clips[1])  # back to the default labels: still cached
        assert len(calls) == 2
        pipe(clips[1], candidate_labels=["calm", "angry"], hypothesis_template="A {} speaker.")
        assert len(calls) == 3  # a new template is a new prompt set
    finally:
        hook.remove()


# -------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"candidate_labels": []}, "candidate_labels must hold at least two labels to choose between, got []"),
        ({"candidate_labels": ["sad", "happy", "sad"]}, "candidate_labels contains duplicates: ['sad']"),
        ({"candidate_labels": ["sad", ""]}, "candidate_labels must be non-empty names"),
        ({"candidate_labels": ["sad"]}, "candidate_labels must hold at least two labels"),
        ({"hypothesis_template": "The emotion is"}, "hypothesis_template must hold exactly one '{}' placeholder"),
        ({"hypothesis_template": "The {x} is {}"}, "hypothesis_template must hold exactly one '{}' placeholder"),
    ],
)
def test_bad_labels_or_template_raise(pipe, make_clip, kwargs, message):
    with pytest.raises(ValueError) as error:
        pipe(make_clip(0.5), **kwargs)
    assert message in str(error.value)


def test_bad_files_raise(pipe, tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(ValueError, match="audio file not found: .*missing.wav"):
        pipe(str(missing))
    with pytest.raises(ValueError, match="audio path is a directory, not a file"):
        pipe(str(tmp_path))
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio\n")
    with pytest.raises(ValueError, match="cannot decode .*notes.wav as audio"):
        pipe(str(fake))


def test_bad_dict_raises(pipe, make_clip):
    with pytest.raises(ValueError, match="an audio dict needs 'array' \\(or 'raw'\\) and 'sampling_rate' keys"):
        pipe({"array": make_clip(0.5)})


def test_bad_array_in_a_list_names_the_problem(pipe, make_clip):
    with pytest.raises(ValueError, match="contains NaN or infinite samples"):
        pipe([make_clip(0.5), np.full(8000, np.nan, dtype=np.float32)], batch_size=2)
