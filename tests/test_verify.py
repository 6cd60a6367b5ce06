"""verify sees every tamper; gc reclaims what interrupted runs leave; nothing writes inside a dataset but the store;
a worker never stores non-finite audio."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

import curate
from curate.verify import verify

from conftest import SAMPLE_MEDIA
from test_runner import recipe_file


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, speech_dataset):
    """The speech dataset plus one recipe version (v0002, with reports), made once; tests tamper with copies."""
    from augment.cli import main

    path = tmp_path_factory.mktemp("chain") / "ds"
    shutil.copytree(speech_dataset, path)
    recipe = recipe_file(tmp_path_factory.mktemp("recipe"), path, budget=3)
    assert main(["run", str(recipe), "--workers", "1"]) == 0
    return path


@pytest.fixture
def chain(two_versions, tmp_path):
    target = tmp_path / "ds"
    shutil.copytree(two_versions, target)
    for p in target.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    return target


def edit_json(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def problems_of(ds) -> list[tuple[str, str]]:
    return [(p.where, p.message) for p in verify(curate.open(ds), quick=True)[0]]


def test_an_untouched_chain_verifies_clean(chain, curate_cli):
    assert problems_of(chain) == []
    info = curate.open(chain).load().info
    assert info["parent"] == "v0001" and set(info["files"]) == {"manifest.parquet", "report.html", "report.json",
                                                                 "report.md"}
    result = curate_cli("verify", chain, "--quick")
    assert result.code == 0 and "objects not re-hashed (--quick)" in result.out


@pytest.mark.parametrize("field,value", [(("gate", "verdict"), "forced"), (("parent",), "v0001x"), (("seed",), 99),
                                         (("counts", "items"), 1), (("recipe", "text"), "name: other\n")])
def test_an_edited_newest_version_json_is_seen(chain, field, value, curate_cli):
    target = chain / "versions" / "v0002" / "version.json"

    def change(data):
        node = data
        for key in field[:-1]:
            node = node[key]
        node[field[-1]] = value

    edit_json(target, change)
    found = problems_of(chain)
    assert any(where == str(target) for where, _ in found), found
    result = curate_cli("verify", chain)
    assert result.code == 1 and str(target) in result.out


def test_an_edited_older_version_json_is_seen_by_its_child(chain):
    target = chain / "versions" / "v0001" / "version.json"
    edit_json(target, lambda data: data.update(seed=123))
    assert (str(target), "changed since v0002 was committed on it (sha256 mismatch)") in problems_of(chain)


@pytest.mark.parametrize("name", ["report.html", "report.json"])
def test_a_bit_flip_in_a_report_is_seen(chain, name):
    target = chain / "versions" / "v0002" / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x04
    target.write_bytes(bytes(data))
    assert problems_of(chain) == [(str(target), "content changed since commit (sha256 mismatch)")]


def test_a_deleted_parent_and_a_rewound_latest_are_seen(chain, tmp_path):
    (chain / "LATEST").write_text("v0001\n")
    found = problems_of(chain)
    assert len(found) == 1 and found[0][0] == str(chain / "LATEST") and "newest version is v0002" in found[0][1]
    assert curate.open(chain).load().name == "v0002"  # @latest is the newest version, whatever LATEST says
    shutil.rmtree(chain / "versions" / "v0001")
    assert (str(chain / "versions" / "v0002" / "version.json"),
            "parent v0001 is missing (versions/v0001 was deleted or renamed)") in problems_of(chain)


def test_gc_reclaims_the_objects_of_a_refused_run(chain, tmp_path, curate_cli):
    dataset = curate.open(chain)
    extra = dataset.put_object(b"orphan bytes", "wav")
    dry = curate_cli("gc", chain, "--dry-run")
    assert dry.code == 0 and "would remove 1 unreferenced object(s)" in dry.out and extra in dry.out
    assert dataset.object_path(extra, "wav").is_file()
    done = curate_cli("gc", chain)
    assert done.code == 0 and "removed 1 unreferenced object(s)" in done.out
    assert not dataset.object_path(extra, "wav").exists() and problems_of(chain) == []


@pytest.mark.parametrize("inside", ["versions/v9", "objects/zz", "."])
def test_export_and_report_refuse_targets_inside_a_dataset(chain, inside, curate_cli):
    before = sorted(str(p) for p in chain.rglob("*"))
    result = curate_cli("export", chain, "--to", chain / inside)
    assert result.code == 2 and "is inside the dataset" in result.err and len(result.err.strip().splitlines()) == 1
    report = curate_cli("report", chain, "--out", chain / inside)
    assert report.code == 2 and "is inside the dataset" in report.err
    assert sorted(str(p) for p in chain.rglob("*")) == before


def test_a_bed_of_huge_floats_fails_the_run_and_stores_nothing(speech_copy, tmp_path, augment_cli):
    beds = tmp_path / "beds"
    beds.mkdir()
    audio, rate = sf.read(SAMPLE_MEDIA / "speech" / "flite_awb" / "zero.wav", dtype="float32")
    sf.write(beds / "huge.wav", audio * np.float32(1e30), rate, subtype="FLOAT")
    text = recipe_file(tmp_path, speech_copy).read_text().replace(str(SAMPLE_MEDIA / "noise" / "cafe"), str(beds))
    (tmp_path / "huge.yaml").write_text(text)
    objects = sorted((speech_copy / "objects").rglob("*"))
    code, _, err = augment_cli("run", tmp_path / "huge.yaml", "--workers", "1")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "huge.wav peaks at 5.22e+29" in lines[0] and "full scale" in lines[0]
    assert sorted((speech_copy / "objects").rglob("*")) == objects
    assert curate.open(speech_copy).versions() == ["v0001"]


def test_a_writer_refuses_to_chain_onto_an_edited_version(chain, tmp_path, augment_cli):
    edit_json(chain / "versions" / "v0002" / "version.json", lambda data: data.update(seed=1234))
    recipe = recipe_file(tmp_path, chain, budget=6)
    code, _, err = augment_cli("run", recipe, "--workers", "1")
    assert code == 2 and "not what an interrupted commit leaves" in err and "curate verify" in err
    assert curate.open(chain).versions() == ["v0001", "v0002"] and not (chain / ".lock").exists()
    assert problems_of(chain)  # the edit is still there for verify to name


def test_gc_says_which_bytes_stay_on_disk_because_another_dataset_links_them(speech_dataset, tmp_path, curate_cli):
    """Objects brought from a parent are hard links: removing the child's names frees nothing of them, and gc says
    so instead of counting them as freed."""

    parent = curate.open(speech_dataset).load()
    child = curate.store.open_dataset(tmp_path / "child", create=True)
    assert child.bring_objects(parent) == 250   # no version of the child references them: all garbage
    total = sum(parent.dataset.object_path(d, e).stat().st_size
                for d, e in set(zip(parent.manifest["object"], parent.manifest["ext"])))
    dry = curate_cli("gc", tmp_path / "child", "--dry-run", "--json")
    figures = json.loads(dry.out)
    assert dry.code == 0 and figures["objects"] == 250 and figures["bytes"] == figures["shared_bytes"] == total
    done = curate_cli("gc", tmp_path / "child")
    assert done.code == 0 and f"{total / 1e6:.2f} MB of it stays on disk" in done.out
    assert problems_of(speech_dataset) == [] and not list((tmp_path / "child" / "objects").rglob("*.wav"))
