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
    for warning in verdict.get("warnings", []):
        lines.append(f"- warning {_cell(warning)}")
    if verdict.get("status"):
        lines += ["", "## Checks", "", "| check | status | new | inherited | reason |", "|---|---|---:|---:|---|"]
        for row in verdict["status"]:
            lines.append(f"| {row['check']} | {row['status']} | {row['new']} | {row['inherited']} | "
                         f"{_cell(row['reason'])} |")
    lineage = report["lineage"]
    lines += ["", "## Lineage", "", "| field | value |", "|---|---|"]
    for key in ("parent", "recipe", "seed", "created", "fingerprint", "command", "package_version"):
        lines.append(f"| {key} | {_cell(lineage.get(key) if lineage.get(key) is not None else '-')} |")
    plan = report.get("plan")
    if plan and plan.get("previous"):
        lines += ["", f"This recipe made {plan['previous']} item(s) before that this run no longer makes (edited pipeline, seed, labels, budget or sources): "
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
        from curate.checks.evaluation import display_order

        def pts(value):
            return "-" if value is None else f"{100 * value:+.1f}"

        lines += [f"## Evaluation ({evaluation['model']}, {evaluation['split']} accuracy, paired)", "",
                  ("Same items before and after; 95 % interval by paired bootstrap over "
                   f"{evaluation.get('units', '')} {evaluation.get('unit', 'item')}s; verdict by McNemar's exact "
                   "test. Worst untargeted tag first."), "",
                  "| tag | targeted | n | before | after | difference (pts) | 95 % interval | McNemar p |",
                  "|---|---|---:|---:|---:|---:|---|---:|"]
        for row in display_order(evaluation):
            after = "-" if row["after"] is None else f"{row['after']:.1%}"
            interval = "-" if row["low"] is None else f"{pts(row['low'])} to {pts(row['high'])}"
            p = "-" if row["mcnemar_p"] is None else f"{row['mcnemar_p']:.3g}"
            kind = "overall" if row["tag"] == "all" else ("yes" if row["targeted"] else "no")
            lines.append(f"| {_cell(row['tag'])} | {kind} | {row['n']} | {row['before']:.1%} | {after} | "
                         f"{pts(row['difference'])} | {interval} | {p} |")
        lines.append("")
    lines += ["## Findings", ""]
    for finding in report["findings"]:
        lines.append(f"- **{finding['severity']}** {finding['check']}: {_cell(finding['message'])}")
    if report.get("known_issues"):
        lines += ["", "## Known issues of the source (inherited, not caused by this change)", ""]
        for finding in report["known_issues"]:
            lines.append(f"- {finding['severity']} {finding['check']}: {_cell(finding['message'])}")
    return "\n".join(lines) + "\n"
