"""The curation checks and the gate on sample_media: prior shift on OCR I/1, duplicates, splits, realism, leakage."""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import curate
from curate.view import MemoryView
from curate.checks import ambiguity, consistency, leakage, realism
from curate.checks.gate import parse_config, run_gate
from curate.checks.splits import assign_splits
from curate.exceptions import BadInput
from curate.importer import import_folder

from conftest import SAMPLE_MEDIA


@pytest.fixture(scope="module")
def ocr_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("ocr") / "ds"
    import_folder(SAMPLE_MEDIA / "ocr", path)
    return path


def with_copies(version, counts: dict[str, int]) -> MemoryView:
    """The version plus augmented copies of its items: counts = {label: how many to add}."""
    frame = version.manifest
    rows = []
    for label, n in counts.items():
        sources = frame[frame["label"] == label].reset_index(drop=True)
        for k in range(n):
            source = sources.iloc[k % len(sources)]
            rows.append({**source.to_dict(), "id": f"aug/{label}/{k}", "origin": "augmented",
                         "source_id": source["id"], "recipe": "test"})
    return MemoryView(version.dataset, pd.concat([frame, pd.DataFrame(rows)], ignore_index=True))


def section(name, **overrides):
    return parse_config({name: overrides} if overrides else {}).section(name)


def test_adding_only_I_trips_the_prior_shift_guard(ocr_dataset):
    parent = curate.open(ocr_dataset).load()
    findings = ambiguity.check(with_copies(parent, {"I": 40}), parent, section("ambiguity"))
    errors = [f for f in findings if f.severity == "error"]
    pairs = {tuple(f.figures["pair"]) for f in errors}
    assert ("1", "I") in pairs
    i_vs_1 = next(f for f in errors if tuple(f.figures["pair"]) == ("1", "I"))
    assert "1:I was 18:18 = 1.00, now 18:58 = 0.31" in i_vs_1.message
    assert "add <=" in i_vs_1.message and i_vs_1.figures["counts_candidate"] == [18, 58]


def test_adding_the_confusable_classes_in_proportion_passes(ocr_dataset):
    parent = curate.open(ocr_dataset).load()
    both = ambiguity.check(with_copies(parent, {"I": 40, "1": 40}), parent, section("ambiguity"))
    assert ("1", "I") not in {tuple(f.figures["pair"]) for f in both if f.severity == "error"}
    cluster = ambiguity.check(with_copies(parent, {"I": 40, "1": 40, "l": 40}), parent, section("ambiguity"))
    assert not [f for f in cluster if f.severity == "error"]


def test_identical_I_and_l_glyphs_are_conflicting_exact_duplicates(ocr_dataset):
    version = curate.open(ocr_dataset).load()
    findings = consistency.check(version, None, section("consistency"))
    duplicate = next(f for f in findings if "identical input" in f.message)
    assert duplicate.severity == "error"
    groups = [sorted(i["id"] for i in group) for group in duplicate.items]
    assert ["dejavu_sans/lower_l_regular.png", "dejavu_sans/upper_i_regular.png"] in groups
    assert ["liberation_sans/lower_l_bold.png", "liberation_sans/upper_i_bold.png"] in groups
    assert duplicate.figures["label_sets"] == {"I / l": 4}


def test_check_cli_exit_codes_and_json(ocr_dataset, tmp_path, curate_cli):
    out = tmp_path / "gate.json"
    result = curate_cli("check", ocr_dataset, "--json", out)
    assert result.code == 1 and "gate FAILED" in result.out
    gate = json.loads(out.read_text())
    assert gate["passed"] is False and gate["counts"]["error"] == 1
    (tmp_path / "lenient.yaml").write_text("consistency:\n  exact_duplicate_severity: warning\n")
    assert curate_cli("check", ocr_dataset, "--config", tmp_path / "lenient.yaml").code == 0
    (tmp_path / "strict.yaml").write_text("block_on: warning\nconsistency:\n  exact_duplicate_severity: warning\n")
    assert curate_cli("check", ocr_dataset, "--config", tmp_path / "strict.yaml").code == 1
    (tmp_path / "typo.yaml").write_text("realism:\n  auc_warnn: 0.9\n")
    bad = curate_cli("check", ocr_dataset, "--config", tmp_path / "typo.yaml")
    assert bad.code == 2 and "typo.yaml:2: realism.auc_warnn: unknown key (did you mean 'auc_warn'?)" in bad.err


