"""The one place that turns media into numbers: cheap embeddings (for the baseline, realism and ambiguity),
near-duplicate features and input metrics (for realism and drift), computed per object and cached per object hash.

Embeddings
    audio: the clip trimmed to its voiced part, a 32-band log-mel spectrogram at 16 kHz with per-band mean
           removed (so level and channel colouring matter less), averaged over 5 equal time segments, plus the
           per-band standard deviation: 192 numbers.
    image: 12x12 RGB thumbnail (grayscale repeated) scaled to [0, 1] and a 4x4-cell, 8-orientation gradient
           histogram of the 64x64 grayscale image: 560 numbers.
Near-duplicate features (curate.checks.similarity compares them; see its docstring for the rule)
    image: pixel thumbnail: the grayscale image itself when no side exceeds 32 px (so a shift by one pixel of the
           image is a shift by one stored pixel), else area-averaged to at most 32 px a side; uint8.
    audio: fingerprint: 24-band log-mel (dB) floored 15 dB below the clip's energy-weighted mean band level, on a time
           axis normalised by the energy centroid and spread; 384 numbers, centred, unit length.
Metrics: see AUDIO_METRICS and IMAGE_METRICS.

The cache lives in DATASET/cache/features/<kind>-v<N>/ (one pack file per kind, keyed by object hash, replaced
atomically); it is derived data, never part of a version, and is skipped silently where the dataset is read-only.

One pass: the gate asks for embeddings, metrics, near-duplicate features and saturation one after the other. When
one of them meets objects it has not seen, the others of the same media (ONE_PASS) are computed for those objects
in the same pass, from one decode per object (a 4,000-image recipe decoded each image 6 times before: 29,650 PNG
decodes for 4,800 images).
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from curate import signal as F
from curate.media import read_audio, read_image

FEATURE_RATE = 16000
EMBEDDING_VERSION = 1
METRICS_VERSION = 1
AUDIO_METRICS = ("duration_s", "rms_dbfs", "peak_dbfs", "clipped_fraction", "snr_db", "leading_silence_s",
                 "trailing_silence_s", "spectral_centroid_hz", "spectral_rolloff_hz")
IMAGE_METRICS = ("width", "height", "brightness", "contrast", "sharpness", "colourfulness", "noise_sigma")


# -- audio ---------------------------------------------------------------------------------------------------
_DECODED: dict | None = None   # within one_decode(): the current object's decoded forms


@contextmanager
def one_decode():
    """Every feature computed inside the block decodes each file once (the block handles one object)."""
    global _DECODED
    _DECODED = {}
    try:
        yield
    finally:
        _DECODED = None


def _decoded(key: tuple, load: Callable[[], np.ndarray]) -> np.ndarray:
    if _DECODED is None:
        return load()
    if key not in _DECODED:
        _DECODED[key] = load()
    return _DECODED[key]


def _mono_16k(path: Path) -> np.ndarray:
    return _decoded(("mono16k", path), lambda: read_audio(path, sample_rate=FEATURE_RATE, mono=True)[0])


def _mel(audio: np.ndarray, bands: int) -> np.ndarray:
    from curate.signal import mel_power

    return mel_power(audio, FEATURE_RATE, n_fft=512, hop=160, bands=bands, fmin=50, fmax=7600)


def _log_mel(audio: np.ndarray, bands: int = 32) -> np.ndarray:
    return np.log(_mel(audio, bands) + 1e-8)


def audio_embedding(path: Path) -> np.ndarray:
    audio = _mono_16k(path)
    start, end = F.trim_bounds(audio, FEATURE_RATE, top_db=35)
    voiced = audio[start:end] if end - start >= 1600 else audio
    if len(voiced) < 512:
        voiced = np.pad(voiced, (0, 512 - len(voiced)))
    logmel = _log_mel(voiced)
    centred = logmel - logmel.mean(axis=1, keepdims=True)
    segments = np.array_split(centred, 5, axis=1)
    means = [s.mean(axis=1) if s.shape[1] else np.zeros(centred.shape[0]) for s in segments]
    return np.concatenate([*means, logmel.std(axis=1)]).astype(np.float32)


FINGERPRINT_BANDS, FINGERPRINT_STEPS, FINGERPRINT_FLOOR_DB, FINGERPRINT_SPAN = 24, 16, 15.0, 2.5


def audio_fingerprint(path: Path) -> np.ndarray:
    """A clip's time-frequency shape for near-duplicate confirmation (384 numbers, centred, unit length).

    24-band log-mel power in dB, each value floored FINGERPRINT_FLOOR_DB below the clip's energy-weighted mean band
    level (silence, added noise >= ~30 dB down and quiet codec artefacts all sit at the floor), sampled at 16 steps of
    u = (t - energy centroid) / energy spread over [-2.5, 2.5]. Moments of the energy envelope move little when a
    weak tail or a little noise changes, unlike trim boundaries (the final /s/ of "six" moved a 35-dB trim point by
    50 ms under 30 dB SNR noise); the result does not depend on gain, leading/trailing silence or a uniform tempo."""
    audio = _mono_16k(path)
    if len(audio) < 512:
        audio = np.pad(audio, (0, 512 - len(audio)))
    mel = _mel(audio, FINGERPRINT_BANDS)
    energy = mel.sum(axis=0)
    if not energy.sum() > 0:
        return np.zeros(FINGERPRINT_BANDS * FINGERPRINT_STEPS, np.float32)
    weight = energy / energy.sum()
    frames = np.arange(mel.shape[1], dtype=np.float64)
    centre = float((weight * frames).sum())
    spread = max(float(np.sqrt((weight * (frames - centre) ** 2).sum())), 1.0)
    floor = 10 * np.log10(float((mel * weight).sum()) / FINGERPRINT_BANDS + 1e-12) - FINGERPRINT_FLOOR_DB
    level = np.maximum(10 * np.log10(mel + 1e-12), floor)
    at = centre + spread * np.linspace(-FINGERPRINT_SPAN, FINGERPRINT_SPAN, FINGERPRINT_STEPS * 4)
    sampled = np.stack([np.interp(at, frames, band, left=floor, right=floor) for band in level])
    shape = sampled.reshape(FINGERPRINT_BANDS, FINGERPRINT_STEPS, 4).mean(axis=2).reshape(-1)
    shape = shape - shape.mean()
    return (shape / max(float(np.linalg.norm(shape)), 1e-9)).astype(np.float32)


def audio_metrics(path: Path) -> dict[str, float]:
    audio = _mono_16k(path)
    n = len(audio)
    power = F.power(audio)
    mask, frame, powers = F.active_mask(audio, FEATURE_RATE)
    active = np.flatnonzero(mask)
    speech = float(powers[mask].mean()) if mask.any() else 0.0
    quiet = powers[~mask]
    noise = float(np.percentile(quiet, 50)) if len(quiet) else float(np.percentile(powers, 10))
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / FEATURE_RATE)
    total = spectrum.sum()
    cumulative = np.cumsum(spectrum)
    return {
        "duration_s": n / FEATURE_RATE,
        "rms_dbfs": F.power_to_db(power) if power > 0 else -120.0,
        "peak_dbfs": 20 * np.log10(max(float(np.abs(audio).max()), 1e-6)),
        "clipped_fraction": float(np.mean(np.abs(audio) >= 0.999)),
        # energy SNR estimate: voiced frames vs the median of the other frames (capped at 80 dB when no noise floor)
        "snr_db": min(80.0, F.power_to_db(speech / noise)) if speech > 0 and noise > 0 else 80.0,
        "leading_silence_s": float(active[0] * frame / FEATURE_RATE) if len(active) else n / FEATURE_RATE,
        "trailing_silence_s": float(max(0, n - (active[-1] + 1) * frame) / FEATURE_RATE) if len(active) else 0.0,
        "spectral_centroid_hz": float((freqs * spectrum).sum() / total) if total > 0 else 0.0,
        "spectral_rolloff_hz": float(freqs[np.searchsorted(cumulative, 0.85 * total)]) if total > 0 else 0.0,
    }


# -- images --------------------------------------------------------------------------------------------------
def _image(path: Path) -> np.ndarray:
    return _decoded(("rgb", path), lambda: read_image(path, mode="RGB"))


def image_embedding(path: Path) -> np.ndarray:
    from PIL import Image

    rgb = Image.fromarray(_image(path))
    thumb = np.asarray(rgb.resize((12, 12), Image.Resampling.BOX), dtype=np.float32).reshape(-1) / 255.0
    gray = np.asarray(rgb.convert("L").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    orientation = ((np.arctan2(gy, gx) % np.pi) / np.pi * 8).astype(int) % 8
    cells = np.arange(64) // 16
    index = ((cells[:, None] * 4 + cells[None, :]) * 8 + orientation).ravel()
    hist = np.bincount(index, weights=magnitude.ravel(), minlength=128).astype(np.float32)
    hist /= max(float(hist.sum()), 1e-6)
    return np.concatenate([thumb, hist.reshape(-1)]).astype(np.float32)


THUMBNAIL_SIDE = 32


def pixel_thumbnail(path: Path) -> np.ndarray:
    """Grayscale pixels for near-duplicate confirmation, as uint8 [height, width, step_y, step_x, 32 x 32 pixels
    row-major, zero-padded]: the image itself when no side exceeds 32 px, else area-averaged to min(side, 32) a
    side; step = round(255 x stored side / image side), i.e. one image pixel in stored pixels (x 255)."""
    from PIL import Image

    gray = Image.fromarray(_decoded(("grey", path), lambda: read_image(path, mode="L")))
    width, height = gray.size
    stored_w, stored_h = min(width, THUMBNAIL_SIDE), min(height, THUMBNAIL_SIDE)
    if (stored_w, stored_h) != (width, height):
        gray = gray.resize((stored_w, stored_h), Image.Resampling.BOX)
    out = np.zeros(4 + THUMBNAIL_SIDE * THUMBNAIL_SIDE, np.uint8)
    out[:4] = stored_h, stored_w, max(1, round(255 * stored_h / height)), max(1, round(255 * stored_w / width))
    out[4:].reshape(THUMBNAIL_SIDE, THUMBNAIL_SIDE)[:stored_h, :stored_w] = np.asarray(gray, np.uint8)
    return out


def image_metrics(path: Path) -> dict[str, float]:
    rgb = _image(path).astype(np.float32)
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = gray[1:-1, 1:-1] * 4 - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    rg, yb = rgb[..., 0] - rgb[..., 1], 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    # noise: median absolute deviation of the Laplacian (robust to edges), as a Gaussian sigma in grey levels
    noise = float(np.median(np.abs(lap - np.median(lap)))) * 1.4826 / np.sqrt(20.0) if lap.size else 0.0
    return {
        "width": float(rgb.shape[1]),
        "height": float(rgb.shape[0]),
        "brightness": float(gray.mean()),
        "contrast": float(gray.std()),
        "sharpness": float(lap.var()) if lap.size else 0.0,
        "colourfulness": float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())),
        "noise_sigma": noise,
    }


# -- batching and cache ----------------------------------------------------------------------------------------
class _Pack:
    """One file per feature kind holding every computed value by object hash (a few MB at 10^4 items): one read
    instead of one per item. Writes replace the file atomically; a lost race only means recomputing later.
    The packs read last are kept in memory up to MEMO_BYTES in all (a pack larger than that is read again when
    asked again: the gate reads each pack once or twice, 0.05-0.25 s at 20k items, while keeping every pack of a
    200k-item dataset held about 0.6 GB for the life of the process)."""

    MEMO_BYTES = 96 << 20
    _memo: "OrderedDict[Path, tuple[float, dict, int]]" = OrderedDict()
    _memo_lock = threading.Lock()

    def _remember(self, stamp: float, values: dict) -> None:
        if self.as_json:   # Python dicts of floats: about 3x the JSON text
            try:
                size = 3 * self.path.stat().st_size
            except OSError:   # removed meanwhile: nothing to remember it by
                return
        else:
            first = next(iter(values.values()), None)
            size = len(values) * (getattr(first, "nbytes", 8) + 100)   # a row view costs ~100 bytes of its own
        memo = type(self)._memo
        with self._memo_lock:
            memo.pop(self.path, None)
            if size > self.MEMO_BYTES:
                return
            memo[self.path] = (stamp, values, size)
            while sum(entry[2] for entry in memo.values()) > self.MEMO_BYTES:
                memo.popitem(last=False)

    def __init__(self, directory: Path | None, as_json: bool):
        self.path = directory / ("pack.json" if as_json else "pack.npz") if directory else None
        self.as_json = as_json

    @classmethod
    def of(cls, dataset, kind: str) -> "_Pack":
        """The pack of `kind` in `dataset`'s cache (metrics kinds are JSON, the rest arrays)."""
        return cls(_cache_dir(dataset, kind), as_json=kind.startswith("metrics"))

    def load(self) -> dict[str, object]:
        if self.path is None or not self.path.is_file():
            return {}
        stamp = self.path.stat().st_mtime
        memo = self._memo.get(self.path)
        if memo and memo[0] == stamp:
            with self._memo_lock:
                if self.path in self._memo:
                    self._memo.move_to_end(self.path)
            return memo[1]
        try:
            if self.as_json:
                values = json.loads(self.path.read_text(encoding="utf-8"))
            else:
                with np.load(self.path, allow_pickle=False) as data:
                    values = dict(zip(data["digests"].tolist(), data["values"]))
        except (OSError, ValueError, KeyError):
            return {}  # a damaged pack is rebuilt
        self._remember(stamp, values)
        return values

    def add(self, new: dict[str, object]) -> None:
        if self.path is None:
            return
        merged = {**self.load(), **new}
        temp = self.path.with_name(f".tmp-{uuid.uuid4().hex[:8]}{self.path.suffix}")
        try:
            if self.as_json:
                temp.write_text(json.dumps(merged), encoding="utf-8")
            else:
                digests = sorted(merged)
                with open(temp, "wb") as f:
                    np.savez(f, digests=np.array(digests), values=np.stack([merged[d] for d in digests]))
            os.replace(temp, self.path)
            self._remember(self.path.stat().st_mtime, merged)
        except OSError:
            temp.unlink(missing_ok=True)


