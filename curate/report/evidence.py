"""What a reviewer sees of each finding: the flagged items themselves, not JSON lines.

A finding's `items` (curate.checks, capped by the gate's max_items) come in a few shapes; each becomes one kind of
evidence, stored in report.json under the finding's "evidence" and rendered with media by the HTML:

    items     {"id": ...} dicts, or plain ids     one card per item: media, id, label, tags, and the reason (the
                                                  item's own detail: the metric outside the real range, the
                                                  nearest neighbours' labels, the annotators' answers, ...)
    pairs     {"a", "b", "score"} dicts; lists    two (or more) media side by side with both ids, labels and
              of {"id"} dicts (identical groups);  splits, and the distance score; a copy next to its source
              {"id", "source_id"} copies
    contrast  a confusable pair (ambiguity)       real examples of BOTH labels side by side (one row per source
                                                  group that has both, so a font's "1" sits next to its "I"), and
                                                  the augmented items of either label that this change adds
    table     anything else (labels, groups)      a small table of the fields, no media

At most CARDS entries per finding are kept (`shown`); `listed` is how many the finding lists in report.json and
`found` how many it found in all (its subjects), so the page can say how many more there are and where.
"""
from __future__ import annotations

import hashlib
from typing import Any

CARDS = 12           # entries (cards, pairs, contrast rows) per finding
CONTRAST_ROWS = 4    # real examples per label of a confusable pair
CONTRAST_NEW = 4     # augmented items of the pair shown under them


def rank(seed: int, key: str) -> str:
    """The seeded order used for every choice in the report: sha256 of (seed, key)."""
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def evidence(finding: dict[str, Any], view, source, seed: int, found: int | None = None) -> dict[str, Any] | None:
    """The evidence of one finding (a GateResult finding as a dict), or None when it has nothing to show."""
    figures = finding.get("figures") or {}
    if finding.get("check") == "ambiguity" and isinstance(figures.get("pair"), list) and len(figures["pair"]) == 2:
        return _contrast(figures["pair"], figures, view, source, seed)
    items = list(finding.get("items") or [])
    if not items:
        return None
    known = _known_ids(view, source)
    entries: list[dict[str, Any]] = []
    kind = "table"
    for item in items:
        entry = _pair(item, known) or _card(item, known)
        if entry is None:
            entries = []
            break
        entries.append(entry)
    if entries:
        kinds = {"pair" if "ids" in e else "item" for e in entries}
        kind = "pairs" if kinds == {"pair"} else ("items" if kinds == {"item"} else "mixed")
    else:
        entries = [_row(item) for item in items]
    if any(isinstance(item, list) for item in items):  # groups of identical items: subjects count their members
        found = figures.get("groups") or figures.get("objects")
    return {"kind": kind, "entries": entries[:CARDS], "shown": min(len(entries), CARDS), "listed": len(items),
            "found": max(found or 0, len(items))}


def _known_ids(view, source) -> set[str]:
    ids = set(view.manifest["id"])
    if source is not None:
        ids |= set(source.manifest["id"])
    return ids


def _card(item: Any, known: set[str]) -> dict[str, Any] | None:
    if isinstance(item, str) and item in known:
        return {"id": item, "reason": ""}
    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"] in known:
        return {"id": item["id"], "reason": reason(item)}
    return None


def _pair(item: Any, known: set[str]) -> dict[str, Any] | None:
    if isinstance(item, dict) and isinstance(item.get("a"), str) and isinstance(item.get("b"), str):
        if item["a"] in known and item["b"] in known:
            score = item.get("score")
            if isinstance(item.get("why"), str):      # a derived copy: the detector says what it measured
                parts = [item["why"]]
            else:
                parts = [f"distance / typical nearest-neighbour distance = {score:.3f}"] \
                    if isinstance(score, (int, float)) else []
            parts.append(reason(item, skip=("a", "b", "score", "labels", "splits", "why")))  # both cards show those
            return {"ids": [item["a"], item["b"]], "score": score, "reason": "; ".join(p for p in parts if p)}
    if isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("source_id"), str):
        if item["id"] in known and item["source_id"] in known:  # a copy next to its source
            return {"ids": [item["source_id"], item["id"]], "score": None,
                    "reason": reason(item, skip=("id", "source_id")) or "copy of its source"}
    if isinstance(item, list) and len(item) >= 2 and all(isinstance(x, dict) and x.get("id") in known for x in item):
        labels = sorted({str(x["label"]) for x in item if "label" in x})
        splits = sorted({str(x["split"]) for x in item if "split" in x})
        what = (f"labels {' / '.join(labels)}" if len(labels) > 1 else "") or \
            (f"in splits {' and '.join(splits)}" if splits else "")
        return {"ids": [x["id"] for x in item], "score": None,
                "reason": "identical content (the same stored object)" + (f", {what}" if what else "")}
    return None


