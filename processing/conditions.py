"""Recording conditions applied to clips: additive noise (white or babble) at a set SNR, telephone band-limiting with
an 8 kHz round trip, codec round trips through libsndfile's in-memory encoders (no ffmpeg), reverberation with a
synthetic room impulse response, speed and tempo changes, and silence padding.

Every function takes a mono float32 signal at 16 kHz (and a ``numpy.random.Generator`` when it draws anything) and
returns float32, of the same length unless the function changes the length by definition (speed, tempo, padding).
Outputs are kept within [-1, 1]: a result whose peak exceeds 1 is scaled down as a whole (never clipped), which
keeps an SNR as set; otherwise the level is left as it is. Parameters out of their range raise one ``ValueError``
naming the parameter, its range and the value given.

`CONDITIONS` names ready-made conditions ``(clip, rng) -> clip`` (the conditions benchmark's and the codecs'), and
`apply_condition(name, clip, seed)` applies one deterministically for ``(name, seed)``. Numpy, scipy, librosa and
soundfile only.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from fractions import Fraction

import librosa
import numpy as np
import soundfile as sf
from scipy import signal

from .audio import SAMPLING_RATE

SNR_RANGE_DB = (-10.0, 60.0)  # inclusive
RT60_RANGE_S = (0.05, 3.0)  # (low, high]: a reverberation time above 0.05 s and at most 3 s
SPEED_RANGE = (0.8, 1.25)  # inclusive, for speed and tempo factors
TELEPHONE_BAND_HZ = (300.0, 3400.0)  # the -3 dB edges of the telephone band-pass
TELEPHONE_FILTER_ORDER = 8  # Butterworth order per edge, applied forwards and backwards (zero phase)
TELEPHONE_RATE = 8000
PAD_SECONDS = (0.5, 1.5)  # silence before and after a clip: uniform in this range
PAD_NOISE_STD = 3e-4  # faint room noise in the padding, far below speech

# codec name -> (soundfile format, subtype); `CODECS` keeps the ones this libsndfile can encode
KNOWN_CODECS: dict[str, tuple[str, str]] = {
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "vorbis": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "gsm610": ("WAV", "GSM610"),
    "mulaw": ("WAV", "ULAW"),
    "alaw": ("WAV", "ALAW"),
    "adpcm": ("WAV", "IMA_ADPCM"),
}


def _codec_available(format_: str, subtype: str) -> bool:
    return format_ in sf.available_formats() and subtype in sf.available_subtypes(format_)


CODECS: dict[str, tuple[str, str]] = {name: spec for name, spec in KNOWN_CODECS.items() if _codec_available(*spec)}

Condition = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _as_clip(clip: np.ndarray, name: str = "clip") -> np.ndarray:
    """`clip` as a float32 1-D array, refused when it is not mono, is empty or holds NaN or infinite samples."""
    array = np.asarray(clip, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a mono 1-D signal, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite samples")
    return array


def _check_range(name: str, value: float, low: float, high: float, low_open: bool = False) -> float:
    """`value` as a float when it lies in [low, high] ((low, high] with `low_open`), else a ValueError naming it."""
    value = float(value)
    inside = (low < value if low_open else low <= value) and value <= high  # NaN is never inside
    if not inside:
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low:g}, {high:g}], got {value:g}")
    return value


def _fit_peak(array: np.ndarray) -> np.ndarray:
    """`array` as float32, scaled down as a whole when its peak exceeds 1 (else unchanged)."""
    peak = float(np.abs(array).max()) if array.size else 0.0
    return (array / peak if peak > 1.0 else array).astype(np.float32)


def _power(array: np.ndarray) -> float:
    return float(np.mean(np.square(array, dtype=np.float64)))


def _fit_length(source: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """`length` samples of `source`: a random stretch of a longer source, a shorter one repeated from a random
    offset."""
    if len(source) >= length:
        start = int(rng.integers(0, len(source) - length + 1))
        return source[start : start + length]
    offset = int(rng.integers(0, len(source)))
    return source[(offset + np.arange(length)) % len(source)]


def add_noise(clip: np.ndarray, snr_db: float, rng: np.random.Generator, noise: np.ndarray | None = None) -> np.ndarray:
    """`clip` plus noise scaled so that 10*log10(P_clip / P_noise) equals `snr_db` (mean powers over the clip).

    The noise is white Gaussian by default, or `noise` (e.g. `babble`): a random stretch of it when longer than the
    clip, repeated from a random offset when shorter. A silent clip is returned unchanged (no SNR can be set).
    `snr_db` must lie in `SNR_RANGE_DB`; the sum is scaled down as a whole if its peak exceeds 1 (SNR unchanged)."""
    snr_db = _check_range("snr_db", snr_db, *SNR_RANGE_DB)
    clip = _as_clip(clip)
    if noise is None:
        noise = rng.standard_normal(len(clip))
    else:
        noise = _fit_length(_as_clip(noise, "noise"), len(clip), rng)
    noise = noise.astype(np.float64)
    clip_power, noise_power = _power(clip), _power(noise)
    if clip_power == 0.0:
        return clip.copy()
    if noise_power == 0.0:
        raise ValueError("noise is silent: no SNR can be set with it")
    gain = np.sqrt(clip_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return _fit_peak(clip + gain * noise)


def babble(clips: Sequence[np.ndarray], length: int, rng: np.random.Generator, speakers: int = 4) -> np.ndarray:
    """Babble noise of `length` samples: `speakers` clips drawn from `clips` (without replacement when there are
    enough; pass clips of other speakers than the target's), each a random stretch of `length` (repeated when
    shorter), brought to the same RMS and summed. Level is arbitrary (`add_noise` sets it); peak within [-1, 1]."""
    if int(speakers) < 1:
        raise ValueError(f"speakers must be at least 1, got {speakers}")
    if int(length) < 1:
        raise ValueError(f"length must be at least 1 sample, got {length}")
    if len(clips) == 0:
        raise ValueError("babble needs at least one clip")
    chosen = rng.choice(len(clips), size=int(speakers), replace=len(clips) < int(speakers))
    mixture = np.zeros(int(length), dtype=np.float64)
    for index in chosen:
        voice = _fit_length(_as_clip(clips[int(index)], "babble clip"), int(length), rng).astype(np.float64)
        power = _power(voice)
        if power > 0.0:
            mixture += voice / np.sqrt(power)
    return _fit_peak(mixture)


def telephone(clip: np.ndarray, codec: str | None = None, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """`clip` as a telephone line gives it: band-passed to 300-3400 Hz (Butterworth, `TELEPHONE_FILTER_ORDER`,
    zero phase with `sosfiltfilt`), resampled to 8 kHz, optionally through a `codec` round trip at 8 kHz (e.g.
    "mulaw", "gsm610"), and resampled back to `sampling_rate` (polyphase, `resample_poly`). Same length."""
    clip = _as_clip(clip)
    sos = signal.butter(TELEPHONE_FILTER_ORDER, TELEPHONE_BAND_HZ, btype="bandpass", fs=sampling_rate, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), len(clip) - 1)  # sosfiltfilt's default, shortened for very short clips
    band = signal.sosfiltfilt(sos, clip.astype(np.float64), padlen=padlen)
    narrow = signal.resample_poly(band, TELEPHONE_RATE, sampling_rate)
    if codec is not None:
        narrow = codec_round_trip(narrow, codec, TELEPHONE_RATE)
    wide = signal.resample_poly(narrow, sampling_rate, TELEPHONE_RATE)
    wide = np.pad(wide[: len(clip)], (0, max(0, len(clip) - len(wide))))
    return _fit_peak(wide)


def codec_round_trip(clip: np.ndarray, codec: str, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """`clip` encoded with `codec` (one of `CODECS`: libsndfile's encoders, in memory, no ffmpeg) at the
    encoder's default quality and decoded again; cut or zero-padded to the input's length (block codecs pad)."""
    if codec not in CODECS:
        missing = f" ({codec!r} is not supported by this libsndfile)" if codec in KNOWN_CODECS else ""
        raise ValueError(f"unknown codec {codec!r}{missing}: available codecs are {', '.join(CODECS)}")
    clip = _as_clip(clip)
    format_, subtype = CODECS[codec]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(clip, -1.0, 1.0), sampling_rate, format=format_, subtype=subtype)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32", always_2d=False)
    decoded = decoded[: len(clip)]
    return _fit_peak(np.pad(decoded, (0, len(clip) - len(decoded))))


def room_impulse_response(
    rt60_s: float, rng: np.random.Generator, sampling_rate: int = SAMPLING_RATE, drr_db: float = 0.0
) -> np.ndarray:
    """A synthetic room impulse response: a direct path (1 at sample 0) plus Gaussian noise under an exponential
    envelope whose energy falls 60 dB in `rt60_s` (in `RT60_RANGE_S`), `rt60_s` long, scaled so the direct path
    holds `drr_db` dB more energy than the reverberant tail."""
    rt60_s = _check_range("rt60_s", rt60_s, *RT60_RANGE_S, low_open=True)
    length = max(2, round(rt60_s * sampling_rate))
    times = np.arange(length) / sampling_rate
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * times / rt60_s)  # amplitude: -60 dB at rt60_s
    tail[0] = 0.0
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(np.square(tail)))
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(clip: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """`clip` convolved with `room_impulse_response(rt60_s, rng)` (`fftconvolve`), cut to the clip's length (the
    tail past its end is dropped) and brought back to the clip's RMS (then peak within [-1, 1])."""
    clip = _as_clip(clip)
    response = room_impulse_response(rt60_s, rng)
    wet = signal.fftconvolve(clip.astype(np.float64), response.astype(np.float64))[: len(clip)]
    wet_power = _power(wet)
    if wet_power > 0.0:
        wet *= np.sqrt(_power(clip) / wet_power)
    return _fit_peak(wet)


