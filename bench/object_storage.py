"""A dataset on local storage vs on s3:// (moto's S3 server on 127.0.0.1): `curate import sample_media/speech`,
`augment run recipes/speech_cafe_noise.yaml` (60 new items, gate and baseline evaluation) and `curate verify`.

    pip install -e ".[test]" && python bench/object_storage.py [--runs 3] [--workers 2]

Each step is a separate CLI process (as a user runs it), timed from outside. Printed per storage and step: wall
seconds min/median/max over the runs, items per second at the median (import: the items imported; run: the new
items; verify: the objects re-hashed) and peak RSS in MB (ru_maxrss from os.wait4: the largest process of the
step, its pool workers included, not their sum). Every run starts from an empty dataset and, for s3://, an empty
read-through cache (RUBBERSHEET_CACHE). The fingerprints of v0001 and v0002 must be the same on both storages and
in every run; the bench fails otherwise. moto is a Python server on the same machine: it competes for the CPU with
the steps it serves, so the s3:// times say what the protocol costs in requests here, not what a real S3 costs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("import", "run", "verify")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one process; fails the bench when it fails."""
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            err.seek(0)
            sys.exit(f"bench: {' '.join(command)} failed ({process.returncode}): {err.read().strip()[-300:]}")
    return wall, usage.ru_maxrss / 1024


def fingerprint(dataset: str, version: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "curate.cli", "show", f"{dataset}@{version}", "--json"], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["fingerprint"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "CI": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update({k: base[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FSSPEC_S3_ENDPOINT_URL")})
        sys.path.insert(0, str(ROOT))
        from curate.storage import filesystem

        filesystem("s3://bench").mkdir("bench")
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        prints: dict[str, set[tuple[str, str]]] = {}
        counts = {"import": 250, "run": 60, "verify": 310}
        for run in range(args.runs):
            for kind in ("local", "s3"):
                dataset = str(work / f"local{run}" / "speech") if kind == "local" else f"s3://bench/run{run}/speech"
                env = {**base, "RUBBERSHEET_CACHE": str(work / f"cache-{kind}{run}")}
                commands = {"import": ["curate.cli", "import", "sample_media/speech", "--to", dataset],
                            "run": ["augment.cli", "run", "recipes/speech_cafe_noise.yaml", "--to", dataset,
                                    "--workers", str(args.workers)],
                            "verify": ["curate.cli", "verify", dataset]}
                for step in STEPS:
                    wall, rss = timed([sys.executable, "-m", *commands[step]], env)
                    results.setdefault((kind, step), []).append((wall, rss))
                prints.setdefault(kind, set()).add((fingerprint(dataset, "v0001", env),
                                                    fingerprint(dataset, "v0002", env)))
        print(f"{args.runs} run(s), --workers {args.workers}; wall s min/median/max, items/s at the median, peak RSS MB")
        for kind in ("local", "s3"):
            for step in STEPS:
                walls = sorted(w for w, _ in results[(kind, step)])
                rss = max(r for _, r in results[(kind, step)])
                median = statistics.median(walls)
                print(f"  {kind:5s} {step:6s} {walls[0]:6.2f} / {median:6.2f} / {walls[-1]:6.2f} s  "
                      f"{counts[step] / median:7.1f} items/s  {rss:6.0f} MB")
        same = len(prints["local"]) == 1 and prints["local"] == prints["s3"]
        print(f"fingerprints (v0001, v0002): local {sorted(prints['local'])}, s3 {sorted(prints['s3'])}: "
              f"{'the same' if same else 'DIFFERENT'}")
        if not same:
            sys.exit(1)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
