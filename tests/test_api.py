"""The Python API: augment.run (the CLI's spine, a typed result, overrides), curate.check (the CLI's verdict),
Version.iter_media / manifest_with_paths, augment.data.AugmentedDataset (bytes fixed by (seed, epoch, index) in any
process, worker order or pipeline form). The README's "Python API" snippets run in tests/test_readme.py."""
from __future__ import annotations

import hashlib
import json
import multiprocessing

import numpy as np
import pytest

import augment
import curate
from augment.data import AugmentedDataset
from curate.checks import GateResult
from curate.exceptions import BadInput
from curate.media import read_audio

from conftest import SAMPLE_MEDIA

RECIPE = """\
name: api_noise
dataset: {dataset}
seed: 5
target: {{tags: [cafe_noise]}}
pipeline:
  - AddBackgroundNoise: {{noise: {noise}, snr_db: [0, 10]}}
  - Gain: {{gain_db: [-3, 3]}}
sources: {{where: {{split: train, tags_any: [clean]}}}}
budget: 24
remove_tags: [clean]
"""

STEPS = [{"AddBackgroundNoise": {"noise": str(SAMPLE_MEDIA / "noise" / "cafe"), "snr_db": [0, 10]}},
         {"Gain": {"gain_db": [-3, 3]}}]


def recipe_at(tmp_path, dataset):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(dataset=dataset, noise=SAMPLE_MEDIA / "noise" / "cafe"))
    return path


def gate_rows(findings) -> list[tuple]:
    return sorted((f["check"], f["severity"], f["status"], f["message"]) for f in findings)


def test_run_commits_with_overrides_and_check_agrees_with_the_cli(speech_copy, tmp_path, curate_cli):
    recipe = recipe_at(tmp_path, speech_copy)
    # overrides change the plan (dry runs write nothing): the recipe's 24, 6, a fraction of 24, --set texts
    assert [augment.run(recipe, dry_run=True, **kw).new_items for kw in
            ({}, {"budget": 6}, {"budget": 0.5}, {"budget": 6, "set": ["budget=5"]})] == [24, 6, 12, 5]
    assert curate.open(speech_copy).versions() == ["v0001"]

    result = augment.run(recipe, budget=6, set={"pipeline[1].Gain.gain_db": [5, 6]}, workers=1)
    assert isinstance(result, augment.RunOutcome) and result.status == "committed"
    assert result.ref == f"{speech_copy}@v0002" and result.version.name == "v0002"
    assert result.new_items == 6 and result.counts["origin"] == {"augmented": 6, "real": 250}
    assert isinstance(result.gate, GateResult) and result.passed and not result.forced
    assert result.report == result.version.path / "report.html" and result.report.is_file()
    assert result.version.info["command"].startswith("augment.run(") and "budget=6" in result.version.info["command"]
    new = result.version.manifest[result.version.manifest["origin"] == "augmented"]
    gains = [json.loads(t)[1]["params"]["gain_db"] for t in new["transform"]]
    assert len(gains) == 6 and all(5 <= g <= 6 for g in gains)   # the deep override reached the pipeline

    again = augment.run(recipe, budget=6, set={"pipeline[1].Gain.gain_db": [5, 6]}, workers=1)
    assert again.status == "up-to-date" and again.ref == result.ref and again.new_items == 0

    # curate.check gives the CLI's judgement: same verdict, same findings; with the defaults and a strict config
    out = tmp_path / "gate.json"
    gate = curate.check(result.ref)
    cli = curate_cli("check", result.ref, "--json", out)
    assert isinstance(gate, GateResult) and gate.passed and cli.code == 0
    assert gate_rows(gate.to_dict()["findings"]) == gate_rows(json.loads(out.read_text())["findings"])
    strict = {"block_on": "warning", "block_on_inherited": True}
    (tmp_path / "strict.yaml").write_text("block_on: warning\nblock_on_inherited: true\n")
    assert curate.check(result.ref, config=strict).passed is False
    assert curate_cli("check", result.ref, "--config", tmp_path / "strict.yaml").code == 1


def test_a_refused_recipe_returns_rejected_and_writes_no_version(speech_copy, tmp_path):
    recipe = recipe_at(tmp_path, speech_copy)
    result = augment.run(recipe, budget=6, pipeline=[{"Gain": {"gain_db": [0, 0]}}], workers=1)  # no-op copies
    assert result.status == "rejected" and result.version is None and result.ref is None
    assert result.passed is False and any(f.check == "change" and f.severity == "error" for f in result.gate.new)
    assert result.rejected_dir.parent == speech_copy / "rejected" and result.report.is_file()
    assert result.counts["origin"] == {"augmented": 6, "real": 250} and result.new_items == 0
    assert curate.open(speech_copy).versions() == ["v0001"]


@pytest.mark.parametrize("kwargs, message", [
    ({"budgt": 6}, "'budgt' is neither a recipe field nor a run option (did you mean 'budget'?)"),
    ({"set": {"pipeline[7].Gain.gain_db": [1, 2]}}, "pipeline[7] does not exist in the recipe"),
    ({"budget": "many"}, "budget"),
    ({"workers": 0}, "workers must be a positive integer"),
    ({"executor": "cluster"}, "not one of local, ray"),
])
def test_bad_input_raises_one_line_and_writes_nothing(speech_copy, tmp_path, kwargs, message):
    with pytest.raises(BadInput) as raised:
        augment.run(recipe_at(tmp_path, speech_copy), **kwargs)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert curate.open(speech_copy).versions() == ["v0001"] and not (speech_copy / "rejected").exists()


