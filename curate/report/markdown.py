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
        lines += _examples(finding)
    if report.get("known_issues"):
        lines += ["", "## Known issues of the source (inherited, not caused by this change)", ""]
        for finding in report["known_issues"]:
            lines.append(f"- {finding['severity']} {finding['check']}: {_cell(finding['message'])}")
            lines += _examples(finding)
    return "\n".join(lines) + "\n"


EXAMPLES = 3  # flagged items per finding in report.md (report.html shows them with their media)


def _examples(finding: dict[str, Any]) -> list[str]:
    """A few of the finding's flagged items, one line each (the HTML shows them with their media)."""
    evidence = finding.get("evidence") or {}
    entries = evidence.get("entries") or []
    if evidence.get("kind") in (None, "table") or not entries:
        return []
    if evidence["kind"] == "contrast":
        a, b = evidence["labels"]
        real = [e["ids"] for e in entries if e.get("role") == "real"]
        shown = ", ".join(f"`{x}` / `{y}`" for x, y in real[:EXAMPLES] if x and y)
        return [f"  - real {_cell(a)} / {_cell(b)} side by side: {_cell(shown) or '-'}"]
    out = []
    for entry in entries[:EXAMPLES]:
        ids = [entry["id"]] if "id" in entry else [i for i in entry["ids"] if i]
        why = f": {_cell(entry['reason'])}" if entry.get("reason") else ""
        out.append("  - " + " and ".join(f"`{_cell(i)}`" for i in ids) + why)
    if evidence.get("found", 0) > EXAMPLES:
        out.append(f"  - ... and {evidence['found'] - min(len(entries), EXAMPLES)} more (report.html shows them with "
                   f"their media; report.json lists {evidence.get('listed')})")
    return out