def _cache_dir(dataset, kind: str) -> Path | None:
    if not getattr(dataset, "writable", True):  # a media folder not imported yet: never write into it
        return None
    root = dataset.path / "cache" / "features" / kind
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root if os.access(root, os.W_OK) else None


def _cached(version, kind: str, compute: Callable[[str, Path], object], ids: Sequence[str] | None,
            progress=None) -> dict[str, object]:
    """{item id: value} for the version's items (or `ids`), computing only objects not in the kind's pack."""
    frame = version.manifest
    if ids is not None:
        frame = frame.set_index("id").loc[list(ids)].reset_index()
    pack = _Pack.of(version.dataset, kind)
    known = pack.load()
    rows = list(zip(frame["id"], frame["object"], frame["ext"], frame["media"]))
    missing = [r for r in rows if r[1] not in known]
    new: dict[str, object] = {}
    if missing:
        from curate.compute import one_blas_thread

        prefetch = getattr(version.dataset, "prefetch", None)
        if prefetch is not None:  # a dataset on object storage: fetch the objects in batches, not one by one
            prefetch([(digest, ext) for _, digest, ext, _ in missing])
        siblings = _siblings(version, kind, pack)
        with one_blas_thread():  # per-item features are small products: threads cost more than they give
            for _, digest, ext, media in (progress(missing, f"features {kind}") if progress else missing):
                if digest in new:
                    continue
                path = version.dataset.object_path(digest, ext)
                with one_decode():
                    new[digest] = compute(media, path)
                    for other, (other_compute, other_known, other_new) in siblings.get(media, {}).items():
                        if digest not in other_known and digest not in other_new:
                            try:
                                other_new[digest] = other_compute(media, path)
                            except (ValueError, OSError):
                                pass  # its own pass will report it
        for other_kinds in siblings.values():
            for other, (_, _, other_new) in other_kinds.items():
                if other_new:
                    _Pack.of(version.dataset, other).add(other_new)
    if new:
        pack.add(new)
    return {item_id: known[digest] if digest in known else new[digest] for item_id, digest, _, _ in rows}


