"""Optional MLflow export (extra `mlflow`): one run per dataset version or baseline, so every accuracy change can
be traced to the data change behind it. Nothing here imports mlflow until a run is logged.

Default tracking URI: ./mlruns (MLflow's file store; MLFLOW_ALLOW_FILE_STORE is set for that default only).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from curate.exceptions import BadInput

DEFAULT_URI = "./mlruns"
EXPERIMENT = "rubbersheet"


def require_mlflow(uri: str):
    try:
        import mlflow
    except ImportError:
        raise BadInput("--mlflow needs MLflow: pip install 'rubbersheet[mlflow]'") from None
    if "://" not in uri:  # a plain folder: MLflow's file store, which newer MLflow only uses when asked explicitly
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = Path(uri).resolve().as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def _metric_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", text)


def log_version(version, uri: str = DEFAULT_URI) -> str:
    """Log a committed version: recipe fields, seed, fingerprints as params; accuracy before/after and gate counts as
    metrics; report.html and the recipe as artifacts. Returns the run id."""
    mlflow = require_mlflow(uri)
    info = version.info
    parent = version.dataset.load(info["parent"]).info if info.get("parent") else {}
    recipe = info.get("recipe") or {}
    params: dict[str, Any] = {"dataset": info.get("name"), "version": info.get("version"),
                              "fingerprint": info.get("fingerprint"), "parent": info.get("parent"),
                              "parent_fingerprint": parent.get("fingerprint"), "recipe": recipe.get("name"),
                              "recipe_sha256": recipe.get("sha256"), "seed": info.get("seed")}
    if recipe.get("text"):
        import yaml

        fields = yaml.safe_load(recipe["text"]) or {}
        for key in ("budget", "per_source", "target", "add_tags", "remove_tags"):
            if key in fields:
                params[f"recipe.{key}"] = json.dumps(fields[key], sort_keys=True)
    metrics: dict[str, float] = {}
    for key, value in ((info.get("gate") or {}).get("counts") or {}).items():
        metrics[f"gate.{key}"] = float(value)
    from curate.checks.evaluation import rows as evaluation_rows

    for row in evaluation_rows(info.get("evaluation")):  # per tag: accuracy before/after, paired difference
        for name in ("before", "after", "difference", "low", "high", "mcnemar_p"):
            if row.get(name) is not None:
                prefix = "accuracy" if name in ("before", "after") else "difference"
                suffix = {"difference": "", "low": ".low", "high": ".high", "mcnemar_p": ".mcnemar_p"}.get(name, "")
                label = f"{prefix}.{name}.{row['tag']}" if prefix == "accuracy" else f"{prefix}.{row['tag']}{suffix}"
                metrics[_metric_name(label)] = float(row[name])
    with mlflow.start_run(run_name=f"{info.get('name')}@{info.get('version')}") as run:
        mlflow.log_params({k: ("" if v is None else str(v))[:500] for k, v in params.items()})
        if metrics:
            mlflow.log_metrics(metrics)
        report = version.path / "report.html"
        if report.is_file():
            mlflow.log_artifact(str(report))
        if recipe.get("text"):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{recipe.get('name') or 'recipe'}.yaml"
                path.write_text(recipe["text"])
                mlflow.log_artifact(str(path))
    return run.info.run_id


def log_baseline(version, predictions_path: Path, figures: dict[str, Any], model: str, seed: int,
                 uri: str = DEFAULT_URI) -> str:
    mlflow = require_mlflow(uri)
    with mlflow.start_run(run_name=f"baseline {version.ref}") as run:
        mlflow.log_params({"dataset": version.info.get("name"), "version": version.name,
                           "fingerprint": version.info.get("fingerprint"), "model": model, "seed": seed,
                           "scheme": figures.get("scheme"), "features": figures.get("features")})
        cv = (figures.get("selection") or {}).get(figures.get("features")) or {}
        mlflow.log_metrics({"accuracy": figures["accuracy"],
                            **{_metric_name(f"accuracy.{k}"): v for k, v in figures["per_split"].items()},
                            **({"cv_accuracy": cv["accuracy"]} if cv else {})})
        mlflow.log_artifact(str(predictions_path))
    return run.info.run_id
