"""Shared by the benchmarks: how a case is timed, and how its spread and its ratio to a peer are reported."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """min / median / max of one figure over the runs."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> "Spread":
        return cls(min(values), statistics.median(values), max(values))

    def text(self, spec: str = ".0f", unit: str = "") -> str:
        """"median [min, max]" (e.g. "12947 [12512, 13301]"; with spec "+.1f" and unit " %": "+3.2 % [-1.0, +4.1]")."""
        return f"{self.median:{spec}}{unit} [{self.min:{spec}}, {self.max:{spec}}]"


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def measure(cases: dict, items: list, runs: int = 5, clock: str = "cpu", blocks: int = 20) -> dict[str, list[float]]:
    """Items per second of every case in every run. One untimed pass of every case first (caches, allocator, CPU
    clock), then `runs` rounds; a round splits the items into `blocks` consecutive blocks and times every case on a
    block (read once untimed just before, and in an order that turns from block to block) before moving to the
    next, so a slow moment of a shared machine (another program, a busy sibling core)
    hits every case alike instead of whichever case happened to be running.
    `clock`: "cpu" counts this process's CPU time (the benches run one thread, so on an idle machine it equals the
    elapsed time, and on a shared one the time other programs hold the CPU is not counted), "wall" the elapsed time.
    Returns {case: [rate of round 1, ..., rate of round `runs`]}; `spread` summarises a case and `ratio` compares two
    cases round by round (both measured in the same round)."""
    if runs < 1:
        raise ValueError(f"runs: expected at least 1, got {runs}")
    now = CLOCKS[clock]
    for run_one in cases.values():
        for i, item in enumerate(items):
            run_one(item, i)
    indexed = list(enumerate(items))
    size = max(1, -(-len(indexed) // max(1, blocks)))
    chunks = [indexed[start:start + size] for start in range(0, len(indexed), size)]
    rates: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases.items())
    for _ in range(runs):
        spent = dict.fromkeys(cases, 0.0)
        for c, chunk in enumerate(chunks):
            # each case starts on a block in cache, as an item just decoded is; and the order turns from block to
            # block, so no case always runs first (measured: the first case of a block ran 30-45 % slower)
            for name, run_one in order[c % len(order):] + order[:c % len(order)]:
                touch(chunk)
                start = now()
                for i, item in chunk:
                    run_one(item, i)
                spent[name] += now() - start
        for name in cases:
            rates[name].append(len(items) / spent[name])
    return rates


def touch(chunk: list) -> None:
    """Read every array of a block (untimed), so the case timed next finds it in the CPU cache."""
    for _, item in chunk:
        for part in item if isinstance(item, (tuple, list)) else (item,):
            if hasattr(part, "sum"):
                part.sum()


def spread(rates: list[float]) -> Spread:
    return Spread.of(rates)


def ratio(numerator: list[float], denominator: list[float]) -> Spread:
    """numerator / denominator round by round (rates from the same `measure` call), summarised over the rounds."""
    return Spread.of([a / b for a, b in zip(numerator, denominator)])


def overhead(ours: list[float], peer: list[float]) -> Spread:
    """Our extra time per item as a percentage of the peer's, round by round: (peer rate / our rate - 1) * 100."""
    return Spread.of([100.0 * (b / a - 1.0) for a, b in zip(ours, peer)])