def _siblings(version, kind: str, pack: "_Pack") -> dict[str, dict[str, tuple]]:
    """{media: {other kind: (compute, its known values, new values)}} for the kinds computed in the same pass as
    `kind` (none where the cache cannot be written: they would be computed for nothing)."""
    if pack.path is None:
        return {}
    out: dict[str, dict[str, tuple]] = {}
    for media in ("audio", "image"):
        kinds = one_pass_kinds(media)
        if kind in kinds:
            out[media] = {other: (compute, _Pack.of(version.dataset, other).load(), {})
                          for other, compute in kinds.items() if other != kind}
    return out


def embeddings(version, ids: Sequence[str] | None = None, progress=None) -> tuple[list[str], np.ndarray]:
    """(ids, matrix) of cheap embeddings for a version's items (all of one media kind)."""
    media = set(version.manifest["media"] if ids is None else version.manifest.set_index("id").loc[list(ids)]["media"])
    if len(media) > 1:
        from curate.exceptions import BadInput

        raise BadInput(f"{version.ref}: embeddings need one media kind, found {', '.join(sorted(media))}")
    kind = media.pop() if media else "audio"
    compute = (lambda m, p: audio_embedding(p)) if kind == "audio" else (lambda m, p: image_embedding(p))
    values = _cached(version, f"embedding-{kind}-v{EMBEDDING_VERSION}", compute, ids, progress)
    order = list(values)
    return order, np.stack([values[i] for i in order]) if order else np.zeros((0, 0), np.float32)


