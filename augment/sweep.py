"""Sweeps: build a recipe's candidate for several values of one numeric field, evaluate each, commit one.

    augment run recipe.yaml --sweep budget=0.25,0.5,1.0     # budget values <= 1 are fractions of the recipe's budget
    augment run recipe.yaml --sweep pipeline[0].AddBackgroundNoise.snr_db[1]=5,10,20

For each candidate: weak-tag lift (dev accuracy on the target tags, after - before) and clean cost (the same on
dev items with none of the targets), each with a 95 % interval (normal approximation for a difference of two
proportions). `--pick best` (the default) takes the largest lift among candidates that pass the gate and whose
cost is not significantly negative (interval reaching 0 or above); `--pick VALUE` takes that value. Only the chosen
candidate becomes a version; the sweep (every candidate's figures) is recorded in its version.json. Candidates
share per-item seeds, so a sweep is reproducible and smaller budgets reuse the larger ones' objects.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable

from curate.errors import accuracy_change as difference
from curate.exceptions import BadInput

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_sweep(text: str) -> tuple[str, list[float]]:
    field, sep, values = text.partition("=")
    if not sep or not field.strip():
        raise BadInput(f"--sweep: expected FIELD=V1,V2,... (e.g. budget=0.25,0.5,1.0), got {text!r}")
    try:
        numbers = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise BadInput(f"--sweep: values must be numbers, got {values!r}") from None
    if len(numbers) < 2 or len(set(numbers)) != len(numbers):
        raise BadInput("--sweep: give at least two different values")
    return field.strip(), numbers


def _path(field: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in _TOKEN.findall(field):
        parts.append(int(index) if index else name)
    return parts


def set_field(data: dict[str, Any], field: str, value: float) -> dict[str, Any]:
    """A copy of the recipe data with `field` (e.g. budget, pipeline[0].Gain.gain_db[1]) set to `value`."""
    data = copy.deepcopy(data)
    parts = _path(field)
    target: Any = data
    for part in parts[:-1]:
        try:
            target = target[part]
        except (KeyError, IndexError, TypeError):
            raise BadInput(f"--sweep: field {field!r} is not in the recipe") from None
    last = parts[-1]
    try:
        current = target[last]
    except (KeyError, IndexError, TypeError):
        raise BadInput(f"--sweep: field {field!r} is not in the recipe") from None
    if field == "budget" and value <= 1.0:  # a fraction of the recipe's own budget
        if isinstance(current, dict):
            target[last] = {k: max(1, round(v * value)) for k, v in current.items()}
            return data
        value = max(1, round(current * value))
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        raise BadInput(f"--sweep: field {field!r} is not a number in the recipe")
    target[last] = int(value) if isinstance(current, int) and float(value).is_integer() else value
    return data


def figures(evaluation: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """Weak-tag lift (n-weighted over the targets) and clean cost, each with its interval."""
    n_total = sum(evaluation["n"].get(t, 0) for t in targets if t in evaluation["before"])
    if n_total:
        before = sum(evaluation["before"][t] * evaluation["n"][t] for t in targets if t in evaluation["before"]) / n_total
        after = sum(evaluation["after"][t] * evaluation["n"][t] for t in targets if t in evaluation["after"]) / n_total
    else:
        before = after = 0.0
    rest = "(untargeted)"
    return {"lift": difference(before, after, n_total),
            "cost": difference(evaluation["before"].get(rest, 0.0), evaluation["after"].get(rest, 0.0),
                               evaluation["n"].get(rest, 0))}


def run_sweep(path, sweep: str, pick: str = "best", output: str | None = None, executor=None,
              seed: int | None = None, progress: Callable | None = None, command: str | None = None):
    from augment.recipe import read_recipe, validate_recipe
    from augment.runner import (Built, LocalExecutor, RunResult, _open_parent, _reject, build_candidate,
                                commit_candidate, make_plan)

    field, values = parse_sweep(sweep)
    path, text, node, data = read_recipe(path, seed)
    data.setdefault("evaluate", {"baseline": {}})
    loaded = [validate_recipe(set_field(data, field, v), node, path, text) for v in values]
    if pick != "best":
        try:
            chosen_value = float(pick)
        except ValueError:
            raise BadInput(f"--pick: expected 'best' or one of the swept values, got {pick!r}") from None
        if chosen_value not in values:
            raise BadInput(f"--pick: {pick} is not one of the swept values {values}")
    dataset, parent = _open_parent(loaded[0].recipe, output, False)
    executor = executor or LocalExecutor()
    candidates, builds = [], []
    with dataset.lock():
        for value, recipe in zip(values, loaded):
            plan = make_plan(recipe, parent)
            built: Built = build_candidate(recipe, dataset, parent, plan, executor, progress)
            targets = list(recipe.budgets)
            numbers = figures(built.evaluation, targets)
            eligible = built.gate["passed"] and numbers["cost"]["high"] >= 0
            candidates.append({"value": value, "items": len(plan.tasks), "gate_passed": built.gate["passed"],
                               "lift": numbers["lift"], "cost": numbers["cost"], "eligible": eligible,
                               "evaluation": built.evaluation})
            builds.append((recipe, plan, built))
        if pick == "best":
            eligible = [i for i, c in enumerate(candidates) if c["eligible"]]
            index = max(eligible, key=lambda i: (candidates[i]["lift"]["value"], -values[i])) if eligible else None
        else:
            index = values.index(float(pick))
        record = {"field": field, "values": values, "pick": pick, "candidates": candidates,
                  "picked": values[index] if index is not None else None}
        if index is None:
            recipe, plan, built = builds[-1]
            folder = _reject(dataset, recipe, plan, built)
            return RunResult("rejected", plan, built.gate, rejected_dir=folder, evaluation=built.evaluation), record
        recipe, plan, built = builds[index]
        version = commit_candidate(recipe, dataset, parent, plan, built, command, sweep=record)
        return RunResult("committed", plan, built.gate, version=version, evaluation=built.evaluation), record
