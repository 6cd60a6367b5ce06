"""Recipes like Hydra: `--set FIELD=VALUE` overrides (resolved recipe, fingerprint, errors) and the JSON schema."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import ROOT
from test_runner import recipe_file

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


def test_set_changes_the_resolved_recipe(augment_cli):
    code, out, err = augment_cli("recipe", "show", ROOT / "recipes" / "speech_cafe_noise.yaml", "--set", "budget=12",
                                 "--set", "pipeline[0].AddBackgroundNoise.snr_db=[5, 15]", "--set",
                                 "curation.block_on=warning")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:3] == ["# --set budget=12", "# --set pipeline[0].AddBackgroundNoise.snr_db=[5,15]",
                         '# --set curation.block_on="warning"']
    resolved = yaml.safe_load(out)
    assert resolved["budget"] == 12 and resolved["curation"] == {"block_on": "warning"}
    assert resolved["pipeline"][0]["AddBackgroundNoise"]["snr_db"] == [5, 15]
    code, out, _ = augment_cli("recipe", "show", ROOT / "recipes" / "speech_cafe_noise.yaml", "--set", "budget=0.5")
    assert yaml.safe_load(out)["budget"] == 30          # as in a sweep: a fraction of the recipe's 60
    code, out, _ = augment_cli("recipe", "show", ROOT / "recipes" / "speech_cafe_noise.yaml", "--set", "seed=3",
                               "--json")
    shown = json.loads(out)
    assert code == 0 and shown["overrides"] == ["seed=3"] and shown["recipe"]["seed"] == 3


def test_set_changes_what_is_made_and_is_recorded(speech_copy, tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, speech_copy, budget=30)
    code, out, err = augment_cli("run", recipe, "--set", "budget=6", "--set", "seed=11")
    assert code == 0, err
    assert "-> 6 new item(s)" in out
    import curate

    first = curate.open(speech_copy).load("latest")
    assert first.info["recipe"]["overrides"] == ["budget=6", "seed=11"]
    assert yaml.safe_load((first.path / "recipe.resolved.yaml").read_text())["budget"] == 6
    code, out, err = augment_cli("run", recipe, "--set", "budget=9", "--set", "seed=11")
    second = curate.open(speech_copy).load("latest")
    assert code == 0 and "-> 3 new item(s)" in out   # the 6 of budget 6 are the first 6 of budget 9: same seed
    assert second.info["fingerprint"] != first.info["fingerprint"] and len(second.manifest) == len(first.manifest) + 3


@pytest.mark.parametrize("override,expected", [
    ("budgt=3", "--set budgt=3: budgt: unknown key (did you mean 'budget'?)"),
    ("pipeline[5].Gain.gain_db=1", "--set pipeline[5].Gain.gain_db: pipeline[5] does not exist in the recipe"),
    ("pipeline[0].AddBackgroundNoise.snr_db=[20,5]", "--set pipeline[0].AddBackgroundNoise.snr_db=[20,5]: "
     "pipeline[0].AddBackgroundNoise.snr_db: expected [low, high] with low <= high, got [20, 5]"),
    ("budget", "--set budget: expected FIELD=VALUE"),
    ("a..b=1", "--set a..b=1: 'a..b' is not a field path"),
    ("seed=[1", "--set seed=[1: not valid YAML"),
    ("seed=true", "--set seed=true: seed: Input should be a valid integer"),
    ("name.x=1", "--set name.x: name.x cannot be set: its parent is not a mapping"),
])
def test_bad_overrides_are_refused_in_one_line_before_anything_is_written(override, expected, speech_copy, tmp_path,
                                                                        augment_cli):
    recipe = recipe_file(tmp_path, speech_copy, budget=30)
    before = sorted(p.relative_to(speech_copy) for p in speech_copy.rglob("*"))
    code, out, err = augment_cli("run", recipe, "--set", override)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    assert sorted(p.relative_to(speech_copy) for p in speech_copy.rglob("*")) == before


def test_the_committed_schema_is_the_generated_one(augment_cli):
    code, out, _ = augment_cli("recipe", "schema")
    assert code == 0
    assert json.loads(out) == json.loads((ROOT / "recipes" / "recipe.schema.json").read_text())


def test_the_schema_validates_every_sample_recipe_and_rejects_typos():
    jsonschema = pytest.importorskip("jsonschema")   # in the test extra
    from augment.schema import recipe_schema

    validator = jsonschema.Draft202012Validator(recipe_schema())
    for path in RECIPES:
        assert path.read_text().startswith("# yaml-language-server: $schema=recipe.schema.json\n"), path
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert errors == [], (path, [e.message for e in errors])
    recipe = yaml.safe_load((ROOT / "recipes" / "speech_cafe_noise.yaml").read_text())
    typo = {**recipe, "budgt": 3}
    assert any("budgt" in e.message for e in validator.iter_errors(typo))
    bad_param = {**recipe, "pipeline": [{"AddBackgroundNoise": {"noise": "x", "snr_dB": [0, 10]}}]}
    assert list(validator.iter_errors(bad_param))
    out_of_range = {**recipe, "curation": {"block_on": "sometimes"}}
    assert list(validator.iter_errors(out_of_range))
