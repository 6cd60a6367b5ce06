"""Sweeps: build a recipe's candidate for several values of one numeric field, evaluate each, commit one.

    augment run recipe.yaml --sweep budget=0.25,0.5,1.0     # budget values <= 1 are fractions of the recipe's budget
    augment run recipe.yaml --sweep pipeline[0].AddBackgroundNoise.snr_db[1]=5,10,20

Every candidate is scored by the recipe's `evaluate:` model (the baseline when the recipe names none), trained on
the source once and on each candidate, on the same dev items (curate.checks.evaluation): every tag's paired
difference with its 95 % interval and McNemar p; the weak-tag lift (over the items carrying any target tag); and
the clean cost, the WORST untargeted tag's paired difference (each untargeted tag on its own, never pooled).

`--pick best` (the default) takes the largest lift among the candidates that
  - pass the gate and add something,
  - have no untargeted tag significantly below zero (McNemar p < 0.05 with after < before), and
  - (when an untargeted tag exists) cost at most `max_clean_cost` points on their worst untargeted tag
    (`--max-clean-cost`, default 1 point);
ties go to the smaller value. `--pick VALUE` takes that value. Only the chosen candidate becomes a version; every
candidate's figures, per-tag differences and gate reasons are recorded in its version.json under "sweep" (or, when
none qualifies, in the rejected run's version.json, all candidates with why each was passed over). Candidates
share per-item seeds, so a sweep is reproducible and smaller budgets reuse the larger ones' objects.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable

from augment.overrides import field_path
from curate.exceptions import BadInput


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
    if not all(math.isfinite(n) for n in numbers):
        raise BadInput(f"--sweep: values must be finite numbers, got {values!r}")
    if field.strip() == "budget" and min(numbers) <= 0:
        raise BadInput("--sweep: budget values must be > 0 (values <= 1 are fractions of the recipe's budget)")
    return field.strip(), numbers


def set_field(data: dict[str, Any], field: str, value: float) -> dict[str, Any]:
    """A copy of the recipe data with `field` (e.g. budget, pipeline[0].Gain.gain_db[1]) set to `value`."""
    data = copy.deepcopy(data)
    parts = field_path(field, "--sweep")
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
    """From a stored (paired) evaluation: weak-tag lift over the targets and clean cost = the worst untargeted
    tag's paired difference, each {value, low, high, p, tag, n}; no untargeted tag: a cost of 0 naming no tag."""
    from curate.checks.evaluation import rows

    def figure(row: dict[str, Any] | None) -> dict[str, Any]:
        if not row:
            return {"value": 0.0, "low": 0.0, "high": 0.0, "p": None, "tag": None, "n": 0}
        value = row["difference"] if row["difference"] is not None else 0.0
        return {"value": value, "low": row["low"] if row["low"] is not None else value,
                "high": row["high"] if row["high"] is not None else value, "p": row.get("mcnemar_p"),
                "tag": row["tag"], "n": row["n"]}

    table = rows(evaluation)
    lift = evaluation.get("lift")
    if lift is None:  # fall back to the targeted tags' rows, n-weighted (no interval then)
        aimed = [r for r in table if r["tag"] in targets and r["difference"] is not None]
        n = sum(r["n"] for r in aimed)
        lift = {"tag": "+".join(targets), "n": n, "low": None, "high": None, "mcnemar_p": None,
                "difference": sum(r["difference"] * r["n"] for r in aimed) / n if n else 0.0} if n else None
    untargeted = [r for r in table if r["tag"] != "all" and r["tag"] not in targets and not r.get("targeted")
                  and r["difference"] is not None]
    worst = min(untargeted, key=lambda r: (r["difference"], r["high"] if r["high"] is not None else 0.0,
                                           r["tag"]), default=None)
    return {"lift": figure(lift), "cost": figure(worst)}


MAX_CLEAN_COST = 1.0  # points of accuracy on the worst untargeted tag that the default pick accepts


def judge_candidate(value, plan, gate, evaluation, targets: list[str], max_clean_cost: float) -> dict[str, Any]:
    """One candidate's row in the sweep record: figures, per-tag differences, gate reasons and why it is (not)
    eligible for the default pick."""
    from curate.checks.evaluation import rows

    numbers = figures(evaluation, targets)
    tags = {r["tag"]: {"difference": r["difference"], "low": r["low"], "high": r["high"], "p": r["mcnemar_p"],
                       "n": r["n"], "targeted": bool(r.get("targeted"))} for r in rows(evaluation)}
    drops = [t for t, r in tags.items() if t != "all" and not r["targeted"] and r["p"] is not None and r["p"] < 0.05
             and (r["difference"] or 0) < 0]
    cost = numbers["cost"]
    reasons = []
    if plan.up_to_date:
        reasons.append("adds nothing")
    if not gate.passed:
        reasons.append("gate refused: " + "; ".join(f.message for f in gate.blocking))
    if drops:
        reasons.append(f"significant drop on untargeted {', '.join(drops)}")
    if cost["tag"] is not None and -cost["value"] * 100 > max_clean_cost + 1e-9:
        reasons.append(f"clean cost {100 * cost['value']:+.1f} pts on {cost['tag']} exceeds max_clean_cost "
                       f"{max_clean_cost:g}")
    return {"value": value, "items": len(plan.tasks), "gate_passed": gate.passed,
            "gate_reasons": [f.message for f in gate.blocking], "lift": numbers["lift"], "cost": cost,
            "tags": tags, "eligible": not reasons, "passed_over": reasons, "evaluation": evaluation}


