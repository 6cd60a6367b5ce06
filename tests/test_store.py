"""The versioned store: fingerprints, atomic commits, locking, immutability, verify, references."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import curate
from curate import manifest as mf
from curate.exceptions import BadInput, StoreLocked
from curate.importer import import_folder
from curate.store import split_ref
from curate.verify import verify

from conftest import SAMPLE_MEDIA


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fingerprint_ignores_row_and_column_order_but_not_content(speech_dataset):
    version = curate.open(speech_dataset).load("latest")
    frame = version.manifest
    assert mf.fingerprint(frame) == version.info["fingerprint"]
    rng = np.random.default_rng(0)
    for _ in range(3):
        shuffled = frame.iloc[rng.permutation(len(frame))]
        columns = list(shuffled.columns)
        rng.shuffle(columns)
        assert mf.fingerprint(shuffled[columns]) == version.info["fingerprint"]
    relabelled = frame.copy()
    relabelled.loc[0, "label"] = "nine" if relabelled.loc[0, "label"] != "nine" else "one"
    assert mf.fingerprint(relabelled) != version.info["fingerprint"]
    retagged = frame.copy()
    retagged.at[3, "tags"] = list(retagged.at[3, "tags"]) + ["reviewed"]
    assert mf.fingerprint(retagged) != version.info["fingerprint"]


def test_two_imports_of_the_same_folder_give_the_same_fingerprint(speech_dataset, tmp_path):
    first = curate.open(speech_dataset).load("latest")
    second = import_folder(SAMPLE_MEDIA / "speech", tmp_path / "again").version
    assert second.info["fingerprint"] == first.info["fingerprint"]
    assert second.info["created"] and second.info["counts"] == first.info["counts"]
    assert list(second.manifest["object"]) == list(first.manifest["object"])


def test_reimport_of_an_unchanged_folder_writes_no_version(speech_copy):
    result = import_folder(SAMPLE_MEDIA / "speech", speech_copy)
    assert result.unchanged and curate.open(speech_copy).versions() == ["v0001"]


def test_version_json_records_what_the_design_asks_for(speech_dataset):
    info = curate.open(speech_dataset).load("v0001").info
    for key in ("name", "version", "parent", "created", "fingerprint", "counts", "recipe", "seed",
                "package_version", "command", "gate"):
        assert key in info
    assert info["version"] == "v0001" and info["parent"] is None
    assert info["counts"]["items"] == 250 and info["counts"]["split"] == {"dev": 50, "test": 50, "train": 150}
    assert info["counts"]["tag"]["cafe_noise"] == 50 and info["counts"]["origin"] == {"real": 250}


def test_media_path_points_at_the_original_bytes(speech_dataset):
    version = curate.open(speech_dataset).load()
    path = version.media_path("flite_rms/one_car.wav")
    assert path.suffix == ".wav"
    assert path.read_bytes() == (SAMPLE_MEDIA / "speech" / "flite_rms" / "one_car.wav").read_bytes()
    with pytest.raises(BadInput, match="no item with id 'nope'"):
        version.media_path("nope")


def relabel_commit(path, info=None):
    ds = curate.open(path)
    frame = ds.load().manifest.copy()
    frame.loc[frame["id"] == "allison/zero.wav", "label"] = "oh"
    return ds.commit(frame, {}, info or {"seed": 3, "recipe": {"name": "relabel", "text": "relabel: zero->oh\n"}})


def test_a_new_version_shares_objects_and_never_touches_the_parent(speech_copy):
    ds = curate.open(speech_copy)
    v1 = ds.load("v0001")
    before = {p: sha(p) for p in v1.path.iterdir()}
    n_objects = len(list((speech_copy / "objects").rglob("*.wav")))
    v2 = relabel_commit(speech_copy)
    assert (v2.name, v2.info["parent"]) == ("v0002", "v0001")
    assert ds.versions() == ["v0001", "v0002"] and ds.latest() == "v0002"
    assert {p: sha(p) for p in v1.path.iterdir()} == before
    assert len(list((speech_copy / "objects").rglob("*.wav"))) == n_objects
    assert v2.info["recipe"]["sha256"] == hashlib.sha256(b"relabel: zero->oh\n").hexdigest()
    assert v2.info["seed"] == 3 and v2.info["counts"]["label"]["oh"] == 1
    assert curate.open(speech_copy).load("v0001").info["fingerprint"] != v2.info["fingerprint"]


def test_commit_stores_new_media_by_content_hash(speech_copy):
    ds = curate.open(speech_copy)
    frame = ds.load().manifest
    data = (SAMPLE_MEDIA / "noise" / "car" / "TraficHigh1.wav").read_bytes()
    new = pd.DataFrame([{"id": "aug/car1", "label": "zero", "tags": ["car_noise"], "media": "audio", "ext": "wav",
                         "origin": "augmented", "source_id": "allison/zero.wav", "group": "allison",
                         "recipe": "r", "transform": [{"transform": "X", "params": {"a": 1}, "applied": True}]}])
    v2 = ds.commit(pd.concat([frame, new], ignore_index=True), {"aug/car1": data})
    digest = hashlib.sha256(data).hexdigest()
    assert v2.media_path("aug/car1") == speech_copy / "objects" / digest[:2] / f"{digest}.wav"
    assert v2.media_path("aug/car1").read_bytes() == data
    row = v2.manifest.set_index("id").loc["aug/car1"]
    assert json.loads(row["transform"]) == [{"applied": True, "params": {"a": 1}, "transform": "X"}]
    assert v2.info["counts"]["origin"] == {"augmented": 1, "real": 250}


def test_commit_killed_mid_write_leaves_no_version_and_no_temp_dir(speech_copy, monkeypatch):
    ds = curate.open(speech_copy)
    latest_before = (speech_copy / "LATEST").read_text()

    def crash(frame, path):
        path.write_bytes(b"PAR1 partial")
        raise RuntimeError("killed")

    monkeypatch.setattr("curate.version.write_manifest", crash)
    with pytest.raises(RuntimeError, match="killed"):
        relabel_commit(speech_copy)
    assert ds.versions() == ["v0001"]
    assert [p.name for p in (speech_copy / "versions").iterdir()] == ["v0001"]
    assert (speech_copy / "LATEST").read_text() == latest_before
    assert not (speech_copy / ".lock").exists()
    monkeypatch.undo()
    assert relabel_commit(speech_copy).name == "v0002"


def test_leftovers_of_a_killed_writer_are_swept_and_its_stale_lock_taken_over(speech_copy):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (speech_copy / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    (speech_copy / "versions" / ".tmp-v0002-deadbeef").mkdir()
    (speech_copy / "versions" / ".tmp-v0002-deadbeef" / "manifest.parquet").write_bytes(b"half")
    ds = curate.open(speech_copy)
    assert ds.versions() == ["v0001"]
    assert relabel_commit(speech_copy).name == "v0002"
    assert sorted(p.name for p in (speech_copy / "versions").iterdir()) == ["v0001", "v0002"]


def test_a_second_writer_gets_a_clear_error(speech_copy):
    ds = curate.open(speech_copy)
    with ds.lock():
        with pytest.raises(StoreLocked) as info:
            relabel_commit(speech_copy)
        message = str(info.value)
        assert "locked by another writer" in message and f"pid {os.getpid()}" in message
        assert str(speech_copy / ".lock") in message
    assert ds.versions() == ["v0001"]
    assert relabel_commit(speech_copy).name == "v0002"


def test_verify_names_a_corrupted_object_and_a_tampered_manifest(speech_copy):
    ds = curate.open(speech_copy)
    problems, figures = verify(ds)
    assert problems == [] and figures == {"versions": 1, "objects_checked": 250, "objects_referenced": 250,
                                          "objects_unreferenced": 0}
    target = ds.load().media_path("espeak_us/three.wav")
    data = bytearray(target.read_bytes())
    data[200] ^= 0x01
    target.write_bytes(bytes(data))
    problems, _ = verify(ds)
    assert [p.where for p in problems] == [str(target)]
    assert "does not match its hash" in problems[0].message
    manifest = ds.load().path / "manifest.parquet"
    manifest.write_bytes(manifest.read_bytes() + b"\0")
    problems, _ = verify(ds)
    assert {p.where for p in problems} == {str(manifest)}
    assert "sha256 mismatch" in problems[0].message


def test_verify_reports_a_missing_object(speech_copy):
    ds = curate.open(speech_copy)
    target = ds.load().media_path("allison/one.wav")
    target.unlink()
    problems, _ = verify(ds)
    assert [(p.where, p.message) for p in problems] == [(str(target), "object missing")]


def test_references():
    assert split_ref("data/ds") == (split_ref("data/ds@latest")[0], "latest")
    assert split_ref("data/ds@v0003")[1] == "v0003"
    assert split_ref("data/ds@v12")[1] == "v0012"
    assert split_ref("data/ds@3")[1] == "v0003"
    assert str(split_ref("data/my@home/ds")[0]) == "data/my@home/ds"
    with pytest.raises(BadInput, match="bad version reference"):
        split_ref("data/ds@vx")


def test_opening_something_that_is_not_a_dataset(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        curate.open(tmp_path / "nope")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x").write_text("x")
    with pytest.raises(BadInput, match="not a rubbersheet dataset"):
        curate.open(tmp_path / "folder")
    with pytest.raises(BadInput, match="has no versions yet"):
        curate.open(tmp_path / "new", create=True).load()


@pytest.mark.parametrize("change,message", [
    ({"split": "training"}, "split 'training' is not one of train, dev, test"),
    ({"origin": "synthetic"}, "origin 'synthetic'"),
    ({"tags": ["a;b"]}, "tags entry 'a;b'"),
    ({"tags": "cafe"}, "must be a list of strings"),
    ({"label": ""}, "column 'label' is empty"),
    ({"transform": "{not json"}, "transform is not valid JSON"),
])
def test_manifest_validation_names_item_and_column(change, message):
    row = {"id": "a", "label": "x", "tags": [], "media": "audio", "ext": "wav"}
    row.update(change)
    with pytest.raises(BadInput, match=message):
        mf.normalise(pd.DataFrame([row]))


def test_duplicate_ids_are_refused():
    with pytest.raises(BadInput, match="duplicate id 'a'"):
        mf.normalise(pd.DataFrame([{"id": "a", "label": "x"}, {"id": "a", "label": "y"}]))


def test_commit_refuses_rows_without_media_or_stored_object(speech_copy):
    ds = curate.open(speech_copy)
    frame = pd.concat([ds.load().manifest, pd.DataFrame([{"id": "ghost", "label": "x", "media": "audio",
                                                           "ext": "wav"}])], ignore_index=True)
    with pytest.raises(BadInput, match="'ghost': no media given and no stored object"):
        ds.commit(frame, {})
    with pytest.raises(BadInput, match="unknown field"):
        ds.commit(ds.load().manifest, {}, {"colour": "red"})
    assert ds.versions() == ["v0001"]


def test_objects_brought_from_another_local_store_are_hard_links_checked_first(speech_dataset, tmp_path, monkeypatch):
    """A run into another dataset brings the parent's objects: hard links (no bytes written), each hashed first;
    a damaged one stores nothing; where links are impossible (another filesystem) they are copies."""
    parent = curate.open(speech_dataset).load()
    target = curate.store.open_dataset(tmp_path / "out", create=True)
    assert target.bring_objects(parent) == 250
    pairs = list(zip(parent.manifest["object"], parent.manifest["ext"]))
    for digest, ext in pairs:
        mine, theirs = target.object_path(digest, ext).stat(), parent.dataset.object_path(digest, ext).stat()
        assert (mine.st_ino, mine.st_dev) == (theirs.st_ino, theirs.st_dev) and mine.st_mode & 0o222 == 0
    assert target.bring_objects(parent) == 0   # nothing left to bring

    copies = curate.store.open_dataset(tmp_path / "copies", create=True)
    monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(18, "Invalid cross-device link")))
    assert copies.bring_objects(parent) == 250
    digest, ext = pairs[0]
    assert copies.object_path(digest, ext).stat().st_nlink == 1
    assert copies.object_path(digest, ext).read_bytes() == parent.dataset.object_path(digest, ext).read_bytes()


def test_a_damaged_parent_object_is_named_and_nothing_is_linked(speech_copy, tmp_path):
    parent = curate.open(speech_copy).load()
    damaged = parent.media_path("espeak_us/three.wav")
    data = bytearray(damaged.read_bytes())
    data[200] ^= 0x01
    damaged.write_bytes(bytes(data))
    target = curate.store.open_dataset(tmp_path / "out", create=True)
    with pytest.raises(BadInput, match=r"three|does not match its content") as raised:
        target.bring_objects(parent)
    assert str(damaged) in str(raised.value) and "curate verify" in str(raised.value)
    assert not [p for p in (tmp_path / "out" / "objects").rglob("*") if p.is_file()]


def test_a_writable_parent_object_is_copied_read_only_and_a_copy_stage_mismatch_names_its_file(speech_copy, tmp_path,
                                                                                               monkeypatch):
    """A link would bring an object someone made writable in writable (objects are read-only): such objects are
    copied. The copy stage checks each object again and names the right file when one does not match."""
    parent = curate.open(speech_copy).load()   # speech_copy made every file writable
    target = curate.store.open_dataset(tmp_path / "out", create=True)
    assert target.bring_objects(parent) == 250
    modes = {(p.stat().st_mode & 0o777, p.stat().st_nlink) for p in (tmp_path / "out" / "objects").rglob("*.wav")}
    assert modes == {(0o444, 1)}

    for path in (speech_copy / "objects").rglob("*.wav"):
        path.chmod(0o444)
    damaged = parent.media_path("espeak_us/three.wav")   # the only writable object: the only one copied
    damaged.chmod(0o644)
    link = curate.store.Dataset._link_objects

    def damage_after_the_first_check(self, files, mismatch):
        found = link(self, files, mismatch)
        data = bytearray(damaged.read_bytes())
        data[200] ^= 0x01
        damaged.write_bytes(bytes(data))
        return found

    monkeypatch.setattr(curate.store.Dataset, "_link_objects", damage_after_the_first_check)
    again = curate.store.open_dataset(tmp_path / "again", create=True)
    with pytest.raises(BadInput) as raised:
        again.bring_objects(parent)
    assert str(raised.value).startswith(f"{damaged}: object ") and "does not match its content" in str(raised.value)
