"""How long the curation gate takes at 10,000 items (sample_media replicated with small perturbations).

    python bench/checks.py [--items 10000] [--media image|audio]

Prints seconds for: import (hash + decode every file), features the first time (embeddings, metrics, hashes;
cached per object afterwards), and each check of the gate with features cached. A quarter of the items are
marked augmented (copies of train items) so the realism check has work to do.
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def build_folder(folder: Path, items: int, media: str) -> None:
    import csv

    import soundfile as sf
    from PIL import Image

    source = ROOT / "sample_media" / ("inspection" if media == "image" else "speech")
    with (source / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    out_rows = []
    for k in range(items):
        row = rows[k % len(rows)]
        name = f"{k:05d}.{'png' if media == 'image' else 'wav'}"
        if media == "image":
            pixels = np.asarray(Image.open(source / row["path"]).convert("RGB"), dtype=np.int16)
            pixels = np.clip(pixels + rng.integers(-3, 4, size=pixels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name, compress_level=1)
        else:
            audio, rate = sf.read(source / row["path"], dtype="float32")
            audio = audio * np.float32(10 ** (rng.uniform(-3, 3) / 20)) + rng.normal(0, 1e-4, len(audio)).astype(np.float32)
            buffer = io.BytesIO()
            sf.write(buffer, np.clip(audio, -1, 1), rate, format="WAV", subtype="PCM_16")
            (folder / name).write_bytes(buffer.getvalue())
        group = f"{row.get('group') or row['path']}#{k // len(rows)}"
        split = ["train", "train", "train", "dev", "test"][hash(group) % 5] if media == "image" else row.get("split")
        out_rows.append({"path": name, "label": row["label"], "tags": row["tags"], "group": group, "split": split})
    with (folder / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "tags", "group", "split"])
        writer.writeheader()
        writer.writerows(out_rows)


def main() -> None:
    import pandas as pd

    from curate.checks.gate import parse_config, run_gate
    from curate.features import audio_fingerprints, embeddings, metrics, pixel_thumbnails
    from curate.importer import import_folder
    from curate.view import MemoryView

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--media", choices=["image", "audio"], default="image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "src"
        folder.mkdir()
        start = time.perf_counter()
        build_folder(folder, args.items, args.media)
        built = time.perf_counter() - start
        start = time.perf_counter()
        version = import_folder(folder, Path(tmp) / "ds").version
        imported = time.perf_counter() - start
        frame = version.manifest.copy()
        train = frame[frame["split"] == "train"].index[: args.items // 4]
        frame.loc[train, "origin"] = "augmented"
        frame.loc[train, "source_id"] = frame.loc[train, "id"]
        candidate = MemoryView(version.dataset, pd.DataFrame(frame))
        start = time.perf_counter()
        embeddings(candidate)
        metrics(candidate)
        (pixel_thumbnails if args.media == "image" else audio_fingerprints)(candidate)  # near-duplicate features
        features = time.perf_counter() - start
        start = time.perf_counter()
        result = run_gate(candidate, None, parse_config({}))  # no parent: every augmented item is judged
        gate = time.perf_counter() - start
    print(f"\n{args.items} {args.media} items (sample_media replicated with perturbations), 1 process\n")
    print(f"{'step':34s} {'seconds':>8s}")
    for name, seconds in (("build test folder", built), ("curate import (hash + decode)", imported),
                          ("features, first time", features), ("gate, features cached", gate)):
        print(f"{name:34s} {seconds:8.1f}")
    for name, seconds in result.seconds.items():
        print(f"  {name:32s} {seconds:8.1f}")
    print(f"\ngate: passed={result.passed} counts={result.counts}")


if __name__ == "__main__":
    main()
