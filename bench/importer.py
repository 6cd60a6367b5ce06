"""`curate import` wall time and peak memory on a generated folder of 10k and 100k labels.csv rows.

    python bench/importer.py [--rows 10000,100000] [--runs 5] [--keep DIR]

The source folder is built once per size, outside the timing: 28x28 grayscale PNGs cut from the glyphs of
sample_media/ocr, each with a few pixels set from its row number so every file (and so every stored object) is
distinct, 1,000 files per sub-folder, and a labels.csv with path, label, tags, split, group and three metadata
columns (text, integer, float). Each run is a separate `curate import SRC --to TARGET --json` process into a fresh
target (the previous one is removed between runs, outside the timing; the source files stay in the page cache
after the first run). Printed per size: wall seconds min/median/max, CPU seconds min/median/max (user+sys from
os.wait4: the import process and the worker processes it waited for) and peak RSS in MB (ru_maxrss from os.wait4:
the largest of those processes, not their sum). On a shared machine the wall time depends on what else runs; the
CPU seconds much less. Every run must print the same fingerprint (the import is deterministic); the bench fails
otherwise. `--keep DIR` builds the folders in DIR and keeps them (re-used when present), e.g. to profile an import
by hand or to time another checkout on the same files (PYTHONPATH=OTHER_CHECKOUT python bench/importer.py ...).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PER_FOLDER = 1000


def build_folder(folder: Path, rows: int) -> Path:
    """SRC with `rows` distinct 28x28 PNGs and their labels.csv (deterministic); returns SRC."""
    from PIL import Image

    src = folder / f"src{rows}"
    if (src / "labels.csv").is_file():
        return src
    source = ROOT / "sample_media" / "ocr"
    with (source / "labels.csv").open(newline="") as f:
        glyphs = list(csv.DictReader(f))
    bases = [np.asarray(Image.open(source / g["path"]).convert("L"), dtype=np.uint8)[2:30, 2:30] for g in glyphs]
    splits = ("train", "train", "train", "dev", "test")
    out = []
    for k in range(rows):
        glyph = glyphs[k % len(glyphs)]
        pixels = bases[k % len(bases)].copy()
        pixels[0, :4] = np.frombuffer(int(k).to_bytes(4, "big"), dtype=np.uint8)  # distinct bytes per row
        name = f"{k // PER_FOLDER:03d}/{k:06d}.png"
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(src / name, compress_level=1)
        group = f"{glyph['group']}#{k // len(glyphs)}"
        out.append({"path": name, "label": glyph["label"], "tags": glyph["tags"], "split": splits[k % 5],
                    "group": group, "font_file": glyph["font_file"], "stroke": str(k % 7),
                    "score": f"{(k * 0.37) % 1:.4f}"})
    with (src / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)
    return src


def run_once(src: Path, target: Path, log: Path) -> tuple[float, float, float, str]:
    """One `curate import` process: (wall s, CPU s, peak RSS MB, fingerprint)."""
    exe = Path(sys.executable).parent / "curate"
    if target.exists():
        shutil.rmtree(target)
    with log.open("wb") as out:
        start = time.perf_counter()
        child = subprocess.Popen([str(exe), "import", str(src), "--to", str(target), "--json"], stdout=out,
                                 stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if child.returncode != 0:
        raise SystemExit(f"curate import failed (exit {child.returncode}):\n{text}")
    fingerprint = json.loads(text)["fingerprint"]
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, fingerprint


def spread(values: list[float]) -> str:
    return f"{min(values):7.2f} {statistics.median(values):7.2f} {max(values):7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="build (or re-use) the source folders here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.rows.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = []
        for rows in sizes:
            start = time.perf_counter()
            src = build_folder(folder, rows)
            print(f"{rows} rows: source folder ready in {time.perf_counter() - start:.1f} s", flush=True)
            walls, cpus, peaks, prints = [], [], [], set()
            for run in range(args.runs):
                wall, cpu, peak, fingerprint = run_once(src, Path(tmp) / "target", Path(tmp) / "log.txt")
                walls.append(wall)
                cpus.append(cpu)
                peaks.append(peak)
                prints.add(fingerprint)
                print(f"  run {run + 1}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, {peak:6.0f} MB peak RSS", flush=True)
            shutil.rmtree(Path(tmp) / "target", ignore_errors=True)
            if len(prints) != 1:
                raise SystemExit(f"{rows} rows: runs gave different fingerprints: {sorted(prints)}")
            results.append((rows, walls, cpus, peaks, prints.pop()))
    print(f"\n{'rows':>7s} | {'wall s min/med/max':>23s} | {'CPU s min/med/max':>23s} | "
          f"{'peak RSS MB min/med/max':>23s} | fingerprint")
    for rows, walls, cpus, peaks, fingerprint in results:
        print(f"{rows:7d} | {spread(walls)} | {spread(cpus)} | {spread(peaks)} | {fingerprint[:16]}")
    if len(results) >= 2:
        small, large = results[0], results[-1]
        ratio = statistics.median(large[3]) / statistics.median(small[3])
        print(f"peak RSS {large[0]} vs {small[0]} rows: {ratio:.2f}x")


if __name__ == "__main__":
    main()
