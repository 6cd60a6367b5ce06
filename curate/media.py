"""Media files: decoding and writing audio and images, what kind a file is (by decoding it, not by trusting its
name), and content hashes. augment.audio.load/save and augment.image.load/save are these functions.

Audio: float32 in [-1, 1], shape (n,) for mono (or mono=True), else (channels, n).
Images: uint8, HxW for grayscale, HxWx3 for colour, HxWx4 when the file has transparency (RGBA, LA, or a
palette with a transparent colour). EXIF orientation is applied. 16-bit and 32-bit grayscale are scaled to 8 bits
(value / 257, or clipped for 32-bit integers and floats); CMYK, YCbCr and palettes become RGB. Images above
`max_pixels` are refused before they are decoded (a decompression-bomb guard).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

AUDIO_EXTS = ("wav", "flac", "ogg", "oga")
IMAGE_EXTS = ("png", "jpg", "jpeg")
_AUDIO_FORMATS = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "OGG": "ogg"}
_IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg"}


DEFAULT_MAX_PIXELS = 64_000_000
IMAGE_MODES = ("L", "RGB", "RGBA")


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


def probe_bytes(data: bytes, media: str) -> tuple[str, str]:
    """Decode encoded media held in memory, as `probe` does a file (e.g. a worker's output before it is stored)."""
    import io

    if not data:
        raise MediaError("empty file")
    return _probe_audio(io.BytesIO(data)) if media == "audio" else _probe_image(io.BytesIO(data))


def _probe_audio(path) -> tuple[str, str]:
    import io

    import numpy as np
    import soundfile as sf

    source = path if isinstance(path, io.BytesIO) else str(path)
    try:
        info = sf.info(source)
        if isinstance(source, io.BytesIO):
            source.seek(0)
        data, _ = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        raise MediaError(f"not readable as audio ({_first_line(exc)})") from None
    if data.shape[0] == 0:
        raise MediaError("audio has no samples")
    if not np.isfinite(data).all():
        raise MediaError("audio contains NaN or infinite samples")
    if info.format not in _AUDIO_FORMATS:
        raise MediaError(f"unsupported audio format {info.format}")
    return "audio", _AUDIO_FORMATS[info.format]


def _probe_image(path) -> tuple[str, str]:
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


# -- audio -----------------------------------------------------------------------------------------------------
def read_audio(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = False) -> tuple[np.ndarray, int]:
    """Decode `path` to float32 in [-1, 1]; shape (n,) for mono files (or mono=True), else (channels, n).
    With `sample_rate`, resample to it (soxr). Returns (audio, sample_rate)."""
    import soundfile as sf

    from curate.signal import resample

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


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
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


# -- images ----------------------------------------------------------------------------------------------------
def read_image(path: str | os.PathLike, mode: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 (see the module docstring for the layout); `mode` forces L, RGB or RGBA."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if mode is not None and mode not in IMAGE_MODES:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(IMAGE_MODES)}")
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ValueError(f"{path}: {width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels}")
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_array(img, mode)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image, truncated or corrupt ({exc})") from None


def _to_array(img, mode: str | None) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        scaled = values / 257.0 if img.mode.startswith("I;16") else values
        gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return gray if mode in (None, "L") else np.asarray(_pil(gray).convert(mode))
    if mode is None:
        has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
        mode = "RGBA" if has_alpha else ("L" if img.mode in ("1", "L") else "RGB")
    return np.asarray(img.convert(mode), dtype=np.uint8).copy()


def _pil(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(array)


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Write a uint8 HxW, HxWx3 or HxWx4 array; PNG or JPEG by extension (JPEG cannot hold transparency)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image: expected uint8 HxW, HxWx3 or HxWx4, got {image.dtype} {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    ext = os.fspath(path).rsplit(".", 1)[-1].lower()
    if ext in ("jpg", "jpeg"):
        if image.ndim == 3 and image.shape[2] == 4:
            raise ValueError("image: JPEG cannot store an alpha channel; save as PNG or drop the alpha")
        _pil(image).save(path, quality=int(quality))
    elif ext == "png":
        _pil(image).save(path, optimize=False)
    else:
        raise ValueError(f"path: unsupported image extension '.{ext}' (png, jpg, jpeg)")
