"""A recipe's file assets (noise beds) are named by canonical references, never as spelled: the same recipe gives the
same item ids, transform records and fingerprint with a relative, absolute or untidy path, from inside or outside
the working directory; recipes written from the project root keep the ids they always had. No Ray needed."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE_MEDIA
from test_ray import FAST_RECIPE, candidate
from test_runner import recipe_file

CAFE = SAMPLE_MEDIA / "noise" / "cafe"


def run_with_noise(tmp_path: Path, dataset: Path, noise: str, name: str):
    """(fingerprint, objects) of the test recipe's candidate with `noise` spelled as given (local, one process)."""
    from augment.run.execute import LocalExecutor

    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(FAST_RECIPE.format(dataset=dataset, noise=json.dumps(noise), budget=6))
    return candidate(recipe, tmp_path / name, LocalExecutor(1))


def planned(recipe: Path) -> list:
    """The plan's tasks for a recipe, made from the repository root (nothing is written)."""
    from augment.recipe import load_recipe
    from augment.run import open_source
    from augment.run.plan import make_plan

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        loaded = load_recipe(recipe)
        return make_plan(loaded, open_source(loaded.recipe, str(recipe.parent / "never-written")).start).tasks
    finally:
        os.chdir(cwd)


def test_relative_absolute_and_untidy_paths_give_the_same_fingerprint(speech_dataset, tmp_path, monkeypatch):
    from augment.run.execute import Pipelines

    spellings = {"relative": "sample_media/noise/cafe", "absolute": f"{CAFE}/",
                 "untidy": "./sample_media/noise/../noise/cafe"}
    results = {name: run_with_noise(tmp_path, speech_dataset, noise, name) for name, noise in spellings.items()}
    assert results["relative"] == results["absolute"] == results["untidy"]
    # what the records say: the bed relative to the working directory, whatever the spelling
    monkeypatch.chdir(ROOT)
    from augment import from_dict

    for noise in spellings.values():
        names = Pipelines({"*": from_dict({"AddBackgroundNoise": {"noise": noise}})}).names
        assert sorted(set(names.values())) == ["sample_media/noise/cafe/MarketFull1.wav",
                                               "sample_media/noise/cafe/MarketMed1.wav"]


def test_the_transform_records_name_beds_canonically(speech_dataset, tmp_path):
    from augment.run.execute import LocalExecutor

    recipe = recipe_file(tmp_path, speech_dataset, budget=6, text=FAST_RECIPE)   # the noise path is absolute
    rows: list = []
    candidate(recipe, tmp_path / "out", LocalExecutor(1), rows)
    files = {r["params"]["file"] for row in rows for r in json.loads(row["transform"])
             if r["transform"] == "AddBackgroundNoise" and r["applied"]}
    assert files and files <= {"sample_media/noise/cafe/MarketFull1.wav", "sample_media/noise/cafe/MarketMed1.wav"}
    assert str(ROOT) not in " ".join(row["transform"] for row in rows)


def test_beds_outside_the_working_directory_are_named_by_content(speech_dataset, tmp_path):
    beds = tmp_path / "elsewhere" / "beds"
    shutil.copytree(CAFE, beds)
    absolute = run_with_noise(tmp_path, speech_dataset, str(beds), "absolute")
    relative = run_with_noise(tmp_path, speech_dataset, os.path.relpath(beds, ROOT), "relative")
    assert absolute == relative
    # the same beds under the working directory are another name, hence other ids; the media are the same
    inside = run_with_noise(tmp_path, speech_dataset, "sample_media/noise/cafe", "inside")
    assert inside[1] == absolute[1] and inside[0] != absolute[0]

    from augment import from_dict
    from augment.run.execute import Pipelines
    from curate.media import sha256_file

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        names = Pipelines({"*": from_dict({"AddBackgroundNoise": {"noise": str(beds)}})}).names
    finally:
        os.chdir(cwd)
    assert names == {str(beds / f.name): f"sha256:{sha256_file(f)}" for f in beds.iterdir()}


def test_unchanged_recipes_keep_their_item_ids():
    """The sample recipe's planned ids as they were before beds had canonical names (ids are what `up to date`
    compares: an unchanged recipe must not make its items again)."""
    ids = sorted(t.item_id for t in planned(ROOT / "recipes" / "speech_cafe_noise.yaml"))
    assert len(ids) == 60
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] == "ee1a198c9d0a65be"


def test_an_edited_bed_makes_new_items_whatever_its_name(speech_dataset, tmp_path):
    beds = tmp_path / "beds"
    shutil.copytree(CAFE, beds)
    recipe = recipe_file(tmp_path, speech_dataset, budget=6, text=FAST_RECIPE.replace("{noise}", str(beds)))
    before = [t.item_id for t in planned(recipe)]
    first = sorted(beds.iterdir())[0]
    first.chmod(0o644)
    shutil.copyfile(SAMPLE_MEDIA / "noise" / "car" / "TraficLow2.wav", first)
    after = [t.item_id for t in planned(recipe)]
    assert len(before) == len(after) == 6 and not set(before) & set(after)


@pytest.mark.parametrize("spelling", ["sample_media/noise/cafe", "./sample_media//noise/cafe/",
                                      "{root}/sample_media/noise/cafe"])
def test_reference_of_a_path_under_the_working_directory(spelling, monkeypatch):
    from augment.run.assets import reference

    monkeypatch.chdir(ROOT)
    assert reference(spelling.format(root=ROOT), lambda: "unused") == "sample_media/noise/cafe"


def test_reference_through_a_symlinked_folder_keeps_the_link(tmp_path, monkeypatch):
    """As in a checkout whose sample_media is a link (the README test's working directory)."""
    from augment.run.assets import reference

    (tmp_path / "sample_media").symlink_to(SAMPLE_MEDIA)
    monkeypatch.chdir(tmp_path)
    assert reference("sample_media/noise/cafe", lambda: "unused") == "sample_media/noise/cafe"
    assert reference(str(tmp_path.parent), lambda: "abc") == "sha256:abc"
