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
    """(GateResult, evaluation figures or None) for `candidate` (a DatasetView) made from `source`."""
    from curate.checks import evaluation as evaluation_check
    from curate.checks.gate import run_gate

    config = gate_config(loaded)
    gate = run_gate(candidate, source, config, progress=progress)
    if not loaded.recipe.evaluate:
        return gate, None
    targets = list(loaded.budgets)
    evaluation = evaluate(loaded.recipe, source, candidate, targets)
    findings = evaluation_check.check(evaluation, targets, config.section("evaluation"))
    return gate.add(findings, "evaluation"), evaluation


def evaluate(recipe, source, candidate, targets: list[str]) -> dict[str, Any]:
    """Baseline dev accuracy per target tag (and overall) trained on the source vs on the candidate."""
    from curate.baseline import run_baseline

    options = dict(recipe.evaluate.baseline or {})
    model, seed = options.get("model", "logreg"), int(options.get("seed", recipe.seed))
    split = options.get("split", "dev")
    out: dict[str, Any] = {"model": model, "split": split, "before": {}, "after": {}, "n": {}}
    # "(untargeted)": scored items carrying none of the targets, i.e. what adding data might cost elsewhere
    for key, view in (("before", source), ("after", candidate)):
        predictions = run_baseline(view, model=model, seed=seed)
        scored = predictions[predictions["split"] == split] if (predictions["split"] == split).any() else predictions
        correct = scored["label"] == scored["prediction"]
        out[key]["(all)"] = float(correct.mean())
        out["n"]["(all)"] = int(len(scored))
        tags = scored["tags"].str.split(";")
        for tag in targets:
            member = tags.map(lambda t: tag in t)
            if member.any():
                out[key][tag] = float(correct[member].mean())
                out["n"][tag] = int(member.sum())
        rest = ~tags.map(lambda t: bool(set(t) & set(targets)))
        if rest.any():
            out[key]["(untargeted)"] = float(correct[rest].mean())
            out["n"]["(untargeted)"] = int(rest.sum())
    return out
