"""Label consistency: one convention, one label per input.

- exact duplicates (same object hash) carrying different labels: error (configurable);
- near-duplicates (far closer than the dataset's typical nearest-neighbour distance, curate.checks.similarity) with
  different labels, and (images) derived copies with different labels: one image moved, rotated or brightened and
  labelled otherwise (curate.checks.copies);
- annotator agreement when the manifest has `annotations`: per-item agreement, Fleiss' kappa, items below a bar;
- label conventions: raw labels that are equal after normalising case, punctuation, whitespace, fillers
  ("um", "uh", ...) and ellipses are one convention written several ways;
- model-based label issues (cleanlab find_label_issues) when predictions with p_ columns are given.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

from curate.checks import Finding
from curate.checks.similarity import codes, near_duplicates

CHECK = "consistency"
SHARED = frozenset({"pairs"})   # memoised computations it reads (curate.checks.similarity.forget)
FILLERS = ("um", "uh", "er", "erm", "ah", "hmm", "mm", "uhm")
_FILLER = re.compile(r"\b(" + "|".join(FILLERS) + r")\b")


def normalise_label(text: str) -> str:
    lowered = text.lower().replace("\u2026", " ").replace("...", " ")
    lowered = re.sub(r"[^\w\s']", " ", lowered)
    lowered = _FILLER.sub(" ", lowered)
    return " ".join(lowered.split())


def check(candidate, source, config) -> list[Finding]:
    frame = candidate.manifest
    findings: list[Finding] = []
    findings += _exact_duplicates(frame, config)
    findings += _near_duplicates(candidate, config, source)
    if config.derived_copies:
        findings += _derived_conflicts(candidate, config, source, findings)
    if "annotations" in frame.columns:
        findings += _agreement(frame, config)
    findings += _conventions(frame)
    if config.predictions:
        findings += _label_issues(candidate, config)
    if not findings:
        findings.append(Finding(CHECK, "info", "labels are consistent: no conflicting duplicates, one convention",
                                figures={"items": len(frame)}))
    return findings


def _exact_duplicates(frame, config) -> list[Finding]:
    labels_by_object: dict[str, set] = defaultdict(set)
    items_by_object: dict[str, list] = defaultdict(list)
    for item, obj, label in zip(frame["id"], frame["object"], frame["label"]):
        labels_by_object[obj].add(label)
        items_by_object[obj].append({"id": item, "label": label})
    conflicts = [items_by_object[o] for o, labels in labels_by_object.items() if len(labels) > 1]
    if not conflicts:
        return []
    pairs = Counter(" / ".join(sorted({i["label"] for i in group})) for group in conflicts)
    summary = ", ".join(f"{k} x{v}" for k, v in pairs.most_common())
    return [Finding(CHECK, config.exact_duplicate_severity,
                    f"{len(conflicts)} identical input(s) carry different labels ({summary}): the mapping "
                    "input -> label is ambiguous; relabel, drop, or mark them for review",
                    items=conflicts, figures={"groups": len(conflicts), "label_sets": dict(pairs)},
                    key="consistency.identical_conflict", subjects=frozenset(i["id"] for g in conflicts for i in g))]


def _near_duplicates(view, config, source=None) -> list[Finding]:
    found = near_duplicates(view, config.near_duplicate_ratio, scale_from=source)
    ids, i, j, score = found.ids, found.i, found.j, found.ratio
    if not len(i):
        return []
    label_codes = codes(view, ids, "label")
    conflict = label_codes[i] != label_codes[j]
    if not conflict.any():
        return []
    labels = dict(zip(view.manifest["id"], view.manifest["label"]))
    order = np.argsort(score[conflict], kind="stable")[: config.max_items]  # closest first
    a, b, s = i[conflict][order], j[conflict][order], score[conflict][order]
    listed = [{"a": ids[x], "b": ids[y], "labels": [labels[ids[x]], labels[ids[y]]], "score": float(v)}
              for x, y, v in zip(a, b, s)]
    return [Finding(CHECK, "warning", f"{int(conflict.sum())} near-duplicate pair(s) with different labels "
                    f"({found.rule()}; score = distance / typical)", items=listed,
                    figures={"pairs": int(conflict.sum()), "near_duplicate_pairs": int(len(i)), **found.figures()},
                    key="consistency.near_duplicate_conflict",
                    subjects=frozenset("|".join(sorted((ids[x], ids[y]))) for x, y in zip(i[conflict], j[conflict])))]


def _derived_conflicts(view, config, source, found_already: list[Finding]) -> list[Finding]:
    """Image pairs that are derived copies of each other under different labels, leaving out the pairs already
    reported as near-duplicate conflicts."""
    from curate.checks.copies import derived_copies

    reported = set().union(*(f.subjects for f in found_already if f.key == "consistency.near_duplicate_conflict"))
    ids = list(view.manifest["id"])
    copies = derived_copies(view, ids, ids, scale_from=source, other_label=True)
    labels = dict(zip(view.manifest["id"], view.manifest["label"]))
    pairs: dict[str, tuple] = {}
    for a, b, score, why in zip(copies.query, copies.reference, copies.score, copies.detail):
        key = "|".join(sorted((a, b)))
        if key not in reported and (key not in pairs or score < pairs[key][2]):
            pairs[key] = (a, b, score, why)
    if not pairs:
        return []
    ordered = sorted(pairs.values(), key=lambda p: p[2])
    listed = [{"a": a, "b": b, "labels": [labels[a], labels[b]], "score": round(score, 4), "why": why}
              for a, b, score, why in ordered[: config.max_items]]
    return [Finding(CHECK, "warning", f"{len(pairs)} derived cop(ies) with a different label ({copies.rule()})",
                    items=listed, figures={"pairs": len(pairs), **copies.figures()},
                    key="consistency.derived_copy_conflict", subjects=frozenset(pairs))]


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa for an items x categories count matrix; items may have different numbers of raters (>= 2)."""
    n = counts.sum(axis=1)
    keep = n >= 2
    counts, n = counts[keep], n[keep]
    if len(counts) == 0:
        return float("nan")
    p_item = ((counts * counts).sum(axis=1) - n) / (n * (n - 1))
    p_category = counts.sum(axis=0) / n.sum()
    expected = float((p_category**2).sum())
    return float((p_item.mean() - expected) / (1 - expected)) if expected < 1 else 1.0


