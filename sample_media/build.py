"""Rebuild sample_media/ from Debian packages (deterministic: fixed seeds, no network).

    apt-get update && apt-get install -y asterisk-core-sounds-en-wav flite espeak-ng lincity-ng-data \
        mate-backgrounds fonts-dejavu-core fonts-liberation fonts-freefont-ttf
    python sample_media/build.py            # needs numpy, soundfile, soxr, pillow (installed with rubbersheet)

What it writes (see NOTICE for sources and licences):
  speech/      spoken digits as 16 kHz mono 16-bit WAV, silence trimmed to 0.1 s: 10 voices x 10 digits, plus 15
               clips per voice recorded "in noise" (a real noise bed mixed at a known SNR, measured over the
               speech-active part of the clip)
  noise/       real ambient recordings (cafe/car/people), copied byte for byte at their native rate and channel count
  inspection/  128x128 RGB patches from real photos; half carry a drawn scratch or discoloration (label defect)
  ocr/         32x32 grayscale glyphs I l 1 O 0 in 9 font families x 2 weights (I and l identical in 3 fonts)
"""
from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
RATE = 16000
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ASTERISK_DIGITS = Path("/usr/share/asterisk/sounds/en/digits")
LINCITY_SOUNDS = Path("/usr/share/games/lincity-ng/sounds")
MATE_BACKGROUNDS = Path("/usr/share/backgrounds/mate")

# voice -> (engine, engine voice, split). Whole voices go to one split so dev/test measure unseen speakers.
VOICES = {
    "allison": ("asterisk", None, "train"),
    "flite_awb": ("flite", "awb", "train"),
    "flite_slt": ("flite", "slt", "train"),
    "espeak_us": ("espeak-ng", "en-us", "train"),
    "espeak_caribbean": ("espeak-ng", "en-029", "train"),
    "espeak_rp_f3": ("espeak-ng", "en-gb-x-rp+f3", "train"),
    "flite_kal": ("flite", "kal", "dev"),
    "flite_rms": ("flite", "rms", "dev"),
    "flite_kal16": ("flite", "kal16", "test"),
    "espeak_scotland": ("espeak-ng", "en-gb-scotland", "test"),
}
# noise tag -> lincity-ng recordings (market chatter ~ cafe, traffic ~ car, crowds/school ~ people)
NOISE_BEDS = {
    "cafe": ["MarketFull1.wav", "MarketMed1.wav"],
    "car": ["TraficHigh1.wav", "TraficLow2.wav"],
    "people": ["SportsCroud1.wav", "School1.wav"],
}
OCR_FONTS = {
    "dejavu_sans": ("dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf"),
    "dejavu_serif": ("dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSerif-Bold.ttf"),
    "dejavu_mono": ("dejavu/DejaVuSansMono.ttf", "dejavu/DejaVuSansMono-Bold.ttf"),
    "liberation_sans": ("liberation/LiberationSans-Regular.ttf", "liberation/LiberationSans-Bold.ttf"),
    "liberation_serif": ("liberation/LiberationSerif-Regular.ttf", "liberation/LiberationSerif-Bold.ttf"),
    "liberation_mono": ("liberation/LiberationMono-Regular.ttf", "liberation/LiberationMono-Bold.ttf"),
    "free_sans": ("freefont/FreeSans.ttf", "freefont/FreeSansBold.ttf"),
    "free_serif": ("freefont/FreeSerif.ttf", "freefont/FreeSerifBold.ttf"),
    "free_mono": ("freefont/FreeMono.ttf", "freefont/FreeMonoBold.ttf"),
}
OCR_CHARS = {"I": "upper_i", "l": "lower_l", "1": "digit_1", "O": "upper_o", "0": "digit_0"}
# material -> (photo, downscale factor, crop box after downscaling): regions that show only the material
INSPECTION_PHOTOS = {
    "wood": ("nature/Wood.jpg", 4, (0, 200, 640, 480)),
    "leaf": ("nature/Blinds.jpg", 4, (0, 0, 480, 300)),
    "grass": ("nature/Dune.jpg", 2, (0, 290, 840, 525)),
}


def write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def to_rate(x: np.ndarray, sr: int, rate: int = RATE) -> np.ndarray:
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = x.astype(np.float64)
    return x if sr == rate else soxr.resample(x, sr, rate, quality="VHQ")


def synthesize(engine: str, voice: str | None, digit: int, tmp: Path) -> np.ndarray:
    if engine == "asterisk":
        x, sr = sf.read(ASTERISK_DIGITS / f"{digit}.wav")
        return to_rate(x, sr)
    out = tmp / "tts.wav"
    word = DIGITS[digit]
    if engine == "flite":
        subprocess.run(["flite", "-voice", voice, "-t", word, "-o", str(out)], check=True)
    else:
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), word], check=True)
    x, sr = sf.read(out)
    return to_rate(x, sr)


