"""Balanced, group-aware train/dev/test splits for small data, and the check that splits stay balanced.

assign_splits: every group (a user `group` such as a speaker; augmented items share their root's group; groups that
share an identical input or a near-duplicate are merged) becomes one unit with a count vector over labels AND tags. Units that already have a split keep it, so a test set never
changes under your feet, and new items of such a group join it. The remaining units go, rarest label/tag first, to
the split that most lacks that label/tag (iterative stratification over groups and several labels at once). Above
`small_data_max` items a stable hash of the group decides instead (a random split is fine with plenty of data).
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

import numpy as np

from curate.checks import Finding
from curate.exceptions import BadInput

CHECK = "splits"
SHARED = frozenset()   # memoised computations it reads (curate.checks.similarity.forget)
SPLITS = ("train", "dev", "test")


def assign_splits(manifest, ratios=(0.6, 0.2, 0.2), small_data_max: int = 10_000,
                  together: list[tuple[str, str]] = ()) -> list[str | None]:
    """A split for every item (see the module docstring); the manifest's existing splits are kept. `together`:
    pairs of item ids that must share a split (near-duplicates), merged with their groups."""
    ratios = np.asarray(ratios, dtype=np.float64)
    if ratios.shape != (3,) or np.any(ratios < 0) or not np.isclose(ratios.sum(), 1.0):
        raise BadInput(f"--ratios: expected three non-negative numbers summing to 1 (train,dev,test), got "
                       f"{[float(r) for r in ratios]}")
    groups = _units(manifest, together)
    current = list(manifest["split"])
    members: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    fixed: dict[str, str] = {}
    for group, rows in members.items():
        known = Counter(current[r] for r in rows if current[r] is not None)
        if known:
            fixed[group] = known.most_common(1)[0][0]
    free = [g for g in members if g not in fixed]
    result = list(current)
    if len(manifest) > small_data_max:
        for group in free:
            chosen = _hash_split(group, ratios)
            for r in members[group]:
                result[r] = chosen
    else:
        chosen = _stratify(manifest, members, fixed, free, ratios)
        for group, split in chosen.items():
            for r in members[group]:
                result[r] = split
    for group, split in fixed.items():
        for r in members[group]:
            if result[r] is None:
                result[r] = split
    return result


def _units(manifest, together: list[tuple[str, str]] = ()) -> list[str]:
    """The unit each item is placed with: its group, merged with every group that shares an identical input
    (same object) or a near-duplicate (`together`), so no input and its copy land in two splits. Named by the
    unit's smallest group name."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_group: dict[str, str] = {}
    for group, obj in zip(manifest["group"], manifest["object"]):
        if obj is None:
            find(group)
            continue
        other = first_group.setdefault(obj, group)
        a, b = find(group), find(other)
        if a != b:
            parent[max(a, b)] = min(a, b)
    group_of = dict(zip(manifest["id"], manifest["group"]))
    for x, y in together:
        a, b = find(group_of[x]), find(group_of[y])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [find(g) for g in manifest["group"]]


def _hash_split(group: str, ratios: np.ndarray) -> str:
    value = int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:8], "big") / 2**64
    return SPLITS[int(np.searchsorted(np.cumsum(ratios), value, side="right").clip(0, 2))]


def _stratify(manifest, members, fixed, free, ratios) -> dict[str, str]:
    features = sorted({f"label:{v}" for v in manifest["label"]} | {f"tag:{t}" for ts in manifest["tags"] for t in ts})
    column = {f: i for i, f in enumerate(features)}
    labels, tags = list(manifest["label"]), list(manifest["tags"])

    def vector(rows):
        v = np.zeros(len(features) + 1)
        for r in rows:
            v[column[f"label:{labels[r]}"]] += 1
            for t in tags[r]:
                v[column[f"tag:{t}"]] += 1
        v[-1] = len(rows)  # item count, so split sizes follow the ratios too
        return v

    units = {g: vector(members[g]) for g in members}
    totals = sum(units.values())
    desired = ratios[:, None] * totals[None, :]
    have = np.zeros_like(desired)
    for group, split in fixed.items():
        have[SPLITS.index(split)] += units[group]
    # rarest feature first; within it, larger units first (they are the hardest to place), then by name
    rarity = totals[:-1].copy()
    rarity[rarity == 0] = np.inf

    def key(group):
        present = np.flatnonzero(units[group][:-1])
        rarest = rarity[present].min() if len(present) else np.inf
        return (rarest, -units[group][-1], group)

    chosen = {}
    for group in sorted(free, key=key):
        v = units[group]
        present = np.flatnonzero(v[:-1])
        need = desired - have
        if len(present):
            rarest = present[np.argmin(rarity[present])]
            score = need[:, rarest] / max(totals[rarest], 1)
        else:
            score = np.zeros(3)
        fill = need[:, -1] / max(totals[-1], 1)
        best = max(range(3), key=lambda s: (round(score[s], 9), fill[s], -s) if ratios[s] > 0 else (-np.inf,) * 3)
        chosen[group] = SPLITS[best]
        have[best] += v
    return chosen