def test_gate_config_errors_name_the_field():
    with pytest.raises(BadInput, match=r"curation: ambiguity\.max_prior_shift: Input should be greater"):
        parse_config({"ambiguity": {"max_prior_shift": -1}})
    with pytest.raises(BadInput, match=r"curation: checks\.0: Input should be"):
        parse_config({"checks": ["realizm"]})
    with pytest.raises(BadInput, match=r"curation: expected a mapping of gate settings"):
        parse_config(["block_on"])


def unsplit_speech(tmp_path):
    src = tmp_path / "speech"
    shutil.copytree(SAMPLE_MEDIA / "speech", src)
    frame = pd.read_csv(src / "labels.csv", dtype=str, keep_default_na=False)
    frame.drop(columns=["split"]).to_csv(src / "labels.csv", index=False)
    return src


def test_split_is_group_aware_balanced_and_stable(tmp_path, curate_cli):
    src = unsplit_speech(tmp_path)
    ds = tmp_path / "ds"
    assert curate_cli("import", src, "--to", ds).code == 0
    result = curate_cli("split", ds)
    assert result.code == 0 and "@v0002" in result.out
    frame = curate.open(ds).load().manifest
    assert frame.groupby("group")["split"].nunique().max() == 1  # no speaker in two splits
    for split in ("train", "dev", "test"):
        part = frame[frame["split"] == split]
        assert set(part["label"]) == set(frame["label"])  # every digit in every split
        for tag in ("cafe_noise", "car_noise", "people_noise", "clean"):
            share = part["tags"].map(lambda t: tag in t).mean()
            overall = frame["tags"].map(lambda t: tag in t).mean()
            assert abs(share - overall) < 0.05, (split, tag)
    assert frame["split"].value_counts().to_dict() == {"train": 150, "dev": 50, "test": 50}
    # add a new voice's items and an augmented copy: old items keep their split, the copy follows its root
    extra = frame.iloc[:3].copy()
    extra["id"] = ["new/a.wav", "new/b.wav", "new/c.wav"]
    extra["group"] = "new_voice"
    extra["split"] = None
    copy = frame[frame["split"] == "train"].iloc[:1].copy()
    copy["id"], copy["split"], copy["origin"] = "aug/1.wav", None, "augmented"
    grown = pd.concat([frame, extra, copy], ignore_index=True)
    resplit = assign_splits(grown)
    assert resplit[: len(frame)] == list(frame["split"])
    assert resplit[-1] == "train" and len(set(resplit[len(frame): len(frame) + 3])) == 1


def test_split_refuses_bad_ratios(speech_dataset, curate_cli):
    result = curate_cli("split", speech_dataset, "--ratios", "0.5,0.5,0.5")
    assert result.code == 2 and "--ratios: expected three non-negative numbers summing to 1" in result.err


def test_split_check_reports_missing_labels(speech_dataset):
    from curate.checks import splits

    version = curate.open(speech_dataset).load()
    frame = version.manifest.copy()
    frame = frame[~((frame["split"] == "test") & (frame["label"] == "seven"))]
    findings = splits.check(MemoryView(version.dataset, frame), None, section("splits"))
    assert any(f.severity == "error" and "'seven'" in f.message and "test" in f.message for f in findings)


