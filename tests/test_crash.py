"""The commit protocol under a crash at each of its named steps (curate.store's docstring), for every writer:
the process dies at the step (os._exit, no cleanup), then @latest must hold every committed item, verify must be
clean or name only what the next writer repairs, and the next writer must succeed without manual steps."""
from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

import curate
from curate.files import CRASH_ENV
from curate.importer import import_folder
from curate.verify import verify

from conftest import SAMPLE_MEDIA
from test_runner import recipe_file

STEPS = ["stage.manifest", "stage.files", "commit.record", "commit.rename", "commit.ref", "commit.done"]
VISIBLE_FROM = STEPS.index("commit.rename")  # the rename is the commit point
CRASHED = 86


def crash_at(step: str, writer) -> int:
    """Run `writer()` in a forked child that dies at `step`; return the child's exit code."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest cleanup may run here
        os.environ[CRASH_ENV] = step
        try:
            writer()
        except BaseException:
            os._exit(3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def small_speech(tmp_path) -> "os.PathLike":
    """Three voices of the sample speech (train/dev/test kept): small, so each crash run is quick."""
    src = tmp_path / "small_src"
    frame = pd.read_csv(SAMPLE_MEDIA / "speech" / "labels.csv", dtype=str, keep_default_na=False)
    frame = frame[frame["voice"].isin(sorted(set(frame["voice"]))[:3])]
    for path in frame["path"]:
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_MEDIA / "speech" / path, src / path)
    frame.to_csv(src / "labels.csv", index=False)
    return src


def assert_after_crash(ds_path, step: str, before: list[str]) -> None:
    dataset = curate.open(ds_path)
    names = dataset.versions()
    committed = STEPS.index(step) >= VISIBLE_FROM
    assert names == (before + [f"v{len(before) + 1:04d}"] if committed else before), (step, names)
    assert dataset.latest() == names[-1]
    problems, _ = verify(dataset, quick=True)
    allowed = {"commit.rename", "commit.ref"}  # LATEST not rewritten yet: the next writer repairs it
    assert all("LATEST" in p.where for p in problems) and (not problems or step in allowed), (step, problems)


def assert_recovered(ds_path) -> None:
    dataset = curate.open(ds_path)
    assert verify(dataset)[0] == []
    assert not list((ds_path / "versions").glob(".tmp-*")) and not list(ds_path.glob(".LATEST.tmp-*"))
    assert not (ds_path / ".lock").exists()


@pytest.mark.parametrize("step", STEPS)
def test_augment_run_crash_at_each_step(step, tmp_path):
    from augment.cli import main

    src = small_speech(tmp_path)
    ds = tmp_path / "ds"
    import_folder(src, ds)
    recipe = recipe_file(tmp_path, ds, budget=3)
    assert crash_at(step, lambda: main(["run", str(recipe), "--workers", "1"])) == CRASHED
    assert_after_crash(ds, step, ["v0001"])
    assert main(["run", str(recipe), "--workers", "1"]) == 0  # commits, or finds it up to date
    assert curate.open(ds).versions() == ["v0001", "v0002"]
    assert (curate.open(ds).load().manifest["origin"] == "augmented").sum() == 3
    assert_recovered(ds)


@pytest.mark.parametrize("step", STEPS)
def test_import_crash_at_each_step(step, tmp_path):
    from curate.cli import main

    src = small_speech(tmp_path)
    ds = tmp_path / "ds"
    assert crash_at(step, lambda: main(["import", str(src), "--to", str(ds)])) == CRASHED
    assert (ds / "dataset.json").is_file()
    if STEPS.index(step) < VISIBLE_FROM:
        assert curate.open(ds).versions() == []
    else:
        assert_after_crash(ds, step, [])
    assert main(["import", str(src), "--to", str(ds)]) == 0  # imports cleanly, or finds it unchanged
    assert curate.open(ds).versions() == ["v0001"]
    assert_recovered(ds)


def test_a_first_use_import_that_died_is_redone_by_the_recipe(tmp_path):
    """A recipe naming a media folder imports it first; a crash there must not leave a dataset that every later
    run refuses with 'dataset has no versions yet'."""
    from augment.cli import main

    src = small_speech(tmp_path)
    recipe = recipe_file(tmp_path, src, budget=2)
    out = tmp_path / "ds"
    assert crash_at("stage.manifest", lambda: main(["run", str(recipe), "--out", str(out), "--workers", "1"])) == \
        CRASHED
    assert (out / "dataset.json").is_file() and curate.open(out).versions() == []
    assert main(["run", str(recipe), "--out", str(out), "--workers", "1"]) == 0
    assert curate.open(out).versions() == ["v0001", "v0002"]
    assert_recovered(out)


@pytest.mark.parametrize("step", ["stage.files", "commit.record", "commit.rename", "commit.done"])
def test_review_apply_and_split_crash(step, tmp_path):
    from curate.cli import main

    src = small_speech(tmp_path)
    frame = pd.read_csv(src / "labels.csv", dtype=str, keep_default_na=False)
    frame.drop(columns=["split"]).to_csv(src / "labels.csv", index=False)
    ds = tmp_path / "ds"
    import_folder(src, ds)
    assert crash_at(step, lambda: main(["split", str(ds)])) == CRASHED
    assert_after_crash(ds, step, ["v0001"])
    if STEPS.index(step) < VISIBLE_FROM:
        assert main(["split", str(ds)]) == 0
    version = curate.open(ds).load()
    victim = sorted(version.manifest["id"])[0]
    review = tmp_path / "review.json"
    review.write_text(json.dumps({"fingerprint": version.info["fingerprint"],
                                  "decisions": [{"id": victim, "decision": "reject"}]}))
    assert crash_at(step, lambda: main(["review", "apply", str(ds), str(review)])) == CRASHED
    assert_after_crash(ds, step, ["v0001", "v0002"])
    if STEPS.index(step) < VISIBLE_FROM:
        assert main(["review", "apply", str(ds), str(review)]) == 0
    assert main(["gc", str(ds)]) == 0  # any writer recovers first
    assert_recovered(ds)
    assert victim not in set(curate.open(ds).load().manifest["id"])