def check(candidate, source, config) -> list[Finding]:
    """Split balance of the candidate. A dataset with train and dev only, or with no splits at all, is valid:
    evaluation then uses what there is. Findings carry keys and subjects so the gate can tell what the change did."""
    frame = candidate.manifest
    splits = list(frame["split"])
    sizes = Counter(s for s in splits if s is not None)
    if not sizes:
        return [Finding(CHECK, "info", "no item has a split (valid; `curate split` assigns balanced, group-aware "
                        "train/dev/test splits)", figures={"items": len(frame)}, key="splits.none")]
    findings = []
    missing = [i for i, s in zip(frame["id"], splits) if s is None]
    if missing:
        findings.append(Finding(CHECK, "warning", f"{len(missing)} item(s) have no split (run `curate split`)",
                                items=missing[: config.max_items], figures={"unassigned": len(missing)},
                                key="splits.unassigned", subjects=frozenset(missing)))
    absent_splits = [s for s in SPLITS if sizes.get(s, 0) == 0]
    if absent_splits:
        findings.append(Finding(CHECK, "info", f"no {' or '.join(absent_splits)} split (valid: evaluation uses "
                                f"{', '.join(s for s in SPLITS if sizes.get(s))})", figures={"sizes": dict(sizes)},
                                key="splits.absent"))
    labels = sorted(set(frame["label"]))
    per_split = {s: Counter(l for l, x in zip(frame["label"], splits) if x == s) for s in SPLITS}
    for split in ("dev", "test"):
        if sizes.get(split, 0) == 0:
            continue
        absent = [l for l in labels if per_split[split][l] == 0]
        if absent:
            findings.append(Finding(CHECK, "error", f"label(s) {', '.join(map(repr, absent[:10]))} absent from "
                                    f"{split}: they cannot be evaluated", items=absent[: config.max_items],
                                    figures={"split": split, "labels": len(absent)},
                                    key=f"splits.label_absent.{split}", subjects=frozenset(absent)))
        thin = [l for l in labels if 0 < per_split[split][l] < config.min_per_label]
        if thin:
            findings.append(Finding(CHECK, "warning", f"{len(thin)} label(s) have fewer than "
                                    f"{config.min_per_label} items in {split}", items=thin[: config.max_items],
                                    key=f"splits.thin.{split}", subjects=frozenset(thin)))
    deviation, worst = _prevalence_deviation(frame, splits)
    severity = "warning" if deviation > config.max_prevalence_deviation else "info"
    findings.append(Finding(CHECK, severity, f"largest prevalence deviation from overall: {deviation:.1%} "
                            f"({worst})", figures={"max_deviation": deviation, "worst": worst,
                                                   "sizes": dict(sizes)},
                            key="splits.prevalence", measure=round(deviation, 9)))
    return findings


def _prevalence_deviation(frame, splits) -> tuple[float, str]:
    """Max over split x (label or tag) of |share in split - share overall|, over real items (augmented items are
    train-only by design and would skew every comparison)."""
    real = (frame["origin"] == "real").to_numpy()
    frame = frame[real]
    splits = [s for s, r in zip(splits, real) if r]
    n = len(frame)
    features = [("label", v) for v in sorted(set(frame["label"]))] + \
        [("tag", t) for t in sorted({t for ts in frame["tags"] for t in ts})]
    has = {f: np.array([(l == f[1]) if f[0] == "label" else (f[1] in ts)
                        for l, ts in zip(frame["label"], frame["tags"])]) for f in features}
    worst, where = 0.0, "-"
    split_array = np.array([s if s is not None else "" for s in splits])
    for split in SPLITS:
        in_split = split_array == split
        if not in_split.any():
            continue
        for f, mask in has.items():
            gap = abs(mask[in_split].mean() - mask.sum() / n)
            if gap > worst:
                worst, where = float(gap), f"{f[0]} {f[1]!r} in {split}"
    return worst, where
