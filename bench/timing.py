"""Shared by the benchmarks: how a case is timed."""
from __future__ import annotations

import statistics
import time


def measure(cases: dict, items: list, runs: int) -> dict[str, float]:
    """Items per second per case: one untimed pass of every case first (caches, allocator, CPU clock), then
    `runs` rounds that time each case in turn, so drift in machine speed hits every case alike; median per case."""
    for run_one in cases.values():
        for i, item in enumerate(items):
            run_one(item, i)
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, run_one in cases.items():
            start = time.perf_counter()
            for i, item in enumerate(items):
                run_one(item, i)
            timings[name].append(time.perf_counter() - start)
    return {name: len(items) / statistics.median(t) for name, t in timings.items()}