def pixel_thumbnails(version, ids: Sequence[str] | None = None, progress=None) -> tuple[list[str], np.ndarray]:
    """(ids, (n, 4 + 32*32) uint8 array: pixel_thumbnail of each image item)."""
    values = _cached(version, f"thumb{THUMBNAIL_SIDE}-v1", lambda m, p: pixel_thumbnail(p), ids, progress)
    order = list(values)
    return order, (np.stack([values[i] for i in order]) if order
                   else np.zeros((0, 4 + THUMBNAIL_SIDE * THUMBNAIL_SIDE), np.uint8))


def audio_fingerprints(version, ids: Sequence[str] | None = None, progress=None) -> tuple[list[str], np.ndarray]:
    """(ids, (n, 384) float32 array: audio_fingerprint of each audio item)."""
    values = _cached(version, "audioprint-v1", lambda m, p: audio_fingerprint(p), ids, progress)
    order = list(values)
    return order, (np.stack([values[i] for i in order]) if order
                   else np.zeros((0, FINGERPRINT_BANDS * FINGERPRINT_STEPS), np.float32))


def metrics(version, ids: Sequence[str] | None = None, progress=None):
    """Input metrics per item as a DataFrame indexed by id (audio and image metrics; NaN where not applicable; an
    `error` column names unreadable or missing media)."""
    import pandas as pd

    values = _cached(version, f"metrics-v{METRICS_VERSION}", _metrics_of, ids, progress)
    return pd.DataFrame.from_dict(values, orient="index")


