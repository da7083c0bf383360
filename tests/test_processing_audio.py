"""Audio decoding/encoding of gemo_clap.processing.audio (files read with the model's `read_audio`)."""

import io
import pickle

import numpy as np
import pytest
import soundfile as sf
from gemo_clap.modeling.audio_gemo_clap import read_audio
from gemo_clap.processing.audio import AudioDecodeError, decode_example_audio, encode_wav
from iemocap_tree import tone


def test_read_audio_resamples_48k_stereo_to_16k_mono(tmp_path):
    left = tone(1.0, 440.0, sampling_rate=48000)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, 0.5 * left], axis=1), 48000, subtype="PCM_16")
    array = read_audio(path, 16000)
    assert array.dtype == np.float32 and array.shape == (16000,)
    # channels averaged: peak 0.75 * 0.3
    assert np.abs(array).max() == pytest.approx(0.225, abs=0.01)
    spectrum = np.abs(np.fft.rfft(array))
    assert np.argmax(spectrum) == 440  # 1 Hz bins over one second


@pytest.mark.parametrize("rate", [16000, 48000])
def test_read_audio_keeps_first_max_seconds(tmp_path, rate):
    path = tmp_path / "long.wav"
    sf.write(path, tone(3.0, 200.0, sampling_rate=rate), rate, subtype="PCM_16")
    assert read_audio(path, 16000, max_seconds=1.25).shape == (20000,)
    assert read_audio(path, 16000, max_seconds=10).shape == (48000,)
    assert read_audio(path, 8000).shape == (24000,)


def test_read_audio_errors_name_the_file(tmp_path):
    with pytest.raises(AudioDecodeError, match=r"missing audio file: .*nowhere\.wav") as missing:
        read_audio(tmp_path / "nowhere.wav", 16000)
    assert missing.value.reason == "missing audio file"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all")
    with pytest.raises(AudioDecodeError, match=r"unreadable audio file: .*garbage\.wav"):
        read_audio(garbage, 16000)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioDecodeError, match=r"empty audio file: .*empty\.wav"):
        read_audio(empty, 16000)
    with pytest.raises(AudioDecodeError, match="unreadable audio file: <audio bytes>"):
        read_audio(b"\x00\x01", 16000)


def test_audio_decode_error_survives_pickling():
    error = pickle.loads(pickle.dumps(AudioDecodeError("unreadable audio file", "a.wav", "bad header")))
    assert (error.reason, error.source, error.detail) == ("unreadable audio file", "a.wav", "bad header")
    assert str(error) == "unreadable audio file: a.wav (bad header)"


def test_encode_wav_and_decode_example_audio_round_trip(tmp_path):
    signal = tone(0.5, 300.0)
    data = encode_wav(signal, 16000)
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 8000)
    decoded = decode_example_audio({"bytes": data, "path": "clip.wav"})
    np.testing.assert_allclose(decoded, signal, atol=1 / 32767)
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    np.testing.assert_array_equal(decode_example_audio({"bytes": None, "path": str(path)}), decoded)
    with pytest.raises(AudioDecodeError, match="without 'bytes' or 'path'"):
        decode_example_audio({"bytes": None, "path": None})


def test_encode_wav_clips_out_of_range_values():
    decoded = read_audio(encode_wav(np.array([2.0, -2.0, 0.5], dtype=np.float32), 16000), 16000)
    np.testing.assert_allclose(decoded, [1.0, -1.0, 0.5], atol=1 / 32767)
