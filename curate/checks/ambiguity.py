"""Ambiguity: classes a model (or a person) confuses, and a guard against shifting their balance.

Confusable pairs come from predictions (confusion rates), from cleanlab's find_overlapping_classes when the
predictions have p_ columns, or, without predictions, from the embedding: the share of a class's real items whose
nearest neighbour carries the other label. For each pair the train ratio n_A / n_B is compared between the
source and the candidate: adding many "I" and no "1" teaches a model to answer "I" on every ambiguous glyph. A
relative change above max_prior_shift is an error that names the pair, both ratios, and the most that could be
added. When the change adds none of the pair (a split, a review), the shift must also be beyond chance (exact
binomial test, p < 0.05): assigning a few items to splits moves small ratios by chance alone.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from curate.checks import Finding, train_mask
from curate.checks.similarity import real_index

CHECK = "ambiguity"
SHARED = frozenset({"embeddings"})   # memoised computations it reads (curate.checks.similarity.forget)


def confusable_pairs(view, config) -> dict[tuple[str, str], float]:
    """{(a, b): score} with a < b; score is a confusion rate or a nearest-neighbour share in [0, 1]."""
    if config.predictions:
        return _pairs_from_predictions(view, config)
    frame = view.manifest
    real = [i for i, o in zip(frame["id"], frame["origin"]) if o == "real"]
    if len(real) < 3:
        return {}
    index = real_index(view).index   # its rows: the real items, in manifest order
    labels = dict(zip(frame["id"], frame["label"]))
    real_labels = np.array([labels[i] for i in real], dtype=object)
    neighbour = index.search(index.reference, 1, exclude=np.arange(index.n)).index[:, 0]
    counts = Counter(real_labels)
    hits = Counter((a, b) for a, b in zip(real_labels, real_labels[neighbour]) if a != b)
    pairs: dict[tuple[str, str], float] = {}
    for (a, b), n in hits.items():
        key = tuple(sorted((a, b)))
        pairs[key] = max(pairs.get(key, 0.0), n / counts[a])
    return {k: v for k, v in pairs.items() if v >= config.min_neighbour_share}


def _pairs_from_predictions(view, config) -> dict[tuple[str, str], float]:
    from curate.predictions import read_predictions

    predictions = read_predictions(config.predictions, view, where=str(config.predictions), unknown="drop")
    totals = Counter(predictions["label"])
    confused = Counter((l, p) for l, p in zip(predictions["label"], predictions["prediction"]) if l != p)
    pairs: dict[tuple[str, str], float] = {}
    for (a, b), n in confused.items():
        key = tuple(sorted((a, b)))
        pairs[key] = pairs.get(key, 0.0) + n / (totals[a] + totals.get(b, 0))
    prob_columns = [c for c in predictions.columns if c.startswith("p_")]
    if prob_columns:
        from cleanlab.dataset import find_overlapping_classes

        classes = [c[2:] for c in prob_columns]
        known = predictions[predictions["label"].isin(classes)]
        if len(known) >= 2 * len(classes):
            overlap = find_overlapping_classes(labels=np.array([classes.index(l) for l in known["label"]]),
                                               pred_probs=known[prob_columns].to_numpy(dtype=float))
            for _, row in overlap.iterrows():
                key = tuple(sorted((classes[int(row["Class Index A"])], classes[int(row["Class Index B"])])))
                pairs[key] = max(pairs.get(key, 0.0), float(row["Joint Probability"]) * len(classes))
    return {k: v for k, v in pairs.items() if v >= config.min_confusion}


def check(candidate, source, config) -> list[Finding]:
    pairs = confusable_pairs(candidate, config)
    findings = []
    if not pairs:
        return [Finding(CHECK, "info", "no confusable label pairs found")]
    listing = ", ".join(f"{a}/{b} ({s:.0%})" for (a, b), s in sorted(pairs.items(), key=lambda kv: -kv[1]))
    findings.append(Finding(CHECK, "info", f"confusable pairs: {listing}",
                            figures={"pairs": {f"{a}/{b}": s for (a, b), s in pairs.items()}}))
    if source is not None:
        findings += _prior_shift(candidate, source, pairs, config)
    ambiguous = _ambiguous_items(candidate, pairs)
    if ambiguous:
        findings.append(Finding(CHECK, "info", f"{len(ambiguous)} item(s) sit on a confusable boundary (annotators "
                                "disagree): listed for review", items=ambiguous[: config.max_items]))
    return findings


def _train_counts(view) -> Counter:
    mask = train_mask(view.manifest)
    return Counter(l for l, m in zip(view.manifest["label"], mask) if m)


def _prior_shift(candidate, source, pairs, config) -> list[Finding]:
    before, after = _train_counts(source), _train_counts(candidate)
    totals = (Counter(source.manifest["label"]), Counter(candidate.manifest["label"]))
    findings = []
    for a, b in sorted(pairs):
        if not (before[a] and before[b] and after[a] and after[b]):
            continue
        old, new = before[a] / before[b], after[a] / after[b]
        shift = new / old - 1
        if abs(shift) <= config.max_prior_shift:
            continue
        if totals[1][a] <= totals[0][a] and totals[1][b] <= totals[0][b] and \
                not _beyond_chance(before[a], before[b], after[a], after[b]):
            continue  # nothing of the pair was added: a split of few items moves the ratio by chance alone
        findings.append(Finding(CHECK, "error", f"prior shift on confusable pair {a}/{b}: train ratio "
                                f"{a}:{b} was {before[a]}:{before[b]} = {old:.2f}, now "
                                f"{after[a]}:{after[b]} = {new:.2f} ({shift:+.0%}, limit "
                                f"{config.max_prior_shift:.0%}); {_advice(a, b, before, after, totals, config)}",
                                items=[a, b], relative=True, key=f"ambiguity.prior_shift.{a}/{b}",
                                figures={"pair": [a, b], "ratio_source": old, "ratio_candidate": new,
                                         "relative_change": shift, "counts_source": [before[a], before[b]],
                                         "counts_candidate": [after[a], after[b]]}))
    return findings


def _beyond_chance(before_a: int, before_b: int, after_a: int, after_b: int) -> bool:
    """Is the pair's train composition after the change unlikely (exact binomial test, p < 0.05) as a random draw
    from the source's train composition?"""
    from scipy.stats import binomtest

    share = before_a / (before_a + before_b)
    return binomtest(after_a, after_a + after_b, share).pvalue < 0.05


