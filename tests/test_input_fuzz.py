"""Bad recipes, gate configs and review files, generated and seeded: each one is refused with exit 2 and exactly one
line on stderr, never a traceback, and the dataset it names is left exactly as it was (labels.csv and media are
fuzzed in test_import_fuzz.py)."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import curate

from conftest import SAMPLE_MEDIA

NOISE = SAMPLE_MEDIA / "noise" / "cafe"
BASE = {
    "name": "fuzz",
    "dataset": "@DATASET@",
    "seed": 5,
    "target": {"tags": ["cafe_noise"]},
    "pipeline": [{"AddBackgroundNoise": {"noise": str(NOISE), "snr_db": [0, 10]}}, {"Gain": {"gain_db": [-3, 3]}}],
    "sources": {"where": {"split": "train", "tags_any": ["clean"]}},
    "budget": 4,
    "evaluate": {"baseline": {"model": "logreg"}},
    "curation": {"block_on": "error"},
}
# (field, value) pairs among the odd ones that are valid recipes after all
VALID = {("name", "'x'"), ("set_label", "'x'"), ("set_label", "None"), ("set_label", "{}"), ("add_tags", "[]"),
         ("curation", "{}"), ("evaluate", "None"), ("sources", "{}"), ("budget", "None"), ("budget", "{}")}
ODD_VALUES = [True, None, [], {}, "x", -1, 2 ** 70, 1e400, float("nan"), [[1]], {"a": {"b": 1}}]


def dump(data) -> str:
    """YAML text of plain data (floats written so that YAML reads back inf and nan)."""
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def recipe_cases() -> list[tuple[str, bytes]]:
    """(name, file bytes) of recipes that must be refused before anything is written."""
    rng = np.random.default_rng(19)
    cases: list[tuple[str, bytes]] = []

    def add(name, data):
        cases.append((name, dump(data).encode() if not isinstance(data, bytes) else data))

    for key in ("name", "dataset", "target", "pipeline"):
        add(f"missing {key}", {k: v for k, v in BASE.items() if k != key})
    for key in ("name", "seed", "target", "pipeline", "sources", "budget", "per_source", "evaluate", "curation",
                "previous", "add_tags", "set_label"):
        for value in ODD_VALUES:
            if (key, repr(value)) in VALID:
                continue
            add(f"{key}={value!r}", {**BASE, key: value})
    for typo in ("nme", "budgett", "pipelines_", "evalute", "sourcess", "remove_tag"):
        add(f"unknown key {typo}", {**BASE, typo: 1})
    params = {"snr_db": [[20, 5], "loud", float("inf"), [0, float("nan")], [-1e400, 0], [0, 10 ** 400]],
              "noise": [str(NOISE) + "-missing", 5, [], ""], "crossfade_ms": [-1, float("inf"), 10 ** 30, 10 ** 400, "x"],
              "snr_reference": ["sometimes", 3], "bogus": [1]}
    for param, values in params.items():
        for value in values:
            step = {"AddBackgroundNoise": {"noise": str(NOISE), "snr_db": [0, 10], param: value}}
            add(f"AddBackgroundNoise.{param}={value!r}", {**BASE, "pipeline": [step]})
    for step in ({"NoSuchTransform": {}}, {"LowBandwidth": {"rate": float("inf")}}, {"LowBandwidth": {"rate": 7}},
                 {"Gain": {"gain_db": [3, -3]}}, {"Gain": 5}, "Gain", {"Gain": {}, "PitchShift": {}},
                 {"Albumentations": {"name": "HorizontalFlip"}}, {"OneOf": {"transforms": []}},
                 {"Sometimes": {"p": 2, "transform": {"Gain": {}}}}, {"Gain": {"gain_db": [0, 1], "seed": 3}}):
        add(f"step {step!r}", {**BASE, "pipeline": [step]})
    wheres = [{"split": "dev"}, {"tags_any": "clean"}, {"tags_any": [["clean"]]}, {"tags_none": [1]},
              {"label": {"a": 1}}, {"colour": "red"}, {"label": []}, {"speakr": "human"}, {"label": "no-such-label"}]
    for where in wheres:
        add(f"where {where!r}", {**BASE, "sources": {"where": where}})
    for evaluate in ({"baseline": {"model": "nosuchmodel"}}, {"baseline": {"features": "colour"}},
                     {"command": "python t.py"}, {"command": "python t.py {predicted}"}, {"python": "not a target"},
                     {"command": "x {predictions}", "python": "a:b"}, {"baseline": {}, "resamples": 5},
                     {"baseline": {}, "split": 3}, "bestline", {"command": "x --seed {seed:d} {predictions}"},
                     {"command": "x {predictions!r}"}, {"command": "x {predictions}", "timeout_s": float("inf")},
                     {"python": "m:f", "timeout_s": 5}, {"command": "x {predictions}", "timeout_s": True},
                     {"baseline": {"seed": 99999999999}}, {"baseline": {}, "split": "train"},
                     {"baseline": {}, "split": "validation"}):
        add(f"evaluate {evaluate!r}", {**BASE, "evaluate": evaluate})
    for curation in ({"block_on": "bogus"}, {"blok_on": "error"}, {"realism": {"auc_warn": 2}},
                     {"checks": ["realizm"]}, {"evaluation": {"accept_cost": {"clean": -5}}},
                     {"change": {"max_prior_ratio": 0.5}}, {"leakage": {"near_duplicates": "maybe"}}, ["block_on"]):
        add(f"curation {curation!r}", {**BASE, "curation": curation})
    text = dump(BASE)
    add("duplicate key", (text + "budget: 60\n").encode())
    add("binary tag", ("name: !!binary aGVsbG8=\n" + text.split("\n", 1)[1]).encode())
    add("python tag", (text + "x: !!python/object:os.system {}\n").encode())
    add("a date", (text + "seed: 2024-01-01\n").replace("seed: 5\n", "").encode())
    add("yaml 1.1 octal", text.replace("seed: 5\n", "seed: 010\n").encode())
    add("yaml 1.1 hex", text.replace("budget: 4\n", "budget: 0x0A\n").encode())
    add("yaml 1.1 base 60", text.replace("seed: 5\n", "seed: 1:20\n").encode())
    add("a 5000-digit integer", text.replace("seed: 5\n", "seed: " + "9" * 5000 + "\n").encode())
    add("add_tags with ';'", dump({**BASE, "add_tags": ["a;b"]}).encode())
    add("add_tags blank", dump({**BASE, "add_tags": [" "]}).encode())
    add("a 300-character name", dump({**BASE, "name": "n" * 300}).encode())
    add("set_label for no target", dump({**BASE, "set_label": {"nosuch": "one"}}).encode())
    add("set_label empty", dump({**BASE, "set_label": {"cafe_noise": ""}}).encode())
    bomb = "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 12))
    add("alias bomb", (text + "x0: &a0 [1]\n" + bomb + "y: [*a11]\n").encode())  # 9^11 nodes if walked
    add("latin-1", text.replace("name: fuzz", "name: caf\u00e9").encode("latin-1"))
    add("deep nesting", (text + "x: " + "[" * 5000 + "]" * 5000 + "\n").encode())
    add("deep mapping", (text + "x: " + "{a: " * 200 + "1" + "}" * 200 + "\n").encode())
    add("not a mapping", b"- a\n- b\n")
    add("empty", b"")
    add("broken yaml", (text + "budget: [1, 2\n").encode())
    add("huge file", (text + "# " + "x" * 1_100_000 + "\n").encode())
    add("nul bytes", text.encode() + b"\x00\x00")
    for n in range(12):  # random bytes, seeded
        add(f"random bytes {n}", rng.integers(0, 256, size=int(rng.integers(1, 400))).astype(np.uint8).tobytes())
    return cases


CASES = recipe_cases()


def state(path) -> dict:
    """Every file under `path` with its size and modification time: any write shows."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            out[os.path.relpath(os.path.join(root, name), path)] = (stat.st_size, stat.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def fuzz_dataset(speech_dataset, tmp_path_factory):
    target = tmp_path_factory.mktemp("fuzz") / "ds"
    shutil.copytree(speech_dataset, target)
    return target


