"""Recipes and the runner end to end: determinism across runs and workers, dry run, the gate refusing a recipe,
recipe errors with file:line, crash safety under SIGKILL, the writer lock, and evaluation before/after."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import curate
from curate.verify import verify

from conftest import ROOT, SAMPLE_MEDIA

NOISE_RECIPE = """\
name: test_noise
dataset: {dataset}
seed: 5
target:
  tags: [cafe_noise]
pipeline:
  - AddBackgroundNoise:
      noise: {noise}
      snr_db: [0, 10]
  - Gain:
      gain_db: [-3, 3]
sources:
  where: {{split: train, tags_any: [clean]}}
budget: {budget}
remove_tags: [clean]
"""


def recipe_file(tmp_path, dataset, budget=24, name="recipe.yaml", text=NOISE_RECIPE) -> Path:
    path = tmp_path / name
    path.write_text(text.format(dataset=dataset, noise=SAMPLE_MEDIA / "noise" / "cafe", budget=budget))
    return path


def run_cli(*args: str, timeout=300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "augment"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "augment.cli"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_same_recipe_and_seed_give_the_same_fingerprint_whatever_the_workers(speech_dataset, tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, speech_dataset)
    prints = []
    for out, workers in (("one", 1), ("again", 1), ("two", 2)):
        code, stdout, err = augment_cli("run", recipe, "--out", tmp_path / out, "--workers", workers)
        assert code == 0, err
        version = curate.open(tmp_path / out).load()
        assert version.info["counts"]["origin"] == {"augmented": 24, "real": 250}
        prints.append(version.info["fingerprint"])
    assert prints[0] == prints[1] == prints[2]
    version = curate.open(tmp_path / "two").load()
    info = version.info
    assert info["recipe"]["name"] == "test_noise" and info["seed"] == 5 and info["gate"]["passed"]
    assert info["recipe"]["sha256"] and "AddBackgroundNoise" in info["recipe"]["text"]
    new = version.manifest[version.manifest["origin"] == "augmented"]
    assert all("cafe_noise" in t and "clean" not in t for t in new["tags"])
    assert set(new["split"]) == {"train"} and new["source_id"].notna().all()
    record = json.loads(new["transform"].iloc[0])
    assert record[0]["transform"] == "AddBackgroundNoise" and 0 <= record[0]["params"]["snr_db"] <= 10
    assert verify(curate.open(tmp_path / "two"))[0] == []


def test_seed_override_changes_the_data(speech_dataset, tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, speech_dataset, budget=6)
    assert augment_cli("run", recipe, "--out", tmp_path / "a")[0] == 0
    assert augment_cli("run", recipe, "--out", tmp_path / "b", "--seed", 6)[0] == 0
    a, b = (curate.open(tmp_path / x).load() for x in ("a", "b"))
    assert a.info["fingerprint"] != b.info["fingerprint"] and b.info["seed"] == 6


def test_dry_run_writes_nothing(tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, SAMPLE_MEDIA / "speech")
    code, out, _ = augment_cli("run", recipe, "--out", tmp_path / "new", "--dry-run")
    assert code == 0 and "24 item(s) would be generated; nothing written" in out
    assert "plan cafe_noise: 60 source(s) x 1 (budget 24) -> 24 new item(s)" in out
    assert not (tmp_path / "new").exists()


def test_a_media_folder_is_imported_first_and_a_rerun_is_up_to_date(tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, SAMPLE_MEDIA / "speech", budget=4)
    assert augment_cli("run", recipe, "--out", tmp_path / "ds")[0] == 0
    assert curate.open(tmp_path / "ds").versions() == ["v0001", "v0002"]
    code, out, _ = augment_cli("run", recipe, "--out", tmp_path / "ds")
    assert code == 0 and "up to date" in out and curate.open(tmp_path / "ds").versions() == ["v0001", "v0002"]


def test_the_unbalanced_ocr_recipe_is_refused(tmp_path, augment_cli):
    text = (ROOT / "recipes" / "ocr_unbalanced.yaml").read_text()
    assert "label: I" in text
    code, out, err = augment_cli("run", ROOT / "recipes" / "ocr_unbalanced.yaml", "--out", tmp_path / "ocr")
    assert code == 1
    assert "prior shift on confusable pair 1/I: train ratio 1:I was 18:18 = 1.00, now 18:72 = 0.25" in out
    assert "gate FAILED" in out and "nothing written" in out
    ds = curate.open(tmp_path / "ocr")
    assert ds.versions() == ["v0001"]  # the import, and nothing else
    (rejected,) = (tmp_path / "ocr" / "rejected").iterdir()
    gate = json.loads((rejected / "gate.json").read_text())
    assert gate["passed"] is False and (rejected / "recipe.yaml").read_text() == text
    forced = augment_cli("run", ROOT / "recipes" / "ocr_unbalanced.yaml", "--out", tmp_path / "ocr", "--force")
    assert forced[0] == 0 and "FORCED" in forced[1]
    assert curate.open(tmp_path / "ocr").load().info["gate"]["verdict"] == "forced"


BAD_RECIPES = [
    ("  - AddBackgroundNoise:", "  - AddBackgroundNois:", r"recipe.yaml:7: pipeline\[0\]\.AddBackgroundNois: unknown "
     r"transform 'AddBackgroundNois' \(did you mean AddBackgroundNoise\?\)"),
    ("remove_tags:", "remove_tag:", r"recipe.yaml:15: remove_tag: unknown key \(did you mean 'remove_tags'\?\)"),
    ("snr_db: [0, 10]", "snr_db: [20, 5]", r"recipe.yaml:9: pipeline\[0\]\.AddBackgroundNoise\.snr_db: expected "
     r"\[low, high\] with low <= high"),
    ("{noise}", "{noise}-missing", r"recipe.yaml:8: pipeline\[0\]\.AddBackgroundNoise\.noise: .*cafe-missing does not "
     "exist"),
    ("      gain_db: [-3, 3]", "      gain: [-3, 3]", r"recipe.yaml:11: pipeline\[1\]\.Gain\.gain: unknown parameter 'gain' \(did you mean gain_db\?\)"),
    ("budget: {budget}", "budget: -4", r"recipe.yaml:14: budget: expected a positive number"),
    ("  where: {{split: train, tags_any: [clean]}}", "  where: {{split: test}}",
     r"recipe.yaml:13: sources.where: only train items may be sources"),
]


@pytest.mark.parametrize("old,new,message", BAD_RECIPES, ids=[b[1].strip()[:20] for b in BAD_RECIPES])
def test_recipe_errors_name_file_line_and_field(old, new, message, speech_dataset, tmp_path, augment_cli):
    assert old in NOISE_RECIPE
    recipe = recipe_file(tmp_path, speech_dataset, text=NOISE_RECIPE.replace(old, new))
    code, out, err = augment_cli("run", recipe, "--out", tmp_path / "ds")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("augment: error: ") and __import__("re").search(message, lines[0]), lines[0]
    assert not (tmp_path / "ds").exists()


def test_from_errors_of_the_wrong_schema(speech_dataset, tmp_path, augment_cli):
    (tmp_path / "errors.json").write_text(json.dumps({"tags": []}))
    text = NOISE_RECIPE.replace("  tags: [cafe_noise]", f"  from_errors: {tmp_path / 'errors.json'}")
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_dataset, text=text), "--out", tmp_path / "ds")
    assert code == 2 and "recipe.yaml:5: target.from_errors:" in err and "schema rubbersheet.errors" in err


def test_sigkill_at_any_point_leaves_the_store_consistent(speech_dataset, tmp_path):
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(speech_dataset, ds)
    recipe = recipe_file(tmp_path, ds, budget=60)
    outcomes = set()
    for delay in (0.3, 1.0, 2.0, 3.5, 6.0):
        exe = Path(sys.executable).parent / "augment"
        process = subprocess.Popen([str(exe), "run", str(recipe), "--workers", "1"], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        dataset = curate.open(ds)
        names = dataset.versions()
        assert names in (["v0001"], ["v0001", "v0002"])
        assert curate.open(ds).latest() == names[-1]
        assert not [p for p in (ds / "versions").iterdir() if p.name not in names and not p.name.startswith(".tmp")]
        problems, _ = verify(dataset)
        assert problems == []
        outcomes.add(len(names))
        if len(names) == 2:
            break
    result = run_cli("run", recipe, "--workers", "1")  # the stale lock of a killed run is taken over
    assert result.returncode == 0, result.stderr
    assert curate.open(ds).versions() == ["v0001", "v0002"] and not list((ds / "versions").glob(".tmp-*"))


def test_a_second_writer_is_refused_while_a_run_holds_the_lock(speech_copy, tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, speech_copy, budget=4)
    with curate.open(speech_copy).lock():
        code, _, err = augment_cli("run", recipe)
    assert code == 2 and "locked by another writer" in err
    assert curate.open(speech_copy).versions() == ["v0001"]


# The README tour as pasted (cafe-noise recipe, baseline, error analysis, speech_weak_tags) and its figures:
# tests/test_readme.py runs it from README.md itself.


def corrupt_a_source(dataset, index: int = 0) -> str:
    """Overwrite the stored bytes of one clean train item (a recipe source) with a broken WAV; return its id."""
    version = curate.open(dataset).load()
    frame = version.manifest
    victim = sorted(frame[(frame["split"] == "train") & frame["tags"].map(lambda t: "clean" in t)]["id"])[index]
    target = version.media_path(victim)
    target.chmod(0o644)
    target.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    return victim


@pytest.mark.parametrize("workers", [1, 2])
def test_a_corrupt_source_fails_the_run_with_its_id(speech_copy, tmp_path, augment_cli, workers):
    victim = corrupt_a_source(speech_copy)
    recipe = recipe_file(tmp_path, speech_copy, budget=200)
    code, _, err = augment_cli("run", recipe, "--workers", workers)
    assert code == 2 and f"(source {victim!r}) failed" in err and "no version written" in err
    assert curate.open(speech_copy).versions() == ["v0001"]
    assert not list((speech_copy / "objects").glob("*/.tmp-*"))
