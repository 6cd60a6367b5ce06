"""The media of report.html, encoded once per item and counted against the page's size budget.

Images: thumbnails as WebP, lossy at quality 85 (half the bytes of JPEG at the same quality; a scratch, a colour
shift or added noise stays visible) or lossless when that is smaller (glyphs enlarged pixel for pixel, flat
pictures: exact and a few hundred bytes); JPEG/PNG where Pillow has no WebP. Plots stay PNG (line art).

Audio: a WAV excerpt, one channel (the mix of a stereo clip), of at most MAX_AUDIO_S seconds and MAX_AUDIO_BYTES
of 16-bit PCM (a long or high-rate clip plays its beginning; the caption says so), and its spectrogram with
labelled axes (time in s, frequency in kHz) on a fixed colour scale in dBFS, the same for every spectrogram of the
page, so a source and its noisy copy compare directly.

Transform records become a parameter table (step, parameter, value, unit) and, for audio, a caption with the
applied SNR and gain.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

MAX_AUDIO_S = 10.0
MAX_AUDIO_BYTES = 320_000   # PCM bytes per played excerpt: 10 s of 16 kHz audio, 3.3 s of 48 kHz
SAMPLE_SIDE = 256           # largest side of a sample's images (source | augmented | changed pixels)
CARD_SIDE = 160             # largest side of a flagged item's thumbnail
MIN_IMAGE_SIDE = 160        # a 28 px glyph is shown at least this large, pixel for pixel (nearest neighbour)
WEBP_QUALITY = 85
JPEG_QUALITY = 85           # where Pillow lacks WebP
UNITS = {"_dbfs": "dBFS", "_db": "dB", "_hz": "Hz", "_ms": "ms", "_s": "s", "_px": "px", "_deg": "degrees"}


def data_uri(kind: str, data: bytes) -> str:
    return f"data:{kind};base64," + base64.b64encode(data).decode("ascii")


def encode_picture(picture) -> str:
    """A thumbnail as a data URI: the smaller of lossy WebP (quality 85) and lossless WebP (which wins for glyphs
    and flat pictures, and keeps them exact); JPEG (quality 85, 4:4:4) or PNG where Pillow has no WebP."""
    from PIL import features

    picture = picture.convert("RGB")
    few_colours = picture.getcolors(256) is not None  # glyphs, flat pictures: lossless may win (a photo: never)
    if features.check("webp"):
        options = [("image/webp", "WEBP", {"quality": WEBP_QUALITY, "method": 4})]
        options += [("image/webp", "WEBP", {"lossless": True, "method": 4})] * few_colours
    else:
        options = [("image/jpeg", "JPEG", {"quality": JPEG_QUALITY, "subsampling": 0, "optimize": True})]
        options += [("image/png", "PNG", {"optimize": True})] * few_colours
    encoded = []
    for kind, name, settings in options:
        buffer = io.BytesIO()
        picture.save(buffer, format=name, **settings)
        encoded.append((buffer.tell(), kind, buffer.getvalue()))
    _, kind, data = min(encoded, key=lambda e: e[0])
    return data_uri(kind, data)


def image_uri(image: np.ndarray, side: int = SAMPLE_SIDE) -> str:
    from PIL import Image

    picture = Image.fromarray(image)
    if max(picture.size) < MIN_IMAGE_SIDE:  # small images: enlarged by a whole factor, every pixel kept square
        factor = -(-MIN_IMAGE_SIDE // max(picture.size))
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)
    picture.thumbnail((max(side, MIN_IMAGE_SIDE), max(side, MIN_IMAGE_SIDE)))
    return encode_picture(picture)


def heatmap(difference: np.ndarray, side: int = SAMPLE_SIDE) -> tuple[str, int]:
    """How much each pixel changed (the largest channel change, 0-255) in the 'magma' colour map, scaled to the
    largest change so a brightness step and a one-pixel scratch both show; (data URI, that largest change)."""
    from matplotlib import colormaps

    top = int(difference.max())
    rgb = colormaps["magma"](difference / max(top, 1))[..., :3]
    return image_uri((255 * rgb).astype(np.uint8), side), top


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_uri(fig, dpi: int = 80) -> str:
    """A matplotlib figure (a plot: line art) as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return data_uri("image/png", buffer.getvalue())


