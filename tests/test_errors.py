"""Error analysis, skewed-data metrics, slice audit and the quick baseline."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import curate
from curate.baseline import _folds, run_baseline
from curate.errors import analyse, audit, wilson_interval
from curate.predictions import read_predictions, tag_lists

from conftest import SAMPLE_MEDIA


def predictions_csv(tmp_path, rows, name="pred.csv") -> str:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def quiz_rows():
    """The course quiz: scratch accuracy 95 % (HLP 98 %), discoloration 90 % (HLP 90 %), each half the data."""
    rows = []
    for tag, correct in (("scratch", 95), ("discoloration", 90)):
        for i in range(100):
            rows.append({"id": f"{tag}{i}", "label": "defect", "prediction": "defect" if i < correct else "ok",
                         "tags": tag})
    return rows


def test_course_quiz_ranks_scratch_first(tmp_path, curate_cli):
    pred = predictions_csv(tmp_path, quiz_rows())
    (tmp_path / "hlp.csv").write_text("tag,hlp\nscratch,98%\ndiscoloration,0.90\n")
    out = tmp_path / "errors.json"
    result = curate_cli("errors", pred, "--hlp", tmp_path / "hlp.csv", "--json", out)
    assert result.code == 0, result.err
    report = json.loads(out.read_text())
    assert report["schema"] == "rubbersheet.errors" and report["schema_version"] == 1
    first, second = report["tags"]
    assert (first["tag"], first["rank"]) == ("scratch", 1)
    assert first["accuracy"] == pytest.approx(0.95) and first["share_of_data"] == pytest.approx(0.5)
    assert first["potential_gain"] == pytest.approx(0.015)  # 1.5 points
    assert (second["tag"], second["gap_to_hlp"], second["potential_gain"]) == ("discoloration", 0.0, 0.0)
    assert first["share_of_errors"] == pytest.approx(5 / 15) and second["share_of_errors"] == pytest.approx(10 / 15)
    assert "1.50" in result.out


def test_accuracy_lies_on_skewed_data():
    frame = pd.DataFrame({"id": [str(i) for i in range(1000)], "label": ["0"] * 980 + ["1"] * 20,
                          "prediction": ["1"] * 1000})
    report = analyse(frame, [[] for _ in range(1000)])
    positive = next(r for r in report["per_class"] if r["label"] == "1")
    assert positive["recall"] == 1.0 and positive["precision"] == pytest.approx(0.02)
    assert positive["f1"] == pytest.approx(2 * 0.02 / 1.02) and round(100 * positive["f1"], 1) == 3.9
    assert report["overall"]["accuracy"] == pytest.approx(0.02)
    assert report["confusion"] == {"labels": ["0", "1"], "matrix": [[0, 980], [0, 20]]}


def test_multi_tag_items_count_in_every_tag_and_hlp_from_human_labels():
    frame = pd.DataFrame({
        "id": ["a", "b", "c", "d", "e"],
        "label": ["x", "x", "y", "y", "x"],
        "prediction": ["x", "y", "y", "x", "x"],
        "human_label": ["x", "x", "x", "y", "x"],
    })
    tags = [["car", "low_bandwidth"], ["car"], ["low_bandwidth"], ["car", "low_bandwidth"], []]
    report = analyse(frame, tags)
    rows = {r["tag"]: r for r in report["tags"]}
    assert rows["car"]["n"] == 3 and rows["low_bandwidth"]["n"] == 3 and rows["(no tag)"]["n"] == 1
    assert rows["car"]["accuracy"] == pytest.approx(1 / 3) and rows["car"]["errors"] == 2
    # humans: car items a, b, d all right -> 3/3; low_bandwidth items a, c, d -> c wrong -> 2/3
    assert rows["car"]["hlp"] == 1.0 and rows["low_bandwidth"]["hlp"] == pytest.approx(2 / 3)
    assert rows["low_bandwidth"]["hlp_source"] == "human_label"
    assert rows["car"]["share_of_errors"] == pytest.approx(2 / 2)


def test_importance_weights_the_gain(tmp_path, curate_cli):
    pred = predictions_csv(tmp_path, quiz_rows())
    (tmp_path / "hlp.yaml").write_text("scratch: 0.98\ndiscoloration: 0.99\n")
    (tmp_path / "importance.yaml").write_text("discoloration: 3\n")
    out = tmp_path / "e.json"
    assert curate_cli("errors", pred, "--hlp", tmp_path / "hlp.yaml", "--importance", tmp_path / "importance.yaml",
                      "--json", out).code == 0
    first = json.loads(out.read_text())["tags"][0]
    assert first["tag"] == "discoloration" and first["potential_gain"] == pytest.approx(0.09 * 0.5 * 3)


def test_tags_come_from_the_dataset_when_not_in_predictions(speech_dataset, tmp_path, curate_cli):
    manifest = curate.open(speech_dataset).load().manifest
    rows = [{"id": i, "label": label, "prediction": label} for i, label in zip(manifest["id"][:30],
                                                                             manifest["label"][:30])]
    frame = read_predictions(predictions_csv(tmp_path, rows), curate.open(speech_dataset).load())
    assert tag_lists(frame) == [list(t) for t in manifest["tags"][:30]]
    rows.append({"id": "nope.wav", "label": "one", "prediction": "one"})
    bad = predictions_csv(tmp_path, rows, "bad.csv")
    result = curate_cli("errors", bad, "--dataset", speech_dataset)
    assert result.code == 2 and f"{bad}:32: id 'nope.wav' is not an item of" in result.err


@pytest.mark.parametrize("content,message", [
    ("id,prediction\na,x\n", "missing required column 'label'"),
    ("id,label\na,x\n", "missing required column 'prediction'"),
    ("", "empty file"),
    ("id,label,prediction,p_x\na,x,x,1.7\n", "column 'p_x' is not a probability"),
    ("id,label,prediction,p_x\na,x,x,high\n", "column 'p_x' is not a probability"),
    ("id,label,prediction\na,x,x\na,y,y\n", "duplicate id 'a'"),
])
def test_bad_predictions_are_one_line_exit_2(content, message, tmp_path, curate_cli):
    path = tmp_path / "p.csv"
    path.write_text(content)
    result = curate_cli("errors", path)
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and message in lines[0] and "p.csv" in lines[0]


def test_bad_hlp_file(tmp_path, curate_cli):
    pred = predictions_csv(tmp_path, quiz_rows())
    (tmp_path / "hlp.csv").write_text("tag,hlp\nscratch,1.8\n")
    result = curate_cli("errors", pred, "--hlp", tmp_path / "hlp.csv")
    assert result.code == 2 and "hlp.csv:2: hlp for tag 'scratch'" in result.err


def test_wilson_interval_known_values():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_audit_flags_only_significant_large_slices():
    rng = np.random.default_rng(0)
    rows = []
    for device, n, accuracy in (("phone", 200, 0.6), ("laptop", 200, 0.95), ("headset", 200, 0.93), ("car", 6, 0.0)):
        for i in range(n):
            ok = rng.random() < accuracy
            rows.append({"id": f"{device}{i}", "label": "a", "prediction": "a" if ok else "b", "device": device})
    report = audit(pd.DataFrame(rows), ["device"], min_size=10)
    flags = {s["slice"]["device"]: (s["flagged"], s["small"]) for s in report["slices"]}
    assert flags == {"phone": (True, False), "laptop": (False, False), "headset": (False, False),
                     "car": (False, True)}


def test_audit_cli_with_dataset_metadata_and_tags(speech_dataset, tmp_path, curate_cli):
    manifest = curate.open(speech_dataset).load().manifest
    rows = [{"id": i, "label": label, "prediction": label if n % 3 else "zero"}
            for n, (i, label) in enumerate(zip(manifest["id"], manifest["label"]))]
    pred = predictions_csv(tmp_path, rows)
    out = tmp_path / "audit.json"
    result = curate_cli("audit", pred, "--by", "speaker,tags", "--dataset", speech_dataset, "--json", out)
    assert result.code == 0, result.err
    slices = json.loads(out.read_text())["slices"]
    assert {(s["slice"]["speaker"], s["slice"]["tags"]) for s in slices} >= {("human", "clean"), ("tts", "car_noise")}
    assert sum(s["n"] for s in slices if s["slice"]["speaker"] == "human" and s["slice"]["tags"] == "clean") == 10
    missing = curate_cli("audit", pred, "--by", "accent")
    assert missing.code == 2 and "column 'accent'" in missing.err


def test_baseline_on_sample_speech_finds_the_noisy_slices(speech_dataset, tmp_path, curate_cli):
    out = tmp_path / "baseline.csv"
    result = curate_cli("baseline", f"{speech_dataset}@latest", "--out", out)
    assert result.code == 0, result.err
    pred = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert set(pred["split"]) == {"dev", "test"}  # out of sample: never the training voices
    correct = pred["label"] == pred["prediction"]
    assert correct.mean() > 0.35  # chance is 0.10
    noisy = pred["tags"].str.contains("_noise")
    assert correct[~noisy & pred["tags"].str.contains("clean")].mean() > correct[noisy].mean() + 0.1
    probabilities = pred[[c for c in pred.columns if c.startswith("p_")]].astype(float)
    assert len(probabilities.columns) == 10 and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    report_path = tmp_path / "errors.json"
    assert curate_cli("errors", out, "--json", report_path).code == 0
    first = json.loads(report_path.read_text())["tags"][0]
    assert first["tag"] != "clean" and (first["tag"].endswith("_noise") or first["tag"] == "low_bandwidth")
    again = tmp_path / "again.csv"
    assert curate_cli("baseline", speech_dataset, "--out", again).code == 0
    assert again.read_bytes() == out.read_bytes()  # deterministic


def test_baseline_without_splits_uses_group_aware_cross_validation(tmp_path):
    from curate.importer import import_folder

    version = import_folder(SAMPLE_MEDIA / "ocr", tmp_path / "ocr").version
    predictions = run_baseline(version, model="knn", seed=3)
    assert len(predictions) == 90 and predictions.attrs["scheme"].startswith("5-fold")
    rows = version.manifest.set_index("id")
    for train, test in _folds(rows, rows["label"].to_numpy(dtype=object), 3, version.ref):
        assert not set(rows["group"].iloc[train]) & set(rows["group"].iloc[test])


def test_features_are_cached_per_object(speech_dataset, tmp_path):
    import shutil

    from curate.features import embeddings, metrics

    copy = tmp_path / "ds"
    shutil.copytree(speech_dataset, copy)
    version = curate.open(copy).load()
    ids, first = embeddings(version)
    (pack,) = (copy / "cache" / "features").glob("embedding-audio-*/pack.npz")
    with np.load(pack) as data:
        assert len(data["digests"]) == 250 and data["values"].shape == (250, 192)
    assert first.shape == (250, 192)
    ids2, second = embeddings(version)
    assert ids2 == ids and np.array_equal(first, second)
    noisy_id = next(i for i in ids if i.startswith("allison/") and i.endswith("_cafe.wav"))
    clean_id = noisy_id.replace("_cafe", "")
    table = metrics(version, ids=[clean_id, noisy_id])
    clean, noisy = table.loc[clean_id], table.loc[noisy_id]
    assert noisy["snr_db"] < clean["snr_db"] and clean["duration_s"] == pytest.approx(noisy["duration_s"])
    assert -60 < clean["rms_dbfs"] < 0 and clean["spectral_rolloff_hz"] < 4000  # telephone speech