def saturation(version, ids: Sequence[str] | None = None, progress=None) -> dict[str, float]:
    """{item id: share of saturated samples}: audio |x| >= 0.999 (16 kHz mono), images pixels within 2 levels of 0
    or 255 in every channel; NaN for unreadable media. Cached per object like the metrics."""
    return _cached(version, "metrics-saturation-v1", _saturation_of, ids, progress)


def _metrics_of(media: str, path: Path) -> dict:
    try:
        return audio_metrics(path) if media == "audio" else image_metrics(path)
    except (ValueError, OSError) as exc:  # unreadable or missing media is counted, not fatal
        return {"error": str(exc).splitlines()[0][:200] or type(exc).__name__}


def _saturation_of(media: str, path: Path) -> float:
    try:
        if media == "audio":
            return float(np.mean(np.abs(_mono_16k(path)) >= 0.999))
        image = _image(path)
        return float(np.mean(np.all(image >= 253, axis=-1) | np.all(image <= 2, axis=-1)))
    except (ValueError, OSError):
        return float("nan")


def one_pass_kinds(media: str) -> dict[str, Callable[[str, Path], object]]:
    """The feature kinds computed together for an object the gate has not seen (see the module docstring)."""
    if media == "audio":
        return {f"embedding-audio-v{EMBEDDING_VERSION}": lambda m, p: audio_embedding(p),
                "audioprint-v1": lambda m, p: audio_fingerprint(p),
                f"metrics-v{METRICS_VERSION}": _metrics_of, "metrics-saturation-v1": _saturation_of}
    return {f"embedding-image-v{EMBEDDING_VERSION}": lambda m, p: image_embedding(p),
            f"thumb{THUMBNAIL_SIDE}-v1": lambda m, p: pixel_thumbnail(p),
            f"metrics-v{METRICS_VERSION}": _metrics_of, "metrics-saturation-v1": _saturation_of}


