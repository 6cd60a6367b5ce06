"""Paired, per-tag evaluation (McNemar's exact test, paired bootstrap over leakage groups) and a baseline whose
features are chosen by group-aware cross-validation (issue 17, deliverables 1 and 3)."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import curate
from curate.checks import evaluation
from curate.checks.gate import parse_config


def section(**overrides):
    return parse_config({"evaluation": overrides} if overrides else {}).section("evaluation")


def contingency(both: int, fixed: int, broken: int, neither: int):
    """(before correct, after correct) per item for a 2x2 table, in a fixed order."""
    before = [True] * both + [False] * fixed + [True] * broken + [False] * neither
    after = [True] * both + [True] * fixed + [False] * broken + [False] * neither
    return np.array(before), np.array(after)


def test_mcnemar_and_bootstrap_agree_with_reference_values_on_a_fixed_table():
    before, after = contingency(30, 12, 4, 14)
    n = len(before)
    groups = [f"g{i:02d}" for i in range(n)]  # every item its own leakage group (sorted order = item order)
    result = evaluation.compare(before, after, [["x"]] * n, groups, ["x"], seed=7, resamples=2000)
    row = result.row("all")
    assert (row.n, row.fixed, row.broken) == (60, 12, 4)
    assert row.before == pytest.approx(34 / 60) and row.after == pytest.approx(42 / 60)
    assert row.difference == pytest.approx(8 / 60)
    # McNemar exact, by hand: two-sided binomial tail of min(b, c) = 4 of b + c = 16 at 1/2
    reference_p = min(1.0, 2 * sum(math.comb(16, k) for k in range(5)) / 2 ** 16)
    assert row.mcnemar_p == pytest.approx(reference_p, rel=1e-9)
    from scipy.stats import binomtest
    assert row.mcnemar_p == pytest.approx(binomtest(12, 16, 0.5).pvalue, rel=1e-9)
    assert row.mcnemar_p == pytest.approx(0.076812744140625, rel=1e-9)
    # percentile interval of the paired bootstrap, by hand with the same draws
    rng = np.random.default_rng(7)
    draws = rng.integers(0, n, size=(2000, n))
    d = after.astype(float) - before.astype(float)
    low, high = np.percentile(d[draws].mean(axis=1), [2.5, 97.5])
    assert (row.low, row.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert result.unit == "group" and result.units == 60
    assert row.low < row.difference < row.high


def test_the_bootstrap_resamples_whole_groups():
    rng = np.random.default_rng(1)
    n_groups, size = 12, 5
    before = rng.random(n_groups * size) < 0.6
    after = rng.random(n_groups * size) < 0.7
    groups = [f"s{i // size:02d}" for i in range(n_groups * size)]
    tags = [["a"] if i % 2 else ["b"] for i in range(n_groups * size)]
    result = evaluation.compare(before, after, tags, groups, ["a"], seed=3, resamples=500)
    # reference: draw groups, pool the drawn groups' items of the tag, mean paired difference; percentile interval
    draws = np.random.default_rng(3).integers(0, n_groups, size=(500, n_groups))
    d = after.astype(float) - before.astype(float)
    for tag in ("all", "a", "b"):
        member = np.array([tag == "all" or tag in t for t in tags])
        samples = []
        for drawn in draws:
            items = [i for g in drawn for i in range(g * size, (g + 1) * size) if member[i]]
            samples.append(d[items].mean())
        low, high = np.percentile(samples, [2.5, 97.5])
        row = result.row(tag)
        assert (row.low, row.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12)), tag
    assert result.row("a").targeted and not result.row("b").targeted and result.unit == "group"


def synthetic_dev():
    """80 dev items in 20 groups: car_noise (targeted) 30 % -> 90 % right; clean 90 % -> 50 % right."""
    rows = []
    for i in range(40):
        rows.append({"id": f"car{i}", "label": "a", "tags": "car_noise", "split": "dev", "group": f"g{i % 20:02d}",
                     "before": i % 10 < 3, "after": i % 10 < 9})
    for i in range(40):
        rows.append({"id": f"clean{i}", "label": "a", "tags": "clean", "split": "dev", "group": f"g{i % 20:02d}",
                     "before": i % 10 < 9, "after": i % 10 < 5})
    frame = pd.DataFrame(rows)

    def predictions(which):
        out = frame[["id", "label", "tags", "split", "group"]].copy()
        out["prediction"] = np.where(frame[which], "a", "b")
        return out

    return predictions("before"), predictions("after")


def test_a_model_that_fixes_the_target_and_breaks_clean_gets_a_finding_naming_clean(monkeypatch):
    before, after = synthetic_dev()
    calls = []

    def fake_baseline(view, model="logreg", seed=0, progress=None, features="auto", score=True):
        calls.append((view, features))
        frame = after if view == "candidate" else before
        frame = frame.copy()
        frame.attrs["features"] = "logmel_stats"
        return frame

    monkeypatch.setattr("curate.baseline.run_baseline", fake_baseline)
    source = SimpleNamespace(manifest=before[["id", "group"]])
    from augment.recipe import Evaluate
    from augment.run.evaluate import Evaluator

    loaded = SimpleNamespace(recipe=SimpleNamespace(evaluate=Evaluate(baseline={"model": "logreg"}), seed=5),
                             path="recipe.yaml")
    result = Evaluator(loaded, source).compare("candidate", ["car_noise"])
    assert calls[1] == ("candidate", "logmel_stats")  # the after model keeps the features chosen before
    assert isinstance(result, evaluation.Evaluation) and result.seed == 5
    assert [r.tag for r in result.rows] == ["all", "car_noise", "clean"]
    clean = result.row("clean")
    assert (clean.before, clean.after, clean.n, clean.broken, clean.fixed) == (0.9, 0.5, 40, 16, 0)
    assert clean.high < 0 and clean.mcnemar_p < 0.05 and not clean.targeted
    findings = evaluation.check(result, ["car_noise"], section())
    drops = [f for f in findings if f.severity == "error"]  # a significant untargeted drop blocks by default
    assert [f.subjects for f in drops] == [frozenset({"clean"})]
    assert drops[0].key == "evaluation.drop.clean" and drops[0].relative
    assert "clean (untargeted)" in drops[0].message and "90.0% -> 50.0%" in drops[0].message
    gains = [f for f in findings if f.severity == "info"]
    assert {f.figures["tag"] for f in gains} == {"car_noise"}
    lenient = evaluation.check(result.to_dict(), ["car_noise"], section(drop_severity="warning"))
    assert [f.figures["tag"] for f in lenient if f.severity == "warning"] == ["clean"]
    # a stated cost: 40 points on clean accepted -> a warning naming it; 39 not enough -> still blocks
    accepted = evaluation.check(result, ["car_noise"], section(accept_cost={"clean": 40}))
    (drop,) = [f for f in accepted if f.key == "evaluation.drop.clean"]
    assert drop.severity == "warning" and "within the accepted cost of 40 pts" in drop.message
    refused = evaluation.check(result, ["car_noise"], section(accept_cost={"clean": 39}))
    assert [f.severity for f in refused if f.key == "evaluation.drop.clean"] == ["error"]
    # the stored form: JSON, round trip, and what sweeps read (cost = the worst untargeted tag, not a pool)
    stored = json.loads(json.dumps(result.to_dict()))
    assert evaluation.Evaluation.from_dict(stored) == result
    assert [r["tag"] for r in evaluation.display_order(stored)] == ["clean", "car_noise", "all"]
    from augment.sweep import figures

    numbers = figures(stored, ["car_noise"])
    assert numbers["cost"]["tag"] == "clean" and numbers["cost"]["value"] == pytest.approx(-0.4)
    assert numbers["cost"]["high"] < 0 and numbers["lift"]["value"] == pytest.approx(0.6)
    assert numbers["lift"]["low"] > 0
    better = dict(stored["tags"][2], tag="quiet", difference=0.1, low=0.0, high=0.2)  # another untargeted tag
    assert figures({**stored, "tags": [*stored["tags"], better]}, ["car_noise"])["cost"]["tag"] == "clean"


def test_no_significant_change_is_one_info_and_old_records_still_read():
    before, after = contingency(40, 3, 2, 5)
    result = evaluation.compare(before, after, [["clean"]] * 50, [f"g{i}" for i in range(50)], ["car"])
    findings = evaluation.check(result, ["car"], section())
    assert [f.severity for f in findings] == ["info"] and "no significant" in findings[0].message
    old = {"model": "logreg", "split": "dev", "before": {"(all)": 0.5, "car": 0.4}, "after": {"(all)": 0.6, "car": 0.7},
           "n": {"(all)": 10, "car": 5}}
    assert [(r["tag"], r["difference"]) for r in evaluation.rows(old)] == [("all", pytest.approx(0.1)),
                                                                          ("car", pytest.approx(0.3))]
    assert evaluation.check(old, ["car"], section())[0].severity == "info"  # no p-value: no verdict


# -- deliverable 3: baseline features ---------------------------------------------------------------------------
def test_logmel_stats_keep_level_and_channel_identity_the_embedding_removes(tmp_path):
    from curate.features import audio_embedding, audio_logmel_stats
    from curate.media import write_audio

    rate = 16000
    t = np.arange(int(0.6 * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * np.hanning(len(t)) + 0.01 * np.random.default_rng(0).standard_normal(
        len(t))
    write_audio(tmp_path / "a.wav", tone.astype(np.float32), rate)
    write_audio(tmp_path / "b.wav", (0.25 * tone).astype(np.float32), rate)  # same content, another level
    stats = [audio_logmel_stats(tmp_path / f"{n}.wav") for n in "ab"]
    embedded = [audio_embedding(tmp_path / f"{n}.wav") for n in "ab"]
    assert stats[0].shape == (120,)
    assert np.allclose(embedded[0][:160], embedded[1][:160], atol=0.02)   # per-band mean removed: level gone
    assert np.abs(stats[0][:40] - stats[1][:40]).mean() > 1.0             # kept: log-mel means differ by ~2.8


@pytest.fixture
def shapes_dataset(tmp_path):
    """60 images, 2 labels told apart by stripes' direction (at a random phase, so raw pixels tell them apart less
    well than gradients do), 12 groups; train, dev and test splits."""
    from curate.importer import import_folder
    from curate.media import write_image

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    lines = ["path,label,tags,split,group"]
    for g in range(12):
        split = "train" if g < 8 else ("dev" if g < 10 else "test")
        for k in range(5):
            label = "h" if k % 2 else "v"
            stripes = ((np.arange(24) + rng.integers(0, 6)) // 3 % 2).astype(float)
            img = np.tile(stripes[:, None] if label == "h" else stripes[None, :], (1, 24) if label == "h" else (24, 1))
            img = np.clip(img * 160 + 40 + rng.normal(0, 50, (24, 24)), 0, 255).astype(np.uint8)
            name = f"g{g}_{k}.png"
            write_image(src / name, np.repeat(img[..., None], 3, axis=2))
            lines.append(f"{name},{label},{'clean' if k < 3 else 'blur'},{split},grp{g}")
    (src / "labels.csv").write_text("\n".join(lines) + "\n")
    import_folder(src, tmp_path / "ds")
    return tmp_path / "ds"


def test_the_baseline_chooses_its_features_by_group_cv_and_reports_them(shapes_dataset, tmp_path, curate_cli):
    from curate.baseline import run_baseline, summary
    from curate.exceptions import BadInput
    from curate.features import BASELINE_CANDIDATES

    version = curate.open(shapes_dataset).load()
    predictions = run_baseline(version, seed=0)
    figures = summary(predictions)
    assert set(figures["selection"]) == set(BASELINE_CANDIDATES["image"])
    accuracy = {name: cv["accuracy"] for name, cv in figures["selection"].items()}
    assert figures["features"] == max(accuracy, key=accuracy.get) and len(set(accuracy.values())) > 1, accuracy
    for cv in figures["selection"].values():
        assert cv["n"] == 40 and cv["low"] <= cv["accuracy"] <= cv["high"] and cv["folds"] == 5
    fixed = run_baseline(version, seed=0, features="pixels", score=False)
    assert fixed.attrs["features"] == "pixels" and fixed.attrs["selection"] == {}
    with pytest.raises(BadInput, match="logmel_stats"):
        run_baseline(version, features="logmel_stats")
    result = curate_cli("baseline", shapes_dataset, "--out", tmp_path / "b.csv", "--features", "gradients")
    assert result.code == 0 and "features gradients: cross-validated accuracy" in result.out
    assert "baseline on gradients features" in result.out
