"""The user's own model in the loop: `evaluate: {command: ...}` and `{python: ...}`, the predictions contract,
per-target source rules and tag bookkeeping, and the sweep's pick on per-tag cost."""
from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

import curate
from augment.sweep import judge_candidate
from curate.checks import Finding, GateResult

from conftest import ROOT
from test_runner import NOISE_RECIPE, recipe_file

TRAIN = f"{sys.executable} {ROOT / 'examples' / 'train_sklearn.py'}"


def literal(text: str) -> str:
    """Recipe text that survives recipe_file's str.format (the recipe's own {placeholders} stay as they are)."""
    return text.replace("{", "{{").replace("}", "}}")


def objects(path) -> set:
    return {p.name for p in (path / "objects").glob("*/*")}


def test_a_command_model_scores_the_change_end_to_end(speech_copy, tmp_path, augment_cli):
    text = NOISE_RECIPE + literal("evaluate:\n  command: " + TRAIN +
                                  " --train {train_dir} --dev {dev_dir} --out {predictions} --seed {seed}\n")
    code, out, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=12, text=text))
    assert code == 0, err
    version = curate.open(speech_copy).load()
    evaluation = version.info["evaluation"]
    assert evaluation["details"]["kind"] == "command" and evaluation["model"].endswith("train_sklearn.py")
    assert {r["tag"] for r in evaluation["tags"]} == {"all", "clean", "cafe_noise", "car_noise", "people_noise",
                                                      "low_bandwidth"}
    dev = version.manifest[version.manifest["split"] == "dev"]
    assert next(r for r in evaluation["tags"] if r["tag"] == "all")["n"] == len(dev) == 50
    for role in ("before", "after"):  # the command's output is kept with the version
        log = (version.path / f"evaluation-{role}.log").read_text()
        assert "# exit code: 0" in log and "predicted 50" in log
    assert "evaluation (python" in out and "cafe_noise (targeted)" in out
    html = (version.path / "report.html").read_text()
    assert "Evaluation: python train_sklearn.py, dev accuracy" in html and "predicted 50" in html
    assert set(evaluation["details"]["output"]) == {"before", "after"}


def test_a_failing_command_fails_the_run_with_its_last_lines_and_writes_nothing(speech_copy, tmp_path, augment_cli):
    script = tmp_path / "broken.py"
    script.write_text("import sys\nprint('loading data', file=sys.stderr)\nprint('CUDA out of memory', "
                      "file=sys.stderr)\nsys.exit(3)\n")
    text = NOISE_RECIPE + literal(f"evaluate:\n  command: {sys.executable} {script} {{predictions}}\n")
    before = objects(speech_copy)
    code, out, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=6, text=text))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "evaluate.command on the source" in err and "exited 3" in err
    assert "loading data | CUDA out of memory" in err
    assert curate.open(speech_copy).versions() == ["v0001"] and objects(speech_copy) == before
    assert not list((speech_copy / "rejected").glob("*"))


def test_a_command_that_fails_only_on_the_candidate_leaves_no_objects(speech_copy, tmp_path, augment_cli):
    script = tmp_path / "picky.py"  # fine on the source; refuses training data with augmented items
    script.write_text(
        "import csv, sys\nfrom pathlib import Path\n"
        "train, dev, out = map(Path, sys.argv[1:4])\n"
        "rows = list(csv.DictReader(open(train / 'labels.csv')))\n"
        "if any(r['id'].startswith('augmented/') for r in rows):\n"
        "    print('augmented data is not supported', file=sys.stderr); sys.exit(4)\n"
        "dev_rows = list(csv.DictReader(open(dev / 'labels.csv')))\n"
        "out.write_text('id,prediction\\n' + ''.join(f\"{r['id']},one\\n\" for r in dev_rows))\n")
    text = NOISE_RECIPE + literal(f"evaluate:\n  command: {sys.executable} {script} {{train_dir}} {{dev_dir}} "
                                  "{predictions}\n")
    before = objects(speech_copy)
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=6, text=text))
    assert code == 2 and "on the candidate" in err and "exited 4" in err and "not supported" in err, err
    assert curate.open(speech_copy).versions() == ["v0001"] and objects(speech_copy) == before