def share_cache(target, source, digests: set[str]) -> int:
    """Give `target` (a local dataset) the feature values `source` (another local dataset, whose objects `digests`
    a run just brought in) has cached for those objects: values are keyed by object hash and their kind names their
    version, so they hold in any dataset. Values the target has already are kept. Without this, a run into a new
    dataset computed every parent object's features again (64 s for 50k images). Returns how many were added."""
    root = Path(source.path) / "cache" / "features"
    if Path(source.path).resolve() == Path(target.path).resolve() or not root.is_dir():
        return 0
    added = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        known = _Pack(folder, as_json=folder.name.startswith("metrics")).load()
        if not known:
            continue
        pack = _Pack.of(target, folder.name)
        if pack.path is None:
            return added
        mine = pack.load()
        new = {digest: value for digest, value in known.items() if digest in digests and digest not in mine}
        if new:
            pack.add(new)
            added += len(new)
    return added


# -- baseline features (curate.baseline chooses among these; the embeddings above stay as they are) ---------------
BASELINE_VERSION = 1
BASELINE_BANDS = 40
PIXEL_SIDE = 16
# the basic feature kinds per media kind; a feature set is one of them or several joined by "+"
BASELINE_FEATURES = {"audio": ("logmel_stats", "embedding"), "image": ("pixels", "gradients", "embedding")}
# the small documented set the baseline chooses from by group-aware cross-validation ("auto")
BASELINE_CANDIDATES = {"audio": ("logmel_stats", "embedding", "logmel_stats+embedding"),
                       "image": ("pixels", "gradients", "pixels+gradients")}


def audio_logmel_stats(path: Path) -> np.ndarray:
    """Log-mel statistics that keep speaker and channel identity: the voiced part (as for the embedding), a
    40-band log-mel spectrogram at 16 kHz WITHOUT per-band mean removal; per band its mean, standard deviation and
    the standard deviation of its frame-to-frame difference (delta): 120 numbers."""
    audio = _mono_16k(path)
    start, end = F.trim_bounds(audio, FEATURE_RATE, top_db=35)
    voiced = audio[start:end] if end - start >= 1600 else audio
    if len(voiced) < 512:
        voiced = np.pad(voiced, (0, 512 - len(voiced)))
    logmel = _log_mel(voiced, bands=BASELINE_BANDS)
    delta = np.diff(logmel, axis=1) if logmel.shape[1] > 1 else np.zeros_like(logmel)
    return np.concatenate([logmel.mean(axis=1), logmel.std(axis=1), delta.std(axis=1)]).astype(np.float32)


