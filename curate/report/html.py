"""report.html: one self-contained page (inline CSS, plots as base64 PNG, thumbnails and spectrograms as base64
WebP, or JPEG/PNG without WebP support, audio as base64 WAV, no network) of at most PAGE_LIMIT bytes (render_html
says how).

Every string that comes from the user's data (labels, tags, ids, recipe names, metadata, messages) goes through
Jinja2 autoescaping; only the base64 data URIs built here are marked safe.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

PAGE_LIMIT = 3_000_000   # bytes: report.html stays under this for a run of any size (see render_html)
MARGIN = 40_000          # kept free for what the estimate of a card's text misses
TEXT_PER_CARD = 3_000    # markup of a card, a pair row or a sample besides its media (captions, tables, review)
UNITS = {"duration_s": "s", "rms_dbfs": "dBFS", "peak_dbfs": "dBFS", "clipped_fraction": "share of samples",
         "snr_db": "dB", "leading_silence_s": "s", "trailing_silence_s": "s", "spectral_centroid_hz": "Hz",
         "spectral_rolloff_hz": "Hz", "width": "px", "height": "px", "brightness": "0-1", "contrast": "0-1",
         "sharpness": "Laplacian variance", "colourfulness": "Hasler-Susstrunk", "noise_sigma": "0-1"}


def _png(fig) -> str:
    from curate.report.media import figure_uri

    return figure_uri(fig)


def _pyplot():
    from curate.report.media import pyplot

    return pyplot()


def constant_metrics(values: dict[str, dict[str, list[float]]]) -> list[str]:
    """Metrics with one value in both groups (e.g. width of same-size images): nothing to plot."""
    return [m for m, groups in values.items()
            if np.ptp(np.concatenate([np.asarray(v, float) for v in groups.values()])) == 0]


def _realism_plot(values: dict[str, dict[str, list[float]]], names: tuple[str, str] = ("real", "augmented")) -> str:
    """One histogram per metric that varies: both groups, the real items' range shaded, axis labels with units,
    one legend for the figure."""
    plt = _pyplot()
    metrics = [m for m in values if m not in constant_metrics(values)]
    if not metrics:
        return ""
    columns = 3
    rows = (len(metrics) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(10, 2.6 * rows), squeeze=False)
    for ax, metric in zip(axes.ravel(), metrics):
        real, augmented = np.asarray(values[metric][names[0]]), np.asarray(values[metric][names[1]])
        both = np.concatenate([real, augmented])
        bins = np.linspace(both.min(), both.max(), 20)
        ax.axvspan(real.min(), real.max(), color="#3a7bd5", alpha=0.08, label=f"{names[0]} range")
        ax.hist(real, bins=bins, alpha=0.6, density=True, label=names[0], color="#3a7bd5")
        ax.hist(augmented, bins=bins, alpha=0.6, density=True, label=names[1], color="#e8833a")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(UNITS.get(metric, ""), fontsize=9)
        ax.set_ylabel("density", fontsize=9)
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        ax.tick_params(labelsize=8)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=9, ncol=3)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _png(fig)


def _evaluation_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tag's paired figures, worst untargeted tag first (curate.checks.evaluation.display_order)."""
    from curate.checks.evaluation import display_order

    return display_order(evaluation)


def _evaluation_plot(evaluation: dict[str, Any]) -> str:
    """The paired difference per tag with its 95 % interval (untargeted grey, targeted green, all blue)."""
    plt = _pyplot()
    rows = _evaluation_rows(evaluation)
    keys = [r["tag"] for r in rows]
    values = [100 * (r["difference"] or 0.0) for r in rows]
    errors = np.array([[100 * ((r["difference"] or 0.0) - r["low"]) if r["low"] is not None else 0.0 for r in rows],
                       [100 * (r["high"] - (r["difference"] or 0.0)) if r["high"] is not None else 0.0 for r in rows]])
    colours = ["#3b6ea5" if r["tag"] == "all" else ("#2e8b57" if r["targeted"] else "#9aa5b1") for r in rows]
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(keys), 2.2))
    ax.bar(x, values, 0.6, color=colours, yerr=np.clip(errors, 0, None), capsize=3)
    ax.axhline(0, color="#333", linewidth=0.6)
    ax.set_xticks(x, keys, fontsize=7)
    ax.set_ylabel(f"{evaluation['split']} accuracy, after - before (pts)", fontsize=7)
    return _png(fig)


