"""Error analysis by tag: where is the model weak, how far from human level, and what is worth fixing first.

Input: a predictions table (the contract in curate.predictions: id, prediction, and label/tags from the table or
the dataset; optional human_label and p_<class> columns).
Output (schema "rubbersheet.errors", version 1; recipes read it to target weak tags):
    {"schema", "schema_version", "source",
     "overall": {n, accuracy, errors, hlp, gap_to_hlp, macro_f1, weighted_f1},
     "tags": [{tag, n, share_of_data, accuracy, errors, share_of_errors, hlp, hlp_source, gap_to_hlp, importance,
               potential_gain, rank}],      # ranked by potential_gain = gap_to_hlp x share_of_data x importance
     "per_class": [{label, precision, recall, f1, support}], "averages": {macro: {...}, weighted: {...}},
     "confusion": {"labels": [...], "matrix": [[true x predicted counts]]}}
All rates are fractions (0..1). A tag with no human-level figure gets hlp 1.0 (hlp_source "assumed"), so its gap is
its whole error rate. Items carrying several tags count in every one of them.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from curate.exceptions import BadInput

SCHEMA = "rubbersheet.errors"
SCHEMA_VERSION = 1


def read_tag_values(path: str | Path, what: str) -> dict[str, float]:
    """A per-tag number from CSV (tag,<value>) or YAML ({tag: value}); values like 0.98 or '98%'."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: {what} file does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise BadInput(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise BadInput(f"{path}: expected a mapping of tag -> {what}")
        pairs = [(str(k), v, i + 1) for i, (k, v) in enumerate(data.items())]
    else:
        rows = list(csv.reader(text.splitlines()))
        if not rows or len(rows[0]) < 2:
            raise BadInput(f"{path}: expected a CSV with columns tag,{what}")
        pairs = [(r[0].strip(), r[1].strip() if len(r) > 1 else "", n) for n, r in enumerate(rows[1:], start=2)
                 if any(c.strip() for c in r)]
    out = {}
    for tag, value, line in pairs:
        out[tag] = _fraction(value, f"{path}:{line}: {what} for tag {tag!r}", allow_above_one=what == "importance")
    return out


def _fraction(value: Any, where: str, allow_above_one: bool = False) -> float:
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise BadInput(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0 or (number > 1 and not allow_above_one):
        raise BadInput(f"{where}: {value!r} must be {'>= 0' if allow_above_one else 'in [0, 1] (or a percentage)'}")
    return number


def analyse(frame, tags: list[list[str]], hlp: dict[str, float] | None = None,
            importance: dict[str, float] | None = None, source: str | None = None) -> dict[str, Any]:
    hlp, importance = dict(hlp or {}), dict(importance or {})
    labels = frame["label"].to_numpy(dtype=object)
    predictions = frame["prediction"].to_numpy(dtype=object)
    correct = labels == predictions
    human = frame["human_label"].to_numpy(dtype=object) if "human_label" in frame.columns else None
    n, errors = len(frame), int((~correct).sum())
    names = sorted({t for row in tags for t in row})
    rows = []
    for tag in names:
        member = np.array([tag in row for row in tags])
        rows.append(_tag_row(tag, member, correct, human, labels, n, errors, hlp, importance))
    untagged = np.array([not row for row in tags])
    if untagged.any() and names:
        rows.append(_tag_row("(no tag)", untagged, correct, human, labels, n, errors, hlp, importance))
    ranked = sorted((r for r in rows if r["tag"] != "(no tag)"), key=lambda r: (-r["potential_gain"], r["tag"]))
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    overall = _tag_row("(all)", np.ones(n, bool), correct, human, labels, n, errors, hlp, importance)
    per_class, averages, confusion = class_metrics(labels, predictions)
    overall.update({"macro_f1": averages["macro"]["f1"], "weighted_f1": averages["weighted"]["f1"]})
    for key in ("share_of_data", "share_of_errors", "importance", "potential_gain", "rank"):
        overall.pop(key, None)
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "source": source, "overall": overall,
            "tags": ranked + [r for r in rows if r["tag"] == "(no tag)"], "per_class": per_class,
            "averages": averages, "confusion": confusion}