def noisy_candidate(dataset_path, snr_db: float, n: int = 30) -> tuple[MemoryView, object]:
    """Augmented items: clean train speech with real cafe noise at `snr_db`, stored in the dataset's objects."""
    from augment.audio import AddBackgroundNoise
    from curate.media import read_audio

    ds = curate.open(dataset_path)
    parent = ds.load()
    frame = parent.manifest
    sources = frame[(frame["split"] == "train") & frame["tags"].map(lambda t: "clean" in t)].iloc[:n]
    mixer = AddBackgroundNoise(SAMPLE_MEDIA / "noise" / "cafe", snr_db=snr_db)
    rows, media = [], {}
    for k, (_, source) in enumerate(sources.iterrows()):
        audio, rate = read_audio(parent.media_path(source["id"]))
        buffer = io.BytesIO()
        sf.write(buffer, mixer(audio, sample_rate=rate, seed=k), rate, format="WAV", subtype="PCM_16")
        item = f"aug/{snr_db}/{k}.wav"
        media[item] = buffer.getvalue()
        rows.append({**source.to_dict(), "id": item, "object": None, "origin": "augmented",
                     "source_id": source["id"], "tags": ["cafe_noise"] + [t for t in source["tags"] if t != "clean"]})
    frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
    version = ds.commit(frame, media, {"parent": parent.name})
    return version, parent


@pytest.mark.parametrize("snr_db,flagged", [(-20, True), (10, False)])
def test_realism_flags_noise_far_louder_than_real_data(speech_copy, snr_db, flagged):
    candidate, parent = noisy_candidate(speech_copy, snr_db)
    findings = realism.check(candidate, parent, section("realism", target_tags=["cafe_noise"]))
    warnings = [f for f in findings if f.severity != "info"]
    assert bool(warnings) == flagged, [f.message for f in findings]
    envelope = next(f for f in findings if "outside the real range" in f.message)
    assert envelope.figures["target"] == "cafe_noise" and envelope.figures["reference"] == 50
    if flagged:
        assert envelope.figures["outside_share"] > 0.5
        auc = next(f for f in findings if "AUC" in f.message)
        assert auc.figures["auc"] > 0.85
        figures = auc.figures  # the interval brackets the AUC, within [0, 1] (a perfect separation has no width)
        assert 0 <= figures["auc_low"] <= figures["auc"] <= figures["auc_high"] <= 1.0
        assert figures["auc"] == 1.0 or figures["auc_low"] < figures["auc"] - 0.005


def test_the_auc_interval_is_hanley_and_mcneil():
    from curate.checks.realism import auc_interval

    low, high = auc_interval(0.5, 300, 800)   # chance level: Q1 = 1/3, Q2 = 1/3, SE = 0.019552
    assert (high - low) / 2 == pytest.approx(1.96 * 0.019552, rel=1e-4)
    assert auc_interval(1.0, 10, 10) == (1.0, 1.0)


def test_an_augmented_item_in_test_is_leakage(speech_copy):
    version, _ = noisy_candidate(speech_copy, 10, n=3)
    frame = version.manifest.copy()
    moved = frame["origin"] == "augmented"
    frame.loc[moved[moved].index[0], "split"] = "test"
    findings = leakage.check(MemoryView(version.dataset, frame), None, section("leakage"))
    errors = [f for f in findings if f.severity == "error"]
    assert any("augmented item(s) outside train" in f.message for f in errors)
    assert any("span several splits" in f.message for f in errors)  # its speaker is now in train and test


def test_the_same_object_in_train_and_test_is_leakage(speech_dataset):
    version = curate.open(speech_dataset).load()
    frame = version.manifest.copy()
    test_item = frame[frame["split"] == "test"].iloc[0]
    clone = {**test_item.to_dict(), "id": "copy-in-train.wav", "split": "train", "group": "someone"}
    findings = leakage.check(MemoryView(version.dataset, pd.concat([frame, pd.DataFrame([clone])])), None,
                             section("leakage"))
    same = next(f for f in findings if "identical input" in f.message)
    assert same.severity == "error" and {i["id"] for i in same.items[0]} == {test_item["id"], "copy-in-train.wav"}