def image_pixels(path: Path) -> np.ndarray:
    """Raw downsampled pixels: the RGB image area-averaged to 16x16, scaled to [0, 1]: 768 numbers."""
    from PIL import Image

    rgb = Image.fromarray(_image(path))
    return (np.asarray(rgb.resize((PIXEL_SIDE, PIXEL_SIDE), Image.Resampling.BOX), dtype=np.float32)
            .reshape(-1) / 255.0)


def image_gradients(path: Path) -> np.ndarray:
    """A gradient histogram: the 64x64 grayscale image in 4x4 cells, 8 unsigned orientations per cell weighted by
    gradient magnitude, each cell's histogram L2-normalised (so contrast matters less): 128 numbers."""
    from PIL import Image

    gray = np.asarray(Image.fromarray(_image(path)).convert("L").resize((64, 64), Image.Resampling.BILINEAR),
                      dtype=np.float32) / 255.0
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    orientation = ((np.arctan2(gy, gx) % np.pi) / np.pi * 8).astype(int) % 8
    cells = np.arange(64) // 16
    index = ((cells[:, None] * 4 + cells[None, :]) * 8 + orientation).ravel()
    hist = np.bincount(index, weights=magnitude.ravel(), minlength=128).reshape(16, 8)
    hist /= np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-6)
    return hist.reshape(-1).astype(np.float32)


_BASELINE_COMPUTE = {"logmel_stats": audio_logmel_stats, "pixels": image_pixels, "gradients": image_gradients}


def media_kind(version, ids: Sequence[str] | None = None) -> str:
    """The one media kind of a version's items (or `ids`); BadInput when they mix kinds."""
    media = set(version.manifest["media"] if ids is None else version.manifest.set_index("id").loc[list(ids)]["media"])
    if len(media) > 1:
        from curate.exceptions import BadInput

        raise BadInput(f"{version.ref}: features need one media kind, found {', '.join(sorted(media))}")
    return media.pop() if media else "audio"


def baseline_features(version, name: str, ids: Sequence[str] | None = None,
                      progress=None) -> tuple[list[str], np.ndarray]:
    """(ids, matrix) of a baseline feature set (see BASELINE_FEATURES; parts joined by '+' are concatenated),
    cached per object like the embeddings."""
    from curate.exceptions import BadInput

    kind = media_kind(version, ids)
    parts = [p.strip() for p in name.split("+") if p.strip()]
    allowed = BASELINE_FEATURES.get(kind, ())
    unknown = [p for p in parts if p not in allowed]
    if not parts or unknown:
        raise BadInput(f"features: {name!r} is not a feature set for {kind} (use 'auto' or a '+'-joined choice of "
                       f"{', '.join(allowed)})")
    order: list[str] | None = None
    blocks = []
    for part in parts:
        if part == "embedding":
            got, matrix = embeddings(version, ids, progress)
        else:
            compute = _BASELINE_COMPUTE[part]
            values = _cached(version, f"baseline-{part}-v{BASELINE_VERSION}", lambda m, p, c=compute: c(p), ids,
                             progress)
            got = list(values)
            matrix = np.stack([values[i] for i in got]) if got else np.zeros((0, 0), np.float32)
        if order is None:
            order = got
        elif got != order:
            position = {i: k for k, i in enumerate(got)}
            matrix = matrix[[position[i] for i in order]]
        blocks.append(np.asarray(matrix, np.float32))
    return order or [], np.hstack(blocks) if order else np.zeros((0, 0), np.float32)