def _advice(a: str, b: str, before: Counter, after: Counter, totals: tuple[Counter, Counter], config) -> str:
    """What would keep the ratio: fewer of the over-represented label when the change adds items; when it only
    moves existing items between splits (`curate split`), how many of them train should hold instead."""
    old = before[a] / before[b]
    limit = 1 + config.max_prior_shift
    high, low, ratio = (a, b, old) if after[a] / after[b] > old else (b, a, 1 / old)
    cap = math.floor(ratio * limit * after[low])
    added = totals[1][high] - totals[0][high]
    if added > 0:
        return (f"keep at most {cap} {high!r} in train (add <= {max(0, cap - before[high])} instead of {added}), "
                f"or add {low!r} too")
    return (f"this change adds no {high!r}; it puts {after[high]} of them in train where about "
            f"{round(ratio * after[low])} would keep the ratio: assign splits with other ratios, or move "
            f"{after[high] - cap} {high!r} out of train")


def _ambiguous_items(candidate, pairs) -> list[dict]:
    frame = candidate.manifest
    if "annotations" not in frame.columns:
        return []
    confusable = {x for pair in pairs for x in pair}
    return [{"id": i, "label": l, "annotations": list(a)} for i, l, a in
            zip(frame["id"], frame["label"], frame["annotations"])
            if l in confusable and len(set(a)) > 1]
