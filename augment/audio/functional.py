"""Pure audio maths of the transforms: SNR gains, seamless looping, coloured noise, filters, room responses.

Levels, voice activity, trimming and resampling live in curate.signal (shared with curate's measurements) and are
re-exported here so the transforms have one namespace for their maths; `resample` here gives curate.signal.resample's
bytes by a shorter path for float32 audio.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from curate import signal as _signal
from curate.signal import (SILENCE_POWER, active_mask, db_to_amplitude, frame_powers, masked_power,  # noqa: F401
                           power, power_to_db, trim_bounds)


def resample(x: np.ndarray, source_rate: int, target_rate: int, quality: str = "HQ") -> np.ndarray:
    """curate.signal.resample (soxr along the last axis), the same bytes: float32 input at HQ goes straight to the
    soxr routine soxr.resample would pick, skipping its per-call argument handling; anything else is passed on."""
    if source_rate == target_rate:
        return x
    split = _soxr_split_float32()
    if split is None or quality != "HQ" or x.dtype != np.float32 or x.ndim not in (1, 2) or source_rate <= 0 \
            or target_rate <= 0:
        return _signal.resample(x, source_rate, target_rate, quality)
    import soxr

    if x.ndim == 1:
        if x.strides[0] != x.itemsize:
            return _signal.resample(x, source_rate, target_rate, quality)
        return split(source_rate, target_rate, x[:, np.newaxis], soxr.HQ)[:, 0]
    frames = x.T  # (samples, channels), as curate.signal.resample passes it
    if frames.strides[0] != frames.itemsize or not 1 <= frames.shape[1] <= 65536:
        return _signal.resample(x, source_rate, target_rate, quality)
    return np.ascontiguousarray(split(source_rate, target_rate, frames, soxr.HQ).T, dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _soxr_split_float32():
    """soxr's float32 split-channel routine (what soxr.resample calls for such input), or None if this soxr has no
    such routine (then curate.signal.resample does the work)."""
    try:
        from soxr import soxr_ext
    except ImportError:
        return None
    return getattr(soxr_ext, "csoxr_split_ch_float32", None)


def snr_gain(signal_power: float, noise_power: float, snr_db: float) -> float:
    """Amplitude gain for the noise so that signal_power / (gain^2 * noise_power) = 10^(snr_db/10)."""
    return math.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))


def loop_with_crossfade(bed: np.ndarray, offset: int, length: int, crossfade: int) -> np.ndarray:
    """`length` samples of `bed` starting at `offset`, wrapping around as often as needed; each seam is an
    equal-power (cos/sin) crossfade of `crossfade` samples, so no hard jump appears where the bed restarts."""
    n = bed.shape[-1]
    if offset + length <= n:
        return bed[offset: offset + length]
    crossfade = int(min(crossfade, n // 4))
    out = np.empty(length + n, dtype=np.float32)
    first = bed[offset:]
    out[: len(first)] = first
    filled = len(first)
    if crossfade > 0:
        t = (np.arange(crossfade, dtype=np.float32) + 0.5) * np.float32(np.pi / 2 / crossfade)
        fade_out, fade_in = np.cos(t), np.sin(t)
    while filled < length:
        if crossfade > 0 and filled >= crossfade:
            start = filled - crossfade
            out[start:filled] = out[start:filled] * fade_out + bed[:crossfade] * fade_in
            out[filled: filled + n - crossfade] = bed[crossfade:]
            filled += n - crossfade
        else:
            out[filled: filled + n] = bed
            filled += n
    return out[:length]


def colored_noise(rng: np.random.Generator, length: int, color: str) -> np.ndarray:
    """Unit-power noise whose power spectrum falls as 1/f^k: white k=0, pink k=1, brown k=2."""
    white = rng.standard_normal(length)
    if color != "white":
        exponent = {"pink": 0.5, "brown": 1.0}[color]
        spectrum = np.fft.rfft(white)
        freqs = np.arange(len(spectrum), dtype=np.float64)
        freqs[0] = 1.0
        spectrum /= freqs**exponent
        spectrum[0] = 0.0
        white = np.fft.irfft(spectrum, n=length)
    white /= math.sqrt(max(float(np.mean(white**2)), 1e-30))
    return white.astype(np.float32)


@functools.lru_cache(maxsize=64)
def _butter_sos(order: int, low_hz: float, high_hz: float, sample_rate: int) -> np.ndarray:
    from scipy.signal import butter

    if low_hz > 0:
        return butter(order, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    return butter(order, high_hz, btype="lowpass", fs=sample_rate, output="sos")


def butter_band_pass(x: np.ndarray, sample_rate: int, low_hz: float, high_hz: float, order: int = 4) -> np.ndarray:
    """Causal Butterworth band-pass (second-order sections, designed once per setting), along the last axis.
    scipy.signal.sosfilt(sos, x, axis=-1) in float64, then float32: the same bytes, without sosfilt's ~50 µs of
    per-call argument handling where scipy's section filter can be called directly."""
    sos = _butter_sos(int(order), float(low_hz), float(high_hz), int(sample_rate))
    section_filter = _sosfilt_kernel()
    if section_filter is None or x.dtype not in (np.float32, np.float64) or x.ndim == 0:
        from scipy.signal import sosfilt

        return sosfilt(sos, x, axis=-1).astype(np.float32, copy=False)
    # what sosfilt does for axis=-1 and no initial state: rows of float64 filtered in place from rest
    rows = np.array(x.reshape(-1, x.shape[-1]), dtype=np.float64, order="C")
    section_filter(sos, rows, np.zeros((rows.shape[0], sos.shape[0], 2)))
    return rows.reshape(x.shape).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _sosfilt_kernel():
    """scipy's compiled second-order-section filter behind sosfilt, or None where this scipy has none."""
    try:
        from scipy.signal._sosfilt import _sosfilt
    except ImportError:
        return None
    return _sosfilt


def synthetic_rir(rng: np.random.Generator, sample_rate: int, rt60_s: float, drr_db: float) -> np.ndarray:
    """A room impulse response: a direct-path impulse plus exponentially decaying noise reaching -60 dB at rt60_s,
    scaled so the direct-to-reverberant energy ratio is drr_db."""
    length = max(2, int(rt60_s * sample_rate))
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.907755 * t / rt60_s)
    tail[0] = 0.0
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / max(float(np.sum(tail**2)), 1e-30))
    tail[0] = 1.0
    return tail.astype(np.float32)