def test_a_python_model_and_the_predictions_contract(speech_copy, tmp_path, augment_cli, monkeypatch):
    (tmp_path / "my_model.py").write_text(
        "def predict(train, dev, seed):\n"
        "    assert {'id', 'path', 'label', 'tags', 'group'} <= set(train.columns) and seed == 5\n"
        "    majority = train['label'].mode()[0]\n"
        "    return {i: (label if 'clean' in tags else majority) for i, label, tags in\n"
        "            zip(dev['id'], dev['label'], dev['tags'])}\n"
        "def partial(train, dev, seed):\n"
        "    return {i: 'one' for i in list(dev['id'])[:10]}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = NOISE_RECIPE + literal("evaluate: {python: 'my_model:predict'}\n")
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=6, text=text))
    assert code == 0, err
    rows = {r["tag"]: r for r in curate.open(speech_copy).load().info["evaluation"]["tags"]}
    assert rows["clean"]["before"] == rows["clean"]["after"] == 1.0 and rows["clean"]["n"] == 20
    partial = NOISE_RECIPE.replace("test_noise", "partial") + literal("evaluate: {python: 'my_model:partial'}\n")
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=6, name="p.yaml", text=partial))
    assert code == 2 and "predicts 10 of the 50 dev items" in err, err


@pytest.mark.parametrize("evaluate,message", [
    ("evaluate: {command: 'python t.py --out {predicted}'}", "unknown placeholder {predicted}"),
    ("evaluate: {command: 'python t.py'}", "must write {predictions}"),
    ("evaluate: {command: 'python t.py {predictions}', baseline: {}}", "exactly one of baseline, command or python"),
    ("evaluate: {python: 'not a target'}", "evaluate.python"),
    ("evaluate: {baseline: {model: nosuchmodel}}", "evaluate.baseline.model"),
    ("evaluate: {baseline: {features: colour}}", "unknown feature set 'colour'"),
])
def test_bad_evaluate_settings_are_refused_with_their_line(speech_copy, tmp_path, augment_cli, evaluate, message):
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, text=NOISE_RECIPE + literal(evaluate) + "\n"))
    assert code == 2 and message in err and "recipe.yaml:16: evaluate" in err, err
    assert curate.open(speech_copy).versions() == ["v0001"]


TWO_TARGETS = """\
name: two_targets
dataset: {dataset}
seed: 5
target: {{tags: [cafe_noise, low_bandwidth]}}
pipelines:
  low_bandwidth:
    where: {{tags_none: [low_bandwidth]}}
    steps:
      - LowBandwidth: {{rate: 8000}}
  cafe_noise:
    where: {{tags_any: [clean]}}
    remove_tags: [clean, low_bandwidth]
    steps:
      - AddBackgroundNoise: {{noise: {noise}, snr_db: [0, 10]}}
sources:
  where: {{split: train}}
budget: {budget}
add_tags: [augmented]
"""


def test_a_target_takes_its_own_sources_and_tag_rules(speech_dataset, tmp_path, augment_cli):
    code, out, err = augment_cli("run", recipe_file(tmp_path, speech_dataset, budget=40, text=TWO_TARGETS),
                                 "--out", tmp_path / "out")
    assert code == 0, err
    assert "plan cafe_noise: 60 source(s)" in out and "plan low_bandwidth: 125 source(s)" in out
    frame = curate.open(tmp_path / "out").load().manifest
    real = frame[frame["origin"] == "real"].set_index("id")
    new = frame[frame["origin"] == "augmented"]
    low = new[new["id"].str.contains("/low_bandwidth/")]
    cafe = new[new["id"].str.contains("/cafe_noise/")]
    assert len(low) == len(cafe) == 20
    assert not any("low_bandwidth" in real.at[s, "tags"] for s in low["source_id"])
    assert all("clean" in real.at[s, "tags"] for s in cafe["source_id"])
    # a noisy copy is no longer clean, and wideband noise over a telephone voice is not low-bandwidth audio
    assert all(set(t) == {"cafe_noise", "augmented"} for t in cafe["tags"])
    # a telephone copy keeps what it still is (clean, or its noise), the recipe-wide rules removing nothing
    for source, tags in zip(low["source_id"], low["tags"]):
        assert set(tags) == set(real.at[source, "tags"]) | {"low_bandwidth", "augmented"}


def _evaluation(rows):
    return {"tags": [{"tag": t, "n": 20, "before": 0.5, "after": 0.5 + d, "difference": d, "low": d - 0.1,
                      "high": d + 0.1, "mcnemar_p": p, "fixed": 0, "broken": 0, "targeted": t == "car_noise"}
                     for t, d, p in rows],
            "lift": {"tag": "car_noise", "n": 20, "before": 0.5, "after": 0.8, "difference": 0.3, "low": 0.1,
                     "high": 0.5, "mcnemar_p": 0.01, "fixed": 6, "broken": 0, "targeted": True}}