def test_check_takes_a_version_and_refuses_bad_input(speech_dataset, tmp_path):
    version = curate.open(speech_dataset).load()
    with pytest.raises(BadInput, match="config: .*missing.yaml does not exist"):
        curate.check(version, config=tmp_path / "missing.yaml")
    with pytest.raises(BadInput, match="predictions: .*nope.csv does not exist"):
        curate.check(version, predictions=tmp_path / "nope.csv")
    with pytest.raises(BadInput, match=r"config: block_on: Input should be 'error' or 'warning'"):
        curate.check(version, config={"block_on": "sometimes"})
    with pytest.raises(BadInput, match="ref: expected"):
        curate.check(42)


def test_iter_media_yields_every_item_with_its_stored_bytes(speech_dataset, monkeypatch):
    monkeypatch.chdir(speech_dataset.parent)
    version = curate.open(speech_dataset.name).load()   # opened by a relative path: the paths are still absolute
    items = list(version.iter_media())
    assert [i.id for i in items] == list(version.manifest["id"])
    for item in items:
        assert item.path.is_absolute() and hashlib.sha256(item.path.read_bytes()).hexdigest() == item.row["object"]
        assert item.data is None and item.label == item.row["label"] and isinstance(item.row["tags"], list)
        assert item.row["snr_db"] is None or isinstance(item.row["snr_db"], float) and item.row["snr_db"] == \
            item.row["snr_db"]  # a missing number is None, never NaN
    dev = list(version.iter_media(split="dev"))
    assert len(dev) == 50 and {i.row["split"] for i in dev} == {"dev"}
    table = version.manifest_with_paths(split="dev")
    assert list(table["path"]) == [str(i.path) for i in dev] and "path" not in version.manifest.columns
    decoded = next(version.iter_media(split="dev", decode=True, sample_rate=8000))
    expected, rate = read_audio(dev[0].path, sample_rate=8000)
    assert decoded.sample_rate == rate == 8000 and np.array_equal(decoded.data, expected)
    with pytest.raises(BadInput, match="split must be one of train, dev, test"):
        next(version.iter_media(split="validation"))


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


_WORKER_DATASET = None


def _load_worker(dataset) -> None:  # a DataLoader worker: one pickled copy of the dataset per process
    global _WORKER_DATASET
    _WORKER_DATASET = dataset


def _worker_item(index: int) -> tuple[int, str, int]:
    x, y = _WORKER_DATASET[index]
    return index, _digest(x), y


def test_augmented_dataset_bytes_depend_on_seed_epoch_and_index_only(speech_dataset):
    version = curate.open(speech_dataset).load()
    train = AugmentedDataset(version, STEPS, split="train", seed=3, targets="index")
    assert len(train) == 150 and train.classes == sorted(set(version.manifest["label"]))
    indices = list(range(0, len(train), 15))
    here = {i: (_digest(train[i][0]), train[i][1]) for i in indices}
    # two worker processes (spawn: each gets a pickled copy), items asked for in reverse order
    with multiprocessing.get_context("spawn").Pool(2, initializer=_load_worker, initargs=(train,)) as pool:
        there = pool.map(_worker_item, indices[::-1], chunksize=1)
    assert {i: (d, y) for i, d, y in there} == here
    assert len({d for d, _ in here.values()}) == len(indices)

    ids = train.ids
    rows = version.manifest.set_index("id")
    assert all(train.classes[here[i][1]] == rows.loc[ids[i], "label"] for i in indices)

    train.set_epoch(1)
    epoch1 = {i: _digest(train[i][0]) for i in indices}
    assert all(epoch1[i] != here[i][0] for i in indices)
    train.set_epoch(0)
    assert {i: _digest(train[i][0]) for i in indices} == {i: d for i, (d, _) in here.items()}
    other_seed = AugmentedDataset(version, STEPS, split="train", seed=4)
    assert _digest(other_seed[indices[1]][0]) != here[indices[1]][0]
    # the pipeline as a Compose object gives the bytes of its recipe-list form
    composed = AugmentedDataset(version, augment.Compose(STEPS), split="train", seed=3)
    assert _digest(composed[indices[2]][0]) == here[indices[2]][0]


def test_augmented_dataset_forms_and_refusals(speech_dataset):
    version = curate.open(speech_dataset).load()
    plain = AugmentedDataset(f"{speech_dataset}@v0001", None, split="dev", as_dict=True)
    item = plain[0]
    expected, rate = read_audio(version.media_path(item["id"]))
    assert np.array_equal(item["input"], expected) and item["sample_rate"] == rate and item["transform"] == "[]"
    assert item["target"] == item["label"] == version.manifest.set_index("id").loc[item["id"], "label"]
    assert plain[-1]["id"] == plain.ids[-1] and len(list(plain)) == 50   # the sequence protocol ends on IndexError
    with pytest.raises(BadInput, match="label 'eight' .* is not in classes"):
        AugmentedDataset(version, None, classes=["one", "two"])
    with pytest.raises(BadInput, match="an image pipeline cannot run on the audio items"):
        AugmentedDataset(version, [{"Scratch": {}}])
    with pytest.raises(BadInput, match="targets: expected one of label, index"):
        AugmentedDataset(version, None, targets="onehot")
    with pytest.raises(BadInput, match=r"pipeline: .*gain_db"):
        AugmentedDataset(version, [{"Gain": {"gain_db": [6, -6]}}])


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="torch is not installed")
def test_a_torch_dataloader_gives_the_same_bytes_with_and_without_workers(speech_dataset):
    from torch.utils.data import DataLoader

    train = AugmentedDataset(curate.open(speech_dataset).load(), STEPS, seed=1, targets="index")
    runs = [[_digest(x.numpy()) for x, _ in DataLoader(train, batch_size=None, num_workers=n)] for n in (0, 2)]
    assert runs[0] == runs[1]