def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    env.filters["compact"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    env.filters["uri"] = lambda v: Markup(v) if isinstance(v, str) and v.startswith("data:") else ""
    return env


def render_drift_html(result: dict[str, Any], values: dict[str, dict[str, list[float]]]) -> str:
    """The drift report: verdict, per-metric PSI/KS table, findings, overlaid histograms."""
    plot = _realism_plot(values, ("reference", "production")) if values else None
    return _environment().get_template("drift.html.j2").render(result=result, plot=plot)


COUNT_ROWS = 200   # rows per counts table (the labels or tags that changed first); report.json has them all
RAW_ITEMS = 50     # a finding's items as JSON lines, behind <details>


class _Budget:
    """Bytes of media the page may still take."""

    def __init__(self, allowance: int):
        self.left = max(int(allowance), 0)
        self.cut = False

    def take(self, cost: int, cap: float | None = None) -> bool:
        if cost <= self.left and (cap is None or cost <= cap):
            self.left -= cost
            return True
        self.cut = True
        return False


class _Queue:
    """Things to show, in order of importance (samples, or the findings' evidence entries round-robin). `fill` takes
    every one that still fits, in order, skipping one that does not (a smaller one after it may)."""

    def __init__(self, slots: list, cost):
        self.slots, self.cost, self.spent = slots, cost, 0
        self.taken: set[int] = set()

    def fill(self, budget: _Budget, cap: float | None = None) -> None:
        for index, slot in enumerate(self.slots):
            if index in self.taken:
                continue
            cost = self.cost(slot)
            if budget.take(cost, None if cap is None else cap - self.spent):
                self.spent += cost
                self.taken.add(index)

    def chosen(self) -> list:
        return [slot for index, slot in enumerate(self.slots) if index in self.taken]


def render_html(report: dict[str, Any], view, parent, limit: int = PAGE_LIMIT) -> str:
    """report.html, at most `limit` bytes for a run of any size.

    The page without media is rendered first; what `limit` leaves is spent on media in order of importance: the
    evaluation and realism plots (up to 25 %); then, for a refused run, the findings' flagged items before the
    samples (for a passed run the samples first), each up to 60 %; then what is left in the same order. Flagged items
    are taken round-robin over the findings (blocking first), so a tight budget still shows a few of each. Every
    item is encoded once (MediaCache). When the page still comes out over `limit` (a card's text was estimated),
    the allowance shrinks by the excess and the page is rendered again; after four tries the page comes without
    media. Text is capped too (COUNT_ROWS, RAW_ITEMS, evidence.CARDS per finding). The page says what it left out."""
    from curate.report.media import MediaCache

    media = MediaCache(view, parent)
    plots = _plots(report)
    bare = _render(report, media, plots, 0, limit)
    allowance = limit - len(bare.encode("utf-8")) - MARGIN
    for _ in range(4):
        page = _render(report, media, plots, allowance, limit)
        excess = len(page.encode("utf-8")) - limit
        if excess <= 0:
            return page
        allowance -= excess + MARGIN
    return bare


def _plots(report: dict[str, Any]) -> dict[str, Any]:
    evaluation = report.get("evaluation")
    return {"evaluation": _evaluation_plot(evaluation) if evaluation else None,
            "evaluation_rows": _evaluation_rows(evaluation) if evaluation else [],
            "realism": {t: _realism_plot(v) for t, v in report["realism"].items() if v},
            "constant": {t: constant_metrics(v) for t, v in report["realism"].items() if v}}


def _entry_ids(entry: dict[str, Any]) -> list[str]:
    if "id" in entry:
        return [entry["id"]]
    return [i for i in entry.get("ids") or [] if i is not None]


def _render(report: dict[str, Any], media, plots: dict[str, Any], allowance: int, limit: int) -> str:
    from curate.report.media import audio_caption, raw_json, transform_rows

    budget = _Budget(allowance)
    figures = _Queue([("evaluation", plots["evaluation"])] * bool(plots["evaluation"]) +
                     [(t, p) for t, p in plots["realism"].items() if p], lambda slot: len(slot[1]))
    findings = list(report["findings"]) + list(report.get("known_issues") or [])
    order = sorted(range(len(findings)), key=lambda k: (findings[k].get("status") == "inherited",
                                                        not findings[k].get("blocking"),
                                                        {"error": 0, "warning": 1}.get(findings[k]["severity"], 2)))
    with_media = [k for k in order if (findings[k].get("evidence") or {}).get("kind") not in (None, "table")]
    longest = max([len(findings[k]["evidence"]["entries"]) for k in with_media] or [0])
    slots = [(k, e) for e in range(longest) for k in with_media if e < len(findings[k]["evidence"]["entries"])]

    def entry_cost(slot) -> int:
        ids = _entry_ids(findings[slot[0]]["evidence"]["entries"][slot[1]])
        return sum((media.item(i) or {}).get("bytes", 0) + TEXT_PER_CARD for i in ids)

    def sample_cost(sample) -> int:
        assets = media.sample(sample["id"], sample["source_id"]) or {}
        return assets.get("bytes", 0) + TEXT_PER_CARD + 3 * len(json.dumps(sample.get("transform")))

    evidence, samples = _Queue(slots, entry_cost), _Queue(report["samples"], sample_cost)
    queues = [figures] + ([evidence, samples] if not report["verdict"]["passed"] else [samples, evidence])
    share = budget.left
    if share > 0:
        for queue, part in zip(queues, (0.25, 0.6, 0.6)):
            queue.fill(budget, part * share)
        for queue in queues:
            queue.fill(budget)
    else:  # the page without media (to measure it, or as the last resort)
        budget.cut = any(queue.slots for queue in queues)
    drawn = dict(figures.chosen())
    evaluation_plot = drawn.get("evaluation")
    realism = {t: (p if not p or t in drawn else None) for t, p in plots["realism"].items()}
    shown = set(evidence.chosen())
    sections = [_finding_view(k, findings[k], media, shown) for k in range(len(findings))]
    sample_views = [{**s, "assets": media.sample(s["id"], s["source_id"]), "rows": transform_rows(s["transform"]),
                     "caption": audio_caption(s["transform"]) if s["media"] == "audio" else "",
                     "raw": raw_json(s["transform"])} for s in samples.chosen()]
    # the one inline script runs under a nonce derived from the report itself: injected markup could not know it
    nonce = hashlib.sha256(json.dumps(report, sort_keys=True, default=str).encode()).hexdigest()[:32]
    reviewable = report.get("status", "committed") != "rejected" and bool(report["lineage"].get("fingerprint"))
    return _environment().get_template("report.html.j2").render(
        report=report, samples=sample_views, samples_left=len(report["samples"]) - len(samples.taken),
        findings=sections[: len(report["findings"])], known=sections[len(report["findings"]):],
        realism=realism, constant=plots["constant"], evaluation_plot=evaluation_plot, nonce=nonce,
        evaluation_rows=plots["evaluation_rows"], counts=_counts(report), limit_mb=f"{limit / 1e6:.3g}",
        reviewable=reviewable, labels=list(report["counts"]["label"]), budget_cut=budget.cut)


def _finding_view(index: int, finding: dict[str, Any], media, shown: set) -> dict[str, Any]:
    """A finding as the template shows it: its evidence entries with media (those the budget allowed), how many
    more there are and why they are not here, and its items as JSON lines (capped) behind <details>."""
    evidence = finding.get("evidence") or {}
    entries = []
    for e, entry in enumerate(evidence.get("entries") or []):
        if evidence.get("kind") == "table":
            entries.append({"type": "row", "fields": entry["fields"]})
            continue
        if (index, e) not in shown:
            continue
        if "id" in entry:
            entries.append({"type": "card", "reason": entry.get("reason", ""),
                            "item": {**media.describe(entry["id"]), "assets": media.item(entry["id"])}})
        else:
            items = [None if i is None else {**media.describe(i), "assets": media.item(i)} for i in entry["ids"]]
            entries.append({"type": entry.get("role") and "contrast" or "pair", "role": entry.get("role"),
                            "group": entry.get("group"), "items": items, "reason": entry.get("reason", ""),
                            "score": entry.get("score")})
    kind = evidence.get("kind")
    total = len(evidence.get("entries") or [])
    left_budget = total - len(entries) if kind not in (None, "table") else 0
    items = finding.get("items") or []
    return {"finding": finding, "kind": kind, "entries": entries, "evidence": evidence,
            "left_budget": left_budget, "found": evidence.get("found", len(items)),
            "listed": evidence.get("listed", len(items)), "raw": items[:RAW_ITEMS],
            "raw_left": max(len(items) - RAW_ITEMS, 0)}


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    """Per kind (label, tag, split, origin): rows (key, items, change), the changed ones first when there are more
    than COUNT_ROWS, and how many rows are left out."""
    deltas = (report.get("diff") or {}).get("count_deltas", {})
    out = {}
    for kind in ("label", "tag", "split", "origin"):
        values = report["counts"].get(kind) or {}
        rows = [(key, n, deltas.get(kind, {}).get(key, {}).get("delta", 0)) for key, n in values.items()]
        if len(rows) > COUNT_ROWS:
            rows = sorted(rows, key=lambda r: r[2] == 0)  # stable: changed rows first
        out[kind] = {"rows": rows[:COUNT_ROWS], "left": max(len(rows) - COUNT_ROWS, 0)}
    return out
