"""report.html: one self-contained page (inline CSS, plots as base64 PNG, audio as base64 WAV, no network).

Every string that comes from the user's data (labels, tags, ids, recipe names, metadata, messages) goes through
Jinja2 autoescaping; only the base64 data URIs built here are marked safe.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

MAX_AUDIO_S = 10.0
MAX_IMAGE_SIDE = 256
MIN_IMAGE_SIDE = 160   # a 28 px glyph is shown at least this large, pixel for pixel (nearest neighbour)
UNITS = {"duration_s": "s", "rms_dbfs": "dBFS", "peak_dbfs": "dBFS", "clipped_fraction": "share of samples",
         "snr_db": "dB", "leading_silence_s": "s", "trailing_silence_s": "s", "spectral_centroid_hz": "Hz",
         "spectral_rolloff_hz": "Hz", "width": "px", "height": "px", "brightness": "0-1", "contrast": "0-1",
         "sharpness": "Laplacian variance", "colourfulness": "Hasler-Susstrunk", "noise_sigma": "0-1"}


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _audio_assets(path: Path) -> dict[str, str]:
    import soundfile as sf

    from curate.media import read_audio

    audio, rate = read_audio(path)
    audio = audio[..., : int(MAX_AUDIO_S * rate)]
    buffer = io.BytesIO()
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    playable = audio / peak if peak > 1.0 else audio
    sf.write(buffer, playable.T if playable.ndim == 2 else playable, rate, format="WAV", subtype="PCM_16")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.2, 1.5))
    mono = audio if audio.ndim == 1 else audio.mean(axis=0)
    with np.errstate(divide="ignore"):  # digital silence has zero power: -inf dB is drawn as the floor colour
        ax.specgram(mono, NFFT=512, Fs=rate, noverlap=384, cmap="magma")
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("Hz", fontsize=7)
    ax.tick_params(labelsize=6)
    return {"audio": "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
            "spectrogram": _png(fig), "seconds": f"{audio.shape[-1] / rate:.2f}", "rate": str(rate)}


def _image_uri(image: np.ndarray) -> str:
    from PIL import Image

    picture = Image.fromarray(image)
    if max(picture.size) < MIN_IMAGE_SIDE:  # small images: enlarged by a whole factor, every pixel kept square
        factor = -(-MIN_IMAGE_SIDE // max(picture.size))
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)
    picture.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image_assets(path: Path, source: Path | None = None) -> dict[str, str]:
    from curate.media import read_image

    image = read_image(path, mode="RGB")
    assets = {"image": _image_uri(image)}
    if source is not None:
        original = read_image(source, mode="RGB")
        assets["source"] = _image_uri(original)
        if original.shape == image.shape:
            assets["difference"], assets["difference_max"] = _heatmap(
                np.abs(image.astype(np.int16) - original).max(axis=2))
    return assets


def _heatmap(difference: np.ndarray) -> tuple[str, int]:
    """How much each pixel changed (the largest channel change, 0-255) in the 'magma' colour map, scaled to the
    largest change so a brightness step and a one-pixel scratch both show; (data URI, that largest change)."""
    from matplotlib import colormaps

    top = int(difference.max())
    rgb = colormaps["magma"](difference / max(top, 1))[..., :3]
    return _image_uri((255 * rgb).astype(np.uint8)), top


def constant_metrics(values: dict[str, dict[str, list[float]]]) -> list[str]:
    """Metrics with one value in both groups (e.g. width of same-size images): nothing to plot."""
    return [m for m, groups in values.items()
            if np.ptp(np.concatenate([np.asarray(v, float) for v in groups.values()])) == 0]


def _realism_plot(values: dict[str, dict[str, list[float]]], names: tuple[str, str] = ("real", "augmented")) -> str:
    """One histogram per metric that varies: both groups, the real items' range shaded, axis labels with units,
    one legend for the figure."""
    plt = _pyplot()
    metrics = [m for m in values if m not in constant_metrics(values)]
    if not metrics:
        return ""
    columns = 3
    rows = (len(metrics) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(10, 2.6 * rows), squeeze=False)
    for ax, metric in zip(axes.ravel(), metrics):
        real, augmented = np.asarray(values[metric][names[0]]), np.asarray(values[metric][names[1]])
        both = np.concatenate([real, augmented])
        bins = np.linspace(both.min(), both.max(), 20)
        ax.axvspan(real.min(), real.max(), color="#3a7bd5", alpha=0.08, label=f"{names[0]} range")
        ax.hist(real, bins=bins, alpha=0.6, density=True, label=names[0], color="#3a7bd5")
        ax.hist(augmented, bins=bins, alpha=0.6, density=True, label=names[1], color="#e8833a")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(UNITS.get(metric, ""), fontsize=9)
        ax.set_ylabel("density", fontsize=9)
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        ax.tick_params(labelsize=8)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=9, ncol=3)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _png(fig)


def _evaluation_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tag's paired figures, worst untargeted tag first (curate.checks.evaluation.display_order)."""
    from curate.checks.evaluation import display_order

    return display_order(evaluation)