def test_label_conventions_and_annotator_agreement(tmp_path):
    from curate.checks.consistency import fleiss_kappa, normalise_label

    assert normalise_label("Um, today's weather") == normalise_label("Um... today's weather") == "today's weather"
    # Fleiss (1971) style check: perfect agreement -> 1, a known 3-rater example
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    assert fleiss_kappa(np.array([[2, 1], [1, 2], [3, 0], [0, 3]])) == pytest.approx(1 / 3)
    src = tmp_path / "src"
    src.mkdir()
    rows = ["path,label,annotations"]
    labels = ["Um, today's weather", "Um... today's weather", "um today's weather", "hello"]
    for k, label in enumerate(labels):
        shutil.copyfile(SAMPLE_MEDIA / "speech" / "flite_awb" / f"{['zero', 'one', 'two', 'three'][k]}.wav",
                        src / f"{k}.wav")
        votes = "a;a;a" if k < 3 else "a;b;c"
        rows.append(f'{k}.wav,"{label}",{votes}')
    (src / "labels.csv").write_text("\n".join(rows) + "\n")
    version = import_folder(src, tmp_path / "ds").version
    findings = consistency.check(version, None, section("consistency"))
    convention = next(f for f in findings if "written 3 ways" in f.message)
    assert convention.figures["normalised"] == "today's weather"
    agreement = next(f for f in findings if "Fleiss" in f.message)
    assert agreement.severity == "warning" and [i["id"] for i in agreement.items] == ["3.wav"]


def test_cleanlab_label_issues_from_predictions(speech_dataset, tmp_path):
    version = curate.open(speech_dataset).load()
    frame = version.manifest
    classes = sorted(set(frame["label"]))
    rng = np.random.default_rng(0)
    rows = []
    for k, (item, label) in enumerate(zip(frame["id"], frame["label"])):
        confident = classes[(classes.index(label) + 1) % 10] if k < 5 else label  # 5 items look mislabelled
        p = np.full(10, 0.02)
        p[classes.index(confident)] = 0.82
        p = p + rng.uniform(0, 0.001, 10)
        rows.append({"id": item, "label": label, "prediction": confident,
                     **{f"p_{c}": v for c, v in zip(classes, p / p.sum())}})
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    findings = consistency.check(version, None, section("consistency", predictions=str(tmp_path / "p.csv")))
    issues = next(f for f in findings if "cleanlab" in f.message)
    found = {i["id"] for i in issues.items}
    seeded = set(frame["id"][:5])
    assert len(found & seeded) >= 4 and len(found - seeded) <= 1, found
    assert issues.items[0]["id"] in seeded and issues.items[0]["suggested"] != issues.items[0]["label"]


def test_full_gate_result_shape(speech_dataset):
    version = curate.open(speech_dataset).load()
    result = run_gate(version, None)
    assert result.passed is True and set(result.checks) == {"realism", "consistency", "splits", "ambiguity", "change",
                                                             "leakage"}
    data = json.loads(json.dumps(result.to_dict()))
    assert all(set(f) == {"check", "severity", "status", "message", "items", "figures", "blocking"}
               for f in data["findings"])
    assert all(f["status"] == "new" for f in data["findings"])  # no source: everything is new
    assert [s["check"] for s in data["status"]] == list(result.checks)


