"""Image augmentation overhead: raw albumentations 2.0.8 vs the same pipeline through rubbersheet, one thread.

    python bench/image.py [--images 500] [--runs 5] [--clock cpu|wall]

500 RGB 256x256 images are made from sample_media/inspection (the 128x128 patches upscaled 2x, bicubic). The
5-step pipeline is RandomBrightnessContrast, GaussNoise, MotionBlur, Affine(rotate), ImageCompression, each p=1.
rubbersheet seeds every item (seed=i) and every albumentations transform from it; raw albumentations is seeded once.
Reported: images/s per case and rubbersheet's overhead over raw albumentations, each as median [min, max] over the
--runs rounds (bench/timing.py: a round times every case on one block of images, a twentieth of them, after another,
on this process's CPU time unless --clock wall; an overhead is taken within a round).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from timing import measure, overhead, spread  # noqa: E402  (bench/timing.py, beside this file)

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
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this process's CPU time (default; other programs on the machine do not count); "
                             "wall: elapsed time")
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
    rates = measure(cases, images, args.runs, args.clock)
    base = rates["raw albumentations Compose"]
    print(f"\n{args.images} RGB 256x256 images, one thread, {args.runs} runs, {args.clock} clock; median [min, max] "
          "over the runs (an overhead is taken within a run)\n")
    print(f"{'case':42s} {'images/s':>18s} {'overhead vs raw':>26s}")
    for name, rate in rates.items():
        if name.startswith("raw") or "Scratch" in name:
            extra = ""
        else:
            extra = overhead(rate, base).text("+.1f", " %")
        print(f"{name:42s} {spread(rate).text():>18s} {extra:>26s}")
    print("\ntarget: rubbersheet overhead <= 5 % over raw albumentations, stable over the runs")


if __name__ == "__main__":
    main()