def one_line_refusal(code, out, err, name):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (name, code, out[-500:], err[-2000:])
    assert len(lines) == 1 and "Traceback" not in err + out, (name, err[-2000:])


def test_there_are_enough_cases():
    assert len(CASES) >= 150 and len({name for name, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[name[:60] for name, _ in CASES])
def test_bad_recipes_are_refused_before_anything_is_written(index, fuzz_dataset, tmp_path, augment_cli):
    name, content = CASES[index]
    content = content.replace(b"@DATASET@", str(fuzz_dataset).encode())
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(content)
    before = state(fuzz_dataset)
    code, out, err = augment_cli("run", recipe)
    one_line_refusal(code, out, err, name)
    assert state(fuzz_dataset) == before, name


def gate_config_cases() -> list[tuple[str, str]]:
    valid = {("checks", "[]"), ("realism", "{}"), ("block_on_inherited", "True")}
    cases = [(f"{key}={value!r}", dump({key: value})) for key in ("block_on", "checks", "max_items", "realism",
                                                                   "block_on_inherited")
             for value in ODD_VALUES[:8] if (key, repr(value)) not in valid]
    cases += [("typo", "blok_on: warning\n"), ("section typo", "realism:\n  auc_wrn: 0.9\n"),
              ("list", "- block_on\n"), ("duplicate", "block_on: error\nblock_on: warning\n"),
              ("date", "block_on: 2024-01-01\n"), ("broken", "realism: {auc_warn: 0.9\n")]
    return cases


GATE_CASES = gate_config_cases()


@pytest.mark.parametrize("index", range(len(GATE_CASES)), ids=[name[:60] for name, _ in GATE_CASES])
def test_bad_gate_configs_are_refused(index, fuzz_dataset, tmp_path, curate_cli):
    name, text = GATE_CASES[index]
    config = tmp_path / "gate.yaml"
    config.write_text(text)
    before = state(fuzz_dataset)
    result = curate_cli("check", fuzz_dataset, "--config", config)
    one_line_refusal(result.code, result.out, result.err, name)
    assert state(fuzz_dataset) == before


def review_cases(version) -> list[tuple[str, bytes]]:
    first = sorted(version.manifest["id"])[0]
    good = {"schema": "rubbersheet.review", "schema_version": 1, "version": version.ref,
            "fingerprint": version.info["fingerprint"], "decisions": [{"id": first, "decision": "accept"}]}

    def with_decision(**fields):
        return json.dumps({**good, "decisions": [{"id": first, "decision": "accept", **fields}]}).encode()

    cases = [("not json", b"{decisions"), ("nan", json.dumps(good).replace('"accept"}', '"accept", "note": NaN}')
                                           .encode()),
             ("deep", b"[" * 100_000 + b"]" * 100_000), ("latin-1", "{\"note\": \"caf\u00e9\"}".encode("latin-1")),
             ("list", b"[]"), ("no decisions", json.dumps({**good, "decisions": None}).encode()),
             ("no fingerprint", json.dumps({**good, "fingerprint": ""}).encode()),
             ("other fingerprint", json.dumps({**good, "fingerprint": "0" * 64}).encode()),
             ("unknown id", json.dumps({**good, "decisions": [{"id": "nope.wav", "decision": "reject"}]}).encode()),
             ("twice", json.dumps({**good, "decisions": [{"id": first, "decision": "reject"}] * 2}).encode()),
             ("bad decision", with_decision(decision="maybe")), ("relabel without label", with_decision(
                 decision="relabel")), ("new label", with_decision(decision="relabel", label="eleven")),
             ("note not text", with_decision(note=5)), ("huge note", with_decision(note="x" * 50_000)),
             ("label not text", with_decision(decision="relabel", label=["one"])),
             ("decision not object", json.dumps({**good, "decisions": ["accept"]}).encode()),
             ("empty", b"")]
    return cases


def test_bad_review_files_are_refused(fuzz_dataset, tmp_path, curate_cli):
    version = curate.open(fuzz_dataset).load()
    cases = review_cases(version)
    assert len(cases) >= 18
    for name, content in cases:
        review = tmp_path / "review.json"
        review.write_bytes(content)
        before = state(fuzz_dataset)
        result = curate_cli("review", "apply", fuzz_dataset, review)
        one_line_refusal(result.code, result.out, result.err, name)
        assert state(fuzz_dataset) == before, name


def run_recipe_text(tmp_path, augment_cli, dataset, **changes):
    recipe = tmp_path / "named.yaml"
    recipe.write_text(dump({**BASE, **changes}).replace("@DATASET@", str(dataset)))
    return augment_cli("run", recipe)


@pytest.mark.parametrize("changes,message", [
    ({"budgett": 5}, "named.yaml:28: budgett: unknown key (did you mean 'budget'?)"),
    ({"sources": {"wher": {"split": "train"}}}, "named.yaml:18: sources.wher: unknown key (did you mean 'where'?)"),
    ({"curation": {"realism": {"auc_warm": 0.9}}},
     "named.yaml:28: curation.realism.auc_warm: unknown key (did you mean 'auc_warn'?)"),
    ({"evaluate": {"baseline": {"modle": "knn"}}},
     "named.yaml:25: evaluate.baseline.modle: unknown key (did you mean 'model'?)"),
    ({"sources": {"where": {"speakr": "human"}}}, "sources.where.speakr: no such column in"),
])
def test_a_typo_names_its_line_and_the_key_it_resembles(fuzz_dataset, tmp_path, augment_cli, changes, message):
    code, out, err = run_recipe_text(tmp_path, augment_cli, fuzz_dataset, **changes)
    assert code == 2 and message in err, err


def test_a_noise_bed_of_huge_floats_is_refused_when_the_recipe_is_read(fuzz_dataset, tmp_path, augment_cli):
    import soundfile as sf

    (tmp_path / "beds").mkdir()
    sf.write(tmp_path / "beds" / "bed.wav", np.full(16000, 1e30, np.float32), 16000, subtype="FLOAT")
    before = state(fuzz_dataset)
    code, _, err = run_recipe_text(tmp_path, augment_cli, fuzz_dataset, pipeline=[
        {"AddBackgroundNoise": {"noise": str(tmp_path / "beds"), "snr_db": [0, 10]}}])
    assert code == 2 and "bed.wav peaks at 1e+30, over 1000 x full scale" in err and "named.yaml:" in err, err
    assert state(fuzz_dataset) == before
