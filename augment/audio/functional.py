"""Pure audio maths used by the transforms: levels, voice-activity frames, SNR gains, looping, filters, resampling.

Audio is float32 of shape (n,) or (channels, n). Powers are mean squares over every sample of every channel, so a
multichannel SNR is taken against the mean power over channels.
"""
from __future__ import annotations

import functools
import math

import numpy as np

SILENCE_POWER = 1e-10  # -100 dBFS: below this a signal is treated as silent
VAD_FRAME_MS = 20.0
VAD_THRESHOLD_DB = -40.0  # a frame is active within this many dB of the loudest frame


def power(x: np.ndarray) -> float:
    flat = x.reshape(-1)
    return float(np.dot(flat, flat)) / flat.size


def db_to_amplitude(db: float) -> float:
    return 10.0 ** (db / 20.0)


def power_to_db(p: float) -> float:
    return 10.0 * math.log10(p) if p > 0 else -math.inf


def frame_powers(x: np.ndarray, frame: int) -> np.ndarray:
    """Mean power of consecutive frames (the last, partial frame included), averaged over channels."""
    if x.ndim == 2:
        return np.mean([frame_powers(channel, frame) for channel in x], axis=0)
    n = x.shape[0]
    full = n // frame
    body = x[: full * frame].reshape(full, frame)
    powers = np.einsum("ij,ij->i", body, body).astype(np.float64) / frame
    if n > full * frame:
        tail = x[full * frame:]
        powers = np.append(powers, float(np.dot(tail, tail)) / tail.size)
    return powers


def active_mask(x: np.ndarray, sample_rate: int, threshold_db: float = VAD_THRESHOLD_DB,
                frame_ms: float = VAD_FRAME_MS) -> tuple[np.ndarray, int, np.ndarray]:
    """Energy-threshold voice activity: frames within `threshold_db` of the loudest frame and above the silence
    floor. Returns (boolean mask per frame, frame length in samples, the frame powers)."""
    frame = max(1, int(round(sample_rate * frame_ms / 1000.0)))
    powers = frame_powers(x, frame)
    floor = max(powers.max() * 10.0 ** (threshold_db / 10.0), SILENCE_POWER)
    return powers >= floor, frame, powers


def masked_power(x: np.ndarray, mask: np.ndarray, frame: int, powers: np.ndarray | None = None) -> float:
    """Mean power over the samples of the frames in `mask` (frames as produced by active_mask); pass `powers`
    when the frame powers of `x` are already known."""
    if powers is None:
        powers = frame_powers(x, frame)
    sizes = np.full(len(powers), frame, dtype=np.float64)
    remainder = x.shape[-1] - frame * (len(powers) - 1)
    sizes[-1] = remainder
    weights = sizes * mask
    total = weights.sum()
    return float((powers * weights).sum() / total) if total > 0 else 0.0


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


def resample(x: np.ndarray, source_rate: int, target_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample along the last axis with soxr (the engine librosa uses for res_type='soxr_*')."""
    if source_rate == target_rate:
        return x
    import soxr

    if x.ndim == 1:
        return soxr.resample(x, source_rate, target_rate, quality=quality).astype(np.float32, copy=False)
    return np.ascontiguousarray(soxr.resample(x.T, source_rate, target_rate, quality=quality).T, dtype=np.float32)


@functools.lru_cache(maxsize=64)
def _butter_sos(order: int, low_hz: float, high_hz: float, sample_rate: int) -> np.ndarray:
    from scipy.signal import butter

    if low_hz > 0:
        return butter(order, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    return butter(order, high_hz, btype="lowpass", fs=sample_rate, output="sos")


def butter_band_pass(x: np.ndarray, sample_rate: int, low_hz: float, high_hz: float, order: int = 4) -> np.ndarray:
    """Causal Butterworth band-pass (second-order sections, designed once per setting), along the last axis."""
    from scipy.signal import sosfilt

    sos = _butter_sos(int(order), float(low_hz), float(high_hz), int(sample_rate))
    return sosfilt(sos, x, axis=-1).astype(np.float32, copy=False)


def trim_bounds(x: np.ndarray, sample_rate: int, top_db: float, frame_ms: float = 10.0) -> tuple[int, int]:
    """First and last sample (exclusive) of the frames within `top_db` of the loudest frame."""
    mask, frame, _ = active_mask(x, sample_rate, -top_db, frame_ms)
    if not mask.any():
        return 0, 0
    idx = np.flatnonzero(mask)
    return int(idx[0] * frame), int(min(x.shape[-1], (idx[-1] + 1) * frame))


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
