"""Stage 3 of a run: judge the candidate against its source -> GateResult (the curation checks, plus the
evaluation finding when the recipe evaluates: did the new data help where it was aimed, and what did it cost)."""
from __future__ import annotations

from typing import Any

from curate.checks import GateResult


def gate_config(loaded):
    """The recipe's `curation:` block as a validated gate config; realism compares with the recipe's targets."""
    from curate.checks.gate import parse_config

    curation = dict(loaded.recipe.curation)
    realism = dict(curation.get("realism") or {})
    realism.setdefault("target_tags", list(loaded.budgets))
    curation["realism"] = realism
    return parse_config(curation, where=f"{loaded.path}: curation")


def judge(loaded, candidate, source, progress=None) -> tuple[GateResult, dict[str, Any] | None]:
    """(GateResult, evaluation or None) for `candidate` (a DatasetView) made from `source`; the evaluation is the
    stored form (curate.checks.evaluation.Evaluation.to_dict(), what version.json keeps)."""
    from curate.checks import evaluation as evaluation_check
    from curate.checks.gate import run_gate

    config = gate_config(loaded)
    gate = run_gate(candidate, source, config, progress=progress)
    if not loaded.recipe.evaluate:
        return gate, None
    targets = list(loaded.budgets)
    evaluation = evaluate(loaded.recipe, source, candidate, targets)
    findings = evaluation_check.check(evaluation, targets, config.section("evaluation"))
    return gate.add(findings, "evaluation"), evaluation.to_dict()


_BEFORE: list = []  # [source view, (model, seed, features), its predictions]: the last source's baseline


def evaluate(recipe, source, candidate, targets: list[str]):
    """The baseline trained on the source (before) and on the candidate (after), scored on the SAME dev items:
    a paired, per-tag curate.checks.evaluation.Evaluation (bootstrap over leakage groups seeded from the recipe
    seed, McNemar's exact test). The baseline's features are chosen once, on the source, and kept for the after
    model, so the two differ only in their training data."""
    from curate.baseline import run_baseline
    from curate.checks.evaluation import RESAMPLES, compare_predictions

    options = dict(recipe.evaluate.baseline or {})
    model, seed = options.get("model", "logreg"), int(options.get("seed", recipe.seed))
    split = options.get("split", "dev")
    features = options.get("features", "auto")
    key = (model, seed, features)
    if _BEFORE and _BEFORE[0] is source and _BEFORE[1] == key:  # a sweep judges many candidates of one source
        before = _BEFORE[2]
    else:
        before = run_baseline(source, model=model, seed=seed, features=features)
        _BEFORE[:] = [source, key, before]
    chosen = before.attrs.get("features", features)
    after = run_baseline(candidate, model=model, seed=seed, features=chosen, score=False)
    groups = dict(zip(source.manifest["id"], source.manifest["group"]))
    details = {"features": chosen, "feature_selection": before.attrs.get("selection")}
    return compare_predictions(before, after, targets, split=split, model=model, seed=seed,
                               resamples=int(options.get("resamples", RESAMPLES)), groups=groups, details=details)
