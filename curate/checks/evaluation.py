"""Evaluation: did the new data make the model worse where it was aimed, or elsewhere?

Run by the recipe runner after `evaluate:` (it needs the before/after figures, not just the data). A target tag
or the untargeted items whose dev accuracy dropped significantly (the 95 % interval of after - before lies below
zero) is a finding of `drop_severity`; a significant gain is reported as info.
"""
from __future__ import annotations

from typing import Any

from curate.checks import Finding
from curate.errors import accuracy_change

CHECK = "evaluation"


def check(evaluation: dict[str, Any] | None, targets: list[str], config) -> list[Finding]:
    if not evaluation:
        return []
    findings = []
    for key in [*targets, "(untargeted)", "(all)"]:
        if key not in evaluation["before"] or key not in evaluation["after"]:
            continue
        n = evaluation["n"].get(key, 0)
        change = accuracy_change(evaluation["before"][key], evaluation["after"][key], n)
        figures = {"tag": key, "n": n, **change}
        text = (f"{key}: {evaluation['split']} accuracy {evaluation['before'][key]:.1%} -> "
                f"{evaluation['after'][key]:.1%} ({change['value']:+.1%}, 95 % interval {change['low']:+.1%} to "
                f"{change['high']:+.1%}, n={n})")
        if change["high"] < 0:
            findings.append(Finding(CHECK, config.drop_severity, f"significantly worse on {text}", figures=figures,
                                    relative=True, key=f"evaluation.drop.{key}"))
        elif change["low"] > 0:
            findings.append(Finding(CHECK, "info", f"significantly better on {text}", figures=figures, relative=True))
    if not findings:
        findings.append(Finding(CHECK, "info", "no significant accuracy change on the targets or elsewhere",
                                relative=True))
    return findings