def audio_assets(path: Path) -> dict[str, Any]:
    """A WAV excerpt to play, its spectrogram, the clip's length and the excerpt's."""
    import soundfile as sf

    from curate.report.spectrogram import spectrogram

    from curate.media import read_audio

    audio, rate = read_audio(path)
    total = audio.shape[-1] / rate
    channels = audio.shape[0] if audio.ndim == 2 else 1
    seconds = min(MAX_AUDIO_S, MAX_AUDIO_BYTES / (2 * rate))
    mono = audio[..., : int(seconds * rate)]
    mono = mono if mono.ndim == 1 else mono.mean(axis=0)  # one channel to play: half the bytes of stereo
    buffer = io.BytesIO()
    peak = float(np.abs(mono).max()) if mono.size else 0.0
    sf.write(buffer, mono / peak if peak > 1.0 else mono, rate, format="WAV", subtype="PCM_16")
    sound = data_uri("audio/wav", buffer.getvalue())
    picture = encode_picture(spectrogram(mono, rate).picture)
    return {"kind": "audio", "audio": sound, "spectrogram": picture, "seconds": f"{total:.2f}",
            "played": f"{mono.size / rate:.2f}", "excerpt": mono.size / rate < total - 1e-6,
            "channels": channels, "rate": str(rate), "bytes": len(sound) + len(picture)}


def image_assets(path: Path, source: Path | None = None, side: int = SAMPLE_SIDE) -> dict[str, Any]:
    from curate.media import read_image

    image = read_image(path, mode="RGB")
    assets: dict[str, Any] = {"kind": "image", "image": image_uri(image, side),
                              "size": f"{image.shape[1]} x {image.shape[0]} px"}
    if source is not None:
        original = read_image(source, mode="RGB")
        assets["source"] = image_uri(original, side)
        if original.shape == image.shape:
            assets["difference"], assets["difference_max"] = heatmap(
                np.abs(image.astype(np.int16) - original).max(axis=2), side)
    assets["bytes"] = sum(len(v) for k, v in assets.items() if k in ("image", "source", "difference"))
    return assets


class MediaCache:
    """Encoded media of the items a report shows, by id (the candidate's items first, then the source's), each
    encoded once however often it is shown."""

    def __init__(self, view, source=None):
        self.views = [v for v in (view, source) if v is not None]
        self.rows = [v.manifest.set_index("id") for v in self.views]
        self._cache: dict[tuple, dict[str, Any] | None] = {}
        self._audio: dict[Path, dict[str, Any]] = {}

    def _audio_assets(self, path: Path) -> dict[str, Any]:
        """One clip's assets, made once whether it is shown as a card, a sample or a sample's source."""
        if path not in self._audio:
            self._audio[path] = audio_assets(path)
        return dict(self._audio[path])

    def _where(self, item_id: str):
        for view, rows in zip(self.views, self.rows):
            if item_id in rows.index:
                return view, rows.loc[item_id]
        return None, None

    def describe(self, item_id: str) -> dict[str, Any]:
        """id, label, tags, split, origin of an item (as strings; '-' for an item neither version has)."""
        _, row = self._where(item_id)
        if row is None:
            return {"id": item_id, "label": "-", "tags": [], "split": "-", "origin": "-"}
        return {"id": item_id, "label": str(row["label"]), "tags": [str(t) for t in row["tags"]],
                "split": row["split"] if isinstance(row["split"], str) else "-", "origin": str(row["origin"])}

    def item(self, item_id: str, side: int = CARD_SIDE) -> dict[str, Any] | None:
        key = ("item", item_id, side)
        if key not in self._cache:
            view, row = self._where(item_id)
            if view is None:
                self._cache[key] = None
            elif row["media"] == "audio":
                self._cache[key] = self._audio_assets(view.media_path(item_id))
            else:
                self._cache[key] = image_assets(view.media_path(item_id), side=side)
        return self._cache[key]

    def sample(self, item_id: str, source_id: str | None) -> dict[str, Any] | None:
        """An augmented item with its source: for audio both players and spectrograms, for images source |
        augmented | changed pixels."""
        key = ("sample", item_id, source_id)
        if key not in self._cache:
            view, row = self._where(item_id)
            source_view, _ = self._where(source_id) if source_id else (None, None)
            if view is None:
                self._cache[key] = None
            elif row["media"] == "audio":
                assets = self._audio_assets(view.media_path(item_id))
                if source_view is not None:
                    assets["source"] = self._audio_assets(source_view.media_path(source_id))
                    assets["bytes"] += assets["source"]["bytes"]
                self._cache[key] = assets
            else:
                self._cache[key] = image_assets(view.media_path(item_id), source_view.media_path(source_id)
                                                if source_view is not None else None)
        return self._cache[key]


