"""The lineage of a dataset's versions: what each one changed, how it was made, whether it passed, and what it did
to accuracy (per tag: accuracy before/after with 95 % Wilson intervals, and the paired difference with its
bootstrap interval and McNemar p, see curate.checks.evaluation), so no experiment is repeated blindly."""
from __future__ import annotations

from typing import Any

from curate.checks.evaluation import display_order
from curate.errors import wilson_interval


def interval(accuracy: float, n: int) -> list[float]:
    low, high = wilson_interval(round(accuracy * n), n)
    return [round(low, 4), round(high, 4)]


def history(dataset) -> list[dict[str, Any]]:
    rows = []
    previous_counts: dict[str, dict] = {}
    for name in dataset.versions():
        info = dataset.load(name).info
        counts = info.get("counts", {})
        parent_counts = previous_counts.get(info.get("parent") or "", {})
        source = info.get("source") or {}
        evaluation = info.get("evaluation")
        per_tag = None
        if evaluation:
            # every tag on its own (paired difference, its bootstrap interval, McNemar p), worst untargeted first
            per_tag = {}
            for row in display_order(evaluation):
                n, before, after = row["n"], row["before"], row["after"]
                per_tag[row["tag"]] = {"before": before, "after": after, "n": n, "before_ci": interval(before, n),
                                       "after_ci": interval(after, n) if after is not None else None,
                                       "difference": row["difference"], "low": row["low"], "high": row["high"],
                                       "mcnemar_p": row["mcnemar_p"], "targeted": row["targeted"]}
        rows.append({
            "version": name, "parent": info.get("parent"), "created": info.get("created"),
            "recipe": (info.get("recipe") or {}).get("name"), "seed": info.get("seed"),
            "source": source.get("kind"), "items": counts.get("items"),
            "added": max(0, counts.get("items", 0) - parent_counts.get("items", 0)) if parent_counts else
            counts.get("items"),
            "removed": max(0, parent_counts.get("items", 0) - counts.get("items", 0)) if parent_counts else 0,
            "gate": (info.get("gate") or {}).get("verdict"), "fingerprint": info.get("fingerprint"),
            "evaluation": per_tag, "sweep": info.get("sweep"),
        })
        previous_counts[name] = counts
    return rows
