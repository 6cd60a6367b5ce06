"""Experiment tracking: the lineage table, and budget sweeps that commit one candidate and record the rest."""
from __future__ import annotations

import json

import pytest

import curate

from conftest import SAMPLE_MEDIA
from test_runner import NOISE_RECIPE, recipe_file


def test_history_lists_versions_with_lineage(speech_copy, tmp_path, augment_cli, curate_cli):
    assert augment_cli("run", recipe_file(tmp_path, speech_copy, budget=4))[0] == 0
    text = NOISE_RECIPE.replace("name: test_noise", "name: second").replace("seed: 5", "seed: 9")
    assert augment_cli("run", recipe_file(tmp_path, speech_copy, budget=6, name="b.yaml", text=text))[0] == 0
    result = curate_cli("history", speech_copy, "--json")
    assert result.code == 0
    rows = json.loads(result.out)
    assert [(r["version"], r["parent"], r["recipe"], r["added"]) for r in rows] == [
        ("v0001", None, None, 250), ("v0002", "v0001", "test_noise", 4), ("v0003", "v0002", "second", 6)]
    assert [r["gate"] for r in rows] == [None, "passed", "passed"] and rows[2]["seed"] == 9
    table = curate_cli("history", speech_copy)
    assert table.code == 0 and "second" in table.out and "+6/-0" in table.out


def test_a_budget_sweep_commits_one_version_and_records_both(tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, SAMPLE_MEDIA / "speech", budget=20)
    prints = []
    for out in ("a", "b"):
        code, stdout, err = augment_cli("run", recipe, "--out", tmp_path / out, "--sweep", "budget=0.5,1.0")
        assert code == 0, err
        assert "sweep of budget (max clean cost 1 pts" in stdout and "<- picked" in stdout
        ds = curate.open(tmp_path / out)
        assert ds.versions() == ["v0001", "v0002"]  # the import, and exactly one candidate
        info = ds.load().info
        sweep = info["sweep"]
        assert sweep["field"] == "budget" and [c["value"] for c in sweep["candidates"]] == [0.5, 1.0]
        assert [c["items"] for c in sweep["candidates"]] == [10, 20]
        for c in sweep["candidates"]:
            assert {"value", "low", "high", "p", "tag", "n"} <= set(c["lift"]) and c["evaluation"]["split"] == "dev"
            # clean cost is the worst untargeted tag's own paired difference, never a pool
            untargeted = [r for r in c["evaluation"]["tags"] if not r["targeted"] and r["tag"] != "all"]
            assert c["cost"]["tag"] == min(untargeted, key=lambda r: r["difference"])["tag"]
            assert c["cost"]["value"] == min(r["difference"] for r in untargeted)
        picked = next(c for c in sweep["candidates"] if c["value"] == sweep["picked"])
        assert info["counts"]["origin"]["augmented"] == picked["items"]
        prints.append((sweep["picked"], info["fingerprint"]))
    assert prints[0] == prints[1]  # same sweep twice: same pick, same bytes
    assert not (SAMPLE_MEDIA / "speech" / "cache").exists()  # the source is scored first; its folder stays as it is


def test_pick_a_value_and_bad_sweeps(tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, SAMPLE_MEDIA / "speech", budget=8)
    code, out, _ = augment_cli("run", recipe, "--out", tmp_path / "ds", "--sweep", "budget=0.5,1.0", "--pick", "1")
    assert code == 0 and curate.open(tmp_path / "ds").load().info["counts"]["origin"]["augmented"] == 8
    for sweep, message in (("budget", "expected FIELD=V1,V2"), ("budget=1", "at least two"),
                           ("colour=1,2", "field 'colour' is not in the recipe"),
                           ("pipeline[0].AddBackgroundNoise.snr_db[1]=x,y", "values must be numbers")):
        code, _, err = augment_cli("run", recipe, "--out", tmp_path / "other", "--sweep", sweep)
        assert code == 2 and message in err, err
    code, _, err = augment_cli("run", recipe, "--out", tmp_path / "other", "--sweep", "budget=0.5,1", "--pick", "3")
    assert code == 2 and "--pick: 3 is not one of the swept values" in err


needs_mlflow = pytest.mark.skipif(__import__("importlib.util").util.find_spec("mlflow") is None
                                  and not __import__("os").environ.get("CI"),
                                  reason="needs the mlflow extra (.ci/run installs it; CI never skips)")


@needs_mlflow
def test_mlflow_run_records_the_version(speech_copy, tmp_path, augment_cli):
    import mlflow

    uri = tmp_path / "mlruns"
    code, out, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=4), "--mlflow", "--mlflow-uri", uri)
    assert code == 0 and "MLflow run" in out, err
    version = curate.open(speech_copy).load()
    client = mlflow.tracking.MlflowClient(uri.resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "rubbersheet"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["fingerprint"] == version.info["fingerprint"]
    assert run.data.params["parent_fingerprint"] == curate.open(speech_copy).load("v0001").info["fingerprint"]
    assert run.data.params["recipe"] == "test_noise" and run.data.metrics["gate.error"] == 0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "test_noise.yaml"} <= artifacts


def test_mlflow_missing_says_how_to_install(speech_dataset, tmp_path, augment_cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_dataset, budget=4), "--out", tmp_path / "ds",
                                "--mlflow")
    assert code == 2 and "pip install 'rubbersheet[mlflow]'" in err and not (tmp_path / "ds").exists()
