"""Realism: do the augmented items look (and sound) like real data of the condition they are meant to cover?

Augmented items are compared with REAL items of the same condition: the real items carrying every target tag the
augmented item carries (a low-bandwidth copy of clean speech, tagged clean and low_bandwidth, is compared with
real clean telephone speech), else those carrying its first target tag with enough real items, else all real
items; "enough" is `min_reference`. The targets are the recipe's (without a recipe, the tags the items carry).
  (a) envelope: input metrics (curate.features) outside the real items' robust range, item by item;
  (b) two-sample test: cross-validated AUC of a classifier telling augmented from real on those metrics
      (0.5 = indistinguishable; above `auc_warn` is a warning), on at most TWO_SAMPLE_MAX items of each side
      (drawn with a fixed seed), with a 95 % interval (Hanley & McNeil) that says what the sample costs;
  (c) label kept: new augmented items whose nearest real neighbours (embedding) of another group mostly carry
      another label, compared with the same rate for real items (leave one group out), so a hard task is not
      mistaken for broken data and copies of one recording do not vouch for each other.
      A drop above `label_kept_max_drop` (0.25) that Fisher's exact test finds significant (p < 0.01) BLOCKS.
      On the planted-harm benchmark (bench/gate.py, neighbours of another group) good recipes drop by at most
      +11 points (geometry on the generated digits; noise, gain and OCR geometry -17 to +3), while relabelled
      copies drop by 58-95 points and label-destroying distortions by 51-58.
The envelope and the AUC stay warnings: realistic good recipes (OCR degradation, inspection defects) are told
apart from real items as easily (AUC 0.96-1.00) as harmful ones, so they are evidence for the reviewer, not a
verdict.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from curate.checks import Finding
from curate.checks.similarity import real_index

CHECK = "realism"
SHARED = frozenset({"embeddings"})   # memoised computations it reads (curate.checks.similarity.forget)
TWO_SAMPLE_MAX = 2000


def _finding(severity: str, message: str, **fields) -> Finding:
    """Realism judges only the new augmented items, so every finding is about the change itself."""
    return Finding(CHECK, severity, message, relative=True, **fields)


def _reference_groups(frame, targets: list[str], min_reference: int) -> dict[str, tuple[list[str], list[str]]]:
    """{target tag or '(all real)': (augmented ids, real ids)}: each augmented item is compared once."""
    real_by_tag: dict[str, list[str]] = defaultdict(list)
    real_all = []
    for item, origin, tags in zip(frame["id"], frame["origin"], frame["tags"]):
        if origin == "real":
            real_all.append(item)
            for t in tags:
                real_by_tag[t].append(item)
    known: dict[str, list[str]] = {}

    def reference(key: str) -> list[str]:
        if key not in known:
            parts = key.split("+")
            common = set(real_by_tag[parts[0]]).intersection(*(real_by_tag[p] for p in parts[1:]))
            known[key] = [i for i in real_by_tag[parts[0]] if i in common]
        return known[key]

    groups: dict[str, tuple[list[str], list[str]]] = {}
    for item, origin, tags in zip(frame["id"], frame["origin"], frame["tags"]):
        if origin != "augmented":
            continue
        present = [t for t in targets if t in tags] if targets else sorted(tags)
        options = (["+".join(present)] if len(present) > 1 else []) + present
        key = next((k for k in options if len(reference(k)) >= min_reference), "(all real)")
        groups.setdefault(key, ([], reference(key) if key != "(all real)" else real_all))[0].append(item)
    return groups


def check(candidate, source, config) -> list[Finding]:
    from curate.features import metrics

    frame = candidate.manifest
    if source is not None:  # judge only what is new: the source's augmented items passed their own gate
        known = set(source.manifest["id"])
        frame = frame[~(frame["id"].isin(known) & (frame["origin"] == "augmented"))]
    if not (frame["origin"] == "augmented").any():
        return [_finding("info", "no new augmented items to compare with real data")]
    targets = list(config.target_tags or candidate.info.get("source", {}).get("targets", {}) or [])
    groups = _reference_groups(frame, targets, config.min_reference)
    table = metrics(candidate).astype(float)
    findings = []
    for key, (augmented, reference) in sorted(groups.items()):
        if len(reference) < 2:
            findings.append(_finding("warning", f"{key}: fewer than 2 real items to compare with"))
            continue
        findings += _envelope(key, table, augmented, reference, config)
        findings += _two_sample(key, table, augmented, reference, config)
    findings += _label_kept(candidate, frame, groups, config)
    return findings


def _envelope(key, table, augmented, reference, config) -> list[Finding]:
    real = table.loc[reference].dropna(axis=1, how="all")
    low_q, high_q = np.nanpercentile(real.to_numpy(), [1, 99], axis=0)
    span = np.maximum(high_q - low_q, 1e-9)
    low, high = low_q - config.envelope_margin * span, high_q + config.envelope_margin * span
    values = table.loc[augmented, real.columns].to_numpy()
    outside = (values < low) | (values > high)
    listed = []
    for row in np.flatnonzero(outside.any(axis=1)):
        failing = [{"metric": m, "value": round(float(values[row, c]), 3),
                    "real_range": [round(float(low[c]), 3), round(float(high[c]), 3)]}
                   for c, m in enumerate(real.columns) if outside[row, c]]
        listed.append({"id": augmented[row], "metrics": failing})
    share = len(listed) / len(augmented)
    counts = Counter(m["metric"] for item in listed for m in item["metrics"])
    severity = "warning" if share > config.envelope_max_share else "info"
    worst = ", ".join(f"{m} x{n}" for m, n in counts.most_common(3)) or "none"
    return [_finding(severity, f"{key}: {len(listed)} of {len(augmented)} augmented item(s) ({share:.0%}) "
                    f"outside the real range of {len(reference)} real item(s) (metrics: {worst})",
                    items=listed[: config.max_items],
                    figures={"target": key, "outside_share": share, "metrics_failing": dict(counts),
                             "augmented": len(augmented), "reference": len(reference)})]


def _two_sample(key, table, augmented, reference, config) -> list[Finding]:
    if min(len(augmented), len(reference)) < 5:
        return [_finding("info", f"{key}: too few items for a two-sample test (need 5 of each)")]
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)  # a bounded sample of each side: the AUC's interval says what it costs
    augmented = _at_most(augmented, TWO_SAMPLE_MAX, rng)
    reference = _at_most(reference, TWO_SAMPLE_MAX, rng)
    data = table.loc[augmented + reference].dropna(axis=1, how="any").to_numpy()
    target = np.r_[np.ones(len(augmented)), np.zeros(len(reference))]
    folds = StratifiedKFold(n_splits=min(5, len(augmented), len(reference)), shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    from curate.compute import one_blas_thread

    with one_blas_thread():
        scores = cross_val_predict(model, data, target, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(target, scores))
    low, high = auc_interval(auc, len(augmented), len(reference))
    severity = "warning" if auc > config.auc_warn else "info"
    verdict = "easy to tell apart" if auc > config.auc_warn else "hard to tell apart"
    return [_finding(severity, f"{key}: a classifier tells augmented from real with AUC {auc:.2f} (95 % "
                    f"{low:.2f}-{high:.2f}; {verdict}; 0.5 = indistinguishable, warning above {config.auc_warn})",
                    figures={"target": key, "auc": auc, "auc_low": low, "auc_high": high,
                             "augmented": len(augmented), "reference": len(reference)})]


def _at_most(items: list[str], limit: int, rng: np.random.Generator) -> list[str]:
    if len(items) <= limit:
        return items
    return [items[k] for k in np.sort(rng.choice(len(items), limit, replace=False))]


def auc_interval(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    """95 % interval of an AUC from Hanley & McNeil's (1982) standard error, clipped to [0, 1]."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) \
        / (positives * negatives)
    half = 1.96 * float(np.sqrt(max(variance, 0.0)))
    return max(0.0, auc - half), min(1.0, auc + half)


