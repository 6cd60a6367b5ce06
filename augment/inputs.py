"""Checks on the data a transform is given (`check_input`), and the clipping policy applied to its audio output.
Parameter checks live in augment.params."""
from __future__ import annotations

from typing import Any

import numpy as np

# Float audio above this peak is "over full scale". The soft limiter starts at LIMIT_KNEE.
FULL_SCALE = 1.0
LIMIT_KNEE = 0.9
CLIP_POLICIES = ("limit", "normalize", "error", "allow")



def check_input(data: Any, media: str, sample_rate: Any) -> tuple[np.ndarray, str, float | None]:
    """Validate `data` for a pipeline of `media` ("audio", "image" or "any"); return (data, kind, mean square of
    the audio or None for images).

    Audio: float32 (float64 is converted) of shape (n,) or (channels, n), finite, sample_rate a positive integer.
    Image: uint8 of shape (H, W) or (H, W, C)."""
    if not isinstance(data, np.ndarray):
        raise ValueError(f"data: expected a numpy array, got {type(data).__name__}")
    kind = media if media != "any" else ("image" if data.dtype == np.uint8 else "audio")
    if kind == "audio":
        audio, mean_square = _check_audio(data, sample_rate)
        return audio, kind, mean_square
    return _check_image(data), kind, None


_FLOAT32 = np.dtype(np.float32)
_MAX, _MIN = np.maximum.reduce, np.minimum.reduce


def _check_audio(data: np.ndarray, sample_rate: Any) -> tuple[np.ndarray, float]:
    dtype = data.dtype
    if dtype is not _FLOAT32 and dtype not in (np.float32, np.float64):
        raise ValueError(f"data: expected float32 audio in [-1, 1], got dtype {data.dtype} "
                         "(convert integer PCM with augment.audio.load or x / 32768)")
    shape = data.shape
    if len(shape) not in (1, 2):
        raise ValueError(f"data: expected audio of shape (samples,) or (channels, samples), got {data.shape}")
    if len(shape) == 2 and shape[0] > shape[1]:
        raise ValueError(f"data: shape {data.shape} looks like (samples, channels); pass (channels, samples) "
                         "(e.g. x.T)")
    if shape[-1] == 0:
        raise ValueError("data: audio has no samples")
    if sample_rate is None:
        raise ValueError("sample_rate: required for audio")
    if type(sample_rate) is not int and (isinstance(sample_rate, bool) or not isinstance(sample_rate, np.integer)):
        raise ValueError(f"sample_rate: expected a positive integer, got {sample_rate!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate: expected a positive integer, got {sample_rate!r}")
    if dtype is not _FLOAT32 or not data.flags.c_contiguous:
        data = np.ascontiguousarray(data, dtype=np.float32)
    # one BLAS pass: NaN or inf anywhere makes the sum of squares non-finite (and transforms reuse it as power)
    flat = data.reshape(-1)
    energy = float(np.dot(flat, flat))
    if energy - energy != 0.0:  # inf or NaN
        raise ValueError("data: audio contains NaN or infinite samples")
    return data, energy / flat.size


def _check_image(data: np.ndarray) -> np.ndarray:
    if data.dtype != np.uint8:
        raise ValueError(f"data: expected a uint8 image, got dtype {data.dtype}")
    if data.ndim not in (2, 3) or data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"data: expected an image of shape (H, W) or (H, W, C), got {data.shape}")
    if data.ndim == 3 and data.shape[2] not in (1, 3, 4):
        raise ValueError(f"data: image has {data.shape[2]} channels; expected 1, 3 or 4 (H, W, C order)")
    return data


def apply_clip_policy(out: np.ndarray, policy: str) -> tuple[np.ndarray, dict | None]:
    """Apply `on_clip` to float audio whose peak exceeds full scale; return (audio, record entry or None).

    limit: soft-knee limiter, samples above LIMIT_KNEE are compressed smoothly into (LIMIT_KNEE, 1); the rest is
    untouched. normalize: the whole clip is scaled so its peak is exactly 1 (keeps the SNR and the waveform shape).
    error: ValueError. allow: left as is (the record says so)."""
    peak = float(max(_MAX(out, axis=None), -_MIN(out, axis=None)))  # ndarray.max/min without their wrappers
    if peak <= FULL_SCALE:
        return out, None
    params = {"policy": policy, "peak_before": round(peak, 6)}
    if policy == "error":
        raise ValueError(f"on_clip: output peak {peak:.4f} exceeds full scale (policy 'error')")
    if policy == "allow":
        return out, {"transform": "ClipPolicy", "params": params, "applied": False, "reason": "allowed"}
    if policy == "normalize":
        out = out * np.float32(FULL_SCALE / peak)
        params["gain_db"] = round(float(20 * np.log10(FULL_SCALE / peak)), 4)
    else:
        over = np.abs(out) > LIMIT_KNEE
        params["samples_limited"] = int(over.sum())
        width = FULL_SCALE - LIMIT_KNEE
        magnitude = LIMIT_KNEE + width * np.tanh((np.abs(out[over]) - LIMIT_KNEE) / width)
        out = out.copy()
        out[over] = np.sign(out[over]) * magnitude
    return out.astype(np.float32, copy=False), {"transform": "ClipPolicy", "params": params, "applied": True}
