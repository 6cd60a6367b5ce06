"""A quick baseline that needs no user model: cheap features (curate.features) + a scikit-learn classifier.

With a train split (and items outside it), the model is fitted on train and predicts every other item. Without
one, a stratified, group-aware k-fold cross-validation (k = 5, or fewer when there are fewer groups) predicts
every item out of sample. Either way each prediction comes from a model that never saw the item or its group.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from curate.exceptions import BadInput

MODELS = ("logreg", "knn")


def _model(name: str, seed: int, n_train: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
    return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=max(1, min(5, n_train))))


def run_baseline(version, model: str = "logreg", seed: int = 0, progress=None):
    """Out-of-sample predictions for a version, as a DataFrame in the predictions format
    (id, label, prediction, tags, split, p_<class>...). Deterministic for a given seed."""
    import pandas as pd

    from curate.features import embeddings

    if model not in MODELS:
        raise BadInput(f"--model: {model!r} is not one of {', '.join(MODELS)}")
    manifest = version.manifest.set_index("id")
    ids, features = embeddings(version, progress=progress)
    rows = manifest.loc[ids]
    labels = rows["label"].to_numpy(dtype=object)
    classes = sorted(set(labels), key=str)
    if len(classes) < 2:
        raise BadInput(f"{version.ref}: a baseline needs at least two labels, found {len(classes)}")
    split = rows["split"].to_numpy(dtype=object)
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
    return out


def _fit_predict(model, seed, features, labels, fit, test, classes, probabilities) -> None:
    estimator = _model(model, seed, int(fit.sum()))
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
            "scheme": predictions.attrs.get("scheme")}
