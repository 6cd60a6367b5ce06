"""The sample media are real, as described in NOTICE, and keep the properties the rest of the project relies on."""
from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from conftest import SAMPLE_MEDIA


def rows(folder: str) -> list[dict]:
    with (SAMPLE_MEDIA / folder / "labels.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_total_size_under_10_mb():
    total = sum(p.stat().st_size for p in SAMPLE_MEDIA.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024


def test_notice_names_every_source_package():
    notice = (SAMPLE_MEDIA / "NOTICE").read_text()
    for package in ("asterisk-core-sounds-en-wav", "flite", "espeak-ng", "lincity-ng-data", "mate-backgrounds",
                    "fonts-dejavu-core", "fonts-liberation", "fonts-freefont-ttf"):
        assert package in notice
        assert package in (SAMPLE_MEDIA / "build.py").read_text()


def test_speech_clips_are_16k_mono_and_cover_every_digit_per_voice():
    speech = rows("speech")
    voices = {r["group"] for r in speech}
    assert len(voices) == 10
    clean = [r for r in speech if "clean" in r["tags"].split(";")]
    assert len(clean) == 100
    assert {(r["group"], r["label"]) for r in clean} == {(v, d) for v in voices for d in
                                                         {r["label"] for r in clean}}
    for r in speech:
        info = sf.info(SAMPLE_MEDIA / "speech" / r["path"])
        assert (info.samplerate, info.channels) == (16000, 1), r["path"]
        assert 0.3 < info.duration < 3.0
    # whole voices sit in one split, so dev and test measure unseen speakers
    assert all(len({r["split"] for r in speech if r["group"] == v}) == 1 for v in voices)


def _share_above(path, hz: float = 4200.0) -> float:
    x, sr = sf.read(path)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    return float(spectrum[np.fft.rfftfreq(len(x), 1 / sr) > hz].sum() / spectrum.sum())


def test_low_bandwidth_tag_matches_the_spectrum():
    """8 kHz telephone speech has (next to) nothing above 4 kHz; every wideband voice has clips that do."""
    share: dict[str, list[float]] = {}
    narrow: dict[str, bool] = {}
    for r in rows("speech"):
        if "clean" in r["tags"].split(";"):
            share.setdefault(r["group"], []).append(_share_above(SAMPLE_MEDIA / "speech" / r["path"]))
            narrow[r["group"]] = "low_bandwidth" in r["tags"].split(";")
    assert sum(narrow.values()) == 2
    for voice, values in share.items():
        if narrow[voice]:
            assert max(values) < 1e-6, voice
        else:
            assert max(values) > 1e-3, voice


def _active_power(x: np.ndarray, rate: int = 16000) -> float:
    hop = rate // 50
    frames = np.lib.stride_tricks.sliding_window_view(x, hop)[::hop]
    power = (frames**2).mean(axis=1)
    return float(power[power >= power.max() * 1e-3].mean())


def test_noisy_clips_have_the_snr_their_labels_state():
    noisy = [r for r in rows("speech") if r["snr_db"]]
    assert len(noisy) == 150
    assert {t for r in noisy for t in r["tags"].split(";")} >= {"cafe_noise", "car_noise", "people_noise"}
    errors = []
    for r in noisy:
        mix, _ = sf.read(SAMPLE_MEDIA / "speech" / r["path"])
        clean, _ = sf.read(SAMPLE_MEDIA / "speech" / r["group"] / f"{r['label']}.wav")
        # the mix was peak-limited by a scale s <= 1: mix = s * (clean + noise); recover s by least squares
        scale = float(np.dot(mix, clean) / np.dot(clean, clean))
        noise = mix / scale - clean
        measured = 10 * np.log10(_active_power(clean) / np.mean(noise**2))
        errors.append(measured - float(r["snr_db"]))
    assert np.abs(errors).max() < 1.0, errors


def test_noise_beds_are_real_recordings_at_native_rates():
    beds = rows("noise")
    assert {r["label"] for r in beds} == {"cafe", "car", "people"}
    rates = set()
    for r in beds:
        info = sf.info(SAMPLE_MEDIA / "noise" / r["path"])
        rates.add((info.samplerate, info.channels))
        assert info.duration > 2.5
        x, _ = sf.read(SAMPLE_MEDIA / "noise" / r["path"])
        assert 20 * np.log10(np.sqrt(np.mean(x**2))) > -50  # not silence
    assert len(rates) >= 3  # several rates and channel counts, as real noise libraries have


def test_inspection_patches():
    patches = rows("inspection")
    assert len(patches) == 60
    assert sum(r["label"] == "defect" for r in patches) == 30
    for r in patches:
        tags = set(r["tags"].split(";"))
        assert (r["label"] == "defect") == bool(tags & {"scratch", "discoloration"})
        with Image.open(SAMPLE_MEDIA / "inspection" / r["path"]) as img:
            assert (img.size, img.mode) == ((128, 128), "RGB")


def digest(path) -> str:
    return hashlib.sha256((SAMPLE_MEDIA / "ocr" / path).read_bytes()).hexdigest()


@pytest.mark.parametrize("family,weight", [("dejavu_sans", "regular"), ("dejavu_sans", "bold"),
                                           ("liberation_sans", "bold")])
def test_ocr_I_and_l_are_pixel_identical_in_some_fonts(family, weight):
    a = np.asarray(Image.open(SAMPLE_MEDIA / "ocr" / family / f"upper_i_{weight}.png"))
    b = np.asarray(Image.open(SAMPLE_MEDIA / "ocr" / family / f"lower_l_{weight}.png"))
    assert a.shape == (32, 32) and np.array_equal(a, b)


def test_ocr_glyphs_differ_where_the_font_tells_them_apart():
    assert digest("dejavu_serif/upper_i_regular.png") != digest("dejavu_serif/lower_l_regular.png")
    assert digest("dejavu_sans/upper_o_regular.png") != digest("dejavu_sans/digit_0_regular.png")
    glyphs = rows("ocr")
    assert len(glyphs) == 90 and {r["label"] for r in glyphs} == {"I", "l", "1", "O", "0"}
