"""Derived-copy detection (curate.checks.derived): a dev item put through noise at 0 dB, gain and a shift, or a
3-degree rotation and a brightness change, is found in train; distinct real items are not matched."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import soundfile as sf
from PIL import Image, ImageEnhance

from augment.run import folder_view
from curate.checks.derived import find

from conftest import SAMPLE_MEDIA

SPEECH = SAMPLE_MEDIA / "speech"


def write_labels(folder, rows):
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split", "group"])
        writer.writerows(rows)


def pairs_of(view):
    frame = view.manifest
    split = dict(zip(frame["id"], frame["split"]))
    media = frame["media"].iloc[0]
    return find(view, media, sorted(i for i, s in split.items() if s == "dev"),
                sorted(i for i, s in split.items() if s == "train"), dict(zip(frame["id"], frame["group"])))


def speech_folder(folder, planted: dict) -> list:
    """Clean takes of three train voices and one dev voice, plus `planted` {name: signal} train items."""
    rows = []
    for voice, split in (("allison", "train"), ("flite_slt", "train"), ("flite_awb", "train"), ("flite_rms", "dev")):
        (folder / voice).mkdir(parents=True, exist_ok=True)
        for file in sorted((SPEECH / voice).glob("*.wav")):
            if "_" not in file.stem:  # clean takes only
                shutil.copy(file, folder / voice / file.name)
                rows.append((f"{voice}/{file.name}", file.stem, split, voice))
    (folder / "planted").mkdir(exist_ok=True)
    for name, (signal, rate) in planted.items():
        sf.write(folder / "planted" / name, signal, rate)
        rows.append((f"planted/{name}", "two", "train", f"planted-{name}"))
    write_labels(folder, rows)
    return rows


def test_a_noise_mixed_copy_at_0_db_and_a_shifted_quieter_copy_are_found(tmp_path):
    original, rate = sf.read(SPEECH / "flite_rms" / "two.wav", dtype="float64")
    noise = np.random.default_rng(0).standard_normal(len(original))
    noise *= np.sqrt(np.mean(original ** 2) / np.mean(noise ** 2))  # white noise at 0 dB SNR over the whole clip
    mixed = (original + noise) / max(1.0, np.abs(original + noise).max() / 0.99)
    speech_folder(tmp_path / "noisy", {"noisy.wav": (mixed, rate)})
    found = pairs_of(folder_view(tmp_path / "noisy"))
    assert [(q, t) for q, t, _ in found.pairs] == [("flite_rms/two.wav", "planted/noisy.wav")], found
    # at the 8 kHz the score uses, half of the white noise's power is gone: 1 / sqrt(1 + 0.5)
    assert abs(found.pairs[0][2] - 0.816) < 0.03
    assert found.threshold < 0.68 and found.null_max < 0.55  # different voices stay far apart
    shifted = np.concatenate([np.zeros(rate // 50), 0.5 * original])  # -6 dB and 20 ms later
    speech_folder(tmp_path / "shifted", {"shifted.wav": (shifted, rate)})
    found = pairs_of(folder_view(tmp_path / "shifted"))
    # the copy's best match is its original; a TTS voice shares waveform segments between words, so the copy may
    # also be the best train match of a sibling (flite: "three" correlates 0.77 with "two"): leaked all the same
    assert {t for _, t, _ in found.pairs} == {"planted/shifted.wav"}
    assert dict((q, v) for q, _, v in found.pairs)["flite_rms/two.wav"] > 0.99


def test_different_clips_of_one_speaker_are_not_matched(tmp_path):
    rows = []
    for file in sorted((SPEECH / "allison").glob("*.wav")):
        split = "dev" if file.stem.startswith(("one", "two", "three")) else "train"
        rows.append((f"allison/{file.name}", file.stem.split("_")[0], split, f"take-{file.stem}"))
    shutil.copytree(SPEECH / "allison", tmp_path / "allison")
    write_labels(tmp_path, [r for r in rows if "_" not in r[0].split("/")[1]])  # clean takes: different words
    assert pairs_of(folder_view(tmp_path)).pairs == []


def strokes(rng, label: int) -> Image.Image:
    """A 28 x 28 grey 'digit': a class-specific skeleton drawn with per-image jitter, like handwriting."""
    from PIL import ImageDraw

    skeletons = {0: [(8, 6), (14, 4), (20, 6), (21, 14), (20, 22), (14, 24), (8, 22), (7, 14), (8, 6)],
                 1: [(11, 7), (14, 4), (14, 10), (14, 17), (14, 24)],
                 2: [(7, 8), (14, 4), (20, 8), (15, 15), (8, 22), (15, 22), (21, 22)]}
    image = Image.new("L", (28, 28), 0)
    points = [(x + rng.normal(0, 2.5), y + rng.normal(0, 2.5)) for x, y in skeletons[label]]
    ImageDraw.Draw(image).line(points, fill=int(rng.integers(180, 256)), width=int(rng.integers(2, 4)))
    return image


def test_a_rotated_brighter_copy_of_a_28px_image_is_found_and_other_images_of_its_class_are_not(tmp_path):
    rng = np.random.default_rng(7)
    rows = []
    (tmp_path / "img").mkdir()
    for n in range(90):
        label, split = n % 3, "dev" if n < 15 else "train"
        strokes(rng, label).save(tmp_path / "img" / f"{n:03d}.png")
        rows.append((f"img/{n:03d}.png", str(label), split, f"writer-{n}"))
    source = Image.open(tmp_path / "img" / "004.png")
    (tmp_path / "planted").mkdir()
    copy = ImageEnhance.Brightness(source.rotate(3, resample=Image.BILINEAR, fillcolor=0)).enhance(0.8)
    copy.save(tmp_path / "planted" / "copy.png")
    rows.append(("planted/copy.png", "1", "train", "planted"))
    write_labels(tmp_path, rows)
    found = pairs_of(folder_view(tmp_path))
    assert [(q, t) for q, t, _ in found.pairs] == [("img/004.png", "planted/copy.png")], found
    assert found.null_max < found.threshold <= 0.99
    write_labels(tmp_path, rows[:-1])  # without the copy: the 15 dev images match none of the 75 train images
    assert pairs_of(folder_view(tmp_path)).pairs == []