def _evaluation_plot(evaluation: dict[str, Any]) -> str:
    """The paired difference per tag with its 95 % interval (untargeted grey, targeted green, all blue)."""
    plt = _pyplot()
    rows = _evaluation_rows(evaluation)
    keys = [r["tag"] for r in rows]
    values = [100 * (r["difference"] or 0.0) for r in rows]
    errors = np.array([[100 * ((r["difference"] or 0.0) - r["low"]) if r["low"] is not None else 0.0 for r in rows],
                       [100 * (r["high"] - (r["difference"] or 0.0)) if r["high"] is not None else 0.0 for r in rows]])
    colours = ["#3b6ea5" if r["tag"] == "all" else ("#2e8b57" if r["targeted"] else "#9aa5b1") for r in rows]
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(keys), 2.2))
    ax.bar(x, values, 0.6, color=colours, yerr=np.clip(errors, 0, None), capsize=3)
    ax.axhline(0, color="#333", linewidth=0.6)
    ax.set_xticks(x, keys, fontsize=7)
    ax.set_ylabel(f"{evaluation['split']} accuracy, after - before (pts)", fontsize=7)
    return _png(fig)


def _media(view, item_id: str, source_view=None, source_id: str | None = None) -> dict[str, Any]:
    rows = view.manifest.set_index("id")
    kind = rows.at[item_id, "media"]
    path = view.media_path(item_id)
    if kind == "audio":
        entry = {"kind": "audio", **_audio_assets(path)}
        if source_id is not None and source_view is not None and source_id in set(source_view.manifest["id"]):
            entry["source"] = _audio_assets(source_view.media_path(source_id))
        return entry
    source = source_view.media_path(source_id) if source_id is not None and source_view is not None and \
        source_id in set(source_view.manifest["id"]) else None
    return {"kind": "image", **_image_assets(path, source)}


def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    env.filters["compact"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    env.filters["uri"] = lambda v: Markup(v) if isinstance(v, str) and v.startswith("data:") else ""
    return env


def render_drift_html(result: dict[str, Any], values: dict[str, dict[str, list[float]]]) -> str:
    """The drift report: verdict, per-metric PSI/KS table, findings, overlaid histograms."""
    plot = _realism_plot(values, ("reference", "production")) if values else None
    return _environment().get_template("drift.html.j2").render(result=result, plot=plot)


def render_html(report: dict[str, Any], view, parent) -> str:
    env = _environment()
    samples = []
    for sample in report["samples"]:
        media = _media(view, sample["id"], view, sample["source_id"])
        samples.append({**sample, "assets": media})
    flagged = []
    for item_id in report["flagged"]:
        if item_id in set(view.manifest["id"]):
            row = view.manifest.set_index("id").loc[item_id]
            flagged.append({"id": item_id, "label": row["label"], "assets": _media(view, item_id)})
    realism = {t: _realism_plot(v) for t, v in report["realism"].items() if v}
    constant = {t: constant_metrics(v) for t, v in report["realism"].items() if v}
    evaluation_plot = _evaluation_plot(report["evaluation"]) if report.get("evaluation") else None
    evaluation_rows = _evaluation_rows(report["evaluation"]) if report.get("evaluation") else []
    # the one inline script runs under a nonce derived from the report itself: injected markup could not know it
    nonce = hashlib.sha256(json.dumps(report, sort_keys=True, default=str).encode()).hexdigest()[:32]
    reviewable = report.get("status", "committed") != "rejected" and bool(report["lineage"].get("fingerprint"))
    return env.get_template("report.html.j2").render(report=report, samples=samples, flagged=flagged,
                                                     realism=realism, constant=constant,
                                                     evaluation_plot=evaluation_plot, nonce=nonce,
                                                     evaluation_rows=evaluation_rows,
                                                     reviewable=reviewable, labels=list(report["counts"]["label"]))
