"""Image augmentation overhead: raw albumentations 2.0.8 vs the same pipeline through rubbersheet, one thread.

    python bench/image.py [--images 500] [--runs 3]

500 RGB 256x256 images are made from sample_media/inspection (the 128x128 patches upscaled 2x, bicubic). The
5-step pipeline is RandomBrightnessContrast, GaussNoise, MotionBlur, Affine(rotate), ImageCompression, each p=1.
rubbersheet seeds every item (seed=i) and every albumentations transform from it; raw albumentations is seeded once.
Reported: images/s (see measure()) and rubbersheet's overhead over raw.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from timing import measure  # noqa: E402  (bench/timing.py, beside this file)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    ("RandomBrightnessContrast", {"brightness_limit": 0.2, "contrast_limit": 0.2}),
    ("GaussNoise", {"std_range": (0.02, 0.08)}),
    ("MotionBlur", {"blur_limit": (3, 7)}),
    ("Affine", {"rotate": (-15, 15)}),
    ("ImageCompression", {"quality_range": (60, 95)}),
]


def build_images(count: int) -> list[np.ndarray]:
    from PIL import Image

    files = sorted((ROOT / "sample_media" / "inspection").glob("*/*.png"))
    images = []
    for i in range(count):
        with Image.open(files[i % len(files)]) as img:
            images.append(np.asarray(img.convert("RGB").resize((256, 256), Image.Resampling.BICUBIC)))
    return images


def main() -> None:
    import cv2

    cv2.setNumThreads(1)
    import albumentations as A

    from augment import Compose
    from augment.image import Albumentations, Scratch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    images = build_images(args.images)

    raw = A.Compose([getattr(A, name)(**params, p=1.0) for name, params in STEPS], seed=0)
    ours = Compose([Albumentations(name, **params) for name, params in STEPS])
    native = Albumentations(spec=A.to_dict(raw))
    scratch = Scratch()
    cases = {
        "raw albumentations Compose": lambda image, i: raw(image=image)["image"],
        "rubbersheet Compose of 5 Albumentations": lambda image, i: ours(image, seed=i),
        "rubbersheet wrapping the native Compose": lambda image, i: native(image, seed=i),
        "rubbersheet Scratch alone": lambda image, i: scratch(image, seed=i),
    }
    rates = measure(cases, images, args.runs)
    base = rates["raw albumentations Compose"]
    print(f"\n{args.images} RGB 256x256 images, one thread, median of {args.runs} runs\n")
    print(f"{'case':42s} {'images/s':>10s} {'overhead vs raw':>16s}")
    for name, rate in rates.items():
        overhead = "" if name.startswith("raw") or "Scratch" in name else f"{100 * (base / rate - 1):+.1f} %"
        print(f"{name:42s} {rate:10.0f} {overhead:>16s}")
    print("\ntarget: rubbersheet overhead <= 10 % over raw albumentations")


if __name__ == "__main__":
    main()
