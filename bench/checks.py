"""How the curation gate scales: seconds per check at several sizes (items drawn from sample_media, see build_folder).

    python bench/checks.py [--items 1000,10000,50000] [--media image|audio] [--runs 5]

Each size runs in its own process (its peak RSS is that process's, from wait4): import (hash + decode every file),
features the first time (embeddings, metrics, hashes; cached per object afterwards), then the gate --runs times
with features cached, min/median/max per check. A quarter of the items are marked augmented (copies of train items)
so the realism check has work to do. Between successive sizes the exponent b of time ~ n^b is printed per check
(median times): 1 is linear, 2 is all pairs; n log n between 10k and 50k reads as about 1.15.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def build_folder(folder: Path, items: int, media: str) -> None:
    """`items` distinct files and a labels.csv, 1,000 files per sub-folder, splits train/train/train/dev/test by
    writer (image) or the sample's own (audio). Every item is drawn with its own continuous parameters, so that,
    as in real data, near-duplicates are rare: copies of a few sample files with faint noise (this bench before)
    made each item a near-duplicate of 1/60 of the set, and the near-duplicate pairs grew with n^2 up to their
    per-item cap.
      image: 28x28 grayscale glyphs of sample_media/ocr (5 labels, 18 font/weight styles), each turned by
             -12..12 deg, scaled 0.7..1.0, sheared, moved by up to 2.5 px, its stroke blurred or not, on a
             background of its own level, with sensor noise.
      audio: sample_media/speech clips at 16 kHz, each sped up or slowed down by -8..+8 % (pitch and length
             change), with another clip of the sample 12-24 dB below it (RMS) and noise 25-40 dB below."""
    import csv

    import cv2
    import soundfile as sf
    from PIL import Image

    source = ROOT / "sample_media" / ("ocr" if media == "image" else "speech")
    with (source / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    if media == "image":
        glyphs = [np.asarray(Image.open(source / r["path"]).convert("L").resize((28, 28), Image.BILINEAR),
                          dtype=np.float32) for r in rows]
    else:
        from augment.audio import load

        clips = [load(source / r["path"], sample_rate=16000, mono=True)[0] for r in rows]
    out_rows = []
    for k in range(items):
        n = k % len(rows)
        row = rows[n]
        name = f"d{k // 1000:03d}/{k:06d}.{'png' if media == 'image' else 'wav'}"
        (folder / name).parent.mkdir(exist_ok=True)
        if media == "image":
            angle, scale, shear = rng.uniform(-12, 12), rng.uniform(0.7, 1.0), rng.uniform(-0.15, 0.15)
            matrix = cv2.getRotationMatrix2D((13.5, 13.5), angle, scale)
            matrix[0, 1] += shear
            matrix[:, 2] += rng.uniform(-2.5, 2.5, 2)
            background = rng.uniform(200, 255)
            ink = 255.0 - glyphs[n]
            if rng.random() < 0.5:
                ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.4, 1.0))
            drawn = background - cv2.warpAffine(ink, matrix, (28, 28), flags=cv2.INTER_LINEAR) * (background / 255)
            drawn += rng.normal(0, rng.uniform(2, 8), drawn.shape)
            Image.fromarray(np.clip(drawn, 0, 255).astype(np.uint8), mode="L").save(folder / name, compress_level=1)
            group = f"w{k // len(rows)}"
            split = ["train", "train", "train", "dev", "test"][zlib.crc32(group.encode()) % 5]
        else:
            speed = rng.uniform(0.92, 1.08)
            clip = clips[n]
            at = np.arange(0, len(clip) - 1, speed)
            audio = np.interp(at, np.arange(len(clip)), clip).astype(np.float32)
            other = clips[int(rng.integers(len(clips)))]
            other = np.resize(other, len(audio))
            level = np.sqrt(np.mean(audio ** 2)) + 1e-6
            below = 10 ** (-rng.uniform(12, 24) / 20)
            other = other * np.float32(level / (np.sqrt(np.mean(other ** 2)) + 1e-6) * below)
            audio = audio + other + rng.normal(0, level * 10 ** (-rng.uniform(25, 40) / 20), len(audio)).astype(
                np.float32)
            buffer = io.BytesIO()
            sf.write(buffer, np.clip(audio, -1, 1), 16000, format="WAV", subtype="PCM_16")
            (folder / name).write_bytes(buffer.getvalue())
            group = f"{row.get('group') or row['path']}#{k // len(rows)}"
            split = row.get("split")
        out_rows.append({"path": name, "label": row["label"], "tags": row["tags"], "group": group, "split": split})
    with (folder / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "tags", "group", "split"])
        writer.writeheader()
        writer.writerows(out_rows)


def one_size(items: int, media: str, runs: int) -> dict:
    import pandas as pd

    from curate.checks.gate import parse_config, run_gate
    from curate.features import audio_fingerprints, embeddings, metrics, pixel_thumbnails
    from curate.importer import import_folder
    from curate.view import MemoryView

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "src"
        folder.mkdir()
        start = time.perf_counter()
        build_folder(folder, items, media)
        built = time.perf_counter() - start
        start = time.perf_counter()
        version = import_folder(folder, Path(tmp) / "ds").version
        imported = time.perf_counter() - start
        frame = version.manifest.copy()
        train = frame[frame["split"] == "train"].index[: items // 4]
        frame.loc[train, "origin"] = "augmented"
        frame.loc[train, "source_id"] = frame.loc[train, "id"]
        start = time.perf_counter()
        candidate = MemoryView(version.dataset, pd.DataFrame(frame))
        embeddings(candidate)
        metrics(candidate)
        (pixel_thumbnails if media == "image" else audio_fingerprints)(candidate)  # near-duplicate features
        features = time.perf_counter() - start
        gates = []
        for _ in range(runs):
            candidate = MemoryView(version.dataset, pd.DataFrame(frame))   # nothing memoised from the last run
            start = time.perf_counter()
            result = run_gate(candidate, None, parse_config({}))  # no parent: every augmented item is judged
            gates.append({"gate": time.perf_counter() - start, **result.seconds})
    return {"items": items, "build": built, "import": imported, "features": features, "gates": gates,
            "passed": result.passed, "counts": result.counts,
            "findings": [f"{f.check} {f.severity}: {f.message[:160]}" for f in result.findings if f.severity != "info"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", default="1000,10000")
    parser.add_argument("--media", choices=["image", "audio"], default="image")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process: one size, JSON
    args = parser.parse_args()
    sizes = [int(s) for s in args.items.split(",")]
    if args.one:
        print(json.dumps(one_size(sizes[0], args.media, args.runs)))
        return
    results = []
    for size in sizes:
        proc = subprocess.Popen([sys.executable, __file__, "--one", "--items", str(size), "--media", args.media,
                                 "--runs", str(args.runs)], stdout=subprocess.PIPE)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{size} items: the measuring process failed")
        results.append({**json.loads(out), "rss_mb": usage.ru_maxrss / 1024})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)   # each size as it is measured (hours at 200k)
    print(f"\n{args.media}: items drawn from sample_media (build_folder); gate with features cached, "
          f"{args.runs} run(s)")
    print(f"{'items':>7s} {'import s':>9s} {'features s':>11s} {'peak MB':>8s}")
    for r in results:
        print(f"{r['items']:7d} {r['import']:9.1f} {r['features']:11.1f} {r['rss_mb']:8.0f}")
    steps = list(results[0]["gates"][0])
    print(f"\n{'check':12s} " + " ".join(f"{str(r['items']) + ' min/med/max s':>24s}" for r in results)
          + "  exponent(s)")
    for step in steps:
        cells, medians = [], []
        for r in results:
            values = [g[step] for g in r["gates"]]
            medians.append(statistics.median(values))
            cells.append(f"{min(values):6.2f} {medians[-1]:7.2f} {max(values):7.2f}".rjust(24))
        exponents = [math.log(max(b, 1e-3) / max(a, 1e-3)) / math.log(nb / na)
                     for (a, na), (b, nb) in zip(zip(medians, sizes), zip(medians[1:], sizes[1:]))]
        print(f"{step:12s} " + " ".join(cells) + "  " + " ".join(f"{e:5.2f}" for e in exponents))
    for r in results:
        print(f"\n{r['items']} items: gate passed={r['passed']} counts={r['counts']}")
        for line in r["findings"]:
            print(f"  {line}")


if __name__ == "__main__":
    main()
