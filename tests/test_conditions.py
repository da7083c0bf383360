"""Recording conditions (`processing/conditions.py`), measured: the SNR of added noise, the telephone band, the decay
of the synthetic room impulse responses, codec round trips, speed and padding lengths, seeding, and the errors that
name a parameter out of range. Synthetic signals only: no ../shared."""

from __future__ import annotations

import numpy as np
import pytest
from gemo_clap.processing import conditions
from gemo_clap.processing.conditions import (
    CODECS,
    CONDITIONS,
    add_noise,
    apply_condition,
    babble,
    change_speed,
    change_tempo,
    codec_round_trip,
    pad_with_silence,
    reverberate,
    room_impulse_response,
    telephone,
)

RATE = 16000


def speech_like(seconds: float = 1.0, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test signal: 20 harmonics of `f0` under a 3 Hz syllable envelope, a little noise."""
    times = np.arange(round(seconds * RATE)) / RATE
    harmonics = sum(0.1 / k * np.sin(2 * np.pi * f0 * k * times) for k in range(1, 21))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * times)
    noise = 0.01 * np.random.default_rng(seed).standard_normal(len(times))
    return (0.5 * harmonics * envelope + noise).astype(np.float32)


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    return float(10 * np.log10(np.sum(reference**2) / np.sum((other.astype(np.float64) - reference) ** 2)))


def band_energy(clip: np.ndarray, low: float, high: float) -> float:
    frequencies = np.fft.rfftfreq(len(clip), 1 / RATE)
    spectrum = np.abs(np.fft.rfft(clip.astype(np.float64))) ** 2
    return float(spectrum[(frequencies >= low) & (frequencies < high)].sum())


def test_the_sampling_rate_is_the_products():
    from gemo_clap.processing.audio import SAMPLING_RATE

    assert conditions.SAMPLING_RATE == SAMPLING_RATE == RATE


@pytest.mark.parametrize("requested", [-10.0, -3.0, 0.0, 10.0, 27.5, 60.0])
def test_white_noise_is_added_at_the_requested_snr(requested):
    clip = speech_like()
    noisy = add_noise(clip, requested, np.random.default_rng(1))
    assert noisy.dtype == np.float32 and len(noisy) == len(clip)
    assert np.abs(noisy).max() <= 1.0
    assert snr_db(clip, noisy) == pytest.approx(requested, abs=0.01)  # quiet enough not to be scaled down


def test_babble_of_other_speakers_is_added_at_the_requested_snr():
    others = [speech_like(seconds, f0, seed) for seconds, f0, seed in ((0.7, 110, 1), (1.6, 210, 2), (1.2, 95, 3))]
    noise = babble(others, len(speech_like()), np.random.default_rng(2), speakers=3)
    assert noise.dtype == np.float32 and len(noise) == RATE and np.abs(noise).max() <= 1.0
    assert np.std(noise) > 0.05  # several voices, not silence
    clip = speech_like()
    for requested in (0.0, 10.0, 20.0):
        noisy = add_noise(clip, requested, np.random.default_rng(3), noise=noise)
        assert snr_db(clip, noisy) == pytest.approx(requested, abs=0.01)
    # a noise signal shorter or longer than the clip is repeated or cut, and the SNR still holds
    for other in others:
        assert snr_db(clip, add_noise(clip, 5.0, np.random.default_rng(4), noise=other)) == pytest.approx(5.0, abs=0.01)


def test_a_loud_mixture_is_scaled_down_not_clipped_and_keeps_its_snr():
    clip = (0.95 * np.sin(2 * np.pi * 200 * np.arange(RATE) / RATE)).astype(np.float32)
    noisy = add_noise(clip, 0.0, np.random.default_rng(0))
    assert np.abs(noisy).max() == pytest.approx(1.0, abs=1e-6)
    scale = np.dot(noisy, clip) / np.dot(clip, clip)  # white noise is nearly orthogonal to the tone
    assert scale < 0.5 and snr_db(scale * clip, noisy) == pytest.approx(0.0, abs=0.1)


def test_telephone_keeps_300_to_3400_hz_only():
    noise = (0.1 * np.random.default_rng(0).standard_normal(2 * RATE)).astype(np.float32)
    line = telephone(noise)
    assert line.dtype == np.float32 and len(line) == len(noise)
    for low, high in ((0, 200), (3600, 8000)):
        assert band_energy(line, low, high) < 0.01 * band_energy(noise, low, high)  # more than 20 dB down
    assert band_energy(line, 500, 3000) == pytest.approx(band_energy(noise, 500, 3000), rel=0.05)
    # what is left outside the band is a negligible part of the output
    outside = band_energy(line, 0, 200) + band_energy(line, 3600, 8001)
    assert outside < 0.002 * band_energy(line, 0, 8001)
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE)).astype(np.float32)
    passed = telephone(tone)
    assert np.abs(passed - tone)[800:-800].max() < 0.01  # away from the edges, the 1 kHz tone is unchanged
    assert np.sqrt(np.mean(passed**2)) == pytest.approx(np.sqrt(np.mean(tone**2)), rel=0.01)


@pytest.mark.parametrize("rt60", [0.2, 0.6, 1.5])
def test_room_impulse_responses_decay_60_db_in_rt60(rt60):
    response = room_impulse_response(rt60, np.random.default_rng(5)).astype(np.float64)
    assert response[0] == 1.0 and np.sum(response[1:] ** 2) == pytest.approx(1.0, rel=1e-4)  # DRR 0 dB
    decay = np.cumsum(response[::-1] ** 2)[::-1]  # Schroeder's energy decay curve
    decay_db = 10 * np.log10(decay / decay[0])
    first, last = np.argmax(decay_db <= -5), np.argmax(decay_db <= -35)  # T30: fit -5..-35 dB, extrapolate to -60
    slope = np.polyfit(np.arange(first, last) / RATE, decay_db[first:last], 1)[0]
    assert -60 / slope == pytest.approx(rt60, rel=0.15)


def test_reverberation_keeps_length_and_level_and_smears_the_clip():
    clip = speech_like()
    wet = reverberate(clip, 0.6, np.random.default_rng(0))
    assert wet.dtype == np.float32 and len(wet) == len(clip)
    assert np.sqrt(np.mean(wet.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.mean(clip**2)), rel=1e-3)
    assert snr_db(clip, wet) < 10  # audibly changed
    click = np.zeros(RATE, dtype=np.float32)
    click[100] = 0.5
    tail = reverberate(click, 0.6, np.random.default_rng(0))
    assert np.abs(tail[:100]).max() < 1e-6 and np.abs(tail[5000:]).max() > 0  # causal, with a tail


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codec_round_trips_keep_the_length_and_change_the_signal_a_little(codec):
    clip = speech_like(1.3)
    decoded = codec_round_trip(clip, codec)
    assert decoded.dtype == np.float32 and len(decoded) == len(clip)
    assert 5 < snr_db(clip, decoded) < 60
    assert np.array_equal(decoded, codec_round_trip(clip, codec))  # the encoders are deterministic


def test_the_usual_codecs_are_available():
    assert {"mulaw", "alaw", "gsm610", "vorbis"} <= set(CODECS)  # in every libsndfile the soundfile wheels ship


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.1, 1.25])
def test_speed_and_tempo_change_the_length_by_one_over_the_factor(factor):
    clip = speech_like()
    assert abs(len(change_speed(clip, factor)) - len(clip) / factor) <= 1
    assert abs(len(change_tempo(clip, factor)) - len(clip) / factor) <= 1
    assert len(change_speed(clip, 1.0)) == len(clip)


def test_padding_adds_half_a_second_to_a_second_and_a_half_of_faint_noise_each_side():
    clip = (0.5 * np.ones(RATE // 2)).astype(np.float32)  # easy to find again
    for seed in range(5):
        padded = pad_with_silence(clip, np.random.default_rng(seed))
        loud = np.flatnonzero(padded > 0.4)
        before, after = loud[0], len(padded) - loud[-1] - 1
        assert len(loud) == len(clip) and np.array_equal(padded[before : before + len(clip)], clip)
        assert 0.5 * RATE <= before <= 1.5 * RATE and 0.5 * RATE <= after <= 1.5 * RATE
        edges = np.concatenate([padded[:before], padded[-after:]])
        assert np.std(edges) == pytest.approx(3e-4, rel=0.05) and abs(np.mean(edges)) < 3e-5


def test_conditions_are_deterministic_per_seed_and_differ_across_seeds():
    clip = speech_like()
    for name in CONDITIONS:
        output = apply_condition(name, clip, seed=7)
        assert output.dtype == np.float32 and np.abs(output).max() <= 1.0, name
        assert np.array_equal(output, apply_condition(name, clip, seed=7)), name
    for name in ("noise_10db", "noise_0db", "reverb_0.6s", "padded"):
        first, second = apply_condition(name, clip, seed=1), apply_condition(name, clip, seed=2)
        assert len(first) != len(second) or not np.allclose(first, second), name
    assert np.array_equal(apply_condition("clean", clip, seed=3), clip)
    assert np.array_equal(
        apply_condition("noise_10db", clip, seed=(1, 4, 2)), apply_condition("noise_10db", clip, (1, 4, 2))
    )
    noisy = apply_condition("noise_10db", clip, seed=0)
    assert snr_db(clip, noisy) == pytest.approx(10.0, abs=0.01)
    assert snr_db(clip, apply_condition("noise_0db", clip, seed=0)) == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda clip: add_noise(clip, 61.0, np.random.default_rng()), "snr_db"),
        (lambda clip: add_noise(clip, -10.5, np.random.default_rng()), "snr_db"),
        (lambda clip: add_noise(clip, float("nan"), np.random.default_rng()), "snr_db"),
        (lambda clip: reverberate(clip, 0.05, np.random.default_rng()), "rt60_s"),
        (lambda clip: reverberate(clip, 3.5, np.random.default_rng()), "rt60_s"),
        (lambda clip: change_speed(clip, 1.5), "speed factor"),
        (lambda clip: change_tempo(clip, 0.5), "tempo factor"),
        (lambda clip: apply_condition("underwater", clip, 0), "unknown condition 'underwater'"),
        (lambda clip: codec_round_trip(clip, "aac"), "unknown codec 'aac'"),
        (lambda clip: babble([], len(clip), np.random.default_rng()), "at least one clip"),
        (lambda clip: add_noise(clip, 0.0, np.random.default_rng(), noise=np.zeros(10)), "noise is silent"),
        (lambda clip: telephone(np.stack([clip, clip])), "mono"),
        (lambda clip: telephone(np.array([], dtype=np.float32)), "clip is empty"),
        (lambda clip: pad_with_silence(np.full(4, np.nan), np.random.default_rng()), "NaN"),
    ],
)
def test_bad_input_is_one_value_error_naming_the_problem(call, named):
    with pytest.raises(ValueError, match=named) as error:
        call(speech_like(0.2))
    assert "\n" not in str(error.value)
