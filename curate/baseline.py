"""A quick baseline that needs no user model: cheap features (curate.features) + a scikit-learn classifier.

With a train split (and items outside it), the model is fitted on train and predicts every other item. Without
one, a stratified, group-aware k-fold cross-validation (k = 5, or fewer when there are fewer groups) predicts
every item out of sample. Either way each prediction comes from a model that never saw the item or its group.

Features (curate.features.baseline_features): with `features="auto"` (the default) the baseline chooses among a
small documented set per media kind (curate.features.BASELINE_CANDIDATES):
  audio  logmel_stats (40-band log-mel mean, std and std of the delta, no per-band mean removal: keeps speaker and
         channel identity), embedding (the realism/ambiguity embedding: per-band mean removed, content only), and
         logmel_stats+embedding;
  image  pixels (16x16 RGB), gradients (4x4-cell, 8-orientation gradient histogram), pixels+gradients.
The choice is the highest accuracy of a stratified, group-aware k-fold cross-validation (the same folds for every
candidate; ties go to the earlier one) on the train split (on every item when there is none). Above SELECT_MAX items
the choice is made on whole groups drawn at random (seeded) until SELECT_MAX items are reached: the 95 % interval
at that size is about +-2.5 points, and the cost no longer grows with the dataset. A fixed `features` skips the
choice. The result's attrs carry `features` (the set used) and `selection` (each candidate's CV accuracy with a
95 % Wilson interval, n, and `of`: the items it was drawn from).

Models are fitted with one BLAS thread (curate.compute). Results are cached in the dataset (cache/baseline/, keyed by the items' ids, objects, labels, splits, groups and
tags, the model, the seed and the feature request), so `curate baseline` and the evaluation of a recipe on the same
version do not fit the same models twice.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from curate.exceptions import BadInput

MODELS = ("logreg", "knn")
SELECT_MAX = 1500
CACHE_FORMAT = 1  # bump when a change to this module changes its results


def _model(name: str, seed: int, n_train: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
    return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=max(1, min(5, n_train))))


def run_baseline(version, model: str = "logreg", seed: int = 0, progress=None, features: str = "auto",
                 score: bool = True):
    """Out-of-sample predictions for a version, as a DataFrame in the predictions format
    (id, label, prediction, tags, split, p_<class>...). Deterministic for a given seed. `features`: "auto" (chosen
    by group-aware CV, see the module docstring) or a feature set; `score=False` skips the CV of a fixed set."""
    import pandas as pd

    from curate.features import BASELINE_CANDIDATES, baseline_features, media_kind

    if model not in MODELS:
        raise BadInput(f"--model: {model!r} is not one of {', '.join(MODELS)}")
    cache = _Cache(version, model, seed, features, score)
    cached = cache.load()
    if cached is not None:
        return cached
    manifest = version.manifest.set_index("id")
    kind = media_kind(version)
    names = list(BASELINE_CANDIDATES.get(kind, ())) if features in (None, "", "auto") else [features]
    matrices = {}
    for name in names:
        ids, matrices[name] = baseline_features(version, name, progress=progress)
    rows = manifest.loc[ids]
    labels = rows["label"].to_numpy(dtype=object)
    classes = sorted(set(labels), key=str)
    if len(classes) < 2:
        raise BadInput(f"{version.ref}: a baseline needs at least two labels, found {len(classes)}")
    split = rows["split"].to_numpy(dtype=object)
    selection = _select(model, seed, matrices, rows, labels, split, version.ref) if (score or len(names) > 1) \
        else {}
    chosen = max(names, key=lambda n: (selection[n]["accuracy"] if n in selection else -1.0, -names.index(n)))
    features = matrices[chosen]
    train = split == "train"
    probabilities = np.zeros((len(ids), len(classes)))
    if train.any() and (~train).any() and len(set(labels[train])) >= 2:
        scheme = "train split -> other splits"
        _fit_predict(model, seed, features, labels, train, ~train, classes, probabilities)
        predicted = ~train
    else:
        folds = _folds(rows, labels, seed, version.ref)
        scheme = f"{len(folds)}-fold stratified group cross-validation"
        for train_idx, test_idx in folds:
            fit = np.zeros(len(ids), bool)
            fit[train_idx] = True
            test = np.zeros(len(ids), bool)
            test[test_idx] = True
            _fit_predict(model, seed, features, labels, fit, test, classes, probabilities)
        predicted = np.ones(len(ids), bool)
    out = pd.DataFrame({
        "id": np.asarray(ids, dtype=object)[predicted],
        "label": labels[predicted],
        "prediction": np.asarray(classes, dtype=object)[probabilities[predicted].argmax(axis=1)],
        "tags": [";".join(t) for t in rows["tags"].to_numpy(dtype=object)[predicted]],
        "split": [s if s is not None else "" for s in split[predicted]],
    })
    for j, c in enumerate(classes):
        out[f"p_{c}"] = np.round(probabilities[predicted, j], 6)
    out.attrs["scheme"] = scheme
    out.attrs["features"] = chosen
    out.attrs["selection"] = selection
    cache.save(out)
    return out


class _Cache:
    """One baseline result per key in the dataset's cache/baseline/ (a media folder not imported yet: no cache)."""

    def __init__(self, version, model: str, seed: int, features, score: bool):
        self.path = None
        dataset = version.dataset
        if not getattr(dataset, "writable", True) or not hasattr(dataset, "path"):
            return
        import hashlib
        import json

        import pandas as pd

        frame = version.manifest
        columns = [c for c in ("id", "object", "label", "split", "group") if c in frame.columns]
        table = frame[columns].astype(str)
        table["tags"] = [";".join(sorted(t)) if t is not None else "" for t in frame.get("tags", [None] * len(frame))]
        digest = hashlib.sha256(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
        digest.update(json.dumps([CACHE_FORMAT, model, seed, features or "auto", bool(score)]).encode())
        self.path = dataset.path / "cache" / "baseline" / f"{digest.hexdigest()[:32]}.parquet"

    def load(self):
        if self.path is None or not self.path.is_file():
            return None
        import json

        import pandas as pd
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.path)
            frame = table.to_pandas()
            frame.attrs.update(json.loads(table.schema.metadata[b"rubbersheet"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is recomputed
        return frame if isinstance(frame, pd.DataFrame) else None

    def save(self, frame) -> None:
        if self.path is None:
            return
        import json
        import os
        import uuid

        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               b"rubbersheet": json.dumps(frame.attrs).encode()})
        temp = self.path.with_name(f".tmp-{uuid.uuid4().hex[:8]}.parquet")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, temp)
            os.replace(temp, self.path)
        except OSError:
            temp.unlink(missing_ok=True)  # a cache that cannot be written costs time, not correctness


