"""Signal maths shared by the transforms (augment) and the measurements (curate.features): levels, frame powers,
energy-threshold voice activity, trimming and resampling.

Audio is float32 of shape (n,) or (channels, n). Powers are mean squares over every sample of every channel, so a
multichannel level is the mean power over channels.
"""
from __future__ import annotations

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


def resample(x: np.ndarray, source_rate: int, target_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample along the last axis with soxr (the engine librosa uses for res_type='soxr_*')."""
    if source_rate == target_rate:
        return x
    import soxr

    if x.ndim == 1:
        return soxr.resample(x, source_rate, target_rate, quality=quality).astype(np.float32, copy=False)
    return np.ascontiguousarray(soxr.resample(x.T, source_rate, target_rate, quality=quality).T, dtype=np.float32)


def trim_bounds(x: np.ndarray, sample_rate: int, top_db: float, frame_ms: float = 10.0) -> tuple[int, int]:
    """First and last sample (exclusive) of the frames within `top_db` of the loudest frame."""
    mask, frame, _ = active_mask(x, sample_rate, -top_db, frame_ms)
    if not mask.any():
        return 0, 0
    idx = np.flatnonzero(mask)
    return int(idx[0] * frame), int(min(x.shape[-1], (idx[-1] + 1) * frame))


# -- mel spectrogram (librosa's defaults, in numpy: librosa's first call costs ~2 s of lazy imports and JIT) ------

def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default, htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


_MEL_BANKS: dict[tuple, np.ndarray] = {}


def mel_filterbank(sample_rate: int, n_fft: int, bands: int, fmin: float, fmax: float) -> np.ndarray:
    """(bands, n_fft // 2 + 1) triangular filters on Slaney's mel scale with Slaney area normalisation, as
    librosa.filters.mel builds them by default (tests/test_features.py compares the two)."""
    key = (sample_rate, n_fft, bands, float(fmin), float(fmax))
    if key not in _MEL_BANKS:
        bins = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
        edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), bands + 2))
        widths = np.diff(edges)
        ramps = edges[:, None] - bins[None, :]
        lower = -ramps[:-2] / widths[:-1, None]
        upper = ramps[2:] / widths[1:, None]
        weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
        _MEL_BANKS[key] = weights.astype(np.float32)
    return _MEL_BANKS[key]


def mel_power(x: np.ndarray, sample_rate: int, n_fft: int, hop: int, bands: int, fmin: float,
              fmax: float) -> np.ndarray:
    """(bands, frames) mel power spectrogram: frames centred on every hop (zero padding of n_fft // 2 each side),
    a periodic Hann window, |FFT|^2, then the filterbank; librosa.feature.melspectrogram's defaults."""
    x = np.asarray(x, dtype=np.float32)
    padded = np.pad(x, n_fft // 2)
    frames = 1 + (len(padded) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    spectrum = np.fft.rfft(padded[index] * window, axis=1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    return mel_filterbank(sample_rate, n_fft, bands, fmin, fmax) @ power.T
