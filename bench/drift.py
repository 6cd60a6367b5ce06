"""Calibration of `curate drift` on small production samples (figures quoted in curate/drift.py and the README).

Reference: the 250 real clips of sample_media/speech. Production: random subsets of n of the same clips (no drift),
and of the same clips played 12 dB louder or band-limited to 8 kHz sampling (drift). For each case and size it
counts the runs that `compare` fails (exit 1), with the current rule and with the old one (PSI over the reference's
deciles, floor 1e-4, > 0.25 on any metric).

    python bench/drift.py [--seeds 200] [--sizes 10,15,20,25,30,50] [--alpha 0.05]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from augment.audio import LowBandwidth  # noqa: E402
from curate.drift import compare, folder_metrics  # noqa: E402


def old_rule_fails(reference, production) -> bool:
    for column in reference.columns:
        a, b = reference[column].to_numpy(float), production[column].to_numpy(float)
        edges = np.unique(np.quantile(a, np.linspace(0, 1, 11)))
        if len(edges) < 2:
            continue
        edges[0], edges[-1] = -np.inf, np.inf
        e = np.maximum(np.histogram(a, edges)[0] / len(a), 1e-4)
        p = np.maximum(np.histogram(b, edges)[0] / len(b), 1e-4)
        if np.sum((p - e) * np.log(p / e)) > 0.25:
            return True
    return False


def shifted(files, folder: Path, kind: str) -> Path:
    out = folder / kind
    out.mkdir()
    for path in files:
        audio, rate = sf.read(path, dtype="float32")
        if kind.startswith("gain+"):
            gain = float(kind[len("gain+"):-len("dB")])
            audio, out_rate = audio * np.float32(10 ** (gain / 20)), rate
        elif kind == "telephone":
            audio, out_rate = LowBandwidth(band=(300, 3400), rate=8000)(audio, sample_rate=rate, seed=0), rate
        else:
            audio, out_rate = soxr.resample(audio, rate, 8000), 8000
        sf.write(out / f"{path.parent.name}__{path.name}", np.clip(audio, -1, 1), out_rate, subtype="PCM_16")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--sizes", default="10,15,20,25,30,50")
    parser.add_argument("--shifts", default="gain+12dB,8kHz,telephone",
                        help="gain+XdB (any X), 8kHz (resampled to 8 kHz), telephone (LowBandwidth 300-3400 Hz)")
    parser.add_argument("--alpha", type=float, default=None, help="override curate.drift.ALPHA")
    args = parser.parse_args()
    if args.alpha is not None:
        import curate.drift

        curate.drift.ALPHA = args.alpha
    sizes = [int(s) for s in args.sizes.split(",")]
    files = sorted((ROOT / "sample_media" / "speech").glob("*/*.wav"))
    reference, _ = folder_metrics(ROOT / "sample_media" / "speech")
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"same source": reference}
        for kind in args.shifts.split(","):
            frame, _ = folder_metrics(shifted(files, Path(tmp), kind))
            frame.index = [i.replace("__", "/", 1) for i in frame.index]
            cases[kind] = frame.loc[reference.index]
    import curate.drift

    print(f"reference: {len(reference)} real clips, {reference.shape[1]} metrics; {args.seeds} seeds per cell; "
          f"alpha {curate.drift.ALPHA}")
    print(f"{'case':12} {'n':>4} {'fails (rule)':>13} {'fails (old)':>12} {'too few':>8}  metrics flagged")
    for case, frame in cases.items():
        for n in sizes:
            fails = old = too_few = 0
            flagged: dict[str, int] = {}
            for seed in range(args.seeds):
                pick = np.random.default_rng(seed).choice(len(frame), n, replace=False)
                production = frame.iloc[pick]
                result = compare(reference, production)
                fails += not result["passed"]
                too_few += not result["judged"]
                old += old_rule_fails(reference, production)
                for name, m in result["metrics"].items():
                    if m["verdict"] == "significant":
                        flagged[name] = flagged.get(name, 0) + 1
            top = ", ".join(f"{k} {v}" for k, v in sorted(flagged.items(), key=lambda kv: -kv[1])[:3])
            print(f"{case:12} {n:>4} {fails:>9}/{args.seeds} {old:>8}/{args.seeds} {too_few:>8}  {top}")


if __name__ == "__main__":
    main()