@pytest.mark.parametrize("clean,quiet,gate_ok,eligible,why", [
    ((0.0, 1.0), (0.05, 1.0), True, True, []),
    ((-0.005, 0.9), (0.0, 1.0), True, True, []),               # half a point: within the default 1 point
    ((-0.05, 0.4), (0.0, 1.0), True, False, ["clean cost -5.0 pts on clean exceeds max_clean_cost 1"]),
    ((0.0, 1.0), (-0.3, 0.01), True, False, ["significant drop on untargeted quiet",
                                             "clean cost -30.0 pts on quiet exceeds max_clean_cost 1"]),
    ((0.0, 1.0), (0.0, 1.0), False, False, ["gate refused: prior shift"]),
])
def test_the_sweep_pick_rule(clean, quiet, gate_ok, eligible, why):
    evaluation = _evaluation([("all", 0.1, 0.2), ("car_noise", 0.3, 0.01), ("clean", *clean), ("quiet", *quiet)])
    findings = [] if gate_ok else [Finding("ambiguity", "error", "prior shift", relative=True)]
    gate = GateResult(findings, block_on=("error",))
    plan = SimpleNamespace(up_to_date=False, tasks=[1, 2])
    row = judge_candidate(0.5, plan, gate, evaluation, ["car_noise"], 1.0)
    assert row["eligible"] is eligible and row["passed_over"] == why
    assert row["tags"]["quiet"]["difference"] == quiet[0] and row["lift"]["value"] == 0.3
    assert judge_candidate(0.5, plan, gate, evaluation, ["car_noise"], 50.0)["eligible"] is (gate_ok and
                                                                                             quiet[1] >= 0.05)


def test_curate_errors_warns_when_nothing_says_the_tags(tmp_path, curate_cli):
    path = tmp_path / "p.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "label": ["x", "y", "x"], "prediction": ["x", "x", "x"]}).to_csv(path,
                                                                                                       index=False)
    result = curate_cli("errors", path)
    assert result.code == 0 and "has no tags column and no --dataset was given" in result.err
    no_label = tmp_path / "q.csv"
    no_label.write_text("id,prediction\na,x\n")
    result = curate_cli("errors", no_label)
    assert result.code == 2 and "missing required column 'label' (or give the dataset" in result.err


def test_predictions_without_labels_take_them_from_the_dataset(speech_dataset, tmp_path, curate_cli):
    version = curate.open(speech_dataset).load()
    ids = list(version.manifest["id"][:40])
    path = tmp_path / "p.csv"
    pd.DataFrame({"id": ids, "prediction": ["one"] * 40}).to_csv(path, index=False)
    out = tmp_path / "errors.json"
    result = curate_cli("errors", path, "--dataset", speech_dataset, "--json", out)
    assert result.code == 0 and "no tags column" not in result.err, result.err
    report = json.loads(out.read_text())
    truth = list(version.manifest["label"][:40])
    assert report["overall"]["n"] == 40 and report["overall"]["accuracy"] == truth.count("one") / 40
    assert {r["tag"] for r in report["tags"]} <= {"clean", "low_bandwidth", "cafe_noise", "car_noise", "people_noise"}


def test_a_python_model_that_exits_or_writes_into_its_inputs_cannot_pass_or_harm(speech_copy, tmp_path, augment_cli,
                                                                                 monkeypatch):
    (tmp_path / "rude.py").write_text(
        "import sys\n"
        "def quits(train, dev, seed):\n"
        "    sys.exit(0)\n"
        "def scribbles(train, dev, seed):\n"
        "    open(train['path'][0], 'wb').write(b'overwritten')\n"
        "    return {i: 'one' for i in dev['id']}\n")
    (tmp_path / "broken_import.py").write_text("raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = objects(speech_copy)
    for target, message in (("rude:quits", "raised SystemExit"), ("broken_import:f", "RuntimeError: no GPU here")):
        text = NOISE_RECIPE.replace("test_noise", target.split(":")[1]) + literal(f"evaluate: {{python: '{target}'}}\n")
        code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=4, name="q.yaml", text=text))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert objects(speech_copy) == before and curate.open(speech_copy).versions() == ["v0001"]
    text = NOISE_RECIPE + literal("evaluate: {python: 'rude:scribbles'}\n")
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=4, name="s.yaml", text=text))
    assert code == 0, err
    from curate.verify import verify

    assert verify(curate.open(speech_copy))[0] == []  # the model wrote into a copy, not into the store


def test_a_timed_out_command_is_stopped_with_everything_it_started(speech_copy, tmp_path, augment_cli):
    script = tmp_path / "slow.py"
    marker = tmp_path / "child.pid"
    script.write_text(
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n")
    text = NOISE_RECIPE + literal(f"evaluate:\n  command: {sys.executable} {script} {{predictions}}\n  timeout_s: 3\n")
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=4, text=text))
    assert code == 2 and "did not finish within timeout_s=3 s" in err, err
    import os
    import time

    pid = int(marker.read_text())
    time.sleep(0.5)
    try:
        os.kill(pid, 0)
        alive = open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except ProcessLookupError:
        alive = False
    assert not alive  # the grandchild went with the command
