"""Media files: decoding and writing audio and images, what kind a file is (by decoding it, not by trusting its
name), and content hashes. augment.audio.load/save and augment.image.load/save are these functions.

Audio: float32 in [-1, 1], shape (n,) for mono (or mono=True), else (channels, n).
Images: uint8, HxW for grayscale, HxWx3 for colour, HxWx4 when the file has transparency (RGBA, LA, or a
palette with a transparent colour). EXIF orientation is applied. 16-bit and 32-bit grayscale are scaled to 8 bits
(value / 257, or clipped for 32-bit integers and floats); CMYK, YCbCr and palettes become RGB. Images above
`max_pixels` are refused before they are decoded (a decompression-bomb guard).

`probe` (what `curate import` and the run spine use to accept a file) decodes the whole file and refuses, with a
one-line reason (MediaError; the caller adds the path):
- audio: a format other than WAV/WAVEX, FLAC, OGG; no samples; NaN or infinite samples; more than
  MAX_AUDIO_CHANNELS (8, i.e. 7.1 surround) channels; a sample rate outside MIN_SAMPLE_RATE..MAX_SAMPLE_RATE
  (1 kHz..768 kHz); a decoded length that disagrees with the header: a WAV whose data chunk promises more bytes
  than the file holds (truncated, including the 0xFFFFFFFF "unknown length" of streamed WAVs), a PCM/float WAV whose
  data chunk size is not what libsndfile decodes, or any file whose decoded frame count differs from the frame
  count its header gives;
- images: a format other than PNG/JPEG; more than DEFAULT_MAX_PIXELS pixels (the limit `read_image`, and so every
  image transform, uses; checked from the header, before decoding); no pixels; a truncated or corrupt file; a mode
  outside PROBE_IMAGE_MODES (1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, and the 16/32-bit grayscale modes: at most
  4 channels, never alpha without colour); and anything `read_image` itself would refuse (the probe runs its
  conversion, EXIF orientation included), so an imported image is one every transform can load.
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
PROBE_IMAGE_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                     "I", "I;16", "I;16B", "I;16L", "F")
MAX_AUDIO_CHANNELS = 8
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000
_BLOCK_FRAMES = 1 << 16


class MediaError(ValueError):
    """The file cannot be used as media; the message says why (without the path, which the caller adds)."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def probe(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[str, str]:
    """Decode `path` fully and return (media kind, canonical extension); raise MediaError if it is unusable
    (see the module docstring for what is refused)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in AUDIO_EXTS + IMAGE_EXTS:
        kind = f"file type '.{suffix}'" if suffix else "file without an extension"
        raise MediaError(f"unsupported {kind} (audio: {', '.join(AUDIO_EXTS)}; "
                         f"image: {', '.join(IMAGE_EXTS)})")
    if path.stat().st_size == 0:
        raise MediaError("empty file")
    return _probe_audio(path) if suffix in AUDIO_EXTS else _probe_image(path, max_pixels)


def probe_bytes(data: bytes, media: str) -> tuple[str, str]:
    """Decode encoded media held in memory, as `probe` does a file (e.g. a worker's output before it is stored)."""
    import io

    if not data:
        raise MediaError("empty file")
    return _probe_audio(io.BytesIO(data)) if media == "audio" else _probe_image(io.BytesIO(data), DEFAULT_MAX_PIXELS)


def _probe_audio(path) -> tuple[str, str]:
    import io

    import soundfile as sf

    source = path if isinstance(path, io.BytesIO) else str(path)
    try:
        with sf.SoundFile(source) as f:
            fmt, channels, rate, frames = f.format, f.channels, f.samplerate, f.frames
            if fmt not in _AUDIO_FORMATS:
                raise MediaError(f"unsupported audio format {fmt}")
            if channels > MAX_AUDIO_CHANNELS:
                raise MediaError(f"{channels} audio channels (at most {MAX_AUDIO_CHANNELS} are supported)")
            if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
                raise MediaError(f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
            decoded = 0
            for block in f.blocks(_BLOCK_FRAMES, dtype="float32", always_2d=True):
                finite = np.isfinite(block).all(axis=1)
                if not finite.all():
                    first = decoded + int(np.argmin(finite))
                    raise MediaError(f"audio contains NaN or infinite samples (first at frame {first})")
                decoded += block.shape[0]
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 (untrusted bytes: any decoder failure means "not audio")
        raise MediaError(f"not readable as audio ({_first_line(exc)})") from None
    if decoded == 0:
        raise MediaError("audio has no samples")
    if fmt in ("WAV", "WAVEX"):
        _check_wav_length(path if isinstance(path, io.BytesIO) else Path(path), decoded)
    if decoded != frames:
        raise MediaError(f"decoded length {decoded} frames disagrees with the {frames} frames its header gives")
    return "audio", _AUDIO_FORMATS[fmt]


def _check_wav_length(path, decoded: int) -> None:
    """Refuse a WAV whose data chunk size disagrees with the file: larger than what follows it (truncated), or,
    for PCM and float data, not the number of frames libsndfile decoded."""
    import contextlib
    import io
    import struct

    with contextlib.nullcontext(path) if isinstance(path, io.BytesIO) else open(path, "rb") as f:
        f.seek(0, io.SEEK_END)
        size = f.tell()
        f.seek(0)
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return
        endian = "<" if head[:4] == b"RIFF" else ">"
        position, tag, block_align = 12, None, 0
        while position + 8 <= size:
            f.seek(position)
            chunk = f.read(8)
            name, length = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
            if name == b"fmt " and length >= 14:
                tag, _, _, _, block_align = struct.unpack(endian + "HHIIH", f.read(14))
            elif name == b"data":
                _compare_wav_data(length, size - position - 8, tag, block_align, decoded)
                return
            position += 8 + length + (length & 1)


def _compare_wav_data(promised: int, held: int, tag, block_align: int, decoded: int) -> None:
    frames_known = tag in (1, 3, 0xFFFE) and block_align > 0
    if promised > held:
        if frames_known:
            raise MediaError(f"truncated: the WAV header promises {promised // block_align} frames "
                             f"but the file holds {held // block_align}")
        raise MediaError(f"truncated: the WAV header promises {promised} bytes of audio but the file holds {held}")
    if frames_known and promised // block_align != decoded:
        raise MediaError(f"decoded length {decoded} frames disagrees with the {promised // block_align} frames "
                         "its WAV header gives")


def _probe_image(path, max_pixels: int) -> tuple[str, str]:
    import re
    import warnings

    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt, (width, height), mode, bands = img.format, img.size, img.mode, len(img.getbands())
                if fmt not in _IMAGE_FORMATS:
                    raise MediaError(f"unsupported image format {fmt}")
                if width * height > max_pixels:
                    raise MediaError(f"{width}x{height} = {width * height} pixels exceeds the limit of "
                                     f"{max_pixels} pixels (DEFAULT_MAX_PIXELS, the limit the image transforms use)")
                if width == 0 or height == 0:
                    raise MediaError(f"image has no pixels ({width}x{height})")
                if mode not in PROBE_IMAGE_MODES or bands > 4:
                    raise MediaError(f"unsupported image layout: mode {mode} with {bands} channel(s) (supported: "
                                     f"grayscale, grayscale+alpha, palette, RGB, RGBA, CMYK, YCbCr)")
                img.load()
                _to_array(ImageOps.exif_transpose(img), None)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{found.group(1)} pixels" if found else "more pixels than PIL allows"
        raise MediaError(f"{pixels} exceeds the limit of {max_pixels} pixels (DEFAULT_MAX_PIXELS, the limit the "
                         "image transforms use)") from None
    except Exception as exc:  # noqa: BLE001 (untrusted bytes: any decoder failure means "not an image")
        size = _png_header_size(path)
        if size is not None and 0 in size:
            raise MediaError(f"image has no pixels ({size[0]}x{size[1]})") from None
        raise MediaError(f"not readable as an image ({_first_line(exc)})") from None
    return "image", _IMAGE_FORMATS[fmt]


def _png_header_size(path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR (PIL refuses a 0-pixel PNG without saying why), else None."""
    import io
    import struct

    try:
        if isinstance(path, io.BytesIO):
            head = path.getvalue()[:24]
        else:
            with open(path, "rb") as f:
                head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


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
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    if mode is not None and mode not in IMAGE_MODES:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(IMAGE_MODES)}")
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # max_pixels below is the guard
            img = Image.open(path)
        with img:
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