def _unit(key: str) -> str:
    return next((unit for suffix, unit in UNITS.items() if key.endswith(suffix)), "")


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict) and set(value) == {"dtype", "shape"}:  # an array the record only describes
        return f"array {' x '.join(map(str, value['shape']))} ({value['dtype']})"
    if isinstance(value, dict):
        return "; ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return (" | " if any(isinstance(v, dict) for v in value) else ", ").join(_value(v) for v in value)
    return str(value)


def _flatten(params: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in params.items():
        name = "" if key == "albumentations" and not prefix else f"{prefix}{key}"  # the step's name says it
        if isinstance(value, dict) and value and set(value) != {"dtype", "shape"}:
            out += _flatten(value, name + "." if name else "")
        else:
            out.append((name, value))
    return out


def transform_rows(record: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """The transform record as table rows: step, parameter, value, unit; a step that did not run says why."""
    rows = []
    for number, step in enumerate(record or [], 1):
        name = f"{number}. {step.get('transform')}"
        if not step.get("applied", True):
            rows.append({"step": name, "parameter": "-", "value": f"not applied ({step.get('reason') or 'skipped'})",
                         "unit": ""})
            continue
        params = _flatten(step.get("params") or {})
        if not params:
            rows.append({"step": name, "parameter": "-", "value": "applied", "unit": ""})
        for key, value in params:
            rows.append({"step": name, "parameter": key, "value": _value(value), "unit": _unit(key.split(".")[-1])})
    return rows


def audio_caption(record: list[dict[str, Any]] | None) -> str:
    """What was done to a clip, in a line: the SNR (as achieved) and noise file of a noise step, the gain of a level
    step, and other dB/Hz settings, e.g. 'AddBackgroundNoise: SNR 5.4 dB, noise MarketMed1.wav; Gain: -2.3 dB'."""
    parts = []
    for step in record or []:
        if not step.get("applied", True):
            continue
        params = step.get("params") or {}
        bits = []
        if isinstance(params.get("snr_db"), (int, float)):
            snr = params.get("achieved_snr_db", params["snr_db"])
            bits.append(f"SNR {snr:.1f} dB")
        if isinstance(params.get("file"), str):
            bits.append(f"noise {Path(params['file']).name}")
        if isinstance(params.get("gain_db"), (int, float)) and "snr_db" not in params:
            name = str(step.get("transform"))
            bits.append(f"{'' if name.endswith('Gain') else 'gain '}{params['gain_db']:+.1f} dB")
        for key, value in params.items():
            if key not in ("snr_db", "achieved_snr_db", "gain_db") and _unit(key) in ("dB", "Hz", "dBFS") and \
                    isinstance(value, (int, float)) and not isinstance(value, bool):
                bits.append(f"{key} {value:.1f} {_unit(key)}")
        if bits:
            parts.append(f"{step.get('transform')}: {', '.join(bits[:4])}")
    return "; ".join(parts)


def raw_json(record: Any) -> str:
    return json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True)