def trim(x: np.ndarray, rate: int = RATE, top_db: float = 40.0, margin_s: float = 0.1) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames more than top_db below the loudest), keeping a margin."""
    hop = rate // 100
    power = (np.lib.stride_tricks.sliding_window_view(x, hop)[::hop] ** 2).mean(axis=1)
    active = np.flatnonzero(power >= power.max() * 10 ** (-top_db / 10))
    margin = int(margin_s * rate)
    return x[max(0, active[0] * hop - margin): min(len(x), (active[-1] + 1) * hop + margin)]


def active_power(x: np.ndarray, rate: int = RATE) -> float:
    """Mean power over 20 ms frames within 30 dB of the loudest frame (the speech, not the pauses)."""
    hop = rate // 50
    frames = np.lib.stride_tricks.sliding_window_view(x, hop)[::hop]
    power = (frames**2).mean(axis=1)
    return float(power[power >= power.max() * 1e-3].mean())


def build_speech(rng: np.random.Generator) -> None:
    out = HERE / "speech"
    shutil.rmtree(out, ignore_errors=True)
    beds = {tag: [to_rate(*sf.read(LINCITY_SOUNDS / f)) for f in files] for tag, files in NOISE_BEDS.items()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for v_index, (voice, (engine, engine_voice, split)) in enumerate(VOICES.items()):
            (out / voice).mkdir(parents=True)
            band = ["low_bandwidth"] if engine == "asterisk" or engine_voice == "kal" else []
            speaker = "human" if engine == "asterisk" else "tts"
            for d in range(10):
                x = trim(synthesize(engine, engine_voice, d, Path(tmp)))
                x = x / max(1.0, np.abs(x).max() / 0.99)
                sf.write(out / voice / f"{DIGITS[d]}.wav", x, RATE, subtype="PCM_16")
                rows.append(dict(path=f"{voice}/{DIGITS[d]}.wav", label=DIGITS[d], group=voice, split=split,
                                 tags=";".join(band + ["clean"]), voice=voice, engine=engine, speaker=speaker,
                                 snr_db="", noise_file=""))
                # five digits per noise type and voice, rotating so every digit gets every noise somewhere
                for n_index, tag in enumerate(NOISE_BEDS):
                    if (d - v_index - 3 * n_index) % 10 >= 5:
                        continue
                    bed_index = int(rng.integers(len(beds[tag])))
                    bed = beds[tag][bed_index]
                    start = int(rng.integers(0, max(1, len(bed) - len(x))))
                    noise = np.resize(bed[start:], len(x))
                    snr_db = round(float(rng.uniform(0.0, 10.0)), 1)
                    gain = np.sqrt(active_power(x) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
                    mix = x + gain * noise
                    mix = mix / max(1.0, np.abs(mix).max() / 0.99)
                    name = f"{voice}/{DIGITS[d]}_{tag}.wav"
                    sf.write(out / name, mix, RATE, subtype="PCM_16")
                    rows.append(dict(path=name, label=DIGITS[d], group=voice, split=split,
                                     tags=";".join(band + [f"{tag}_noise"]), voice=voice, engine=engine,
                                     speaker=speaker, snr_db=snr_db, noise_file=NOISE_BEDS[tag][bed_index]))
    header = ["path", "label", "tags", "split", "group", "voice", "engine", "speaker", "snr_db", "noise_file"]
    write_csv(out / "labels.csv", header, rows)


def build_noise() -> None:
    out = HERE / "noise"
    shutil.rmtree(out, ignore_errors=True)
    rows = []
    for tag, files in NOISE_BEDS.items():
        (out / tag).mkdir(parents=True)
        for f in files:
            shutil.copyfile(LINCITY_SOUNDS / f, out / tag / f)
            info = sf.info(out / tag / f)
            rows.append(dict(path=f"{tag}/{f}", label=tag, tags=f"sr_{info.samplerate};ch_{info.channels}",
                             source=f"lincity-ng-data:{f}"))
    write_csv(out / "labels.csv", ["path", "label", "tags", "source"], rows)


def draw_scratch(patch: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A thin, slightly curved line, lighter or darker than the surface, softened like a real scratch."""
    size = patch.size[0]
    mask = Image.new("L", patch.size, 0)
    draw = ImageDraw.Draw(mask)
    x0, y0 = rng.uniform(0.05, 0.4, 2) * size
    x1, y1 = rng.uniform(0.6, 0.95, 2) * size
    if rng.random() < 0.5:
        y0, y1 = size - y0, size - y1
    bend = rng.normal(0, 0.06 * size, 2)
    t = np.linspace(0, 1, 24)
    xs = x0 + (x1 - x0) * t + bend[0] * np.sin(np.pi * t)
    ys = y0 + (y1 - y0) * t + bend[1] * np.sin(np.pi * t)
    draw.line(list(zip(xs.tolist(), ys.tolist())), fill=255, width=int(rng.integers(1, 3)))
    mask = mask.filter(ImageFilter.GaussianBlur(0.6))
    tone = (235, 232, 225) if rng.random() < 0.6 else (40, 35, 30)
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255.0 * rng.uniform(0.55, 0.85)
    base = np.asarray(patch, dtype=np.float32)
    return Image.fromarray(np.clip(base * (1 - alpha) + np.array(tone) * alpha, 0, 255).astype(np.uint8))


