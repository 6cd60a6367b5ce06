"""Leakage: nothing seen in training may reappear in dev/test.

Errors: the same object, or a near-duplicate (same thresholds as the consistency check), in train and in dev/test;
a derived copy of a dev/test item in train (curate.checks.copies: noise-mixed, gain-changed, resampled, re-encoded,
moved, rotated or brightness-changed; confirmed at the signal level); augmented items outside train; a group
(speaker, source item and its copies) spanning several splits.
Warning: a "possible copy" of audio (the same recording under added noise, or two synthetic voices sharing samples:
see curate.checks.copies for why the two cannot be told apart).
"""
from __future__ import annotations

from collections import defaultdict

from curate.checks import Finding
import numpy as np

from curate.checks.similarity import codes, near_duplicates

CHECK = "leakage"
SHARED = frozenset({"pairs"})   # memoised computations it reads (curate.checks.similarity.forget)


def check(candidate, source, config) -> list[Finding]:
    frame = candidate.manifest
    split = dict(zip(frame["id"], frame["split"]))
    findings = []
    splits_by_object: dict[str, set] = defaultdict(set)
    items_by_object: dict[str, list] = defaultdict(list)
    for item, obj, s in zip(frame["id"], frame["object"], frame["split"]):
        if s is not None:
            splits_by_object[obj].add(s)
            items_by_object[obj].append({"id": item, "split": s})
    shared = [items_by_object[o] for o, s in splits_by_object.items() if "train" in s and len(s) > 1]
    if shared:
        findings.append(Finding(CHECK, "error", f"{len(shared)} identical input(s) in train and in dev/test",
                                items=shared[: config.max_items], figures={"objects": len(shared)},
                                key="leakage.identical", subjects=frozenset(i["id"] for g in shared for i in g)))
    if config.near_duplicates and any(s is not None for s in split.values()):  # no splits: nothing can leak
        found = near_duplicates(candidate, config.near_duplicate_ratio, scale_from=source)
        ids, i, j, score = found.ids, found.i, found.j, found.ratio
        split_codes = codes(candidate, ids, "split")
        train_code = split_codes[ids.index(next(x for x in ids if split[x] == "train"))] \
            if any(split[x] == "train" for x in ids) else -1
        assigned = np.array([split[x] is not None for x in ids])
        across = (split_codes[i] != split_codes[j]) & assigned[i] & assigned[j] & \
            ((split_codes[i] == train_code) | (split_codes[j] == train_code))
        if across.any():
            listed = [{"a": ids[x], "b": ids[y], "splits": [split[ids[x]], split[ids[y]]], "score": float(v)}
                      for x, y, v in list(zip(i[across], j[across], score[across]))[: config.max_items]]
            pairs = frozenset("|".join(sorted((ids[x], ids[y]))) for x, y in zip(i[across], j[across]))
            findings.append(Finding(CHECK, "error", f"{int(across.sum())} near-duplicate pair(s) across train and "
                                    f"dev/test ({found.rule()}; score = distance / typical)", items=listed,
                                    figures={"pairs": int(across.sum()), **found.figures()},
                                    key="leakage.near_duplicates", subjects=pairs))
    if config.derived_copies and any(s == "train" for s in split.values()):
        findings += _derived_copies(candidate, source, split, config, findings)
    has_splits = any(s is not None for s in split.values())
    outside = [{"id": i, "split": s} for i, s, o in zip(frame["id"], frame["split"], frame["origin"])
               if o == "augmented" and s != "train" and has_splits]
    if outside:
        findings.append(Finding(CHECK, "error", f"{len(outside)} augmented item(s) outside train: augmented data "
                                "is for training only", items=outside[: config.max_items],
                                figures={"items": len(outside)}, key="leakage.augmented_outside_train",
                                subjects=frozenset(o["id"] for o in outside)))
    splits_by_group: dict[str, set] = defaultdict(set)
    for group, s in zip(frame["group"], frame["split"]):
        if s is not None:
            splits_by_group[group].add(s)
    spanning = {g: sorted(s) for g, s in splits_by_group.items() if len(s) > 1}
    if spanning:
        findings.append(Finding(CHECK, "error", f"{len(spanning)} group(s) span several splits (e.g. "
                                f"{next(iter(spanning))!r}: {', '.join(next(iter(spanning.values())))})",
                                items=[{"group": g, "splits": s} for g, s in list(spanning.items())[: config.max_items]],
                                figures={"groups": len(spanning)}, key="leakage.group_spans_splits",
                                subjects=frozenset(f"{g}:{','.join(s)}" for g, s in spanning.items())))
    if not findings:
        findings.append(Finding(CHECK, "info", "no leakage between splits", figures={"items": len(frame)}))
    return findings


def _derived_copies(candidate, source, split: dict, config, found_already: list[Finding]) -> list[Finding]:
    """Derived copies of dev/test items among train items, leaving out pairs already reported as identical or
    near-duplicates."""
    from curate.checks.copies import derived_copies

    reported = set()
    for finding in found_already:
        if finding.key == "leakage.near_duplicates":
            reported |= set(finding.subjects)
    held_out = [i for i, s in split.items() if s is not None and s != "train"]
    train = [i for i, s in split.items() if s == "train"]
    copies = derived_copies(candidate, held_out, train, scale_from=source)
    out = []
    for confident in (True, False):
        pairs = [(a, b, score, text) for a, b, score, sure, text in
                 zip(copies.query, copies.reference, copies.score, copies.confident, copies.detail)
                 if sure == confident and "|".join(sorted((a, b))) not in reported]
        if not pairs:
            continue
        listed = [{"a": a, "b": b, "splits": [split[a], split[b]], "score": round(score, 4), "why": text}
                  for a, b, score, text in pairs[: config.max_items]]
        subjects = frozenset("|".join(sorted((a, b))) for a, b, _, _ in pairs)
        if confident:
            findings = Finding(CHECK, "error", f"{len(pairs)} derived cop(ies) of dev/test items in train "
                               f"({copies.rule(True)})", items=listed,
                               figures={"pairs": len(pairs), **copies.figures()}, key="leakage.derived_copies",
                               subjects=subjects)
        else:
            findings = Finding(CHECK, "warning", f"{len(pairs)} possible cop(ies) of dev/test clips in train "
                               f"({copies.rule(False)})", items=listed,
                               figures={"pairs": len(pairs), **copies.figures()}, key="leakage.possible_copies",
                               subjects=subjects)
        out.append(findings)
    return out
