"""Image transforms on the real inspection patches: albumentations adapter, defects, seeding, records, I/O."""
from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from augment import Compose, Sometimes, from_dict
from augment.image import Albumentations, Discoloration, Dust, Scratch, albumentations_module, load, save

from conftest import ROOT, SAMPLE_MEDIA


def patch(name="wood/wood_02.png") -> np.ndarray:
    return load(SAMPLE_MEDIA / "inspection" / name)


def pipeline() -> Compose:
    return Compose([
        Albumentations("RandomBrightnessContrast", brightness_limit=0.2, contrast_limit=0.2),
        Sometimes(0.5, Albumentations("GaussNoise", std_range=(0.05, 0.1))),
        Albumentations("Affine", rotate=(-15, 15), p=0.5),
        Scratch(),
    ])


def digest(x) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def test_same_seed_same_bytes_here_and_in_a_fresh_process():
    img = patch()
    here = digest(pipeline()(img, seed=42))
    assert here == digest(pipeline()(img, seed=42)) and here != digest(pipeline()(img, seed=43))
    code = ("import sys; sys.path.insert(0, 'tests'); import hashlib, numpy as np;"
            "from test_image import pipeline, patch;"
            "print(hashlib.sha256(np.ascontiguousarray(pipeline()(patch(), seed=42)).tobytes()).hexdigest())")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == here


def test_two_half_chance_children_fire_independently():
    """Each child gets its own seed drawn from the one Generator, so two p=0.5 children fire together in about
    25 % of items (albumentations' Compose.set_random_seed gives every child the same seed)."""
    img = patch()
    p = Compose([Sometimes(0.5, Albumentations("GaussNoise", std_range=(0.05, 0.1))),
                 Albumentations("HorizontalFlip", p=0.5)])
    both = 0
    for seed in range(300):
        _, record = p.apply(img, rng=np.random.default_rng(seed))
        both += record[0]["applied"] and record[1]["applied"]
    assert 0.20 <= both / 300 <= 0.30


def test_record_is_json_and_names_what_was_applied():
    img = patch()
    _, record = pipeline().apply(img, rng=np.random.default_rng(1))
    text = json.dumps(record)
    names = [r["transform"] for r in record]
    assert names == ["albumentations.RandomBrightnessContrast", "albumentations.GaussNoise", "albumentations.Affine",
                     "Scratch"]
    affine = record[2]
    if affine["applied"]:
        assert isinstance(affine["params"]["albumentations"]["rotate"], float)
    else:
        assert affine["reason"] == "p"
    assert "noise_map" not in text or '"dtype": "float32"' in text


@pytest.mark.parametrize("spec", [
    {"Albumentations": {"name": "GaussNoise", "std_range": [0.1, 0.2]}},
    {"Compose": {"transforms": [{"Albumentations": {"name": "MotionBlur", "blur_limit": [3, 7]}},
                                {"Scratch": {"count": [1, 3]}}], "seed": 5}},
])
def test_recipe_style_dict_round_trips(spec):
    t = from_dict(spec)
    assert from_dict(json.loads(json.dumps(t.to_dict()))).to_dict() == t.to_dict()
    img = patch()
    assert np.array_equal(from_dict(t.to_dict())(img, seed=9), t(img, seed=9))


def test_a_native_albumentations_pipeline_from_its_dict():
    A = albumentations_module()
    native = A.Compose([A.GaussNoise(std_range=(0.1, 0.2), p=1), A.HorizontalFlip(p=0.5)])
    t = Albumentations(spec=A.to_dict(native))
    img = patch()
    out, record = t.apply(img, rng=np.random.default_rng(0))
    assert out.shape == img.shape and not np.array_equal(out, img)
    assert record[0]["transform"] == "albumentations.Compose"
    assert record[0]["params"]["albumentations"][0]["transform"] == "GaussNoise"
    assert np.array_equal(from_dict(t.to_dict())(img, seed=3), t(img, seed=3))


@pytest.mark.parametrize("kwargs,param,message", [
    ({"name": "GaussNoise", "std_rangee": (0.1, 0.2)}, "std_rangee",
     r"unknown parameter\(s\) 'std_rangee' \(albumentations.GaussNoise\)"),
    ({"name": "GaussNoise", "std_range": (0.5, 0.1)}, "std_range", r"less than the second.*albumentations.GaussNoise"),
    ({"name": "Resize"}, "height", "Field required"),
    ({"name": "GausNoise"}, "name", "'GausNoise' is not an albumentations transform .did you mean GaussNoise"),
    ({"name": "Compose"}, "name", "'Compose' is not an albumentations transform"),
    ({}, "name", "give either"),
    ({"spec": {"transform": {"__class_fullname__": "Nope", "p": 1}}}, "spec", "albumentations spec"),
    ({"name": "GaussNoise", "on_clip": "allow"}, "on_clip", "applies to audio"),
])
def test_bad_albumentations_parameters_are_named(kwargs, param, message):
    from augment.core import ParameterError

    with pytest.raises(ParameterError, match=message) as info:
        Albumentations(**kwargs)
    assert info.value.param == param and "\n" not in str(info.value)


