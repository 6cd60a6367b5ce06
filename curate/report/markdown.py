"""report.md: the verdict, lineage, counts and findings as plain Markdown (readable in a terminal and in a PR)."""
from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    verdict = report["verdict"]
    state = "FORCED past a failing gate" if verdict["forced"] else ("PASSED" if verdict["passed"] else "FAILED")
    lines = [f"# {report['dataset']}@{report['version']}: gate {state}", ""]
    counts = verdict.get("counts", {})
    lines.append(f"{counts.get('error', 0)} error(s), {counts.get('warning', 0)} warning(s), "
                 f"{counts.get('info', 0)} info; {report['new_augmented']} new augmented item(s).")
    for reason in verdict["reasons"]:
        lines.append(f"- **blocking** {_cell(reason)}")
    lineage = report["lineage"]
    lines += ["", "## Lineage", "", "| field | value |", "|---|---|"]
    for key in ("parent", "recipe", "seed", "created", "fingerprint", "command", "package_version"):
        lines.append(f"| {key} | {_cell(lineage.get(key) if lineage.get(key) is not None else '-')} |")
    plan = report.get("plan")
    if plan and plan.get("previous"):
        lines += ["", f"This recipe made {plan['previous']} item(s) before with another pipeline, seed or label rule: "
                      f"{plan['previous_action']}; {plan['new']} new, {plan['existing']} unchanged."]
    lines += ["", "## Counts", ""]
    deltas = (report.get("diff") or {}).get("count_deltas", {})
    for kind in ("label", "tag", "split", "origin"):
        values = report["counts"].get(kind, {})
        if not values:
            continue
        lines += [f"| {kind} | items | change |", "|---|---:|---:|"]
        for key, n in values.items():
            delta = deltas.get(kind, {}).get(key, {}).get("delta", 0)
            lines.append(f"| {_cell(key)} | {n} | {delta:+d} |")
        lines.append("")
    evaluation = report.get("evaluation")
    if evaluation:
        lines += [f"## Evaluation ({evaluation['model']}, {evaluation['split']} accuracy)", "",
                  "| tag | before | after | n |", "|---|---:|---:|---:|"]
        for key, before in evaluation["before"].items():
            after = evaluation["after"].get(key)
            lines.append(f"| {_cell(key)} | {before:.1%} | {after:.1%} | {evaluation['n'].get(key, '')} |")
        lines.append("")
    lines += ["## Findings", ""]
    for finding in report["findings"]:
        lines.append(f"- **{finding['severity']}** {finding['check']}: {_cell(finding['message'])}")
    if report.get("known_issues"):
        lines += ["", "## Known issues of the source (inherited, not caused by this change)", ""]
        for finding in report["known_issues"]:
            lines.append(f"- {finding['severity']} {finding['check']}: {_cell(finding['message'])}")
    return "\n".join(lines) + "\n"
