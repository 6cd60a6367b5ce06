"""Audio augmentation throughput: rubbersheet vs audiomentations 0.43.1, one thread, clips per second.

    pip install -e ".[bench]" && python bench/audio.py [--clips 200] [--runs 5] [--clock cpu|wall]

200 clips of 3 s at 16 kHz are built from sample_media/speech; the noise beds are sample_media/noise, stored once
at 16 kHz and once at 44.1 kHz. Every case runs once untimed (beds loaded, caches filled), then --runs rounds; a
round times every case on one block of clips (a twentieth of them) after another (bench/timing.py), on this
process's CPU time (--clock wall: elapsed time). Each rate is printed as median [min, max] over the rounds; each
ratio (rubbersheet over audiomentations, rubbersheet over the numpy limit) is taken within a round, both measured in
this process, and printed the same way.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse  # noqa: E402
import warnings  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from timing import measure, ratio, spread  # noqa: E402  (bench/timing.py, beside this file)

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_media"
RATE = 16000


def build_clips(count: int, seconds: float = 3.0) -> list[np.ndarray]:
    from augment.audio import load

    files = sorted((SAMPLE / "speech").glob("*/*.wav"))
    rng = np.random.default_rng(0)
    words = [load(f, sample_rate=RATE)[0] for f in files]
    clips = []
    length = int(seconds * RATE)
    for _ in range(count):
        parts, total = [], 0
        while total < length:
            word = words[int(rng.integers(len(words)))]
            parts.append(word)
            total += len(word)
        clips.append(np.concatenate(parts)[:length].astype(np.float32))
    return clips


def write_beds(folder: Path, rate: int) -> Path:
    from augment.audio import load

    out = folder / f"noise_{rate}"
    for path in sorted((SAMPLE / "noise").glob("*/*.wav")):
        audio, _ = load(path, sample_rate=rate, mono=True)
        target = out / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, audio, rate, subtype="PCM_16")
    return out


def rubbersheet_cases(beds16: Path, beds44: Path) -> dict:
    from augment import Compose
    from augment.audio import AddBackgroundNoise, Gain, LowBandwidth, Shift

    def runner(transform):
        return lambda clip, i: transform(clip, sample_rate=RATE, seed=i)

    shared = np.random.default_rng(0)

    def shared_runner(transform):
        return lambda clip, i: transform.apply(clip, sample_rate=RATE, rng=shared)[0]

    noise16 = AddBackgroundNoise(beds16, snr_db=(5, 20), snr_reference="rms", on_clip="allow")
    active16 = AddBackgroundNoise(beds16, snr_db=(5, 20), snr_reference="active", on_clip="allow")
    noise44 = AddBackgroundNoise(beds44, snr_db=(5, 20), snr_reference="rms", on_clip="allow")
    chain = Compose([AddBackgroundNoise(beds16, snr_db=(5, 20), snr_reference="rms"), Gain(gain_db=(-6, 6)),
                     LowBandwidth(), Shift(max_fraction=0.2)], on_clip="allow")
    return {"noise16": runner(noise16), "noise16_shared": shared_runner(noise16),
            "noise16_active": runner(active16), "noise44": runner(noise44), "chain": runner(chain)}


def audiomentations_cases(beds16: Path, beds44: Path) -> dict:
    import audiomentations as am

    def runner(transform):
        return lambda clip, i: transform(samples=clip, sample_rate=RATE)

    def noise(beds):
        return am.AddBackgroundNoise(sounds_path=str(beds), min_snr_db=5, max_snr_db=20, p=1.0)

    chain = am.Compose([noise(beds16), am.Gain(min_gain_db=-6, max_gain_db=6, p=1.0),
                        am.BandPassFilter(min_center_freq=1850, max_center_freq=1850, min_bandwidth_fraction=1.67,
                                          max_bandwidth_fraction=1.67, p=1.0),
                        am.Shift(min_shift=-0.2, max_shift=0.2, p=1.0)])
    return {"noise16": runner(noise(beds16)), "noise44": runner(noise(beds44)), "chain": runner(chain)}


def numpy_limit(beds16: Path) -> dict:
    from augment.audio import load

    beds = [load(p, mono=True)[0] for p in sorted(beds16.glob("*/*.wav"))]
    rng = np.random.default_rng(0)

    def run(clip, i):
        bed = beds[i % len(beds)]
        start = int(rng.integers(0, len(bed) - len(clip))) if len(bed) > len(clip) else 0
        segment = np.resize(bed[start:], len(clip))
        return clip + np.float32(0.3) * segment

    return {"numpy": run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this process's CPU time (default; other programs on the machine do not count); "
                             "wall: elapsed time")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*had to be resampled")  # audiomentations' per-call warning
    clips = build_clips(args.clips)
    with tempfile.TemporaryDirectory() as tmp:
        beds16, beds44 = write_beds(Path(tmp), 16000), write_beds(Path(tmp), 44100)
        cases = {f"ours:{k}": f for k, f in rubbersheet_cases(beds16, beds44).items()}
        try:
            cases.update({f"peer:{k}": f for k, f in audiomentations_cases(beds16, beds44).items()})
        except ImportError:
            print("audiomentations is not installed (pip install -e '.[bench]'): peer columns left empty")
        cases.update({f"limit:{k}": f for k, f in numpy_limit(beds16).items()})
        rates = measure(cases, clips, args.runs, args.clock)
    ours = {k.split(":", 1)[1]: v for k, v in rates.items() if k.startswith("ours:")}
    peer = {k.split(":", 1)[1]: v for k, v in rates.items() if k.startswith("peer:")}
    limit = rates["limit:numpy"]

    rows = [  # (case, our case, peer case, target ratio to audiomentations)
        ("noise mix, 16 kHz noise (rms SNR)", "noise16", "noise16", ">= 5x"),
        ("  same, one shared Generator (no seeding)", "noise16_shared", "noise16", ">= 5x"),
        ("noise mix, 16 kHz noise (active SNR)", "noise16_active", "noise16", ">= 5x"),
        ("noise mix, 44.1 kHz noise", "noise44", "noise44", ">= 5x"),
        ("4-step chain", "chain", "chain", ">= 3x"),
    ]
    print(f"\n{args.clips} clips x 3 s at 16 kHz, one thread, {args.runs} runs, {args.clock} clock; clips/s and "
          "ratios as median [min, max] over the runs (a ratio is taken within a run); rubbersheet seeds a Generator "
          "per clip (seed=i) unless stated, audiomentations uses its global RNG\n")
    print(f"{'case':42s} {'rubbersheet':>20s} {'audiomentations':>20s} {'ratio':>18s} {'target':>7s}")
    for name, key, peer_key, target in rows:
        peer_text = spread(peer[peer_key]).text() if peer_key in peer else "-"
        ratio_text = ratio(ours[key], peer[peer_key]).text(".2f", "x") if peer_key in peer else "-"
        print(f"{name:42s} {spread(ours[key]).text():>20s} {peer_text:>20s} {ratio_text:>18s} {target:>7s}")
    print(f"{'numpy limit x + g*n (in memory)':42s} {spread(limit).text():>20s}")
    print(f"\nnoise mix (rms SNR, seed per clip) / numpy limit: {ratio(ours['noise16'], limit).text('.2f')} "
          "(target >= 0.67)")
    print(f"44.1 kHz noise / 16 kHz noise (rubbersheet): {ratio(ours['noise44'], ours['noise16']).text('.2f')} "
          "(target >= 1.0 within noise: beds are resampled once and cached)")


if __name__ == "__main__":
    main()
