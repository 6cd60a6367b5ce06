"""The run spine: the gate judges the change (new vs inherited), content-keyed item identity, nothing-to-do writes
nothing, every writer refuses to drop newer versions, and determinism across processes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pandas as pd

import curate
from curate.checks.gate import run_gate
from curate.importer import import_folder
from curate.view import MemoryView

from conftest import ROOT, SAMPLE_MEDIA
from test_runner import recipe_file


def train_dev_speech(tmp_path) -> Path:
    """sample_media/speech with its test split folded into dev: a layout with no test split at all."""
    src = tmp_path / "speech_src"
    shutil.copytree(SAMPLE_MEDIA / "speech", src)
    frame = pd.read_csv(src / "labels.csv", dtype=str, keep_default_na=False)
    frame["split"] = frame["split"].replace({"test": "dev"})
    frame.to_csv(src / "labels.csv", index=False)
    ds = tmp_path / "speech_td"
    import_folder(src, ds)
    return ds


def test_a_train_dev_only_dataset_commits_without_force(tmp_path, augment_cli):
    ds = train_dev_speech(tmp_path)
    assert set(curate.open(ds).load().manifest["split"]) == {"train", "dev"}
    code, out, err = augment_cli("run", recipe_file(tmp_path, ds, budget=12))
    assert code == 0, out + err
    version = curate.open(ds).load()
    assert version.name == "v0002" and version.info["gate"]["verdict"] == "passed"
    assert "split 'test' is empty" not in out and "no test split (valid" in out


def with_rows(version, rows: list[dict]) -> pd.DataFrame:
    return pd.concat([version.manifest, pd.DataFrame(rows)], ignore_index=True)


def dev_clone(version, new_id: str) -> dict:
    """A train item carrying the exact bytes of a dev item: a leak."""
    frame = version.manifest
    dev = frame[frame["split"] == "dev"].iloc[0].to_dict()
    return {**dev, "id": new_id, "split": "train", "group": f"leak-{new_id}"}


def test_a_planted_leak_blocks_and_an_inherited_one_does_not(speech_copy):
    source = curate.open(speech_copy).load()
    planted = run_gate(MemoryView(source.dataset, with_rows(source, [dev_clone(source, "leak/a.wav")])), source)
    leak = next(f for f in planted.findings if f.key == "leakage.identical")
    assert leak.status == "new" and leak.severity == "error" and planted.blocks(leak) and not planted.passed
    assert leak.figures["new_subject_count"] == 2  # the dev item and its clone in train

    leaky = curate.open(speech_copy).commit(with_rows(source, [dev_clone(source, "leak/a.wav")]))
    unchanged_leak = MemoryView(leaky.dataset, leaky.manifest)
    gate = run_gate(unchanged_leak, leaky)
    inherited = next(f for f in gate.findings if f.key == "leakage.identical")
    assert inherited.status == "inherited" and not gate.blocks(inherited) and gate.passed
    assert inherited in gate.inherited and {s.check: s.status for s in gate.statuses()}["leakage"] == "inherited"
    strict = run_gate(unchanged_leak, leaky, {"block_on_inherited": True})
    assert not strict.passed
    worse = run_gate(MemoryView(leaky.dataset, with_rows(leaky, [dev_clone(leaky, "leak/b.wav")])), leaky)
    grown = next(f for f in worse.findings if f.key == "leakage.identical")
    assert grown.status == "new" and grown.figures["new_subject_count"] == 1 and not worse.passed
    assert "[new in this change: 1 of 3 (leak/b.wav)]" in grown.message


def ocr_recipe(tmp_path, dataset, output=None) -> Path:
    text = (ROOT / "recipes" / "ocr_unbalanced.yaml").read_text()
    text = text.replace("dataset: sample_media/ocr", f"dataset: {dataset}")
    text = text.replace("output: datasets/ocr", f"output: {output}" if output else "")
    path = tmp_path / "ocr_unbalanced.yaml"
    path.write_text(text)
    return path


def test_the_prior_shift_guard_holds_when_output_is_another_dataset(tmp_path, augment_cli):
    ocr = tmp_path / "ocr"
    import_folder(SAMPLE_MEDIA / "ocr", ocr)
    code, out, _ = augment_cli("run", ocr_recipe(tmp_path, ocr, tmp_path / "elsewhere"))
    assert code == 1 and "prior shift on confusable pair 1/I" in out and "nothing written" in out
    assert not curate.open(tmp_path / "elsewhere").versions()


def test_split_then_unbalanced_recipe_is_refused(tmp_path, augment_cli, curate_cli):
    ocr = tmp_path / "ocr"
    import_folder(SAMPLE_MEDIA / "ocr", ocr)
    split = curate_cli("split", ocr)
    assert split.code == 0, split.out + split.err
    assert "add <=" not in split.out  # a split adds nothing: no advice to "add <= 0"
    assert curate.open(ocr).versions() == ["v0001", "v0002"]
    code, out, _ = augment_cli("run", ocr_recipe(tmp_path, ocr))
    assert code == 1 and "prior shift on confusable pair 1/I" in out
    assert curate.open(ocr).versions() == ["v0001", "v0002"]


def test_an_edited_pipeline_makes_new_items_and_replaces_the_old(speech_copy, tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, speech_copy, budget=6)
    assert augment_cli("run", recipe)[0] == 0
    first = curate.open(speech_copy).load()
    code, out, _ = augment_cli("run", recipe)
    assert code == 0 and "up to date" in out and curate.open(speech_copy).load().name == first.name
    recipe.write_text(recipe.read_text().replace("snr_db: [0, 10]", "snr_db: [30, 40]"))
    code, out, err = augment_cli("run", recipe)
    assert code == 0, err
    assert "6 item(s) this recipe made before that the plan no longer makes (edited pipeline, seed, labels, budget or sources): replaced" in out
    second = curate.open(speech_copy).load()
    old = set(first.manifest["id"][first.manifest["origin"] == "augmented"])
    new = set(second.manifest["id"][second.manifest["origin"] == "augmented"])
    assert len(new) == 6 and not (old & new)
    assert "made 6 item(s) before" in (second.path / "report.md").read_text()
    assert second.info["source"]["plan"]["previous"] == 6 and second.info["source"]["plan"]["previous_action"] == \
        "replaced"
    snrs = [json.loads(t)[0]["params"]["snr_db"] for t in second.manifest["transform"].dropna()]
    assert len(snrs) == 6 and min(snrs) >= 30
    recipe.write_text(recipe.read_text().replace("snr_db: [30, 40]", "snr_db: [20, 25]") + "previous: keep\n")
    assert augment_cli("run", recipe)[0] == 0
    third = curate.open(speech_copy).load()
    assert (third.manifest["origin"] == "augmented").sum() == 12


def test_a_seed_override_never_reuses_items_of_another_seed(speech_copy, tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, speech_copy, budget=6)
    assert augment_cli("run", recipe)[0] == 0
    code, out, _ = augment_cli("run", recipe, "--seed", 99)
    assert code == 0 and "already in the dataset" not in out
    frame = curate.open(speech_copy).load().manifest
    assert (frame["origin"] == "augmented").sum() == 6 and curate.open(speech_copy).load().info["seed"] == 99


def test_an_empty_sweep_writes_no_version(speech_copy, tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, speech_copy, budget=4)
    assert augment_cli("run", recipe)[0] == 0
    before = curate.open(speech_copy).versions()
    code, out, err = augment_cli("run", recipe, "--sweep", "budget=4,2", "--pick", "4")
    assert code == 0, err
    assert "adds nothing; nothing written" in out and curate.open(speech_copy).versions() == before
    code, out, err = augment_cli("run", recipe, "--sweep", "budget=1,0.99")  # both fractions round to the same 4 items
    assert code == 0 and "every candidate is already in the dataset" in out, out + err
    assert curate.open(speech_copy).versions() == before and not (speech_copy / "rejected").exists()


def review_file(tmp_path, version, decisions) -> Path:
    path = tmp_path / "review.json"
    path.write_text(json.dumps({"schema": "rubbersheet.review", "schema_version": 1, "version": version.ref,
                                "fingerprint": version.info["fingerprint"], "decisions": decisions}))
    return path


def test_review_apply_on_an_old_version_is_refused(speech_copy, tmp_path, curate_cli, augment_cli):
    old = curate.open(speech_copy).load()
    assert augment_cli("run", recipe_file(tmp_path, speech_copy, budget=4))[0] == 0
    victim = sorted(old.manifest["id"])[0]
    review = review_file(tmp_path, old, [{"id": victim, "decision": "reject"}])
    refused = curate_cli("review", "apply", f"{speech_copy}@v0001", review)
    assert refused.code == 2 and "@latest is v0002 (newer: v0002)" in refused.err and "--onto-latest" in refused.err
    assert curate.open(speech_copy).versions() == ["v0001", "v0002"]
    applied = curate_cli("review", "apply", f"{speech_copy}@v0001", review, "--onto-latest")
    assert applied.code == 0, applied.err
    latest = curate.open(speech_copy).load()
    assert latest.name == "v0003" and latest.info["parent"] == "v0002"
    assert victim not in set(latest.manifest["id"]) and (latest.manifest["origin"] == "augmented").sum() == 4
    empty = review_file(tmp_path, latest, [])
    nothing = curate_cli("review", "apply", speech_copy, empty)
    assert nothing.code == 0 and "nothing written" in nothing.out and curate.open(speech_copy).load().name == "v0003"


def test_fingerprints_do_not_depend_on_the_process_hash_seed(speech_dataset, tmp_path):
    recipe = recipe_file(tmp_path, speech_dataset, budget=6)
    prints = []
    for hash_seed, out in (("1", "a"), ("4242", "b")):
        exe = Path(sys.executable).parent / "augment"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([str(exe), "run", str(recipe), "--out", str(tmp_path / out), "--workers", "1"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        prints.append(curate.open(tmp_path / out).load().info["fingerprint"])
    assert prints[0] == prints[1]


def test_per_item_generators_draw_pairwise_different_values(speech_dataset, tmp_path):
    from augment.recipe import load_recipe
    from augment.run.plan import make_plan

    loaded = load_recipe(recipe_file(tmp_path, speech_dataset, budget=60))
    plan = make_plan(loaded, curate.open(speech_dataset).load())
    firsts = [np.random.default_rng(np.random.SeedSequence(list(t.entropy))).random() for t in plan.tasks]
    assert len(plan.tasks) == 60 and len(set(firsts)) == 60
    assert len({t.item_id for t in plan.tasks}) == 60


def test_a_writer_never_commits_a_change_made_from_an_older_version(speech_copy):
    from curate.exceptions import BadInput
    from curate.publish import publish

    dataset = curate.open(speech_copy)
    old = dataset.load()
    trimmed = old.manifest.iloc[:-5]
    assert dataset.commit(trimmed).name == "v0002"  # another writer got in first
    with pytest.raises(BadInput, match=r"v0001 is not the latest version \(newer: v0002\)"):
        publish(dataset, old.manifest.iloc[:-1], source=old, gate=None, info={}, label="late", reports=False)
    assert dataset.versions() == ["v0001", "v0002"] and not (speech_copy / ".lock").exists()


def test_a_review_rejection_is_not_undone_by_a_rerun(speech_copy, tmp_path, augment_cli, curate_cli):
    recipe = recipe_file(tmp_path, speech_copy, budget=4)
    assert augment_cli("run", recipe)[0] == 0
    version = curate.open(speech_copy).load()
    victim = sorted(version.manifest["id"][version.manifest["origin"] == "augmented"])[0]
    bad = review_file(tmp_path, version, [{"id": victim, "decision": "reject"}])
    data = json.loads(bad.read_text())
    data["fingerprint"] = "abc"
    bad.write_text(json.dumps(data))
    assert curate_cli("review", "apply", speech_copy, bad, "--onto-latest").code == 2
    review = review_file(tmp_path, version, [{"id": victim, "decision": "reject"}])
    assert curate_cli("review", "apply", speech_copy, review).code == 0
    code, out, _ = augment_cli("run", recipe)
    assert code == 0 and "up to date" in out and victim not in set(curate.open(speech_copy).load().manifest["id"])


def test_writing_into_another_dataset_never_drops_its_items(speech_copy, tmp_path, augment_cli):
    out = tmp_path / "out"
    first = recipe_file(tmp_path, speech_copy, budget=3)
    assert augment_cli("run", first, "--out", out)[0] == 0
    code, text, _ = augment_cli("run", first, "--out", out)
    assert code == 0 and "up to date" in text  # planned against what the output already holds
    other = recipe_file(tmp_path, speech_copy, budget=3, name="other.yaml")
    other.write_text(other.read_text().replace("name: test_noise", "name: other_noise"))
    code, _, err = augment_cli("run", other, "--out", out)
    assert code == 2 and "not made by recipe 'other_noise'" in err and "would drop them" in err
    assert curate.open(out).versions() == ["v0001"]


def test_a_review_applied_twice_is_reported_not_failed(speech_copy, tmp_path, curate_cli):
    version = curate.open(speech_copy).load()
    review = review_file(tmp_path, version, [{"id": sorted(version.manifest["id"])[0], "decision": "reject"}])
    assert curate_cli("review", "apply", speech_copy, review).code == 0
    again = curate_cli("review", "apply", f"{speech_copy}@v0001", review)
    assert again.code == 0 and "already applied as" in again.out and curate.open(speech_copy).versions()[-1] == "v0002"


@pytest.mark.parametrize("old,new,message", [
    ("budget: {budget}", "budget: true", "budget"), ("seed: 5", "seed: true", "seed"),
    ("  - AddBackgroundNoise:\n      noise: {noise}\n      snr_db: [0, 10]\n  - Gain:\n      gain_db: [-3, 3]",
     "  - Albumentations: {{name: HorizontalFlip}}", "the pipeline for cafe_noise takes image, but its sources are audio")])
def test_recipe_values_are_not_coerced(speech_dataset, tmp_path, augment_cli, old, new, message):
    from test_runner import NOISE_RECIPE

    recipe = recipe_file(tmp_path, speech_dataset, text=NOISE_RECIPE.replace(old, new))
    code, _, err = augment_cli("run", recipe, "--out", tmp_path / "out", "--dry-run")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_import_refuses_a_target_inside_a_dataset(speech_copy, curate_cli):
    result = curate_cli("import", SAMPLE_MEDIA / "speech", "--to", speech_copy / "objects" / "zz")
    assert result.code == 2 and "is inside the dataset" in result.err and not (speech_copy / "objects" / "zz").exists()
