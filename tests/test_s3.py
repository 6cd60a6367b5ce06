"""Datasets on object storage, against a real S3 server (moto's, on 127.0.0.1: the `s3` fixture): import -> recipe
-> verify -> diff -> export -> gc on s3://, the same fingerprint as on local storage, the commit protocol under a
crash at each of its steps (curate.remote's docstring), the lock, and one-line failures."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

import curate
from curate.exceptions import BadInput, StoreLocked
from curate.storage import describe_failure
from curate.verify import verify

from conftest import SAMPLE_MEDIA
from test_crash import CRASHED, STEPS, VISIBLE_FROM, crash_at
from test_runner import recipe_file, run_cli


def speech_voices(tmp_path, voices: int, name: str = "src"):
    """The first `voices` voices of the sample speech (25 clips each, train/dev/test kept)."""
    src = tmp_path / name
    frame = pd.read_csv(SAMPLE_MEDIA / "speech" / "labels.csv", dtype=str, keep_default_na=False)
    frame = frame[frame["voice"].isin(sorted(set(frame["voice"]))[:voices])]
    for path in frame["path"]:
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_MEDIA / "speech" / path, src / path)
    frame.to_csv(src / "labels.csv", index=False)
    return src


def keys(url: str) -> list[str]:
    return sorted(e.key for e in curate.open(url).remote.list(""))


def test_import_recipe_verify_diff_export_gc_on_s3_give_the_local_fingerprints(s3, tmp_path, curate_cli):
    src = speech_voices(tmp_path, 3)
    url = s3.url()
    result = curate_cli("import", src, "--to", url)
    assert result.code == 0, result.err
    assert result.out.startswith(f"{url}@v0001: imported 75 items")
    recipe = recipe_file(tmp_path, url, budget=3)
    run = run_cli("run", recipe, "--workers", "2")  # a process pool: workers read and write the bucket
    assert run.returncode == 0, run.stderr
    remote = curate.open(url)
    assert remote.versions() == ["v0001", "v0002"] and remote.read_ref()[0] == "v0002"
    assert (remote.load().manifest["origin"] == "augmented").sum() == 3

    local = tmp_path / "local"
    assert curate_cli("import", src, "--to", local).code == 0
    assert run_cli("run", recipe_file(tmp_path, local, budget=3, name="local.yaml"), "--workers", "1").returncode == 0
    for name in ("v0001", "v0002"):
        assert remote.load(name).info["fingerprint"] == curate.open(local).load(name).info["fingerprint"], name

    result = curate_cli("verify", url)
    assert result.code == 0 and result.out.strip() == "ok: 2 versions, 78 objects checked, 0 unreferenced"
    result = curate_cli("diff", f"{url}@v1", f"{url}@v2", "--json")
    assert result.code == 0 and len(json.loads(result.out)["added"]) == 3
    result = curate_cli("export", url, "--to", url + "-exported")
    assert result.code == 2 and "is a URL; curate export writes a local folder" in result.err
    result = curate_cli("export", url, "--to", tmp_path / "exported")
    assert result.code == 0, result.err
    assert curate_cli("import", tmp_path / "exported", "--to", tmp_path / "back").code == 0
    assert curate.open(tmp_path / "back").load().info["fingerprint"] == remote.load().info["fingerprint"]

    extra = remote.put_object(b"not referenced by any version", "wav")
    result = curate_cli("gc", url)
    assert result.code == 0 and "removed 1 unreferenced object(s)" in result.out
    assert not remote.has_object(extra, "wav") and curate_cli("verify", url).code == 0


def import_writer(src, url):
    from curate.cli import main

    return lambda: main(["import", str(src), "--to", url])


@pytest.mark.parametrize("step", STEPS)
def test_import_crash_at_each_step_on_s3(step, s3, tmp_path):
    """The writer dies at `step` (os._exit in a forked child): readers see the old state or the new one, never a
    committed version outside @latest; the next writer recovers without manual steps."""
    src = speech_voices(tmp_path, 1)
    url = s3.url()
    assert crash_at(step, import_writer(src, url)) == CRASHED
    dataset = curate.open(url)
    committed = STEPS.index(step) >= VISIBLE_FROM
    assert dataset.versions() == (["v0001"] if committed else [])
    if committed:
        assert dataset.latest() == "v0001" and dataset.load().info["counts"]["items"] == 25
        problems, _ = verify(dataset, quick=True)
        assert all(p.where == f"{url}/LATEST" for p in problems)
        assert bool(problems) == (step in ("commit.rename", "commit.ref")), problems
    if step == "commit.record":  # files uploaded, version.json not: not a version, and seen as an interrupted upload
        assert dataset.version_dirs() == ["v0001"] and verify(dataset, quick=True)[1]["interrupted_uploads"] == 1
    assert ".lock" in keys(url)

    assert import_writer(src, url)() == 0  # the same host, the writer's pid gone: the next writer takes over
    dataset = curate.open(url)
    assert dataset.versions() == dataset.version_dirs() == ["v0001"]
    assert verify(dataset) == ([], {"versions": 1, "objects_checked": 25, "objects_referenced": 25,
                                    "objects_unreferenced": 0, "interrupted_uploads": 0})
    assert ".lock" not in keys(url)


def test_augment_run_crash_after_its_upload_on_s3_then_the_next_run_recovers(s3, tmp_path):
    """The run dies with its manifest and reports uploaded under versions/v0002/ but no version.json there (the
    import tests above cover every step; this is the one a recipe run adds on object storage)."""
    from augment.cli import main

    step = "commit.record"
    src = speech_voices(tmp_path, 3)
    url = s3.url()
    assert import_writer(src, url)() == 0
    recipe = recipe_file(tmp_path, url, budget=3)
    assert crash_at(step, lambda: main(["run", str(recipe), "--workers", "1"])) == CRASHED
    assert curate.open(url).versions() == ["v0001"] and curate.open(url).version_dirs() == ["v0001", "v0002"]
    assert main(["run", str(recipe), "--workers", "1"]) == 0
    dataset = curate.open(url)
    assert dataset.versions() == dataset.version_dirs() == ["v0001", "v0002"]
    assert (dataset.load().manifest["origin"] == "augmented").sum() == 3
    assert verify(dataset)[0] == [] and ".lock" not in keys(url)


def test_a_second_writer_cannot_overwrite_or_commit_the_same_number(s3, tmp_path):
    src = speech_voices(tmp_path, 1)
    url = s3.url()
    assert import_writer(src, url)() == 0
    dataset = curate.open(url)
    manifest = dataset.load().manifest
    staged = dataset.stage(manifest.iloc[:20], info={"command": "test"})
    assert staged.name == "v0002"
    dataset.remote.create("versions/v0002/manifest.parquet", b"another writer's")  # a writer that broke the lock
    with pytest.raises(BadInput, match="already exists: another writer is committing v0002; nothing committed"):
        staged.commit()
    assert dataset.remote.read("versions/v0002/manifest.parquet") == b"another writer's"
    assert dataset.versions() == ["v0001"] and ".lock" not in keys(url)


def test_a_live_lock_refuses_in_one_line_and_an_expired_one_is_taken_over(s3, tmp_path, curate_cli):
    import time

    src = speech_voices(tmp_path, 1)
    url = s3.url()
    assert import_writer(src, url)() == 0
    remote = curate.open(url).remote
    holder = {"pid": 1, "host": "another-machine", "since": "2026-01-01T00:00:00Z", "token": "theirs"}
    remote.write(".lock", json.dumps({**holder, "expires": time.time() + 3600}).encode())
    result = curate_cli("gc", url)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "locked by another writer (pid 1 on another-machine" in result.err
    with pytest.raises(StoreLocked):
        curate.open(url).acquire()
    remote.write(".lock", json.dumps({**holder, "expires": time.time() - 1}).encode())  # its lease has run out
    assert curate_cli("gc", url).code == 0
    assert ".lock" not in keys(url) and any(k.startswith(".lock-takeover-") for k in keys(url))


def test_a_missing_bucket_or_an_unreachable_store_is_one_line_and_writes_nothing(s3, tmp_path, curate_cli,
                                                                                 monkeypatch):
    import socket

    src = speech_voices(tmp_path, 1)
    result = curate_cli("import", src, "--to", "s3://no-such-bucket/x/ds")
    assert result.code == 2 and result.err.strip() == \
        "curate: error: s3://no-such-bucket/x/ds: bucket 'no-such-bucket' does not exist"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    url = s3.url()
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    result = curate_cli("import", src, "--to", url)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert f"{url}: cannot reach the object store (endpoint http://127.0.0.1:{closed})" in result.err
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", s3.endpoint)
    assert curate.storage.Remote(url).list("") == []


def test_credential_failures_name_the_cause():
    url = "s3://bucket/ds"
    assert describe_failure(url, PermissionError("Access Denied")).startswith(f"{url}: access denied")
    error = type("NoCredentialsError", (Exception,), {})("Unable to locate credentials")
    assert "no credentials for the object store" in describe_failure(url, error)
    assert describe_failure(url, ValueError("something else")) is None


def test_objects_fetched_for_decoders_are_checked_against_their_hash(s3, tmp_path, monkeypatch):
    src = speech_voices(tmp_path, 1)
    url = s3.url()
    assert import_writer(src, url)() == 0
    monkeypatch.setenv("RUBBERSHEET_CACHE", str(tmp_path / "cold-cache"))
    dataset = curate.open(url)
    row = dataset.load().manifest.iloc[0]
    key = f"objects/{row['object'][:2]}/{row['object']}.{row['ext']}"
    dataset.remote.write(key, b"tampered")
    with pytest.raises(OSError, match="does not match its hash"):
        dataset.object_path(row["object"], row["ext"])
    assert not (tmp_path / "cold-cache" / key).exists()
    problems, _ = verify(dataset)
    assert [str(p) for p in problems] == [f"{url}/{key}: object content does not match its hash (corrupted)"]


def test_a_writer_whose_lock_was_taken_over_commits_nothing(s3, tmp_path):
    src = speech_voices(tmp_path, 1)
    url = s3.url()
    assert import_writer(src, url)() == 0
    dataset = curate.open(url)
    staged = dataset.stage(dataset.load().manifest.iloc[:20], info={"command": "test"})
    taken = json.loads(dataset.remote.read(".lock")) | {"token": "another writer's", "host": "another-machine"}
    dataset.remote.write(".lock", json.dumps(taken).encode())  # its lease ran out and another writer took it
    with pytest.raises(StoreLocked, match="this writer's lock expired and another writer took it over"):
        staged.commit()
    assert dataset.versions() == dataset.version_dirs() == ["v0001"]
    assert json.loads(dataset.remote.read(".lock"))["token"] == "another writer's"  # the new holder's lock stays