def _select(model, seed, matrices, rows, labels, split, ref) -> dict[str, dict[str, Any]]:
    """{feature set: {accuracy, low, high, n}}: group-aware CV accuracy on the train split (every item when there
    is none), the same folds for every set; {} when there are too few groups or labels to cross-validate."""
    from curate.errors import wilson_interval

    pool = split == "train"
    if not pool.any() or len(set(labels[pool])) < 2:
        pool = np.ones(len(labels), bool)
    drawn_from = int(pool.sum())
    if drawn_from > SELECT_MAX:
        pool = _group_sample(rows["group"].to_numpy(dtype=object), pool, seed)
    try:
        folds = _folds(rows[pool], labels[pool], seed, ref)
    except BadInput:
        return {}
    classes = sorted(set(labels[pool]), key=str)
    out = {}
    for name, matrix in matrices.items():
        x, y = matrix[pool], labels[pool]
        probabilities = np.zeros((len(y), len(classes)))
        for train_idx, test_idx in folds:
            if len(set(y[train_idx])) < 2:
                continue
            fit = np.zeros(len(y), bool)
            fit[train_idx] = True
            test = np.zeros(len(y), bool)
            test[test_idx] = True
            _fit_predict(model, seed, x, y, fit, test, classes, probabilities)
        hits = int((np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)] == y).sum())
        low, high = wilson_interval(hits, len(y))
        out[name] = {"accuracy": hits / len(y), "low": low, "high": high, "n": len(y), "of": drawn_from,
                     "folds": len(folds)}
    return out


def _group_sample(groups: np.ndarray, pool: np.ndarray, seed: int) -> np.ndarray:
    """`pool` narrowed to whole groups drawn at random (seeded) until SELECT_MAX items are in."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(groups[pool]).fillna("").astype(str))
    order = np.random.default_rng(seed).permutation(len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques))[order]
    keep_groups = order[: int(np.searchsorted(np.cumsum(sizes), SELECT_MAX)) + 1]
    chosen = np.zeros(len(uniques), bool)
    chosen[keep_groups] = True
    narrowed = np.zeros(len(pool), bool)
    narrowed[np.flatnonzero(pool)[chosen[codes]]] = True
    return narrowed


def _fit_predict(model, seed, features, labels, fit, test, classes, probabilities) -> None:
    from curate.compute import one_blas_thread

    estimator = _model(model, seed, int(fit.sum()))
    with one_blas_thread():
        estimator.fit(features[fit], labels[fit])
        proba = estimator.predict_proba(features[test])
    columns = [classes.index(c) for c in estimator.classes_]
    probabilities[np.ix_(np.flatnonzero(test), columns)] = proba


def _folds(rows, labels, seed: int, ref: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    groups = rows["group"].to_numpy(dtype=object)
    n_groups = len(set(groups))
    k = min(5, n_groups)
    if k < 2:
        raise BadInput(f"{ref}: no train split and fewer than 2 groups: cannot predict out of sample")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has fewer members than n_splits"
        return list(splitter.split(np.zeros(len(labels)), labels, groups))


def summary(predictions) -> dict[str, Any]:
    """Accuracy overall and per split of a baseline's predictions."""
    correct = predictions["label"] == predictions["prediction"]
    per_split = {s or "(none)": float(correct[predictions["split"] == s].mean())
                 for s in sorted(set(predictions["split"]))}
    return {"n": int(len(predictions)), "accuracy": float(correct.mean()), "per_split": per_split,
            "scheme": predictions.attrs.get("scheme"), "features": predictions.attrs.get("features"),
            "selection": predictions.attrs.get("selection") or {}}