def _agreement(frame, config) -> list[Finding]:
    rated = [(item, list(a)) for item, a in zip(frame["id"], frame["annotations"]) if len(a) >= 2]
    if not rated:
        return []
    categories = sorted({x for _, a in rated for x in a})
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros((len(rated), len(categories)), dtype=np.int64)
    low = []
    for row, (item, answers) in enumerate(rated):
        for answer in answers:
            counts[row, index[answer]] += 1
        agreement = counts[row].max() / len(answers)
        if agreement < config.min_agreement:
            low.append({"id": item, "annotations": answers, "agreement": round(float(agreement), 3)})
    kappa = fleiss_kappa(counts)
    mean_agreement = float((counts.max(axis=1) / counts.sum(axis=1)).mean())
    severity = "warning" if (low or kappa < config.min_kappa) else "info"
    return [Finding(CHECK, severity, f"annotator agreement: Fleiss' kappa {kappa:.2f}, mean per-item agreement "
                    f"{mean_agreement:.0%}; {len(low)} item(s) below {config.min_agreement:.0%}",
                    items=low[: config.max_items], figures={"fleiss_kappa": kappa, "mean_agreement": mean_agreement,
                                                            "items_rated": len(rated), "items_low": len(low)},
                    key="consistency.agreement", subjects=frozenset(x["id"] for x in low))]


def _conventions(frame) -> list[Finding]:
    variants: dict[str, Counter] = defaultdict(Counter)
    for label in frame["label"]:
        variants[normalise_label(label)][label] += 1
    findings = []
    for norm, counter in sorted(variants.items()):
        if len(counter) > 1 and norm:
            listing = ", ".join(f"{raw!r} x{n}" for raw, n in counter.most_common())
            findings.append(Finding(CHECK, "warning", f"one label written {len(counter)} ways: {listing}; pick one "
                                    "convention", items=[{"label": raw, "count": n} for raw, n in counter.items()],
                                    figures={"normalised": norm, "variants": len(counter)},
                                    key=f"consistency.convention.{norm}", subjects=frozenset(counter)))
    return findings


def _label_issues(view, config) -> list[Finding]:
    from cleanlab.filter import find_label_issues

    from curate.predictions import read_predictions

    frame = view.manifest
    predictions = read_predictions(config.predictions, view, where=str(config.predictions), unknown="drop")
    prob_columns = [c for c in predictions.columns if c.startswith("p_")]
    if not prob_columns:
        return [Finding(CHECK, "info", f"{config.predictions}: no p_<class> columns; model-based label issues skipped")]
    classes = [c[2:] for c in prob_columns]
    by_id = predictions.set_index("id")
    labels = dict(zip(frame["id"], frame["label"]))
    ids = [i for i in by_id.index if i in labels and labels[i] in classes]
    if len(ids) < 2 * len(classes):
        return [Finding(CHECK, "info", "too few predicted items with known labels for model-based label issues")]
    probs = by_id.loc[ids, prob_columns].to_numpy(dtype=float)
    probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
    given = np.array([classes.index(labels[i]) for i in ids])
    ranked = find_label_issues(given, probs, return_indices_ranked_by="self_confidence")
    items = [{"id": ids[r], "label": labels[ids[r]], "suggested": classes[int(probs[r].argmax())],
              "p_label": round(float(probs[r, given[r]]), 4)} for r in ranked[: config.max_items]]
    severity = "warning" if len(ranked) else "info"
    return [Finding(CHECK, severity, f"cleanlab: {len(ranked)} likely label issue(s) among {len(ids)} predicted "
                    "items (ranked by self-confidence)", items=items, figures={"label_issues": int(len(ranked))},
                    key="consistency.label_issues", subjects=frozenset(ids[r] for r in ranked))]
