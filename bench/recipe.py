"""Recipe runner throughput and memory: the speech noise recipe on 1k and 10k source items, 1 and 2 workers.

    python bench/recipe.py [--sizes 1000,10000] [--workers 1,2,ray]   # "ray": a local Ray instance

Source datasets are sample_media/speech replicated (each copy re-levelled by a tiny random gain so every object is
distinct), all in train. The recipe mixes real cafe noise into every source (budget = sources) and writes into a new
dataset (--out), so the parent's objects are brought in (hard links). The gate runs only the leakage check without
near-duplicates (no features needed) so the figures are the runner's own; `bench/checks.py` times the full gate
on its own, and --gate full runs every check of the default gate in the recipe (the whole `augment run`, with
--budget as a share of the sources; the output's manifest is printed beside the peak RSS).
One untimed run per size comes first: the first run after the parent was built took 38 s of CPU, the next 19.5 s
(nothing is cached in the parent: most likely the disk still writing back the 10k files just built), so timing it
would charge whichever worker count ran first. Each run is a separate `augment run`
process: items/s over its wall time, its peak RSS (wait4's ru_maxrss: the largest process of that tree) and its CPU
time; --runs runs per size and worker count, interleaved, min/median/max printed, and the 2-worker / 1-worker ratio
per run.
"""
from __future__ import annotations

import argparse
import csv
import io
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
{curation}"""
RUNNER_ONLY = "curation: {checks: [leakage], leakage: {near_duplicates: false}}\n"


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


def run_once(dataset: Path, items: int, workers: str, folder: Path, run: int, full_gate: bool = False,
             budget: float = 1.0) -> tuple[float, float, float, float]:
    """(items/s over the wall time, peak RSS MB of the process tree, CPU seconds, MB of the output's manifest in
    memory) of one `augment run` process."""
    recipe = folder / f"recipe{items}.yaml"
    recipe.write_text(RECIPE.format(dataset=dataset, noise=ROOT / "sample_media" / "noise" / "cafe",
                                    budget=max(1, round(items * budget)), curation="" if full_gate else RUNNER_ONLY))
    out = folder / f"out{items}-{workers}-{run}"
    exe = Path(sys.executable).parent / "augment"
    engine = ["--executor", "ray"] if workers == "ray" else ["--workers", workers]
    start = time.perf_counter()
    log = folder / f"run{items}-{workers}-{run}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([str(exe), "run", str(recipe), "--to", str(out), *engine],
                                stdout=subprocess.DEVNULL, stderr=sink, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)   # this process tree's own peak, not the bench's running maximum
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SystemExit(f"augment run exited {os.waitstatus_to_exitcode(status)} ({items} sources, "
                         f"{workers}):\n{tail}")
    import curate

    manifest = curate.open(out).load().manifest.memory_usage(deep=True).sum() / 2**20
    shutil.rmtree(out, ignore_errors=True)
    return items / seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime, manifest


def spread(values: list[float]) -> str:
    return f"{min(values):8.2f} {statistics.median(values):8.2f} {max(values):8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gate", choices=("runner", "full"), default="runner",
                        help="runner: the leakage check without near-duplicates (default); full: the default gate")
    parser.add_argument("--budget", type=float, default=1.0, help="items the recipe makes, as a share of the sources")
    args = parser.parse_args()
    options = {"full_gate": args.gate == "full", "budget": args.budget}
    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [w.strip() for w in args.workers.split(",")]
    runs: dict[tuple[int, str], list[tuple[float, float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in sizes:
            dataset = build_dataset(folder, size)
            # untimed: the first run after the build ran at half speed (see the docstring)
            run_once(dataset, size, workers[0], folder, -1, **options)
            for run in range(args.runs):   # interleaved, so a busy spell slows every worker count alike
                for w in workers:
                    runs.setdefault((size, w), []).append(run_once(dataset, size, w, folder, run, **options))
    print(f"\n{args.runs} run(s) each; min / median / max")
    print(f"{'sources':>8s} {'workers':>8s} {'items/s':>26s} {'peak RSS MB':>26s} {'CPU s':>26s} "
          f"{'manifest MB':>12s}")
    for (size, w), figures in runs.items():
        print(f"{size:8d} {w:>8s} " + "  ".join(spread([f[i] for f in figures]) for i in range(3))
              + f" {statistics.median(f[3] for f in figures):12.1f}")
    for size in sizes:
        for other, name, target in (("2", "2 workers", "target >= 1.7x; the machine has 2 cores"),
                                    ("ray", "local Ray", "Ray start-up included")):
            if (size, "1") in runs and (size, other) in runs:
                ratios = [b[0] / a[0] for a, b in zip(runs[(size, "1")], runs[(size, other)])]
                print(f"{size} sources: {name} / 1 worker, per run: {spread(ratios)} ({target})")
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        ratio = statistics.median(f[1] for f in runs[(large, workers[0])]) / \
            statistics.median(f[1] for f in runs[(small, workers[0])])
        print(f"peak RSS {large} vs {small} sources ({workers[0]} worker(s), medians): {ratio:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
