"""Evaluation: did the new data help where it was aimed, and what did it cost elsewhere? Paired, per tag.

Run by the recipe runner after `evaluate:` (it needs the before/after predictions, not just the data). The same dev
items are predicted by the model trained on the source (before) and on the candidate (after), so the figures are
PAIRED. For "all" and for every tag present in dev, on its own (nothing is pooled):

  n, before, after     accuracy of the two models on the tag's items
  difference           after - before (the paired difference in accuracy)
  low, high            95 % interval of the difference: paired bootstrap over leakage groups (column `group`): the
                       scored groups, in sorted order, are resampled with replacement `resamples` times (default 2000)
                       with numpy.random.default_rng(seed).integers(0, G, size=(resamples, G)); each resample's
                       difference is sum(after - before) / n over the drawn groups' items of the tag; the interval
                       is the 2.5th and 97.5th percentile (numpy.percentile, linear) of the resamples where the tag
                       has items. With fewer than MIN_GROUPS groups the items themselves are the units (unit:
                       "item"): two or three clusters give no usable interval.
  fixed, broken        discordant pairs: wrong before and right after / right before and wrong after
  mcnemar_p            McNemar's exact test: two-sided binomial test of `fixed` out of fixed + broken at 1/2
                       (scipy.stats.binomtest); 1.0 when there are no discordant pairs
  targeted             whether the recipe aimed at the tag

The verdict is McNemar's: a tag (targeted or not) or "all" with p < 0.05 and after < before is a finding of
`drop_severity` (curate.checks.gate, default error: it blocks), unless the recipe accepts that cost
(`curation.evaluation.accept_cost: {tag: points}`: a drop of at most that many points is a warning); a
significant gain is info. `lift` is the same paired figure
over the items carrying any target tag (what sweeps rank on).

The result is an `Evaluation` (frozen); `to_dict()` is what version.json stores under "evaluation" and what the
reports, history, tracking and sweeps read (`rows()` also reads evaluations stored before this form).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from curate.checks import Finding

CHECK = "evaluation"
ALL = "all"
ALPHA = 0.05
RESAMPLES = 2000
MIN_GROUPS = 10
SCHEMA = "rubbersheet.evaluation/2"


@dataclass(frozen=True)
class TagEvaluation:
    tag: str
    n: int
    before: float
    after: float
    difference: float
    low: float
    high: float
    mcnemar_p: float
    fixed: int
    broken: int
    targeted: bool

    @property
    def significant(self) -> bool:
        return self.mcnemar_p < ALPHA

    @property
    def drop(self) -> bool:
        return self.significant and self.after < self.before

    @property
    def gain(self) -> bool:
        return self.significant and self.after > self.before


@dataclass(frozen=True)
class Evaluation:
    model: str
    split: str
    seed: int
    resamples: int
    unit: str                   # "group" or "item": what the bootstrap resamples
    units: int                  # how many of them were scored
    rows: tuple[TagEvaluation, ...]
    targets: tuple[str, ...] = ()
    lift: TagEvaluation | None = None   # items carrying any target tag
    details: dict[str, Any] = field(default_factory=dict)   # e.g. the baseline's chosen features

    def row(self, tag: str) -> TagEvaluation | None:
        return next((r for r in self.rows if r.tag == tag), None)

    @property
    def untargeted(self) -> list[TagEvaluation]:
        return [r for r in self.rows if r.tag != ALL and not r.targeted]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "model": self.model, "split": self.split, "seed": self.seed,
                "resamples": self.resamples, "unit": self.unit, "units": self.units, "targets": list(self.targets),
                "tags": [asdict(r) for r in self.rows], "lift": asdict(self.lift) if self.lift else None,
                **({"details": dict(self.details)} if self.details else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        lift = data.get("lift")
        return cls(data.get("model", ""), data.get("split", ""), int(data.get("seed", 0)),
                   int(data.get("resamples", 0)), data.get("unit", "item"), int(data.get("units", 0)),
                   tuple(TagEvaluation(**r) for r in data.get("tags", [])), tuple(data.get("targets") or ()),
                   TagEvaluation(**lift) if lift else None, dict(data.get("details") or {}))


# -- computing ------------------------------------------------------------------------------------------------
def mcnemar_p(fixed: int, broken: int) -> float:
    """McNemar's exact test on the discordant pairs (two-sided binomial test at 1/2)."""
    from scipy.stats import binomtest

    total = int(fixed) + int(broken)
    return 1.0 if total == 0 else float(binomtest(int(fixed), total, 0.5).pvalue)


