"""Media files: what kind a file is (by decoding it, not by trusting its name) and its content hash."""
from __future__ import annotations

import hashlib
from pathlib import Path

AUDIO_EXTS = ("wav", "flac", "ogg", "oga")
IMAGE_EXTS = ("png", "jpg", "jpeg")
_AUDIO_FORMATS = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "OGG": "ogg"}
_IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg"}


class MediaError(ValueError):
    """The file cannot be used as media; the message says why (without the path, which the caller adds)."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def probe(path: Path) -> tuple[str, str]:
    """Decode `path` fully and return (media kind, canonical extension); raise MediaError if it is unusable."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in AUDIO_EXTS + IMAGE_EXTS:
        raise MediaError(f"unsupported file type '.{suffix}' (audio: {', '.join(AUDIO_EXTS)}; "
                         f"image: {', '.join(IMAGE_EXTS)})")
    if path.stat().st_size == 0:
        raise MediaError("empty file")
    return _probe_audio(path) if suffix in AUDIO_EXTS else _probe_image(path)


def _probe_audio(path: Path) -> tuple[str, str]:
    import numpy as np
    import soundfile as sf

    try:
        info = sf.info(str(path))
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        raise MediaError(f"not readable as audio ({_first_line(exc)})") from None
    if data.shape[0] == 0:
        raise MediaError("audio has no samples")
    if not np.isfinite(data).all():
        raise MediaError("audio contains NaN or infinite samples")
    if info.format not in _AUDIO_FORMATS:
        raise MediaError(f"unsupported audio format {info.format}")
    return "audio", _AUDIO_FORMATS[info.format]


def _probe_image(path: Path) -> tuple[str, str]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            fmt, (width, height) = img.format, img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"not readable as an image ({_first_line(exc)})") from None
    if fmt not in _IMAGE_FORMATS:
        raise MediaError(f"unsupported image format {fmt}")
    if width == 0 or height == 0:
        raise MediaError("image has no pixels")
    return "image", _IMAGE_FORMATS[fmt]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
