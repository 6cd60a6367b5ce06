"""The whole loop, stage by stage: import, baseline, errors, a from_errors recipe with the gate and the evaluation.

    python bench/loop.py [--media image,audio] [--items 4000] [--runs 5] [--keep DIR]

Two generated datasets, both built from sample_media and unlike it in shape, size and split layout:
  image: 28x28 grayscale glyphs (sample_media/ocr: I, l, 1, O, 0 in 18 font/weight styles), each drawn with its own
         shift, scale and noise; train/dev only (no test split); tags = font and weight.
  audio: sample_media/speech clips resampled to 8 kHz mono, each copy with its own gain, tail trim and faint noise;
         train/dev only (the sample's voice-disjoint splits, test folded into dev); the clips' own tags.
Every stage is a separate CLI process, as a user runs it; its wall time and peak RSS (wait4's ru_maxrss of that
process tree) are recorded. Each run starts from a fresh dataset folder (nothing cached), and min/median/max over
--runs runs are printed per stage. The targets of issue 22 are printed beside them.
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
SAMPLE = ROOT / "sample_media"
TARGETS = {"recipe": 60.0, "baseline": 15.0}

IMAGE_RECIPE = """\
name: loop_ocr
dataset: {dataset}
seed: 1
target: {{from_errors: {errors}, top: 2}}
pipeline:
  - Albumentations: {{name: Affine, rotate: [-6, 6], scale: [0.92, 1.08], fill: 255}}
  - Albumentations: {{name: GaussNoise, std_range: [0.02, 0.06]}}
sources:
  where: {{split: train}}
budget: {budget}
evaluate:
  baseline: {{model: logreg}}
"""

AUDIO_RECIPE = """\
name: loop_speech
dataset: {dataset}
seed: 1
target: {{from_errors: {errors}, top: 2}}
pipeline:
  - AddBackgroundNoise: {{noise: {noise}, snr_db: [0, 10]}}
  - Gain: {{gain_db: [-4, 4]}}
sources:
  where: {{split: train}}
budget: {budget}
evaluate:
  baseline: {{model: logreg}}
