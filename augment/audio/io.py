"""Audio files in and out (soundfile), in the layout the transforms use: float32, (n,) or (channels, n)."""
from __future__ import annotations

import os

import numpy as np


def load(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = False) -> tuple[np.ndarray, int]:
    """Decode `path` to float32 in [-1, 1]; shape (n,) for mono files (or mono=True), else (channels, n).
    With `sample_rate`, resample to it (soxr). Returns (audio, sample_rate)."""
    import soundfile as sf

    from augment.audio.functional import resample

    try:
        data, rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a readable audio file ({str(exc).splitlines()[0]})") from None
    if data.shape[0] == 0:
        raise ValueError(f"{path}: audio has no samples")
    audio = data.mean(axis=1) if mono or data.shape[1] == 1 else data.T
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if sample_rate is not None and int(sample_rate) != rate:
        audio, rate = resample(audio, rate, int(sample_rate)), int(sample_rate)
    return audio, int(rate)


def save(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write float audio ((n,) or (channels, n)); format from the extension, default subtype PCM_16 for WAV/FLAC.
    Integer subtypes would clip samples beyond full scale, so such audio is refused (apply on_clip, or pass
    subtype='FLOAT')."""
    import soundfile as sf

    audio = np.asarray(audio)
    if audio.ndim not in (1, 2) or audio.dtype.kind != "f":
        raise ValueError(f"audio: expected float audio of shape (n,) or (channels, n), got {audio.dtype} "
                         f"{audio.shape}")
    fmt = os.fspath(path).rsplit(".", 1)[-1].upper()
    subtype = subtype or ("PCM_16" if fmt in ("WAV", "FLAC") else None)
    if subtype and subtype.startswith("PCM") and np.abs(audio).max() > 1.0:
        raise ValueError(f"audio: peak {np.abs(audio).max():.3f} exceeds full scale and subtype {subtype} would clip; "
                         "apply on_clip='limit' or 'normalize', or save with subtype='FLOAT'")
    sf.write(os.fspath(path), audio.T if audio.ndim == 2 else audio, int(sample_rate), subtype=subtype)
