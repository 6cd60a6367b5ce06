"""Recipe runner throughput and memory: the speech noise recipe on 1k and 10k source items, 1 and 2 workers.

    python bench/recipe.py [--sizes 1000,10000] [--workers 1,2,ray]   # "ray": a local Ray instance

Source datasets are sample_media/speech replicated (each copy re-levelled by a tiny random gain so every object is
distinct), all in train. The recipe mixes real cafe noise into every source (budget = sources). The gate runs only
the leakage check without near-duplicates (no features needed) so the figures are the runner's own; `bench/checks.py` times the
full gate. Each run is a separate `augment run` process: items/s over its wall time, and its peak RSS
(ru_maxrss of the process tree).
"""
from __future__ import annotations

import argparse
import csv
import io
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RECIPE = """\
name: bench_noise
dataset: {dataset}
seed: 1
target: {{tags: [cafe_noise]}}
pipeline:
  - AddBackgroundNoise: {{noise: {noise}, snr_db: [0, 10]}}
  - Gain: {{gain_db: [-3, 3]}}
sources: {{where: {{split: train}}}}
budget: {budget}
curation: {{checks: [leakage], leakage: {{near_duplicates: false}}}}
"""


def build_dataset(folder: Path, items: int) -> Path:
    import soundfile as sf

    from curate.importer import import_folder

    source = ROOT / "sample_media" / "speech"
    with (source / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    src = folder / f"src{items}"
    src.mkdir()
    rng = np.random.default_rng(0)
    out = []
    for k in range(items):
        row = rows[k % len(rows)]
        audio, rate = sf.read(source / row["path"], dtype="float32")
        buffer = io.BytesIO()
        sf.write(buffer, audio * np.float32(10 ** (rng.uniform(-1, 0) / 20)), rate, format="WAV", subtype="PCM_16")
        (src / f"{k:05d}.wav").write_bytes(buffer.getvalue())
        out.append({"path": f"{k:05d}.wav", "label": row["label"], "tags": row["tags"],
                    "group": f"{row['group']}#{k // len(rows)}", "split": "train"})
    with (src / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)
    return import_folder(src, folder / f"ds{items}").version.dataset.path


def run_once(dataset: Path, items: int, workers: str, folder: Path) -> tuple[float, float]:
    recipe = folder / f"recipe{items}.yaml"
    recipe.write_text(RECIPE.format(dataset=dataset, noise=ROOT / "sample_media" / "noise" / "cafe", budget=items))
    out = folder / f"out{items}-{workers}"
    exe = Path(sys.executable).parent / "augment"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    engine = ["--executor", "ray"] if workers == "ray" else ["--workers", workers]
    subprocess.run([str(exe), "run", str(recipe), "--out", str(out), *engine], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return items / seconds, max(peak, before) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [w.strip() for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in sizes:
            dataset = build_dataset(folder, size)
            for w in workers:
                rate, peak = run_once(dataset, size, w, folder)
                rows.append((size, w, rate, peak))
    print(f"\n{'sources':>8s} {'workers':>8s} {'items/s':>9s} {'peak RSS MB':>12s}")
    for size, w, rate, peak in rows:
        print(f"{size:8d} {w:>8s} {rate:9.1f} {peak:12.0f}")
    by = {(s, w): (r, p) for s, w, r, p in rows}
    for size in sizes:
        if (size, "1") in by and (size, "2") in by:
            print(f"{size} sources: 2 workers = {by[(size, '2')][0] / by[(size, '1')][0]:.2f}x one worker "
                  "(target >= 1.7x; the machine has 2 cores)")
        if (size, "ray") in by and (size, "2") in by:
            print(f"{size} sources: local Ray = {by[(size, 'ray')][0] / by[(size, '2')][0]:.2f}x the 2-worker pool "
                  "(Ray start-up included)")
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        ratio = by[(large, workers[0])][1] / by[(small, workers[0])][1]
        print(f"peak RSS {large} vs {small} sources: {ratio:.2f}x (target <= 1.2x; note ru_maxrss only grows, so "
              "runs are ordered small to large)")


if __name__ == "__main__":
    main()
