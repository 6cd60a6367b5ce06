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
    node = None
    try:
        parse_config(loaded.recipe.curation, where=str(loaded.path))
    except Exception:  # an error: find its line in the recipe (parsed again only then)
        from curate.strict_yaml import parse

        node = parse(loaded.text, loaded.path)[0]
    return parse_config(curation, where=str(loaded.path), node=node, base=("curation",))


def judge(loaded, candidate, source, progress=None, evaluator=None) -> tuple[GateResult, dict[str, Any] | None]:
    """(GateResult, evaluation or None) for `candidate` (a DatasetView) made from `source`; the evaluation (by
    `evaluator`, an augment.run.evaluate.Evaluator of the recipe's model) is the stored form
    (curate.checks.evaluation.Evaluation.to_dict(), what version.json keeps)."""
    from curate.checks import evaluation as evaluation_check
    from curate.checks.gate import run_gate

    config = gate_config(loaded)
    gate = run_gate(candidate, source, config, progress=progress)
    if evaluator is None:
        return gate, None
    targets = list(loaded.budgets)
    evaluation = evaluator.compare(candidate, targets)
    findings = evaluation_check.check(evaluation, targets, config.section("evaluation"))
    return gate.add(findings, "evaluation"), evaluation.to_dict()