def change_speed(clip: np.ndarray, factor: float, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """`clip` played `factor` times faster (tempo and pitch together, as a tape): resampled by `resample_poly` with
    `factor` as a ratio of small integers, so its length is about len(clip) / factor. `factor` in `SPEED_RANGE`."""
    factor = _check_range("speed factor", factor, *SPEED_RANGE)
    clip = _as_clip(clip)
    ratio = Fraction(factor).limit_denominator(100)
    return _fit_peak(signal.resample_poly(clip.astype(np.float64), ratio.denominator, ratio.numerator))


def change_tempo(clip: np.ndarray, factor: float) -> np.ndarray:
    """`clip` `factor` times faster at the same pitch (`librosa.effects.time_stretch`, a phase vocoder): length
    round(len(clip) / factor). `factor` in `SPEED_RANGE`."""
    factor = _check_range("tempo factor", factor, *SPEED_RANGE)
    clip = _as_clip(clip)
    return _fit_peak(librosa.effects.time_stretch(clip, rate=factor))


def pad_with_silence(
    clip: np.ndarray,
    rng: np.random.Generator,
    seconds: tuple[float, float] = PAD_SECONDS,
    noise_std: float = PAD_NOISE_STD,
    sampling_rate: int = SAMPLING_RATE,
) -> np.ndarray:
    """`clip` with faint Gaussian noise (std `noise_std`) before and after it, each side uniform in `seconds`: how
    calls and most corpora arrive. Draws as `bench_scoring_protocol.pad_clip` does (both lengths, then the noise
    before, then after), so the same generator gives the same samples."""
    low, high = (float(value) for value in seconds)
    if not 0.0 <= low <= high:
        raise ValueError(f"seconds must be (low, high) with 0 <= low <= high, got {tuple(seconds)}")
    if not noise_std >= 0.0:
        raise ValueError(f"noise_std must be at least 0, got {noise_std}")
    clip = _as_clip(clip)
    before, after = (round(rng.uniform(low, high) * sampling_rate) for _ in range(2))
    noise = lambda count: rng.normal(0.0, noise_std, count).astype(np.float32)
    return np.concatenate([noise(before), clip, noise(after)])


def _codec_condition(codec: str) -> Condition:
    return lambda clip, rng: codec_round_trip(clip, codec)


def _telephone_condition(codec: str) -> Condition:
    return lambda clip, rng: telephone(clip, codec)


CONDITIONS: dict[str, Condition] = {
    "clean": lambda clip, rng: _as_clip(clip).copy(),
    "telephone": lambda clip, rng: telephone(clip),
    "noise_10db": lambda clip, rng: add_noise(clip, 10.0, rng),
    "noise_0db": lambda clip, rng: add_noise(clip, 0.0, rng),
    "reverb_0.6s": lambda clip, rng: reverberate(clip, 0.6, rng),
    "padded": lambda clip, rng: pad_with_silence(clip, rng),
    **{f"telephone_{codec}": _telephone_condition(codec) for codec in ("mulaw", "gsm610") if codec in CODECS},
    **{f"codec_{codec}": _codec_condition(codec) for codec in CODECS},
}
"""Named conditions `(clip, rng) -> clip`: "clean" (a copy), "telephone" (300-3400 Hz, 8 kHz round trip),
"telephone_mulaw" / "telephone_gsm610" (the same with G.711 mu-law or GSM 6.10 at 8 kHz), "noise_10db" and
"noise_0db" (white noise at that SNR), "reverb_0.6s" (RT60 0.6 s), "padded" (`pad_with_silence`) and "codec_<name>"
for each of `CODECS`."""

BENCHMARK_CONDITIONS = ("clean", "telephone", "noise_10db", "noise_0db", "reverb_0.6s", "padded")


def apply_condition(name: str, clip: np.ndarray, seed: int | Sequence[int]) -> np.ndarray:
    """`CONDITIONS[name]` applied to `clip` with a generator seeded by `seed` (an int, or a sequence such as
    (seed, clip index, view)): the same output for the same (name, seed, clip)."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}: known conditions are {', '.join(CONDITIONS)}")
    return CONDITIONS[name](clip, np.random.default_rng(seed))
