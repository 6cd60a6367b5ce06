"""Image files in and out (Pillow), as the uint8 arrays the image transforms use.

load() returns HxW for grayscale, HxWx3 for colour, HxWx4 when the file has transparency (RGBA, LA, or a palette
with a transparent colour). EXIF orientation is applied. 16-bit and 32-bit grayscale are scaled to 8 bits
(value / 257, or clipped for 32-bit integers and floats); CMYK, YCbCr and palettes become RGB. Images above
`max_pixels` are refused before they are decoded (a decompression-bomb guard).
"""
from __future__ import annotations

import os

import numpy as np

DEFAULT_MAX_PIXELS = 64_000_000
MODES = ("L", "RGB", "RGBA")


def load(path: str | os.PathLike, mode: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 (see the module docstring for the layout); `mode` forces L, RGB or RGBA."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if mode is not None and mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
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


def save(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> None:
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