def _row(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return {"fields": {str(k): _short(v) for k, v in item.items()}}
    return {"fields": {"value": _short(item)}}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value + 0.0:.4g}"  # + 0.0: no "-0"
    if isinstance(value, (list, tuple)):
        return ", ".join(_short(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items())
    return str(value)


def reason(item: dict[str, Any], skip: tuple[str, ...] = ("id",)) -> str:
    """One line saying why an item was flagged, from the fields its check gave it."""
    parts = []
    for metric in item.get("metrics") or []:  # realism: the metrics outside the real range
        low, high = metric.get("real_range") or (None, None)
        parts.append(f"{metric.get('metric')} = {_short(metric.get('value'))} (real range {_short(low)} to "
                     f"{_short(high)})")
    if "neighbour_labels" in item:  # realism, label kept: the nearest real items vote for other labels
        votes = ", ".join(f"{k} x{v}" for k, v in sorted(item["neighbour_labels"].items(), key=lambda kv: -kv[1]))
        parts.append(f"labelled {item.get('label')}; nearest real neighbours: {votes}")
    if "suggested" in item:  # cleanlab
        parts.append(f"labelled {item.get('label')}; the model suggests {item['suggested']} "
                     f"(p(label) = {_short(item.get('p_label'))})")
    if "annotations" in item:
        parts.append("annotators said " + ", ".join(map(str, item["annotations"])) +
                     (f" (agreement {item['agreement']:.0%})" if isinstance(item.get("agreement"), (int, float))
                      else ""))
    if "why" in item and "why" not in skip:
        parts.append(str(item["why"]))
    if "saturated" in item:
        parts.append(f"saturated share {item['saturated']:.2%}")
    handled = {"metrics", "neighbour_labels", "suggested", "p_label", "annotations", "agreement", "why", "saturated",
               "label", *skip}
    rest = {k: v for k, v in item.items() if k not in handled}
    if rest:
        parts.append("; ".join(f"{k} {_short(v)}" for k, v in rest.items()))
    return "; ".join(parts)


def _contrast(pair: list[str], figures: dict[str, Any], view, source, seed: int) -> dict[str, Any]:
    """Real training examples of both labels side by side, aligned by source group where a group has both (the
    same font's "1" next to its "I"), then the augmented items of the pair that the change adds."""
    from curate.checks import train_mask

    a, b = pair
    frame = view.manifest
    chosen = (frame["origin"] == "real").to_numpy() & frame["label"].isin(pair).to_numpy()
    in_train = frame[chosen & train_mask(frame)]
    pool = in_train if set(in_train["label"]) == {a, b} else frame[chosen]  # the ratio is train's, if it has both
    by_label: dict[str, list[tuple[str, str]]] = {a: [], b: []}
    for item, label, group in sorted(zip(pool["id"], pool["label"], pool["group"].fillna("")),
                                     key=lambda r: rank(seed, r[0])):
        by_label[label].append((item, group or item))
    groups_a = {g: i for i, g in reversed(by_label[a])}  # the lowest-ranked item of each group
    groups_b = {g: i for i, g in reversed(by_label[b])}
    shared = sorted(set(groups_a) & set(groups_b), key=lambda g: rank(seed, g))[:CONTRAST_ROWS]
    rows = [{"ids": [groups_a[g], groups_b[g]], "group": g, "role": "real"} for g in shared]
    used = {i for r in rows for i in r["ids"]}
    rest = {label: [i for i, _ in by_label[label] if i not in used] for label in (a, b)}
    while len(rows) < CONTRAST_ROWS and (rest[a] or rest[b]):
        ids = [rest[a].pop(0) if rest[a] else None, rest[b].pop(0) if rest[b] else None]
        rows.append({"ids": ids, "group": None, "role": "real"})
    known = set(source.manifest["id"]) if source is not None else set()
    new = frame[(frame["origin"] == "augmented").to_numpy() & ~frame["id"].isin(known).to_numpy()
                & frame["label"].isin(pair).to_numpy()]
    added = {a: [], b: []}
    for item, label in sorted(zip(new["id"], new["label"]), key=lambda r: rank(seed, r[0])):
        if len(added[label]) < CONTRAST_NEW:
            added[label].append(item)
    for n in range(max(len(added[a]), len(added[b]))):
        rows.append({"ids": [added[a][n] if n < len(added[a]) else None, added[b][n] if n < len(added[b]) else None],
                     "group": None, "role": "augmented"})
    counts_source, counts_candidate = figures.get("counts_source"), figures.get("counts_candidate")
    return {"kind": "contrast", "labels": [a, b], "entries": rows, "shown": len(rows),
            "listed": len(rows), "found": len(rows),
            "added": {a: int((new["label"] == a).sum()), b: int((new["label"] == b).sum())},
            "train": {"source": counts_source, "candidate": counts_candidate}}