def _label_kept(candidate, frame, groups, config) -> list[Finding]:
    """Is each NEW augmented item's label still recoverable from its content? Its k nearest real neighbours
    (embedding) of ANOTHER group vote; the rate of items whose majority is their own label is compared with the
    same rate for the real items (each left out with its group), so a hard task is not mistaken for broken data.
    Neighbours of the item's own group are left out on both sides: a parent that holds several copies of each
    recording would otherwise recover every real label from its copies (a real rate of 100 %) and make honest
    noisy copies look relabelled; the augmented item's source is in its group too. A drop above
    `label_kept_max_drop` that Fisher's exact test (one-sided) finds significant at p < `label_kept_alpha` is an
    error: the new items carry labels their content does not support (relabelled, or distorted past
    recognition). Above the bound but not significant (few items): a warning."""
    from scipy.stats import fisher_exact

    real_ids = [i for i, o in zip(frame["id"], frame["origin"]) if o == "real"]
    augmented_ids = [i for ids, _ in groups.values() for i in ids]  # check() kept only the new ones
    if len(real_ids) <= config.neighbours or not augmented_ids:
        return []
    found = real_index(candidate)   # its index's rows: real_ids, in manifest order
    index, position = found.index, found.row
    labels = dict(zip(frame["id"], frame["label"]))
    group_of = dict(zip(frame["id"], frame["group"].fillna(frame["id"])))
    group_codes = {g: n for n, g in enumerate(dict.fromkeys(group_of[i] for i in real_ids + augmented_ids))}
    real_labels = np.array([labels[i] for i in real_ids], dtype=object)
    real_groups = np.array([group_codes[group_of[i]] for i in real_ids])
    label_codes = {v: n for n, v in enumerate(dict.fromkeys(real_labels))}
    real_codes = np.array([label_codes[v] for v in real_labels])
    k = config.neighbours

    def majority_agrees(neighbours, own):
        """Whether the most common label among each row's neighbours (the nearest first among ties) is its own;
        a row without any neighbour of another group cannot vote (False in the second array)."""
        votes = np.where(neighbours >= 0, real_codes[np.maximum(neighbours, 0)], -1)
        same = (votes[:, :, None] == votes[:, None, :]) & (votes[:, None, :] >= 0)
        winner = np.take_along_axis(votes, same.sum(axis=2).argmax(axis=1)[:, None], 1)[:, 0]
        mine = np.array([label_codes.get(v, -2) for v in own])
        return (winner == mine) & (winner >= 0), winner >= 0

    # neighbours from other groups only: copies of the same recording (its group) would vouch for any label
    real_found = index.search_apart(index.reference, real_groups, real_groups, k, question="real")
    real_agrees, real_votes = majority_agrees(real_found.index, real_labels)
    real_agrees = real_agrees[real_votes]
    real_rate = float(real_agrees.mean()) if len(real_agrees) else 0.0
    aug_rows = np.array([position[i] for i in augmented_ids])
    aug_labels = np.array([labels[i] for i in augmented_ids], dtype=object)
    aug_groups = np.array([group_codes[group_of[i]] for i in augmented_ids])
    new_found = index.search_apart(found.vectors(aug_rows), aug_groups, real_groups, k, question="new")
    neighbours = new_found.index
    agrees, votes = majority_agrees(neighbours, aug_labels)
    augmented_ids = [i for i, v in zip(augmented_ids, votes) if v]
    neighbours, aug_labels, agrees = neighbours[votes], aug_labels[votes], agrees[votes]  # no other group: no vote
    if not len(agrees) or not len(real_agrees):
        return []
    aug_rate = float(agrees.mean())
    lost = [{"id": augmented_ids[r], "label": aug_labels[r],
             "neighbour_labels": dict(Counter(real_labels[neighbours[r][neighbours[r] >= 0]]))}
            for r in np.flatnonzero(~agrees)]
    drop = real_rate - aug_rate
    table = [[int(agrees.sum()), int((~agrees).sum())], [int(real_agrees.sum()), int((~real_agrees).sum())]]
    p = float(fisher_exact(table, alternative="less").pvalue)
    if drop > config.label_kept_max_drop:
        severity = "error" if p < config.label_kept_alpha else "warning"
    else:
        severity = "info"
    verdict = {"error": f"the new items' labels are not recoverable from their content (Fisher p={p:.2g}): "
                        "relabelled, or distorted past recognition",
               "warning": f"not significant with {len(agrees)} new item(s) (Fisher p={p:.2g})",
               "info": "kept" if real_rate > config.label_kept_max_drop else
                       f"not informative: only {real_rate:.0%} of real items have mostly same-label neighbours in "
                       "other groups (labels follow groups)"}[severity]
    recall = min(real_found.recall, new_found.recall)
    searched = "" if real_found.exact and new_found.exact else (
        f"; neighbours searched approximately, recall {recall:.3f} against exact search on a sample")
    return [_finding(severity, f"label kept: {aug_rate:.0%} of {len(agrees)} new augmented item(s) have mostly "
                    f"same-label real neighbours (real items: {real_rate:.0%}; drop {drop:+.0%}, bound "
                    f"{config.label_kept_max_drop:.0%}): {verdict}{searched}", items=lost[: config.max_items],
                    key="realism.label_kept", subjects=frozenset(i["id"] for i in lost), measure=drop,
                    figures={"augmented_rate": aug_rate, "real_rate": real_rate, "drop": drop, "k": k,
                             "fisher_p": p, "new": len(agrees), "search_recall": recall})]