"""


def write_labels(folder: Path, rows: list[dict]) -> None:
    with (folder / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def build_images(folder: Path, items: int) -> None:
    from PIL import Image

    source = SAMPLE / "ocr"
    with (source / "labels.csv").open(newline="") as f:
        glyphs = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    rows = []
    for k in range(items):
        glyph = glyphs[k % len(glyphs)]
        image = Image.open(source / glyph["path"]).convert("L")
        side = int(rng.integers(22, 29))
        small = np.asarray(image.resize((side, side), Image.BILINEAR), dtype=np.float32)
        canvas = np.full((28, 28), 255.0, dtype=np.float32)
        dy, dx = rng.integers(0, 28 - side + 1, size=2)
        canvas[dy:dy + side, dx:dx + side] = small
        canvas += rng.normal(0, 6, canvas.shape)
        name = f"{k:05d}.png"
        Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="L").save(folder / name, compress_level=1)
        writer = f"w{k // len(glyphs)}"  # one "writer" draws every glyph once: the leakage group
        rows.append({"path": name, "label": glyph["label"], "tags": glyph["tags"], "group": writer,
                     "split": "dev" if (k // len(glyphs)) % 5 == 0 else "train"})
    write_labels(folder, rows)


def build_audio(folder: Path, items: int) -> None:
    import soundfile as sf
    from augment.audio import load

    source = SAMPLE / "speech"
    with (source / "labels.csv").open(newline="") as f:
        clips = list(csv.DictReader(f))
    audio = [load(source / c["path"], sample_rate=8000, mono=True)[0] for c in clips]
    rng = np.random.default_rng(0)
    rows = []
    for k in range(items):
        i = k % len(clips)
        x = audio[i][: max(800, len(audio[i]) - int(rng.integers(0, 800)))]
        x = x * np.float32(10 ** (rng.uniform(-6, 3) / 20)) + rng.normal(0, 3e-4, len(x)).astype(np.float32)
        buffer = io.BytesIO()
        sf.write(buffer, np.clip(x, -1, 1), 8000, format="WAV", subtype="PCM_16")
        name = f"{k:05d}.wav"
        (folder / name).write_bytes(buffer.getvalue())
        speaker = clips[i].get("group") or clips[i]["path"]
        # the sample's own voice-disjoint splits, its test voices folded into dev: no voice is in both
        rows.append({"path": name, "label": clips[i]["label"], "tags": clips[i]["tags"], "group": speaker,
                     "split": "train" if clips[i]["split"] == "train" else "dev"})
    write_labels(folder, rows)


def run_stage(command: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MB, exit code, last output line) of one CLI process."""
    exe = Path(sys.executable).parent / command[0]
    start = time.perf_counter()
    proc = subprocess.Popen([str(exe), *command[1:]], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONHASHSEED": "0"})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = out.decode(errors="replace").strip().splitlines()
    return seconds, usage.ru_maxrss / 1024.0, proc.returncode, lines[-1] if lines else ""


def one_loop(media: str, source: Path, work: Path, budget: int, verbose: bool) -> dict[str, tuple[float, float]]:
    dataset, baseline, errors = work / "ds", work / "baseline.csv", work / "errors.json"
    recipe = work / "recipe.yaml"
    template = IMAGE_RECIPE if media == "image" else AUDIO_RECIPE
    recipe.write_text(template.format(dataset=dataset, errors=errors, budget=budget,
                                      noise=SAMPLE / "noise" / "cafe"))
    stages = {
        "import": ["curate", "import", str(source), "--to", str(dataset)],
        "baseline": ["curate", "baseline", str(dataset), "--to", str(baseline)],
        "errors": ["curate", "errors", str(baseline), "--dataset", str(dataset), "--json-out", str(errors)],
        "recipe": ["augment", "run", str(recipe)],
    }
    result = {}
    for name, command in stages.items():
        seconds, rss, code, last = run_stage(command, work)
        if code not in (0, 1):  # 1: the gate refused; still a complete loop
            raise SystemExit(f"{media} {name} exited {code}: {last}")
        if verbose:
            print(f"  {media:5s} {name:8s} {seconds:7.1f} s {rss:7.0f} MB  {last[:100]}", flush=True)
        result[name] = (seconds, rss)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--media", default="image,audio")
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", type=int, default=800, help="items the recipe adds")
    parser.add_argument("--keep", type=Path, help="keep the generated folders and datasets here")
    parser.add_argument("--quiet", action="store_true", help="print only the summary table")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="rubbersheet-loop-"))
    base.mkdir(parents=True, exist_ok=True)
    summary = []
    try:
        for media in [m.strip() for m in args.media.split(",") if m.strip()]:
            source = base / f"{media}-{args.items}"
            if not (source / "labels.csv").exists():
                source.mkdir(parents=True, exist_ok=True)
                (build_images if media == "image" else build_audio)(source, args.items)
            runs: dict[str, list[tuple[float, float]]] = {}
            for run in range(args.runs):
                work = base / f"{media}-run{run}"
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                for stage, figures in one_loop(media, source, work, args.budget, not args.quiet).items():
                    runs.setdefault(stage, []).append(figures)
                if not args.keep:
                    shutil.rmtree(work, ignore_errors=True)
            summary.append((media, runs))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\n{args.items} items, +{args.budget} by the recipe, {args.runs} run(s); seconds and peak RSS (MB)")
    print(f"{'media':6s} {'stage':9s} {'min s':>7s} {'median s':>9s} {'max s':>7s} {'median MB':>10s} {'target':>8s}")
    for media, runs in summary:
        total = [sum(r[i][0] for r in runs.values()) for i in range(args.runs)]
        for stage, figures in list(runs.items()) + [("loop", [(t, 0.0) for t in total])]:
            seconds = [s for s, _ in figures]
            rss = statistics.median(m for _, m in figures)
            target = f"<= {TARGETS[stage]:.0f} s" if stage in TARGETS else ""
            print(f"{media:6s} {stage:9s} {min(seconds):7.1f} {statistics.median(seconds):9.1f} {max(seconds):7.1f} "
                  f"{rss:10.0f} {target:>8s}")


if __name__ == "__main__":
    main()