def test_pickles_and_runs_in_threads():
    from concurrent.futures import ThreadPoolExecutor

    img = patch()
    p = pipeline()
    clone = pickle.loads(pickle.dumps(p))
    serial = [digest(p(img, seed=s)) for s in range(16)]
    assert [digest(clone(img, seed=s)) for s in range(16)] == serial
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda s: digest(p(img, seed=s)), range(16))) == serial


@pytest.mark.parametrize("defect", [Scratch(), Discoloration(), Dust()], ids=lambda d: d.name)
@pytest.mark.parametrize("name", ["wood/wood_04.png", "leaf/leaf_06.png", "grass/grass_08.png"])
def test_a_defect_changes_only_pixels_inside_its_mask(defect, name):
    img = patch(name)
    for seed in range(5):
        context: dict = {}
        out, record = defect.apply(img, rng=np.random.default_rng(seed), context=context)
        mask = context["defect_mask"]
        assert mask.shape == img.shape[:2] and mask.any()
        changed = np.any(out != img, axis=-1)
        assert not changed[~mask].any()
        assert changed.sum() > 0.2 * mask.sum() if defect.name != "Discoloration" else changed.any()
        assert record[0]["params"]["mask_pixels"] == int(mask.sum())


def test_scratch_is_lighter_or_darker_as_recorded():
    img = patch("leaf/leaf_00.png")
    for seed in range(6):
        ctx: dict = {}
        out, record = Scratch(count=1, strength=0.9, blur_px=0).apply(img, rng=np.random.default_rng(seed),
                                                                      context=ctx)
        inside = ctx["defect_mask"]
        delta = out[inside].astype(int).mean() - img[inside].astype(int).mean()
        assert (delta > 0) == record[0]["params"]["lighter"]


def test_defects_work_on_grayscale_and_any_size():
    glyph = load(SAMPLE_MEDIA / "ocr" / "dejavu_sans" / "digit_0_regular.png")
    assert glyph.shape == (32, 32)
    big = np.tile(patch(), (4, 6, 1))
    for image in (glyph, big):
        ctx: dict = {}
        out = Compose([Scratch(), Discoloration(), Dust()])(image, seed=1, context=ctx)
        assert out.shape == image.shape and out.dtype == np.uint8 and ctx["defect_mask"].shape == image.shape[:2]


def test_image_input_errors():
    with pytest.raises(ValueError, match="data: expected a uint8 image"):
        Scratch()(patch().astype(np.float32), seed=0)
    with pytest.raises(ValueError, match="data: image has 5 channels"):
        Scratch()(np.zeros((8, 8, 5), np.uint8), seed=0)


def test_io_errors_are_one_clear_line(tmp_path):
    good = (SAMPLE_MEDIA / "inspection" / "wood" / "wood_00.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    for name, message in (("cut.png", "truncated or corrupt"), ("empty.png", "empty file")):
        with pytest.raises(ValueError, match=message) as info:
            load(tmp_path / name)
        assert name in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="128x128 = 16384 pixels exceeds max_pixels=10000"):
        load(SAMPLE_MEDIA / "inspection" / "wood" / "wood_00.png", max_pixels=10_000)


def test_io_modes_exif_and_16_bit(tmp_path):
    from PIL import Image

    rgb = patch()
    rotated = Image.fromarray(rgb)
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    rotated.save(tmp_path / "exif.jpg", exif=exif, quality=98)
    shown = load(tmp_path / "exif.jpg")
    assert shown.shape == (128, 128, 3) and np.abs(shown.astype(int) - np.rot90(rgb, -1)).mean() < 4
    wide = np.zeros((16, 24), np.uint16) + 65535
    Image.fromarray(wide).save(tmp_path / "deep.png")
    assert load(tmp_path / "deep.png").max() == 255 and load(tmp_path / "deep.png").dtype == np.uint8
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    assert load(tmp_path / "palette.png").shape == (128, 128, 3)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "alpha.png")
    assert load(tmp_path / "alpha.png").shape == (128, 128, 4)
    assert load(tmp_path / "alpha.png", mode="RGB").shape == (128, 128, 3)
    save(tmp_path / "round.png", rgb)
    assert np.array_equal(load(tmp_path / "round.png"), rgb)
    with pytest.raises(ValueError, match="JPEG cannot store an alpha channel"):
        save(tmp_path / "x.jpg", load(tmp_path / "alpha.png"))