def _tag_row(tag, member, correct, human, labels, n, errors, hlp, importance) -> dict[str, Any]:
    count = int(member.sum())
    accuracy = float(correct[member].mean()) if count else 0.0
    tag_errors = int((~correct[member]).sum())
    if tag in hlp:
        level, level_source = hlp[tag], "file"
    elif human is not None and count and all(h != "" for h in human[member]):
        level, level_source = float((human[member] == labels[member]).mean()), "human_label"
    else:
        level, level_source = 1.0, "assumed"
    gap = max(0.0, level - accuracy)
    weight = importance.get(tag, 1.0)
    return {"tag": tag, "n": count, "share_of_data": count / n if n else 0.0, "accuracy": accuracy,
            "errors": tag_errors, "share_of_errors": tag_errors / errors if errors else 0.0, "hlp": level,
            "hlp_source": level_source, "gap_to_hlp": gap, "importance": weight,
            "potential_gain": gap * (count / n if n else 0.0) * weight, "rank": None}


def class_metrics(labels: np.ndarray, predictions: np.ndarray):
    """Per-class precision/recall/F1/support, macro and support-weighted averages, and the confusion matrix
    (rows: true label, columns: predicted label, over the union of labels seen in either)."""
    classes = sorted(set(labels) | set(predictions), key=str)
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, ([index[v] for v in labels], [index[v] for v in predictions]), 1)
    per_class = []
    for c in classes:
        i = index[c]
        tp = matrix[i, i]
        predicted, support = matrix[:, i].sum(), matrix[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"label": str(c), "precision": float(precision), "recall": float(recall),
                          "f1": float(f1), "support": int(support)})
    present = [r for r in per_class if r["support"] > 0]
    total = sum(r["support"] for r in present) or 1
    averages = {
        "macro": {k: float(np.mean([r[k] for r in present])) if present else 0.0 for k in ("precision", "recall", "f1")},
        "weighted": {k: float(sum(r[k] * r["support"] for r in present) / total) for k in ("precision", "recall", "f1")},
    }
    return per_class, averages, {"labels": [str(c) for c in classes], "matrix": matrix.tolist()}


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (sensible at 0 %, 100 % and small n)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def audit(frame, columns: list[str], min_size: int = 10) -> dict[str, Any]:
    """Accuracy per slice of `columns` (every combination of their values; list-valued cells such as tags count
    the item in each value), with Wilson 95 % intervals. A slice is flagged when it has at least `min_size` items
    and its interval lies entirely below the overall accuracy."""
    correct = (frame["label"].to_numpy(dtype=object) == frame["prediction"].to_numpy(dtype=object))
    overall = float(correct.mean())
    keys: dict[tuple, list[int]] = {}
    for position, row in enumerate(frame[columns].itertuples(index=False, name=None)):
        options = [v if isinstance(v, list) else [v] for v in row]
        for combo in _product(options):
            keys.setdefault(combo, []).append(position)
    slices = []
    for combo, members in sorted(keys.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        hits = int(correct[members].sum())
        low, high = wilson_interval(hits, len(members))
        slices.append({"slice": dict(zip(columns, [None if _missing(v) else v for v in combo])), "n": len(members),
                       "accuracy": hits / len(members), "ci_low": low, "ci_high": high,
                       "flagged": len(members) >= min_size and high < overall, "small": len(members) < min_size})
    low, high = wilson_interval(int(correct.sum()), len(correct))
    return {"by": columns, "overall": {"n": len(correct), "accuracy": overall, "ci_low": low, "ci_high": high},
            "min_size": min_size, "slices": slices}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _product(options: list[list]) -> list[tuple]:
    combos: list[tuple] = [()]
    for values in options:
        combos = [c + (v,) for c in combos for v in (values or [None])]
    return combos
