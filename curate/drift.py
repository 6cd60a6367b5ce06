"""Input metrics and drift: does the dataset still look like production?

`input_metrics(view)` gives the per-item input metrics of a version (cached, curate.features); `folder_metrics(dir)`
streams them over a plain folder of production media (read-only; unreadable files are counted and listed).
`compare(reference, production)` scores every metric with the Population Stability Index over the reference's
deciles and the two-sample Kolmogorov-Smirnov test, plus label/tag distribution drift when both sides are labelled.

Verdict per metric (PSI, the usual credit-scoring thresholds): < 0.1 stable, 0.1-0.25 moderate (a warning),
> 0.25 significant (an error: `curate drift` exits 1).
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from curate.checks import Finding
from curate.media import AUDIO_EXTS, IMAGE_EXTS

PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
BINS = 10
EPSILON = 1e-4
CHECK = "drift"


def psi(reference: np.ndarray, production: np.ndarray, bins: int = BINS) -> float:
    """Population Stability Index of `production` against `reference`, over the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant reference: all mass in one bin, anything else has drifted
        same = float(np.mean(production == reference[0]))
        expected, actual = np.array([1.0, EPSILON]), np.array([max(same, EPSILON), max(1 - same, EPSILON)])
    else:
        edges[0], edges[-1] = -np.inf, np.inf
        expected = np.histogram(reference, edges)[0] / len(reference)
        actual = np.histogram(production, edges)[0] / len(production)
    expected, actual = np.maximum(expected, EPSILON), np.maximum(actual, EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def categorical_psi(reference: Counter, production: Counter) -> float:
    keys = set(reference) | set(production)
    n_ref, n_prod = sum(reference.values()) or 1, sum(production.values()) or 1
    total = 0.0
    for key in keys:
        e = max(reference[key] / n_ref, EPSILON)
        a = max(production[key] / n_prod, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def verdict(value: float) -> str:
    return "significant" if value > PSI_SIGNIFICANT else ("moderate" if value > PSI_MODERATE else "stable")


def input_metrics(view, progress=None):
    """Metrics per item of a version (DataFrame indexed by id, plus an `error` column for unreadable media)."""
    from curate.features import metrics

    return metrics(view, progress=progress)


def folder_metrics(folder: Path, progress=None) -> tuple[Any, list[dict[str, str]]]:
    """Metrics for every audio/image file under `folder` (recursively, sorted), one file at a time; returns
    (DataFrame indexed by relative path, [{"path", "error"}] for files that could not be read)."""
    import pandas as pd

    from curate.features import audio_metrics, image_metrics

    folder = Path(folder)
    if not folder.is_dir():
        from curate.exceptions import BadInput

        raise BadInput(f"{folder}: not a folder of media")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in AUDIO_EXTS + IMAGE_EXTS)
    rows, bad = {}, []
    for path in (progress(files, "production metrics") if progress else files):
        try:
            if path.stat().st_size == 0:
                raise ValueError("empty file")
            audio = path.suffix.lower().lstrip(".") in AUDIO_EXTS
            rows[str(path.relative_to(folder))] = audio_metrics(path) if audio else image_metrics(path)
        except (ValueError, OSError) as exc:
            bad.append({"path": str(path.relative_to(folder)), "error": str(exc).splitlines()[0][:200]})
    return pd.DataFrame.from_dict(rows, orient="index"), bad


def compare(reference, production, reference_labels: Iterable | None = None,
            production_labels: Iterable | None = None, reference_tags=None, production_tags=None) -> dict[str, Any]:
    """Drift of `production` metrics against `reference` (DataFrames of metrics): per metric PSI, KS statistic and
    p-value, verdict; label and tag distribution PSI when both sides have them. Returns findings as the checks do."""
    from scipy.stats import ks_2samp

    columns = [c for c in reference.columns if c in production.columns and c != "error"]
    per_metric = {}
    findings = []
    for column in columns:
        a = reference[column].astype(float).dropna().to_numpy()
        b = production[column].astype(float).dropna().to_numpy()
        if len(a) < 2 or len(b) < 2:
            continue
        value = psi(a, b)
        ks = ks_2samp(a, b)
        per_metric[column] = {"psi": value, "ks": float(ks.statistic), "p_value": float(ks.pvalue),
                              "verdict": verdict(value), "reference_median": float(np.median(a)),
                              "production_median": float(np.median(b))}
    for column, m in per_metric.items():
        if m["verdict"] != "stable":
            severity = "error" if m["verdict"] == "significant" else "warning"
            findings.append(Finding(CHECK, severity, f"{column}: {m['verdict']} drift (PSI {m['psi']:.3f}, KS "
                                    f"{m['ks']:.2f}, p={m['p_value']:.2g}; median {m['reference_median']:.3g} -> "
                                    f"{m['production_median']:.3g})", figures={"metric": column, **m}))
    categorical = {}
    for name, ref, prod in (("label", reference_labels, production_labels), ("tag", reference_tags, production_tags)):
        if ref is not None and prod is not None:
            value = categorical_psi(Counter(ref), Counter(prod))
            categorical[name] = {"psi": value, "verdict": verdict(value)}
            if verdict(value) != "stable":
                findings.append(Finding(CHECK, "error" if verdict(value) == "significant" else "warning",
                                        f"{name} distribution: {verdict(value)} drift (PSI {value:.3f})",
                                        figures={"distribution": name, "psi": value}))
    if not findings:
        findings.append(Finding(CHECK, "info", f"no drift on {len(per_metric)} input metric(s)",
                                figures={"metrics": len(per_metric)}))
    return {"metrics": per_metric, "distributions": categorical, "findings": [f.to_dict() for f in findings],
            "passed": not any(f.severity == "error" for f in findings),
            "thresholds": {"psi_moderate": PSI_MODERATE, "psi_significant": PSI_SIGNIFICANT, "bins": BINS}}


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
