"""The report's spectrogram pictures, drawn with numpy and Pillow.

A matplotlib figure per clip cost ~0.2 s, almost all of it laying out and drawing tick labels, and a report shows
up to a hundred clips. Here the level image goes through the colour map as an array and the axes, ticks and labels
are drawn with Pillow in the same DejaVu Sans that matplotlib ships: ~3 ms a clip, and the same picture (time in s,
frequency in kHz, a dBFS colour bar on the page's fixed scale).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

SPECTROGRAM_DB = (-100.0, 0.0)  # colour scale of every spectrogram, dB relative to a full-scale sine
WIDTH, HEIGHT = 390, 210
PLOT = (55, 8, 320, 166)        # left, top, right, bottom of the spectrogram in pixels
BAR = (330, 8, 342, 166)        # the colour bar
FONT_PX = 11                    # 8 pt at 100 dpi
TICK = 3


@dataclass
class Spectrogram:
    """A drawn spectrogram: the picture and what is on it (for tests and captions)."""

    picture: object                    # PIL.Image.Image, RGB
    level: np.ndarray                  # (frequency bins, frames) dB re a full-scale sine, lowest frequency first
    seconds: float
    top_khz: float
    xticks: list[str] = field(default_factory=list)
    yticks: list[str] = field(default_factory=list)
    bar_ticks: list[str] = field(default_factory=list)
    xlabel: str = "time (s)"
    ylabel: str = "frequency (kHz)"
    bar_label: str = "dBFS"


def level_db(mono: np.ndarray, rate: int) -> np.ndarray:
    """(frequency bins, frames) magnitude in dB relative to a full-scale sine: 32 ms Hann frames, hop a quarter."""
    n_fft = int(2 ** np.ceil(np.log2(max(0.032 * rate, 64))))
    hop = n_fft // 4
    signal = np.asarray(mono, dtype=np.float64)
    if signal.size < n_fft:
        signal = np.pad(signal, (0, n_fft - signal.size))
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop]
    window = np.hanning(n_fft)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1)) / (window.sum() / 2)
    return 20 * np.log10(np.maximum(magnitude, 1e-12)).T


def spectrogram(mono: np.ndarray, rate: int) -> Spectrogram:
    """The clip's spectrogram picture on the fixed colour scale, with its axes."""
    from PIL import Image, ImageDraw

    level = level_db(mono, rate)
    seconds, top = mono.size / rate, rate / 2000
    canvas = Image.new("RGB", (WIDTH, HEIGHT), "white")
    left, upper, right, lower = PLOT
    scaled = np.clip((level - SPECTROGRAM_DB[0]) / (SPECTROGRAM_DB[1] - SPECTROGRAM_DB[0]), 0, 1)
    image = Image.fromarray(_colours()[np.round(scaled[::-1] * 255).astype(np.uint8)])
    canvas.paste(image.resize((right - left, lower - upper), Image.NEAREST), (left, upper))
    bar = _colours()[np.arange(255, -1, -1, dtype=np.uint8)][:, None].repeat(BAR[2] - BAR[0], axis=1)
    canvas.paste(Image.fromarray(bar).resize((BAR[2] - BAR[0], BAR[3] - BAR[1]), Image.NEAREST), BAR[:2])
    draw = ImageDraw.Draw(canvas)
    font = _font()
    out = Spectrogram(canvas, level, seconds, top)
    for value in _ticks(0.0, seconds):
        x = left + (right - left) * value / seconds
        draw.line([(x, lower), (x, lower + TICK)], fill="black")
        out.xticks.append(_text(value))
        draw.text((x, lower + TICK + 1), out.xticks[-1], font=font, fill="black", anchor="mt")
    for value in _ticks(0.0, top):
        y = lower - (lower - upper) * value / top
        draw.line([(left - TICK, y), (left, y)], fill="black")
        out.yticks.append(_text(value))
        draw.text((left - TICK - 2, y), out.yticks[-1], font=font, fill="black", anchor="rm")
    for value in _ticks(*SPECTROGRAM_DB):
        y = BAR[3] - (BAR[3] - BAR[1]) * (value - SPECTROGRAM_DB[0]) / (SPECTROGRAM_DB[1] - SPECTROGRAM_DB[0])
        draw.line([(BAR[2], y), (BAR[2] + TICK, y)], fill="black")
        out.bar_ticks.append(_text(value))
        draw.text((BAR[2] + TICK + 2, y), out.bar_ticks[-1], font=font, fill="black", anchor="lm")
    draw.rectangle([left - 1, upper - 1, right, lower], outline="black")
    draw.rectangle([BAR[0] - 1, BAR[1] - 1, BAR[2], BAR[3]], outline="black")
    draw.text(((left + right) / 2, HEIGHT - 3), out.xlabel, font=font, fill="black", anchor="md")
    _vertical(canvas, out.ylabel, 2, (upper + lower) / 2)
    _vertical(canvas, out.bar_label, WIDTH - FONT_PX - 4, (upper + lower) / 2)
    return out


def _ticks(low: float, high: float) -> list[float]:
    """At most 6 round values in [low, high] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / 5
    power = 10 ** np.floor(np.log10(raw))
    step = next(s * power for s in (1, 2, 2.5, 5, 10) if s * power >= raw)
    first = np.ceil(low / step - 1e-9) * step
    return [float(v) for v in np.arange(first, high + step * 1e-6, step)]


def _text(value: float) -> str:
    value = round(value, 6) + 0.0  # + 0.0: no "-0"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def _vertical(canvas, text: str, x: float, centre_y: float) -> None:
    from PIL import Image, ImageDraw

    font = _font()
    width = int(font.getlength(text)) + 2
    label = Image.new("RGB", (width, FONT_PX + 4), "white")
    ImageDraw.Draw(label).text((1, 1), text, font=font, fill="black")
    turned = label.rotate(90, expand=True)
    canvas.paste(turned, (int(x), int(centre_y - turned.height / 2)))


@lru_cache(maxsize=1)
def _colours() -> np.ndarray:
    """(256, 3) uint8: matplotlib's magma colour map as a lookup table."""
    from matplotlib import colormaps

    return (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


@lru_cache(maxsize=1)
def _font():
    import os

    import matplotlib
    from PIL import ImageFont

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    try:
        return ImageFont.truetype(path, FONT_PX)
    except OSError:  # a trimmed matplotlib: Pillow's own font still labels the axes
        return ImageFont.load_default(size=FONT_PX)
