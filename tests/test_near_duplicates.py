"""Near-duplicates that mean it (curate.checks.similarity): copies are near-duplicates, different items are not.

Image sets: synthetic 28 px and 32 px digits (random strokes, drawn with PIL), the real OCR glyphs, each with copies
re-encoded as JPEG q=90, moved by one pixel, or brightened by 10..20 levels (each copy a different object). Audio: the
real speech clips with copies at +-3 dB, with noise at 30 dB SNR, re-encoded as Ogg Vorbis, resampled to 22.05 kHz.
The figures in the comments were measured on these sets (ratio = distance / typical nearest-neighbour distance).
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_MEDIA
from PIL import Image, ImageDraw

from curate.checks import consistency, leakage
from curate.checks.gate import parse_config
from curate.checks.similarity import near_duplicates
from curate.exceptions import BadInput
from curate.importer import import_folder

STROKES = {  # digit-like polylines in a unit box
    "0": [(.5, .1), (.8, .3), (.8, .7), (.5, .9), (.2, .7), (.2, .3), (.5, .1)],
    "1": [(.4, .25), (.55, .1), (.55, .9)],
    "2": [(.22, .28), (.5, .1), (.78, .28), (.25, .9), (.8, .9)],
    "3": [(.25, .15), (.75, .15), (.45, .47), (.78, .62), (.5, .9), (.22, .8)],
    "4": [(.68, .9), (.68, .1), (.2, .62), (.82, .62)],
    "5": [(.78, .1), (.3, .1), (.27, .45), (.68, .47), (.75, .76), (.25, .9)],
    "6": [(.72, .1), (.32, .45), (.26, .76), (.5, .92), (.74, .72), (.5, .52), (.28, .66)],
    "7": [(.2, .1), (.8, .1), (.42, .9)],
    "8": [(.5, .5), (.27, .28), (.5, .08), (.73, .28), (.5, .5), (.24, .72), (.5, .92), (.76, .72), (.5, .5)],
    "9": [(.72, .42), (.5, .54), (.26, .35), (.5, .1), (.72, .3), (.68, .9)],
}
IMAGE_COPIES = ("jpeg90", "shift", "brighter")
AUDIO_COPIES = ("gain+3", "gain-3", "snr30", "ogg", "resampled")


def digit(rng, label: str, size: int) -> np.ndarray:
    """A white random-stroke digit on black inside a centred box of 0.7 x size (MNIST-like), anti-aliased."""
    big = size * 4
    image = Image.new("L", (big, big), 0)
    angle, sx, sy = rng.uniform(-0.25, 0.25), rng.uniform(0.8, 1.05), rng.uniform(0.85, 1.05)
    dx, dy = rng.uniform(-0.04, 0.04, 2)
    points = []
    for x, y in STROKES[label]:
        x, y = (x + rng.normal(0, 0.035) - 0.5) * sx * 0.7, (y + rng.normal(0, 0.035) - 0.5) * sy * 0.7
        x, y = x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)
        points.append(((x + 0.5 + dx) * big, (y + 0.5 + dy) * big))
    ImageDraw.Draw(image).line(points, fill=255, width=int(rng.uniform(1.6, 3.0) * 4), joint="curve")
    return np.asarray(image.resize((size, size), Image.Resampling.BOX))


def moved(pixels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The image moved by (dy, dx) pixels; the uncovered border takes the background (corner) value."""
    out = np.full_like(pixels, pixels[0, 0])
    h, w = pixels.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        pixels[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def write_labels(folder: Path, rows: list[dict], columns=("path", "label")) -> None:
    with (folder / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def image_folder(folder: Path, originals, labels, copies_of, rng) -> list[dict]:
    """Originals as PNG plus, for each index in copies_of, a JPEG q=90, a one-pixel move and a +10..20 brightening;
    rows: path, label, kind, source (index of the original)."""
    folder.mkdir(parents=True)
    rows = []
    for k, (pixels, label) in enumerate(zip(originals, labels)):
        Image.fromarray(pixels).save(folder / f"{k:04d}.png")
        rows.append({"path": f"{k:04d}.png", "label": label, "kind": "original", "source": k})
    for k in copies_of:
        pixels, label = originals[k], labels[k]
        Image.fromarray(pixels).save(folder / f"{k:04d}_jpeg90.jpg", quality=90)
        dy, dx = [(0, 1), (1, 0), (1, 1), (-1, 1), (0, -1), (-1, 0)][int(rng.integers(6))]
        Image.fromarray(moved(pixels, dy, dx)).save(folder / f"{k:04d}_shift.png")
        brighter = np.clip(pixels.astype(np.int16) + int(rng.integers(10, 21)), 0, 255).astype(np.uint8)
        Image.fromarray(brighter).save(folder / f"{k:04d}_brighter.png")
        rows += [{"path": f"{k:04d}_{kind}.{'jpg' if kind == 'jpeg90' else 'png'}", "label": label, "kind": kind,
                  "source": k} for kind in IMAGE_COPIES]
    write_labels(folder, rows)
    return rows


def audio_copy(kind: str, audio: np.ndarray, rate: int, rng):
    if kind in ("gain+3", "gain-3"):
        return np.clip(audio * 10 ** ((3 if kind == "gain+3" else -3) / 20), -1, 1), rate, "wav", "PCM_16"
    if kind == "snr30":
        noise = rng.normal(0, 1, len(audio))
        noise *= np.sqrt(np.mean(audio ** 2) / np.mean(noise ** 2) / 10 ** 3)
        return np.clip(audio + noise, -1, 1), rate, "wav", "PCM_16"
    if kind == "ogg":
        return audio, rate, "ogg", "VORBIS"
    import soxr

    return soxr.resample(audio, rate, 22050), 22050, "wav", "PCM_16"


def speech_folder(folder: Path, copies_every: int, rng) -> list[dict]:
    """sample_media/speech plus 5 copies of every `copies_every`-th clean clip. Rows carry `utterance` (voice, word),
    shared by a clean clip, its noisy versions in sample_media (the same utterance mixed with noise at 0..10 dB) and
    its copies, and `family`: the copied clip's path for it and its copies, else the item's own path."""
    import soundfile as sf

    folder.mkdir(parents=True)
    with (SAMPLE_MEDIA / "speech" / "labels.csv").open(newline="") as f:
        source = list(csv.DictReader(f))
    rows = []
    for r in source:
        name = r["path"].replace("/", "__")
        shutil.copyfile(SAMPLE_MEDIA / "speech" / r["path"], folder / name)
        rows.append({"path": name, "label": r["label"], "kind": "original", "voice": r["voice"],
                     "utterance": (r["voice"], r["label"]), "family": name})
    clean = [r for r in source if "clean" in r["tags"]]
    for k, r in enumerate(clean[::copies_every]):
        audio, rate = sf.read(SAMPLE_MEDIA / "speech" / r["path"], dtype="float32")
        for kind in AUDIO_COPIES:
            data, out_rate, ext, subtype = audio_copy(kind, audio, rate, rng)
            name = f"copy{k:03d}_{kind}.{ext}"
            sf.write(folder / name, data, out_rate, subtype=subtype)
            rows.append({"path": name, "label": r["label"], "kind": kind, "voice": r["voice"],
                         "utterance": (r["voice"], r["label"]), "family": r["path"].replace("/", "__")})
    write_labels(folder, rows)
    return rows


def pairs_by_path(found) -> list[tuple[str, str, float]]:
    return [(found.ids[a], found.ids[b], float(r)) for a, b, r in zip(found.i, found.j, found.ratio)]


@pytest.fixture(scope="module", params=[28, 32])
def digits(request, tmp_path_factory):
    """200 digits of one size (20 of each class) and copies of every 5th: (version, rows)."""
    size = request.param
    rng = np.random.default_rng(size)
    labels = [str(k % 10) for k in range(200)]
    originals = [digit(rng, label, size) for label in labels]
    root = tmp_path_factory.mktemp(f"digits{size}")
    rows = image_folder(root / "src", originals, labels, range(0, 200, 5), rng)
    return import_folder(root / "src", root / "ds").version, rows


def test_digit_copies_are_near_duplicates_and_different_digits_are_not(digits):
    version, rows = digits
    source = {r["path"]: r["source"] for r in rows}
    found = near_duplicates(version)
    pairs = pairs_by_path(found)
    assert all(source[a] == source[b] for a, b, _ in pairs), [p for p in pairs if source[p[0]] != source[p[1]]]
    # every copy pairs with its original and with the other copies: 40 sources x 6 pairs
    assert len(pairs) == 40 * 6
    # measured: copies <= 0.085 x typical (JPEG 0.07, 1-px move 0.005, +10..20 levels 0.08) ...
    assert max(r for _, _, r in pairs) < 0.15
    # ... the closest different digits >= 0.33 x typical: still apart at a 20 % looser ratio
    looser = near_duplicates(version, 0.3)
    assert looser.threshold == pytest.approx(0.3 * looser.typical)
    assert all(source[a] == source[b] for a, b, _ in pairs_by_path(looser))
    assert 0.2 < found.typical < 0.6 and found.threshold == pytest.approx(0.25 * found.typical)


def test_thumbnails_made_a_block_at_a_time_are_the_same_bytes_and_so_are_the_pairs(digits, monkeypatch):
    """Memory: resampling every item at once held ~16 KB of float copies an item (320 MB at 20k); blocks of
    THUMB_BLOCK items bound that, and must change nothing."""
    from curate.checks import similarity
    from curate.features import pixel_thumbnails

    version, _ = digits
    _, raw = pixel_thumbnails(version)
    rows = np.arange(len(raw))
    whole = similarity._Pixels(raw)
    expected = [whole.coarse_ref, whole.fine_ref, whole.thumbs(similarity.FINE_SIDE, rows, similarity.SHIFTS)]
    found = near_duplicates(version)
    monkeypatch.setattr(similarity, "THUMB_BLOCK", 7)   # 200 items: 29 blocks, the last one short
    blocked = similarity._Pixels(raw)
    got = [blocked.coarse_ref, blocked.fine_ref, blocked.thumbs(similarity.FINE_SIDE, rows, similarity.SHIFTS)]
    for a, b in zip(expected, got):
        assert a.tobytes() == b.tobytes()
    version.__dict__.pop("_similarity_memo", None)
    again = near_duplicates(version)
    assert (again.i == found.i).all() and (again.j == found.j).all() and again.typical == found.typical
    assert len(found.i) == 40 * 6


def test_fingerprint_pair_distances_hold_a_chunk_of_pairs_at_a_time(monkeypatch):
    """Memory: 60k clips that each had 64 near-duplicates (1.9M pairs) gathered every pair's two 384-float rows at
    once, 5.9 GB; the distances are taken PAIR_CHUNK pairs at a time, with the same bytes."""
    import tracemalloc

    from curate.checks import similarity

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows, cols = rng.integers(0, 3000, 200_000), rng.integers(0, 3000, 200_000)
    space = similarity._Vectors(vectors)
    whole = similarity._distance(np.einsum("pd,pd->p", vectors[rows], vectors[cols]).astype(np.float64))
    tracemalloc.start()
    try:
        chunked = space.distance(rows, cols)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chunked.tobytes() == whole.tobytes()
    assert peak < 40 * 2**20          # gathering every pair's rows at once: 2 x 200k x 384 x 4 bytes = 614 MB
    monkeypatch.setattr(similarity, "PAIR_CHUNK", 7)   # chunks of any size give the same bytes
    assert space.distance(rows[:1000], cols[:1000]).tobytes() == whole[:1000].tobytes()


@pytest.fixture(scope="module")
def ocr_version(tmp_path_factory):
    root = tmp_path_factory.mktemp("ocr_nd")
    return import_folder(SAMPLE_MEDIA / "ocr", root / "ds").version


def test_ocr_near_duplicates_are_only_glyphs_with_the_same_pixels(ocr_version):
    """Before: 384 near-duplicate pairs (dHash within 6 of 256), 235 with different labels. Now: 5 pairs, each two
    fonts drawing the same bar one pixel apart (ratio < 0.01); a thick short I is no longer a thin long 1."""
    found = near_duplicates(ocr_version)
    pairs = pairs_by_path(found)
    assert 1 <= len(pairs) <= 8 and all(r < 0.02 for _, _, r in pairs), pairs
    for a, b, _ in pairs:  # the same pixels up to a one-pixel move
        pa = np.asarray(Image.open(SAMPLE_MEDIA / "ocr" / a).convert("L"))
        pb = np.asarray(Image.open(SAMPLE_MEDIA / "ocr" / b).convert("L"))
        assert any(np.array_equal(moved(pa, dy, dx), pb) for dy in (-1, 0, 1) for dx in (-1, 0, 1)), (a, b)
    # a thick short I of one font and a thin long 1 of another (the old 256-bit dHash put some within 3 bits)
    labels = dict(zip(ocr_version.manifest["id"], ocr_version.manifest["label"]))
    assert not [(a, b) for a, b, _ in pairs if {labels[a], labels[b]} == {"I", "1"}]


def test_ocr_identical_glyphs_stay_exact_duplicates_and_near_conflicts_name_the_rule(ocr_version):
    findings = consistency.check(ocr_version, None, parse_config({}).section("consistency"))
    assert next(f for f in findings if "identical input" in f.message).figures["label_sets"] == {"I / l": 4}
    near = next(f for f in findings if "near-duplicate" in f.message)
    assert "closer than 0.25x the typical nearest-neighbour distance" in near.message
    assert {tuple(sorted(i["labels"])) for i in near.items} == {("I", "l")}
    assert all(i["score"] < 0.02 for i in near.items) and near.figures["pairs"] <= 4


def test_ocr_glyph_copies_are_found(tmp_path):
    paths = sorted((SAMPLE_MEDIA / "ocr").glob("*/*.png"))
    originals = [np.asarray(Image.open(p).convert("L")) for p in paths]
    names = [f"{p.parent.name}/{p.name}" for p in paths]
    rows = image_folder(tmp_path / "src", originals, names, range(0, len(paths), 3), np.random.default_rng(5))
    found = pairs_by_path(near_duplicates(import_folder(tmp_path / "src", tmp_path / "ds").version))
    source = {r["path"]: r["source"] for r in rows}
    for k in range(0, len(paths), 3):  # each original and its 3 copies: 6 pairs, all found
        assert sum(1 for a, b, _ in found if source[a] == source[b] == k) == 6, names[k]
    # measured: the copies are <= 0.085 x typical (JPEG q=90 of a binary glyph 0.084)
    assert max(r for a, b, r in found if source[a] == source[b]) < 0.15

    def twins(a: int, b: int) -> bool:  # the same pixels up to a one-pixel move
        return any(np.array_equal(moved(originals[a], dy, dx), originals[b]) for dy in (-1, 0, 1) for dx in (-1, 0, 1))

    assert all(twins(source[a], source[b]) for a, b, _ in found if source[a] != source[b])


@pytest.fixture(scope="module")
def speech_with_copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech_nd")
    rows = speech_folder(root / "src", 5, np.random.default_rng(3))
    return import_folder(root / "src", root / "ds").version, rows


def test_audio_copies_are_near_duplicates_and_other_utterances_are_not(speech_with_copies):
    version, rows = speech_with_copies
    by_path = {r["path"]: r for r in rows}
    found = near_duplicates(version)
    pairs = pairs_by_path(found)
    # every pair is one utterance: a clip and its copies, or a clip and its noisy versions in sample_media
    assert all(by_path[a]["utterance"] == by_path[b]["utterance"] for a, b, _ in pairs), \
        [p for p in pairs if by_path[p[0]]["utterance"] != by_path[p[1]]["utterance"]]
    family = {r["path"]: r["family"] for r in rows}
    own = [r for a, b, r in pairs if family[a] == family[b]]
    # each copied clip and its 5 copies: 15 pairs, all found
    assert len(own) == sum(1 for r in rows if r["kind"] == "ogg") * 15
    # measured: gain 0.09, 30 dB noise 0.02, Ogg 0.10, resampled 0.004 x typical
    assert max(own) < 0.15
    # the two flite voices from one speaker (kal, kal16) saying the same word: >= 0.39 x typical, not paired
    assert not [p for p in pairs if {by_path[p[0]]["voice"], by_path[p[1]]["voice"]} == {"flite_kal", "flite_kal16"}]


def test_typical_distance_holds_when_every_clip_has_copies(tmp_path, speech_with_copies):
    """With copies of every clean clip (600 of 750 items have a copy beyond FLOOR) the nearest neighbour of most
    items is a copy; the typical distance is taken beyond the near-duplicate threshold, so it stays put (0.38 vs
    0.42; a plain median of nearest neighbours falls to 0.27 and the Ogg copies drop out)."""
    few, _ = speech_with_copies
    rows = speech_folder(tmp_path / "src", 1, np.random.default_rng(4))
    many = near_duplicates(import_folder(tmp_path / "src", tmp_path / "ds").version)
    assert many.typical == pytest.approx(near_duplicates(few).typical, rel=0.15)
    family = {r["path"]: r["family"] for r in rows}
    own = [(a, b) for a, b, _ in pairs_by_path(many) if family[a] == family[b]]
    assert len(own) >= 0.97 * 100 * 15  # 100 clean clips x 15 pairs (measured: 1490 of 1500)


def split_folder(tmp_path, leak: bool):
    """40 digits (train 30, dev 10); with leak, dev item 0 is a JPEG q=90 copy of train item 0."""
    rng = np.random.default_rng(11)
    folder = tmp_path / ("leak" if leak else "clean")
    folder.mkdir(parents=True)
    rows = []
    for k in range(40):
        pixels = digit(rng, str(k % 10), 28)
        Image.fromarray(pixels).save(folder / f"{k:02d}.png")
        rows.append({"path": f"{k:02d}.png", "label": str(k % 10), "split": "train" if k < 30 else "dev"})
        if leak and k == 0:
            Image.fromarray(pixels).save(folder / "copy.jpg", quality=90)
            rows.append({"path": "copy.jpg", "label": "0", "split": "dev"})
    write_labels(folder, rows, ("path", "label", "split"))
    return import_folder(folder, tmp_path / f"ds_{folder.name}").version


def test_leakage_reports_a_copy_across_splits_with_the_rule_and_nothing_else(tmp_path):
    section = parse_config({}).section("leakage")
    clean = leakage.check(split_folder(tmp_path, leak=False), None, section)
    assert not [f for f in clean if "near-duplicate" in f.message]
    leaked = leakage.check(split_folder(tmp_path, leak=True), None, section)
    near = next(f for f in leaked if "near-duplicate" in f.message)
    assert near.severity == "error" and near.figures["pairs"] == 1
    assert {near.items[0]["a"], near.items[0]["b"]} == {"00.png", "copy.jpg"}
    assert near.items[0]["score"] < 0.15 and "0.25x the typical nearest-neighbour distance" in near.message
    stricter = parse_config({"leakage": {"near_duplicate_ratio": 0.2}}).section("leakage")
    again = leakage.check(split_folder(tmp_path / "again", leak=True), None, stricter)
    assert "closer than 0.2x the typical" in next(f for f in again if "near-duplicate" in f.message).message


def test_near_duplicate_ratio_is_one_setting_for_both_checks():
    config = parse_config({"consistency": {"near_duplicate_ratio": 0.2}})
    assert config.section("consistency").near_duplicate_ratio == 0.2
    assert config.section("leakage").near_duplicate_ratio == 0.25 == parse_config({}).consistency.near_duplicate_ratio
    with pytest.raises(BadInput, match=r"curation: leakage\.image_hamming_radius: unknown key"):
        parse_config({"leakage": {"image_hamming_radius": 6}})
    with pytest.raises(BadInput, match=r"curation: consistency\.near_duplicate_ratio: Input should be greater"):
        parse_config({"consistency": {"near_duplicate_ratio": 0}})