def _draws(n_units: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_units) counts: how often each unit is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n_units, size=(resamples, n_units))
    flat = (np.arange(resamples, dtype=np.int64)[:, None] * n_units + index).ravel()
    return np.bincount(flat, minlength=resamples * n_units).reshape(resamples, n_units).astype(np.float64)


def _row(tag, member, before_ok, after_ok, unit_index, counts, targeted) -> TagEvaluation:
    n = int(member.sum())
    b_ok, a_ok = before_ok[member], after_ok[member]
    fixed, broken = int((~b_ok & a_ok).sum()), int((b_ok & ~a_ok).sum())
    before, after = float(b_ok.mean()), float(a_ok.mean())
    n_units = counts.shape[1]
    per_unit_n = np.bincount(unit_index[member], minlength=n_units).astype(float)
    per_unit_d = np.bincount(unit_index[member], weights=(a_ok.astype(float) - b_ok.astype(float)),
                             minlength=n_units)
    totals = counts @ per_unit_n
    sums = counts @ per_unit_d
    valid = totals > 0
    samples = sums[valid] / totals[valid]
    low, high = (np.percentile(samples, [2.5, 97.5]) if samples.size else (after - before, after - before))
    return TagEvaluation(tag, n, before, after, after - before, float(low), float(high), mcnemar_p(fixed, broken),
                         fixed, broken, targeted)


def compare(before_ok: Sequence[bool], after_ok: Sequence[bool], tags: Sequence[Sequence[str]],
            groups: Sequence[Any], targets: Sequence[str], *, model: str = "", split: str = "", seed: int = 0,
            resamples: int = RESAMPLES, details: dict[str, Any] | None = None) -> Evaluation:
    """The paired evaluation of two models' correctness on the same items (one entry per item, same order)."""
    before_ok, after_ok = np.asarray(before_ok, bool), np.asarray(after_ok, bool)
    if before_ok.shape != after_ok.shape or len(tags) != len(before_ok) or len(groups) != len(before_ok):
        raise ValueError("compare: before, after, tags and groups must describe the same items")
    names = sorted({str(g) for g in groups})
    if len(names) >= MIN_GROUPS:
        unit, lookup = "group", {g: i for i, g in enumerate(names)}
        unit_index = np.array([lookup[str(g)] for g in groups], np.int64)
    else:
        unit, unit_index = "item", np.arange(len(before_ok), dtype=np.int64)
    n_units = int(unit_index.max()) + 1 if len(unit_index) else 0
    counts = _draws(n_units, resamples, seed) if n_units else np.zeros((resamples, 0), np.int64)
    targets = tuple(targets)
    tag_sets = [set(t) for t in tags]
    rows = [_row(ALL, np.ones(len(before_ok), bool), before_ok, after_ok, unit_index, counts, False)] \
        if len(before_ok) else []
    present = sorted({t for s in tag_sets for t in s}, key=lambda t: (t not in targets, str(t)))
    for tag in present:
        member = np.array([tag in s for s in tag_sets])
        rows.append(_row(tag, member, before_ok, after_ok, unit_index, counts, tag in targets))
    aimed = np.array([bool(s & set(targets)) for s in tag_sets], bool)
    lift = _row("+".join(targets), aimed, before_ok, after_ok, unit_index, counts, True) if aimed.any() else None
    return Evaluation(model, split, int(seed), int(resamples), unit, n_units, tuple(rows), targets, lift,
                      dict(details or {}))


def compare_predictions(before, after, targets: Sequence[str], *, split: str = "dev", model: str = "",
                        seed: int = 0, resamples: int = RESAMPLES, groups: dict[str, Any] | None = None,
                        details: dict[str, Any] | None = None) -> Evaluation:
    """Paired evaluation of two prediction frames (id, label, prediction, tags[, split][, group]) on the items both
    scored in `split` (every item both scored when neither has that split). Tags come from `before`; groups from
    `groups` ({id: group}), else a `group` column, else every item is its own group."""
    def scored(frame):
        if "split" in frame.columns and (frame["split"] == split).any():
            return frame[frame["split"] == split]
        return frame

    b, a = scored(before).set_index("id"), scored(after).set_index("id")
    ids = [i for i in b.index if i in a.index]
    b, a = b.loc[ids], a.loc[ids]
    tag_lists = [t if isinstance(t, (list, tuple)) else [x for x in str(t or "").split(";") if x] for t in b["tags"]]
    if groups is not None:
        group_of = [groups.get(i, i) for i in ids]
    elif "group" in b.columns:
        group_of = list(b["group"])
    else:
        group_of = list(ids)
    return compare((b["label"] == b["prediction"]).to_numpy(), (a["label"] == a["prediction"]).to_numpy(),
                   tag_lists, group_of, targets, model=model, split=split, seed=seed, resamples=resamples,
                   details=details)


