"""Input metrics and drift: does the dataset still look like production?

`input_metrics(view)` gives the per-item input metrics of a version (cached, curate.features); `folder_metrics(dir)`
streams them over a plain folder of production media (read-only; unreadable files are counted and listed).
`load_side(ref_or_folder)` gathers one side of a comparison (metrics, labels, tags; by default the real items of a
version only), and `compare(reference, production)` judges the drift of every metric, plus label/tag distribution
drift when both sides are labelled.

The rule (per input metric)
---------------------------
- PSI (Population Stability Index) over quantile bins of the POOLED sample (reference + production), as many bins
  as give the smaller side at least MIN_PER_BIN (5) items a bin on average, between 2 and MAX_BINS (10); counts are
  smoothed by +0.5 a bin (so one empty bin on 25 items does not blow up the log ratio). PSI measures how large a
  shift is: < 0.1 small, 0.1-0.25 moderate, > 0.25 large (the usual credit-scoring thresholds).
- The two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp) says whether the shift is more than sampling noise;
  its p-value is Bonferroni-adjusted over every test of the run (all metrics plus the label/tag tests; those use
  scipy.stats.chi2_contingency).
- Verdict: **significant** (an error: `curate drift` exits 1) when PSI > 0.25 AND adjusted p < ALPHA (0.01);
  **moderate** (a warning) when PSI > 0.1 AND adjusted p < 0.01; otherwise **stable**. A large PSI that the test
  cannot tell from sampling noise is stable (with an info finding), since on a few dozen items PSI alone is noise:
  its null expectation is about (bins - 1) x (1/n_ref + 1/n_prod), 0.18 for 25 items in 5 bins.
- Fewer than MIN_ITEMS (20) usable items on either side: **too few items to judge** (a warning finding, exit 0,
  `judged: false`, every verdict "too few"); the figures are still reported. Below 20 the pooled bins drop to 3 or
  fewer and KS at the adjusted level (0.001 for 10 tests) needs the two distributions to differ by a distance of
  0.46 or more, so a "no drift" would say little. At 20 every shift below was still caught.
- The reference is the REAL items of the reference version (`origin` not "augmented"): augmented items are made
  to differ from the rest and are not what production should be compared with (a reference with louder augmented
  copies flags plain real clips). `include_augmented=True` (`--include-augmented`) keeps them; a production
  version is restricted the same way.
- Metrics: those of curate.features plus `high_band_db` (the share of energy above 4 kHz, computed here), the
  bandwidth measure without which an 8 kHz channel goes unseen (the 85 % roll-off stays below 4 kHz for speech).

Figures that justify it (`python bench/drift.py --alpha 0.01 --sizes 20,25,30 --shifts ...`): reference = the 250
real clips of sample_media/speech, 10 audio metrics; production = n clips drawn at random from the same 250
(200 seeds per cell), as they are or shifted:
  - same source: false alarms (exit 1) 0/200 at n=20, 0/200 at 25, 0/200 at 30; with ALPHA 0.05 they were 1, 3
    and 2 of 200, hence 0.01. The old rule (PSI over the reference's deciles, > 0.25 on any metric) flagged
    200/200, 200/200 and 198/200;
  - +12 dB: detected 200/200 at n=20, 25, 30 (rms_dbfs, peak_dbfs); +6 dB 200/200 at 20 and 25; +3 dB 183/200 at
    20, 191/200 at 25, 200/200 at 30;
  - resampled to 8 kHz: 200/200 at n=20, 25, 30 (high_band_db; without that metric 3-8/200 even at ALPHA 0.05);
    the telephone channel (augment LowBandwidth 300-3400 Hz): 200/200 at n=20, 25, 30.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from curate.checks import Finding
from curate.media import AUDIO_EXTS, IMAGE_EXTS

PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
MAX_BINS = 10
MIN_PER_BIN = 5
MIN_ITEMS = 20
ALPHA = 0.01
HIGH_BAND_HZ = 4000.0
HIGH_BAND_FLOOR_DB = -100.0
SMOOTHING = 0.5
BINS = MAX_BINS  # kept for callers of the old name
CHECK = "drift"


def n_bins(n_reference: int, n_production: int) -> int:
    """Bins for PSI: at least MIN_PER_BIN items a bin on average on the smaller side, between 2 and MAX_BINS."""
    return int(max(2, min(MAX_BINS, min(n_reference, n_production) // MIN_PER_BIN)))


def _proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float) + SMOOTHING
    return counts / counts.sum()


def psi(reference: np.ndarray, production: np.ndarray, bins: int | None = None) -> float:
    """Population Stability Index of `production` against `reference`, over quantile bins of the pooled sample
    (`bins` defaults to n_bins of the two sizes); bin counts smoothed by +0.5."""
    reference, production = np.asarray(reference, dtype=float), np.asarray(production, dtype=float)
    bins = bins or n_bins(len(reference), len(production))
    pooled = np.concatenate([reference, production])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # every value identical on both sides
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    expected = _proportions(np.histogram(reference, edges)[0])
    actual = _proportions(np.histogram(production, edges)[0])
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def categorical_psi(reference: Counter, production: Counter) -> float:
    keys = sorted(set(reference) | set(production))
    expected = _proportions(np.array([reference[k] for k in keys]))
    actual = _proportions(np.array([production[k] for k in keys]))
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _categorical_p(reference: Counter, production: Counter) -> float:
    from scipy.stats import chi2_contingency

    keys = sorted(set(reference) | set(production))
    if len(keys) < 2 or not sum(reference.values()) or not sum(production.values()):
        return 1.0
    table = np.array([[reference[k] for k in keys], [production[k] for k in keys]])
    return float(chi2_contingency(table).pvalue)


def verdict(value: float, p_adjusted: float = 0.0) -> str:
    """significant: PSI > 0.25 and adjusted p < ALPHA; moderate: PSI > 0.1 and adjusted p < ALPHA; else stable."""
    if p_adjusted >= ALPHA:
        return "stable"
    return "significant" if value > PSI_SIGNIFICANT else ("moderate" if value > PSI_MODERATE else "stable")


def high_band_db(path: Path) -> float:
    """Share of a clip's energy above 4 kHz (at 16 kHz mono), in dB (floor -100): the bandwidth measure that the
    85 % roll-off misses, since speech keeps 85 % of its energy below 4 kHz either way. Wideband sample speech has
    a median of -23 dB; the same clips through an 8 kHz channel -63 dB."""
    from curate.features import FEATURE_RATE
    from curate.media import read_audio

    audio, _ = read_audio(path, sample_rate=int(FEATURE_RATE), mono=True)
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    total = float(spectrum.sum())
    if total <= 0:
        return HIGH_BAND_FLOOR_DB
    high = float(spectrum[np.fft.rfftfreq(len(audio), 1 / FEATURE_RATE) >= HIGH_BAND_HZ].sum())
    return max(HIGH_BAND_FLOOR_DB, 10 * math.log10(high / total)) if high > 0 else HIGH_BAND_FLOOR_DB


def input_metrics(view, progress=None):
    """Metrics per item of a version (DataFrame indexed by id, plus an `error` column for unreadable media)."""
    from curate.features import metrics

    return metrics(view, progress=progress)


def folder_metrics(folder: Path, progress=None) -> tuple[Any, list[dict[str, str]]]:
    """Metrics for every audio/image file under `folder` (recursively, sorted), one file at a time; returns
    (DataFrame indexed by relative path, [{"path", "error"}] for files that could not be read)."""
    import pandas as pd

    from curate.exceptions import BadInput
    from curate.features import audio_metrics, image_metrics

    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a folder of media")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in AUDIO_EXTS + IMAGE_EXTS)
    if not files:
        raise BadInput(f"{folder}: no audio or image files in it")
    rows, bad = {}, []
    for path in (progress(files, "production metrics") if progress else files):
        try:
            if path.stat().st_size == 0:
                raise ValueError("empty file")
            audio = path.suffix.lower().lstrip(".") in AUDIO_EXTS
            rows[str(path.relative_to(folder))] = ({**audio_metrics(path), "high_band_db": high_band_db(path)}
                                                   if audio else image_metrics(path))
        except (ValueError, OSError) as exc:
            bad.append({"path": str(path.relative_to(folder)), "error": str(exc).splitlines()[0][:200]})
    return pd.DataFrame.from_dict(rows, orient="index"), bad


@dataclass
class Side:
    """One side of a drift comparison: its name, metrics of its usable items, labels and tags (None for a folder),
    unreadable items, and how many augmented items were left out."""
    name: str
    metrics: Any
    labels: list | None = None
    tags: list | None = None
    unreadable: list[dict] = field(default_factory=list)
    augmented_excluded: int = 0


def is_dataset_ref(text: str) -> bool:
    from curate.store import split_ref

    from curate.storage import is_url

    path, _ = split_ref(text)
    return is_url(path) or (path / "dataset.json").is_file()


def load_side(ref: str, include_augmented: bool = False, progress=None, folder_allowed: bool = True) -> Side:
    """A dataset reference (its real items, or all with include_augmented) or, when `folder_allowed`, a folder of
    media read in place."""
    import pandas as pd

    from curate.store import load_ref

    if folder_allowed and not is_dataset_ref(ref):
        frame, unreadable = folder_metrics(Path(ref), progress=progress)
        return Side(str(ref), frame, unreadable=unreadable)
    version = load_ref(ref)
    manifest = version.manifest
    excluded = 0
    if not include_augmented and "origin" in manifest.columns:
        keep = (manifest["origin"] != "augmented").to_numpy()
        excluded = int((~keep).sum())
        manifest = manifest[keep]
    frame = input_metrics(version, progress=progress)
    frame = frame.loc[[i for i in manifest["id"] if i in frame.index]].copy()
    audio = manifest[manifest["media"] == "audio"]
    if len(audio):  # not in the cached metrics (curate.features): read once per object here
        usable = frame["error"].isna() if "error" in frame.columns else None
        band: dict[str, float] = {}
        values = []
        for item, digest, ext in zip(audio["id"], audio["object"], audio["ext"]):
            if item not in frame.index or (usable is not None and not usable.get(item, False)):
                values.append(float("nan"))
                continue
            if digest not in band:
                try:
                    band[digest] = high_band_db(version.dataset.object_path(digest, ext))
                except (ValueError, OSError):
                    band[digest] = float("nan")
            values.append(band[digest])
        frame["high_band_db"] = pd.Series(values, index=list(audio["id"]), dtype=float)
    unreadable = []
    if "error" in frame.columns:
        unreadable = [{"path": i, "error": e} for i, e in frame["error"].dropna().items()]
        frame = frame[frame["error"].isna()]
    return Side(version.ref, frame, list(manifest["label"]), [t for ts in manifest["tags"] for t in (ts or [])],
                unreadable, excluded)


def compare(reference, production, reference_labels: Iterable | None = None,
            production_labels: Iterable | None = None, reference_tags=None, production_tags=None,
            min_items: int = MIN_ITEMS) -> dict[str, Any]:
    """Drift of `production` metrics against `reference` (DataFrames of metrics): per metric PSI (pooled quantile
    bins), KS statistic, p-value and Bonferroni-adjusted p-value, verdict; label and tag distribution PSI and
    chi-square p-value when both sides have them. Returns findings as the checks do (see the module docstring)."""
    from scipy.stats import ks_2samp

    n_ref, n_prod = int(len(reference)), int(len(production))
    judged = n_ref >= min_items and n_prod >= min_items
    columns = [c for c in reference.columns if c in production.columns and c != "error"]
    per_metric = {}
    for column in columns:
        a = reference[column].astype(float).dropna().to_numpy()
        b = production[column].astype(float).dropna().to_numpy()
        if len(a) < 2 or len(b) < 2:
            continue
        ks = ks_2samp(a, b)
        per_metric[column] = {"psi": psi(a, b), "bins": n_bins(len(a), len(b)), "ks": float(ks.statistic),
                              "p_value": float(ks.pvalue), "reference_median": float(np.median(a)),
                              "production_median": float(np.median(b)), "n_reference": int(len(a)),
                              "n_production": int(len(b))}
    categorical = {}
    for name, ref, prod in (("label", reference_labels, production_labels), ("tag", reference_tags, production_tags)):
        if ref is not None and prod is not None:
            ref_counts, prod_counts = Counter(ref), Counter(prod)
            categorical[name] = {"psi": categorical_psi(ref_counts, prod_counts),
                                 "p_value": _categorical_p(ref_counts, prod_counts)}
    tests = max(1, len(per_metric) + len(categorical))
    findings = []
    for column, m in per_metric.items():
        m["p_adjusted"] = min(1.0, m["p_value"] * tests)
        m["verdict"] = verdict(m["psi"], m["p_adjusted"]) if judged else "too few"
        shown = (f"PSI {m['psi']:.3f} over {m['bins']} bins, KS {m['ks']:.2f}, p={m['p_value']:.2g} (adjusted "
                 f"{m['p_adjusted']:.2g}); median {m['reference_median']:.3g} -> {m['production_median']:.3g}")
        if m["verdict"] in ("significant", "moderate"):
            findings.append(Finding(CHECK, "error" if m["verdict"] == "significant" else "warning",
                                    f"{column}: {m['verdict']} drift ({shown})", figures={"metric": column, **m}))
        elif judged and m["psi"] > PSI_MODERATE:
            findings.append(Finding(CHECK, "info", f"{column}: PSI above {PSI_MODERATE} but within sampling noise "
                                    f"at n={m['n_production']} ({shown})", figures={"metric": column, **m}))
    for name, c in categorical.items():
        c["p_adjusted"] = min(1.0, c["p_value"] * tests)
        c["verdict"] = verdict(c["psi"], c["p_adjusted"]) if judged else "too few"
        if c["verdict"] in ("significant", "moderate"):
            findings.append(Finding(CHECK, "error" if c["verdict"] == "significant" else "warning",
                                    f"{name} distribution: {c['verdict']} drift (PSI {c['psi']:.3f}, chi-square "
                                    f"p={c['p_value']:.2g}, adjusted {c['p_adjusted']:.2g})",
                                    figures={"distribution": name, **c}))
    if not judged:
        findings.insert(0, Finding(CHECK, "warning", f"too few items to judge drift: {n_ref} reference and {n_prod} "
                                   f"production item(s), at least {min_items} on each side are needed",
                                   figures={"reference": n_ref, "production": n_prod, "min_items": min_items}))
    elif not any(f.severity in ("error", "warning") for f in findings):
        findings.append(Finding(CHECK, "info", f"no drift on {len(per_metric)} input metric(s)",
                                figures={"metrics": len(per_metric)}))
    return {"metrics": per_metric, "distributions": categorical, "findings": [f.to_dict() for f in findings],
            "judged": judged, "passed": not any(f.severity == "error" for f in findings),
            "thresholds": {"psi_moderate": PSI_MODERATE, "psi_significant": PSI_SIGNIFICANT, "alpha": ALPHA,
                           "correction": f"bonferroni over {tests} test(s)", "bins": MAX_BINS,
                           "min_per_bin": MIN_PER_BIN, "min_items": min_items}}


def drift_result(reference: Side, production: Side) -> dict[str, Any]:
    """`compare` of two sides, labelled when both are versions, with names, counts and unreadable items."""
    labelled = reference.labels is not None and production.labels is not None
    result = compare(reference.metrics, production.metrics,
                     reference.labels if labelled else None, production.labels if labelled else None,
                     reference.tags if labelled else None, production.tags if labelled else None)
    result.update({"reference": reference.name, "production": production.name, "unreadable": production.unreadable,
                   "counts": {"reference": int(len(reference.metrics)), "production": int(len(production.metrics)),
                              "reference_unreadable": len(reference.unreadable),
                              "augmented_excluded": {"reference": reference.augmented_excluded,
                                                     "production": production.augmented_excluded}}})
    return result


def metric_table(frame, version, by: str | None):
    """Mean of each input metric per slice (tag, label or split), with counts and unreadable items."""
    import pandas as pd

    manifest = version.manifest.set_index("id")
    numeric = frame.drop(columns=[c for c in ("error",) if c in frame.columns]).astype(float)
    errors = frame["error"].notna() if "error" in frame.columns else pd.Series(False, index=frame.index)
    if by is None:
        groups = {"(all)": list(frame.index)}
    elif by == "tag":
        groups: dict[str, list[str]] = {}
        for item in frame.index:
            for tag in manifest.at[item, "tags"] or ["(no tag)"]:
                groups.setdefault(tag, []).append(item)
    else:
        groups = {}
        for item in frame.index:
            key = manifest.at[item, by]
            groups.setdefault("(none)" if key is None else str(key), []).append(item)
    rows = []
    for key in sorted(groups):
        members = groups[key]
        row = {"slice": key, "n": len(members), "unreadable": int(errors.loc[members].sum())}
        row.update(numeric.loc[members].mean().round(3).to_dict())
        rows.append(row)
    return pd.DataFrame(rows)