def run_sweep(path, sweep: str, pick: str = "best", output: str | None = None, executor=None,
              seed: int | None = None, progress: Callable | None = None, command: str | None = None,
              max_clean_cost: float = MAX_CLEAN_COST, overrides=None):
    """Build, gate and evaluate one candidate per swept value with the run spine's stages; publish the picked one.
    Returns (RunResult, sweep record). A picked candidate that adds nothing writes nothing (status up-to-date)."""
    from augment.recipe import read_recipe, validate_recipe
    from augment.run import RunResult, build, evaluator_for, materialise, open_source
    from augment.run.commit import write
    from augment.run.execute import LocalExecutor
    from augment.run.gate import gate_config
    from augment.run.plan import make_plan

    if not max_clean_cost >= 0:
        raise BadInput(f"--max-clean-cost: expected points >= 0, got {max_clean_cost}")
    field, values = parse_sweep(sweep)
    from augment.overrides import apply_overrides

    path, text, node, data = read_recipe(path)
    data, applied = apply_overrides(data, overrides)
    if seed is not None:
        data["seed"] = seed
    if not data.get("evaluate"):  # a sweep is judged on its evaluation: the baseline unless the recipe names one
        data["evaluate"] = {"baseline": {}}
    loaded = [validate_recipe(set_field(data, field, v), node, path, text, tuple(applied)) for v in values]
    if pick != "best":
        try:
            chosen_value = float(pick)
        except ValueError:
            raise BadInput(f"--pick: expected 'best' or one of the swept values, got {pick!r}") from None
        if chosen_value not in values:
            raise BadInput(f"--pick: {pick} is not one of the swept values {values}")
    source = open_source(loaded[0].recipe, output)
    gate_config(loaded[0])  # a bad curation setting is refused before anything is made
    plans = [make_plan(recipe, source.start) for recipe in loaded]
    empty = {"field": field, "values": values, "pick": pick, "max_clean_cost": max_clean_cost, "candidates": [],
             "picked": None}
    if all(plan.up_to_date for plan in plans):  # every candidate adds nothing: build nothing, write nothing
        if source.folder is None:
            source.view.dataset.try_recover()
        return RunResult("up-to-date", plans[0], version=source.view), empty
    evaluator = evaluator_for(loaded[0], source, progress)  # the source is scored once, before anything is made
    dataset, source = materialise(source)
    view = source.view
    executor = executor or LocalExecutor()
    candidates, builds = [], []
    with dataset.lock():
        for value, recipe, plan in zip(values, loaded, plans):
            try:
                candidate, gate, evaluation = build(recipe, plan, dataset, source, executor, progress, evaluator)
            except BadInput:  # a later candidate's model failed: the earlier candidates' objects go too
                from curate.verify import discard

                known = set(view.manifest["object"])
                discard(dataset, [(o, e) for b in builds for o, e in zip(b[2].manifest["object"], b[2].manifest["ext"])
                                  if o not in known])
                raise
            candidates.append(judge_candidate(value, plan, gate, evaluation, list(recipe.budgets), max_clean_cost))
            builds.append((recipe, plan, candidate, gate, evaluation))
        if pick == "best":
            eligible = [i for i, c in enumerate(candidates) if c["eligible"]]
            index = max(eligible, key=lambda i: (candidates[i]["lift"]["value"], -values[i])) if eligible else None
        else:
            index = values.index(float(pick))
        record = {**empty, "candidates": candidates, "picked": values[index] if index is not None else None}
        recipe, plan, candidate, gate, evaluation = builds[-1 if index is None else index]
        if index is not None and plan.up_to_date:
            return RunResult("up-to-date", plan, gate, version=view, evaluation=evaluation), record
        refused = gate if index is not None else _refusal(gate, candidates)
        outcome = write(recipe, dataset, candidate, view, plan, refused, evaluation, command=command, sweep=record,
                        logs=evaluator.logs)
    if outcome.status == "rejected":
        return RunResult("rejected", plan, refused, rejected_dir=outcome.rejected_dir, evaluation=evaluation), record
    status = "committed" if outcome.status == "committed" else "up-to-date"
    return RunResult(status, plan, gate, version=outcome.version, evaluation=evaluation), record


def _refusal(gate, candidates: list[dict[str, Any]]):
    """No candidate qualifies: the last one's gate result plus one finding naming why each was passed over, so the
    evidence of every candidate lands in rejected/."""
    from curate.checks import Finding

    why = "; ".join(f"{c['value']:g}: {', '.join(c['passed_over'])}" for c in candidates)
    return gate.add([Finding("sweep", "error", f"no swept candidate qualifies ({why})", relative=True,
                             items=[{"value": c["value"], "passed_over": c["passed_over"]} for c in candidates])],
                    "sweep")