# -- reading the stored form ------------------------------------------------------------------------------------
def rows(evaluation: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per-tag rows of a stored evaluation dict; an evaluation stored before the paired form (before/after/n maps)
    gives rows with difference = after - before and no interval or p-value."""
    if not evaluation:
        return []
    if "tags" in evaluation:
        return [dict(r) for r in evaluation["tags"]]
    targets = set(evaluation.get("targets") or [])
    out = []
    for tag, before in (evaluation.get("before") or {}).items():
        after = (evaluation.get("after") or {}).get(tag)
        out.append({"tag": ALL if tag == "(all)" else tag, "n": (evaluation.get("n") or {}).get(tag, 0),
                    "before": before, "after": after,
                    "difference": None if after is None else after - before, "low": None, "high": None,
                    "mcnemar_p": None, "fixed": None, "broken": None, "targeted": tag in targets})
    return out


def display_order(evaluation: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows for tables: untargeted tags worst difference first, then the targeted tags, then "all"."""
    table = rows(evaluation)

    def key(r):
        overall = r["tag"] == ALL
        diff = r["difference"] if r["difference"] is not None else 0.0
        return (2 if overall else (1 if r["targeted"] else 0), diff, str(r["tag"]))

    return sorted(table, key=key)


def describe(row: dict[str, Any], split: str = "dev") -> str:
    """One line: 'clean (untargeted): dev accuracy 80.0% -> 60.0% (-20.0 pts, 95 % interval ..., McNemar p=..., n=40)'."""
    kind = "targeted" if row.get("targeted") else ("overall" if row["tag"] == ALL else "untargeted")
    after = "-" if row["after"] is None else f"{row['after']:.1%}"
    text = f"{row['tag']} ({kind}): {split} accuracy {row['before']:.1%} -> {after}"
    if row.get("difference") is not None:
        text += f" ({100 * row['difference']:+.1f} pts"
        if row.get("low") is not None:
            text += f", 95 % interval {100 * row['low']:+.1f} to {100 * row['high']:+.1f}"
        if row.get("mcnemar_p") is not None:
            text += f", McNemar p={row['mcnemar_p']:.3g}"
        text += ")"
    return text + f", n={row['n']}"


# -- the check -----------------------------------------------------------------------------------------------
def check(evaluation: Evaluation | dict[str, Any] | None, targets: list[str], config) -> list[Finding]:
    """A significant drop (McNemar p < 0.05, after < before) of ANY tag, targeted or not, or of "all": a finding
    of config.drop_severity naming the tag; a significant gain: info."""
    if not evaluation:
        return []
    data = evaluation.to_dict() if isinstance(evaluation, Evaluation) else evaluation
    findings = []
    for row in display_order(data):
        p = row.get("mcnemar_p")
        if p is None or row["after"] is None or p >= ALPHA or row["after"] == row["before"]:
            continue
        text = describe(row, data.get("split", "dev"))
        if row["after"] < row["before"]:
            accepted = getattr(config, "accept_cost", {}).get(row["tag"])
            lost = 100 * (row["before"] - row["after"])
            if accepted is not None and lost <= accepted + 1e-9:
                severity, note = "warning", f" (within the accepted cost of {accepted:g} pts)"
            else:
                severity, note = config.drop_severity, ""
            findings.append(Finding(CHECK, severity, f"significantly worse on {text}{note}", figures=row,
                                    relative=True, key=f"evaluation.drop.{row['tag']}",
                                    subjects=frozenset({row["tag"]}), measure=-row["difference"]))
        else:
            findings.append(Finding(CHECK, "info", f"significantly better on {text}", figures=row, relative=True,
                                    key=f"evaluation.gain.{row['tag']}", subjects=frozenset({row["tag"]})))
    if not findings:
        findings.append(Finding(CHECK, "info", "no significant accuracy change on any tag (McNemar, p < 0.05)",
                                relative=True))
    return findings