def test_a_significant_accuracy_drop_is_a_finding():
    from curate.checks import GateResult, evaluation

    # car_noise (targeted): 45/50 right before, 25/50 after (20 broken, 0 fixed); clean: 80/100 -> 78/100 (2 broken)
    before = [i < 45 for i in range(50)] + [i < 80 for i in range(100)]
    after = [i < 25 for i in range(50)] + [i < 78 for i in range(100)]
    tags = [["car_noise"]] * 50 + [["clean"]] * 100
    figures = evaluation.compare(before, after, tags, [f"g{i % 25}" for i in range(150)], ["car_noise"],
                                 split="dev", seed=1)
    findings = evaluation.check(figures, ["car_noise"], section("evaluation", drop_severity="warning"))
    worse = [f for f in findings if f.severity == "warning"]
    assert [f.figures["tag"] for f in worse] == ["car_noise", "all"]
    assert "90.0% -> 50.0%" in worse[0].message and worse[0].figures["high"] < 0
    assert worse[0].figures["mcnemar_p"] < 0.05 and worse[0].relative
    strict = evaluation.check(figures.to_dict(), ["car_noise"], section("evaluation", drop_severity="error"))
    gate = GateResult(()).add(strict, "evaluation")
    assert gate.passed is False and gate.counts["error"] == 2
    flat = evaluation.compare([i < 5 for i in range(10)], [i < 5 or i == 7 for i in range(10)], [["car_noise"]] * 10,
                              [f"g{i}" for i in range(10)], ["car_noise"])
    assert [f.severity for f in evaluation.check(flat, ["car_noise"], section("evaluation"))] == ["info"]


def test_the_gate_drops_each_shared_computation_once_no_check_left_needs_it(ocr_dataset, monkeypatch):
    """Checks sharing a memoised computation run one after the other, and it is dropped when the last of them is
    done, on the candidate and on the source (a 200k-item real index is ~800 MB that consistency would otherwise
    hold on top of its own peak); the findings and statuses still come in the config's order, the same as before."""
    from curate.checks import gate
    from curate.checks.similarity import MEMO_FAMILIES

    parent = curate.open(ocr_dataset).load()
    candidate = with_copies(parent, {"I": 6, "1": 6})
    checks = ["leakage", "consistency", "splits", "ambiguity", "realism", "change"]
    plain = run_gate(candidate, parent, {"checks": checks})      # reference findings
    for view in (candidate, parent):
        assert not view.__dict__.get("_similarity_memo")          # nothing left memoised after the gate

    families = lambda view: {MEMO_FAMILIES[k if isinstance(k, str) else k[0]]
                             for k in view.__dict__.get("_similarity_memo", {})}
    seen = []
    for name in gate.RUN_ORDER:
        module = __import__(f"curate.checks.{name}", fromlist=["check"])
        original = module.check

        def spy(view, source, config, name=name, original=original):
            if view is candidate:
                seen.append((name, families(candidate) | families(parent)))
            return original(view, source, config)
        monkeypatch.setattr(module, "check", spy)
    result = run_gate(candidate, parent, {"checks": checks})
    assert [n for n, _ in seen] == ["realism", "ambiguity", "consistency", "leakage", "splits", "change"]
    assert dict(seen) == {"realism": set(), "ambiguity": {"embeddings"}, "consistency": set(), "leakage": {"pairs"},
                          "splits": set(), "change": set()}
    assert list(result.checks) == checks
    assert [f.to_dict() for f in result.findings] == [f.to_dict() for f in plain.findings]
    assert [f.check for f in result.findings] == sorted((f.check for f in result.findings), key=checks.index)
    # a check that fails leaves nothing memoised either
    monkeypatch.setattr(ambiguity, "check", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        run_gate(candidate, parent, {"checks": checks})
    assert not candidate.__dict__.get("_similarity_memo") and not parent.__dict__.get("_similarity_memo")


def test_label_kept_says_when_its_neighbours_were_searched_approximately(ocr_dataset, monkeypatch):
    from curate.checks import index

    parent = curate.open(ocr_dataset).load()
    exact = [f for f in realism.check(with_copies(parent, {"I": 10, "1": 10}), parent, section("realism"))
             if f.key == "realism.label_kept"]
    assert exact and "searched approximately" not in exact[0].message and exact[0].figures["search_recall"] == 1.0
    monkeypatch.setattr(index, "EXACT_UP_TO", 10)
    graph = [f for f in realism.check(with_copies(parent, {"I": 10, "1": 10}), parent, section("realism"))
             if f.key == "realism.label_kept"][0]
    recall = graph.figures["search_recall"]
    assert index.RECALL_TARGET <= recall <= 1.0
    assert f"neighbours searched approximately, recall {recall:.3f} against exact search on a sample" in graph.message