def draw_discoloration(patch: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A soft-edged stain that shifts the colour (rust-brown or bleached-yellow) of an elliptical region."""
    size = patch.size[0]
    mask = Image.new("L", patch.size, 0)
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    rx, ry = rng.uniform(0.12, 0.3, 2) * size
    ImageDraw.Draw(mask).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(size * 0.06))
    tint = np.array([120, 70, 30]) if rng.random() < 0.5 else np.array([210, 190, 110])
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255.0 * rng.uniform(0.35, 0.6)
    base = np.asarray(patch, dtype=np.float32)
    return Image.fromarray(np.clip(base * (1 - alpha) + tint * alpha, 0, 255).astype(np.uint8))


def build_inspection(rng: np.random.Generator, per_material: int = 20, size: int = 128) -> None:
    out = HERE / "inspection"
    shutil.rmtree(out, ignore_errors=True)
    rows = []
    for material, (photo, scale, box) in INSPECTION_PHOTOS.items():
        (out / material).mkdir(parents=True)
        img = Image.open(MATE_BACKGROUNDS / photo).convert("RGB")
        img = img.resize((img.width // scale, img.height // scale), Image.Resampling.LANCZOS).crop(box)
        for i in range(per_material):
            x = int(rng.integers(0, img.width - size))
            y = int(rng.integers(0, img.height - size))
            patch = img.crop((x, y, x + size, y + size))
            defect = ["ok", "scratch", "discoloration"][0 if i % 2 == 0 else 1 + (i // 2) % 2]
            if defect == "scratch":
                patch = draw_scratch(patch, rng)
            elif defect == "discoloration":
                patch = draw_discoloration(patch, rng)
            name = f"{material}/{material}_{i:02d}.png"
            patch.save(out / name, optimize=True)
            tags = [material] + ([] if defect == "ok" else [defect])
            rows.append(dict(path=name, label="ok" if defect == "ok" else "defect", tags=";".join(tags),
                             source_photo=f"mate-backgrounds:{photo}", x=x, y=y))
    write_csv(out / "labels.csv", ["path", "label", "tags", "source_photo", "x", "y"], rows)


def render_glyph(char: str, font_path: Path, size: int = 32, font_px: int = 24) -> Image.Image:
    """Binarised glyph (as after a scanner's threshold) on the font's own baseline, centred horizontally by its ink.
    At this size DejaVu Sans (both weights) and Liberation Sans Bold draw I and l as the same bar: identical pixels."""
    font = ImageFont.truetype(str(font_path), font_px)
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    draw.fontmode = "1"
    ascent, _ = font.getmetrics()
    left, _, right, _ = draw.textbbox((0, 0), char, font=font)
    draw.text(((size - (right - left)) / 2 - left, (size - ascent) / 2), char, font=font, fill=0)
    return img


def build_ocr() -> None:
    out = HERE / "ocr"
    shutil.rmtree(out, ignore_errors=True)
    rows = []
    for family, files in OCR_FONTS.items():
        (out / family).mkdir(parents=True)
        for weight, file in zip(["regular", "bold"], files):
            for char, slug in OCR_CHARS.items():
                name = f"{family}/{slug}_{weight}.png"
                render_glyph(char, Path("/usr/share/fonts/truetype") / file).save(out / name, optimize=True)
                rows.append(dict(path=name, label=char, tags=f"{family};{weight}", group=f"{family}_{weight}",
                                 font_file=Path(file).name))
    write_csv(out / "labels.csv", ["path", "label", "tags", "group", "font_file"], rows)


def main() -> None:
    build_speech(np.random.default_rng(20261122))
    build_noise()
    build_inspection(np.random.default_rng(7))
    build_ocr()


if __name__ == "__main__":
    main()
