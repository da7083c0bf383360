"""The synthetic corpus: manifest, audio format, determinism, and that emotion/gender are learnable across speakers."""

import csv
import hashlib
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from gemo_clap.processing import synthetic
from gemo_clap.processing.synthetic import generate_corpus
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

EMOTIONS = ("angry", "happy", "sad", "neutral")
HELD_OUT_SPEAKERS = {"f4", "m4"}
FRAME, HOP = 1024, 512


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The default corpus: 8 speakers x 4 emotions x 6 clips."""
    return generate_corpus(tmp_path_factory.mktemp("synthetic") / "corpus")


@pytest.fixture(scope="module")
def rows(corpus) -> list[dict[str, str]]:
    with corpus.open(newline="") as handle:
        return list(csv.DictReader(handle))


def clip_features(path: Path) -> dict[str, np.ndarray]:
    """Cheap per-clip cues: energy, tempo (voiced fraction), brightness, MFCC means and pitch (YIN) statistics."""
    audio, sr = sf.read(path)
    rms = librosa.feature.rms(y=audio, frame_length=FRAME, hop_length=HOP)[0]
    voiced = rms > 0.1 * rms.max()
    power = np.abs(librosa.stft(audio, n_fft=FRAME, hop_length=HOP)) ** 2
    centroid = librosa.feature.spectral_centroid(S=power, sr=sr)[0]  # power-weighted: robust to the noise floor
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr)), n_mfcc=13)
    zcr = librosa.feature.zero_crossing_rate(audio, frame_length=FRAME, hop_length=HOP)[0]
    log_f0 = np.log(librosa.yin(audio, fmin=60, fmax=500, sr=sr, frame_length=FRAME, hop_length=HOP)[voiced])
    pitch = np.array([np.median(log_f0), np.percentile(log_f0, 90) - np.percentile(log_f0, 10)])
    energy = np.log(rms + 1e-5)
    emotion = np.r_[energy.mean(), energy.std(), voiced.mean(), np.log(centroid[voiced].mean()), zcr[voiced].mean()]
    return {"emotion": np.r_[emotion, mfcc[:, voiced].mean(axis=1), pitch], "pitch": pitch}


@pytest.fixture(scope="module")
def features(corpus, rows) -> dict[str, np.ndarray]:
    per_clip = [clip_features(corpus.parent / row["path"]) for row in rows]
    return {name: np.stack([clip[name] for clip in per_clip]) for name in ("emotion", "pitch")}


def held_out_accuracy(features: np.ndarray, rows: list[dict[str, str]], label: str) -> float:
    """Accuracy on f4/m4 of a logistic regression trained on the other speakers."""
    test = np.array([row["speaker"] in HELD_OUT_SPEAKERS for row in rows])
    labels = np.array([row[label] for row in rows])
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(features[~test], labels[~test])
    return classifier.score(features[test], labels[test])


def sha256_of_files(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_module_docstring_says_synthetic_not_speech():
    assert "SYNTHETIC SIGNALS, NOT SPEECH" in synthetic.__doc__


def test_manifest_columns_values_and_counts(corpus, rows):
    assert corpus.name == "manifest.csv"
    with corpus.open(newline="") as handle:
        assert next(csv.reader(handle)) == ["path", "emotion", "gender", "speaker"]
    assert len(rows) == 8 * 4 * 6
    speakers = sorted({row["speaker"] for row in rows})
    assert speakers == ["f1", "f2", "f3", "f4", "m1", "m2", "m3", "m4"]
    for row in rows:
        assert row["gender"] == {"f": "female", "m": "male"}[row["speaker"][0]]
        assert not Path(row["path"]).is_absolute()
        assert (corpus.parent / row["path"]).is_file()
    assert {emotion: sum(row["emotion"] == emotion for row in rows) for emotion in EMOTIONS} == dict.fromkeys(
        EMOTIONS, 48
    )
    assert all(sum(row["speaker"] == speaker for row in rows) == 24 for speaker in speakers)
    assert len({row["path"] for row in rows}) == len(rows)


def test_audio_is_16_bit_mono_in_duration_range_without_clipping(corpus, rows):
    for row in rows:
        path = corpus.parent / row["path"]
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.format, info.subtype) == (16000, 1, "WAV", "PCM_16")
        assert 1.5 <= info.duration <= 3.5
        samples = sf.read(path, dtype="int16")[0]
        assert samples.ndim == 1
        assert np.abs(samples.astype(np.int32)).max() <= round(0.95 * 32767) + 1


def test_generation_is_bit_identical_and_independent_of_order_and_corpus_size(corpus, tmp_path):
    small = dict(speakers_per_gender=1, clips_per_emotion=2, emotions=("neutral", "angry"))
    first = generate_corpus(tmp_path / "first", **small)
    second = generate_corpus(tmp_path / "second", **small)
    hashes = sha256_of_files(first.parent)
    assert hashes == sha256_of_files(second.parent)
    assert len(hashes) == 1 + 2 * 2 * 2
    # The same (speaker, emotion, clip) is the same file in the default corpus generated in another order.
    default = sha256_of_files(corpus.parent)
    wavs = [name for name in hashes if name.endswith(".wav")]
    expected = [f"wav/{s}_{e}_{c:02d}.wav" for s in ("f1", "m1") for e in ("angry", "neutral") for c in (0, 1)]
    assert sorted(wavs) == expected
    assert all(hashes[name] == default[name] for name in wavs)


def test_seed_changes_every_clip(tmp_path):
    hashes = [
        sha256_of_files(
            generate_corpus(tmp_path / str(seed), speakers_per_gender=1, clips_per_emotion=1, seed=seed).parent
        )
        for seed in (0, 1)
    ]
    assert all(hashes[0][name] != hashes[1][name] for name in hashes[0] if name.endswith(".wav"))


def test_sampling_rate_option(tmp_path):
    manifest = generate_corpus(
        tmp_path, speakers_per_gender=1, clips_per_emotion=1, emotions=("sad",), sampling_rate=8000
    )
    paths = sorted((tmp_path / "wav").glob("*.wav"))
    assert [path.name for path in paths] == ["f1_sad_00.wav", "m1_sad_00.wav"]
    assert manifest == tmp_path / "manifest.csv"
    assert all(sf.info(path).samplerate == 8000 for path in paths)


def test_emotion_cues_follow_the_profiles(features, rows):
    """Mean energy: angry > happy > neutral > sad; brightness (spectral centroid): angry > sad; pitch: happy > sad."""
    emotions = np.array([row["emotion"] for row in rows])
    mean = {emotion: features["emotion"][emotions == emotion].mean(axis=0) for emotion in EMOTIONS}
    energy, centroid, median_pitch = 0, 3, -2
    assert mean["angry"][energy] > mean["happy"][energy] > mean["neutral"][energy] > mean["sad"][energy]
    assert mean["angry"][centroid] > mean["neutral"][centroid] > mean["sad"][centroid]
    assert mean["happy"][median_pitch] > mean["neutral"][median_pitch] > mean["sad"][median_pitch]


def test_emotion_is_learnable_on_held_out_speakers(features, rows):
    assert held_out_accuracy(features["emotion"], rows, "emotion") >= 0.8


def test_gender_is_learnable_from_pitch_on_held_out_speakers(features, rows):
    assert held_out_accuracy(features["pitch"], rows, "gender") >= 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emotions": ("angry", "bored")}, r"unknown: \['bored'\]"),
        ({"emotions": ("sad", "sad")}, "emotions must be distinct names"),
        ({"emotions": ()}, "emotions must be distinct names"),
        ({"speakers_per_gender": 0}, "speakers_per_gender must be at least 1, got 0"),
        ({"clips_per_emotion": -1}, "clips_per_emotion must be at least 1, got -1"),
        ({"sampling_rate": 4000}, "sampling_rate must be at least 8000, got 4000"),
        ({"seed": -1}, "seed must be at least 0, got -1"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_corpus(tmp_path, **kwargs)
    assert not (tmp_path / "manifest.csv").exists()
