"""The fast import (issue 22) changes nothing but the time: labels.csv read column-wise gives the rows the per-row
reference reads, or defers to it (so the first bad line is named word for word); files probed by a pool of
processes and objects written as a syncfs batch give the manifest, fingerprint and store the one-by-one import
gives."""
from __future__ import annotations

import csv
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import curate
import curate.files
from curate import importer, store
from curate import manifest as mf
from curate.exceptions import BadInput
from curate.importer import _read_labels_rows, _read_table, build_manifest, import_folder
from curate.media import probe, sha256_file
from curate.verify import verify

from conftest import ROOT, SAMPLE_MEDIA
from test_import_fuzz import CASES, SEED, good_folder, noise_png, write_rows


def reference(src: Path, check_files: bool):
    try:
        return "ok", _read_labels_rows(src, check_files)
    except BadInput as exc:
        return "error", str(exc)


def fast(src: Path, check_files: bool):
    """The fast path's outcome: ('ok', (header, rows)), ('error', message), or None (it deferred)."""
    try:
        table = _read_table(src, check_files)
    except BadInput as exc:
        return "error", str(exc)
    return None if table is None else ("ok", (table.header, table.rows()))


def assert_same_as_reference(src: Path) -> bool:
    """The fast path agrees with the reference wherever it answers; True if it answered for check_files=False."""
    answered = False
    for check_files in (False, True):
        expected = reference(src, check_files)
        got = fast(src, check_files)
        if got is not None:
            assert got == expected, (src, check_files)
            answered = answered or not check_files
        if expected[0] == "ok":
            assert importer.read_labels(src, check_files) == expected[1]
        else:
            with pytest.raises(BadInput) as caught:
                importer.read_labels(src, check_files)
            assert str(caught.value) == expected[1]
    return answered


@pytest.mark.parametrize("index", range(len(CASES)), ids=[name for name, _, _ in CASES])
def test_every_bad_folder_reads_as_the_reference_reads_it(index, tmp_path):
    _, build, _ = CASES[index]
    src = tmp_path / "src"
    good_folder(src)
    build(src, np.random.default_rng([SEED, index]))
    assert_same_as_reference(src)


def _variant(folder: Path, rows: list[list[str]], text: str | None = None) -> Path:
    good_folder(folder)
    (folder / "audio" / "link.wav").symlink_to("a.wav")
    (folder / "linked").symlink_to("img")
    if text is None:
        write_rows(folder, rows)
    else:
        (folder / "labels.csv").write_bytes(text.encode("utf-8"))
    return folder


GOOD = [["path", "label", "tags", "split", "group", "snr", "speaker"],
        ["audio/a.wav", "yes", "clean", "train", "g1", "10", "alice"],
        ["audio/b.wav", "no", "noisy;cafe", "dev", "g2", "3.5", "bob"],
        ["img/c.png", "ok", "wood", "test", "", "7", ""]]
VALID = {
    "plain": GOOD,
    "columns-reordered": [[r[1], r[0], *r[2:]] for r in GOOD],
    "spaces": [[f"  {v} " if v else v for v in r] for r in GOOD],
    "split-aliases": [GOOD[0], [*GOOD[1][:3], "VAL", *GOOD[1][4:]], [*GOOD[2][:3], "Validation", *GOOD[2][4:]],
                      [*GOOD[3][:3], "", *GOOD[3][4:]]],
    "windows-and-dot-paths": [GOOD[0], ["audio\\a.wav", *GOOD[1][1:]], ["./audio//b.wav", *GOOD[2][1:]],
                              ["img/./c.png", *GOOD[3][1:]]],
    "links-inside": [GOOD[0], ["audio/link.wav", *GOOD[1][1:]], GOOD[2], ["linked/c.png", *GOOD[3][1:]]],
    "id-column": [[*GOOD[0], "id"], [*GOOD[1], "one"], [*GOOD[2], ""], [*GOOD[3], "three"]],
    "reserved-columns": [[*GOOD[0], "origin", "source_id", "recipe", "transform", "annotations"],
                         [*GOOD[1], "real", "", "", "", "box;  dog ;"],
                         [*GOOD[2], "augmented", "audio/a.wav", "r1", '{"name": "Gain", "db": 3}', ""],
                         [*GOOD[3], "", "", "", "[]", ";"]],
    "numbers": [[*GOOD[0], "i", "ie", "f", "fe", "mixed", "empty", "big", "exact"],
                [*GOOD[1], "+5", "", ".5", "1e-05", "nan", "", "9223372036854775807", "9007199254740992"],
                [*GOOD[2], "-0", "7", "2", "", "12", "", "-9223372036854775808", ""],
                [*GOOD[3], "007", "-3", "-1.5E+3", "3.", "abc", "", "1", "-9007199254740992"]],
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_folders_take_the_fast_path_and_read_the_same(name, tmp_path):
    src = _variant(tmp_path / "src", VALID[name])
    assert assert_same_as_reference(src), "the fast path deferred on a valid folder"


@pytest.mark.parametrize("name, text", [
    ("bom-and-crlf", "\ufeffpath,label\r\naudio/a.wav,yes\r\naudio/b.wav,no\r\n"),
    ("no-final-newline", "path,label\naudio/a.wav,yes\naudio/b.wav,no"),
    ("quoted", 'path,label,note\n"audio/a.wav","yes","a, b"\naudio/b.wav,no,"say ""hi"""\n'),
])
def test_csv_forms_take_the_fast_path(name, text, tmp_path):
    assert assert_same_as_reference(_variant(tmp_path / "src", [], text))


@pytest.mark.parametrize("name, text", [
    ("blank-rows", "path,label\n\naudio/a.wav,yes\n , \naudio/b.wav,no\n"),
    ("quoted-newline-in-blank-row", 'path,label\n"\n",\naudio/a.wav,yes\n'),
    ("bare-cr", "path,label\raudio/a.wav,yes\raudio/b.wav,no\r"),
])
def test_unusual_but_valid_folders_defer_and_read_the_same(name, text, tmp_path):
    src = _variant(tmp_path / "src", [], text)
    assert reference(src, False)[0] == "ok"
    assert_same_as_reference(src)


@pytest.mark.parametrize("line", [2, 150, 299])
def test_the_first_bad_line_is_named_in_a_long_file(line, tmp_path):
    src = tmp_path / "src"
    (src / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [["path", "label", "score"]]
    for k in range(300):
        (src / "img" / f"{k}.png").write_bytes(noise_png(rng, 4))
        rows.append([f"img/{k}.png", "x", str(k)])
    rows[line - 1][2] = "inf"
    rows[-1][2] = "nan"   # a later bad value in the same column: not the one named
    write_rows(src, rows)
    with pytest.raises(BadInput, match=rf"labels.csv:{line}: column 'score': 'inf' is not a finite number"):
        importer.read_labels(src, check_files=False)


# -- the import: pool of processes and batched objects vs one by one ------------------------------------------------
def _sequential(monkeypatch) -> None:
    monkeypatch.setattr(importer, "PARALLEL_MIN_ROWS", 10 ** 9)
    monkeypatch.setattr(store, "BATCH_MIN_OBJECTS", 10 ** 9)


@pytest.fixture
def thread_free(request) -> bool:
    """The import forks its pool only in a process without other threads. In a suite that has started some (Ray,
    grpc, ...) the test runs again in a fresh interpreter and its verdict is that run's: True means it has run."""
    import threading

    if threading.active_count() == 1:
        return False
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-3000:]
    return True


def _parallel(monkeypatch) -> None:
    import threading

    assert threading.active_count() == 1, "run through the thread_free fixture"
    monkeypatch.setattr(importer, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(importer, "WORKERS", 2)
    monkeypatch.setattr(store, "BATCH_MIN_OBJECTS", 1)
    if curate.files.syncfs_function() is None:
        pytest.skip("no syncfs here: objects are written one by one")
    assert importer._workers(2) == 2


def _reference_fingerprint(src: Path) -> str:
    """The fingerprint the import has always written: per-row read, probe and sha256 of every file."""
    header, rows = _read_labels_rows(src, check_files=False)
    kinds = {r.line: probe(r.file) for r in rows}
    frame = mf.normalise(build_manifest(header, rows, kinds))
    files = {importer.row_id(r): r.file for r in rows}
    frame["object"] = [sha256_file(files[i]) for i in frame["id"]]
    return mf.fingerprint(mf.normalise(frame))


def _tree(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
            for p in sorted((root / "objects").rglob("*")) if p.is_file()}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the pool forks")
@pytest.mark.parametrize("folder", ["speech", "ocr", "inspection"])
def test_pool_and_batch_give_what_one_by_one_gives(folder, tmp_path, monkeypatch, thread_free):
    if thread_free:
        return
    with monkeypatch.context() as m:
        _sequential(m)
        one = import_folder(SAMPLE_MEDIA / folder, tmp_path / "one").version
    with monkeypatch.context() as m:
        _parallel(m)
        pool = import_folder(SAMPLE_MEDIA / folder, tmp_path / "pool").version
    assert pool.info["fingerprint"] == one.info["fingerprint"] == _reference_fingerprint(SAMPLE_MEDIA / folder)
    assert (pool.path / "manifest.parquet").read_bytes() == (one.path / "manifest.parquet").read_bytes()
    assert _tree(tmp_path / "pool") == _tree(tmp_path / "one")   # same objects, read-only, no temporaries
    assert all(mode == 0o444 for mode, _ in _tree(tmp_path / "pool").values())
    problems, _ = verify(curate.open(tmp_path / "pool"), quick=False)
    assert not problems


def _folder_with_bad_files(src: Path) -> None:
    (src / "img").mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = [["path", "label"]]
    for k in range(40):
        (src / "img" / f"{k:02d}.png").write_bytes(noise_png(rng, 8))
        rows.append([f"img/{k:02d}.png", "x"])
    (src / "img" / "25.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (src / "img" / "31.png").unlink()
    with (src / "labels.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the pool forks")
def test_pool_names_the_first_bad_file_and_skips_the_same(tmp_path, monkeypatch, thread_free):
    if thread_free:
        return
    src = tmp_path / "src"
    _folder_with_bad_files(src)
    outcomes = []
    for mode in (_sequential, _parallel):
        with monkeypatch.context() as m:
            mode(m)
            with pytest.raises(BadInput) as caught:
                import_folder(src, tmp_path / f"refused-{mode.__name__}")
            assert not (tmp_path / f"refused-{mode.__name__}").exists()
            result = import_folder(src, tmp_path / f"skipped-{mode.__name__}", skip_bad=True)
            outcomes.append((str(caught.value), result.skipped, result.version.info["fingerprint"]))
    assert outcomes[0] == outcomes[1]
    message, skipped, _ = outcomes[0]
    assert message.startswith(f"{src / 'labels.csv'}:27: img/25.png: not readable as an image")
    assert "(and 1 more bad file(s))" in message
    assert skipped[1] == f"{src / 'labels.csv'}:33: path 'img/31.png' does not exist"


def test_a_file_changed_after_probing_is_refused_and_leaves_no_temporaries(tmp_path, monkeypatch):
    src = tmp_path / "src"
    shutil.copytree(SAMPLE_MEDIA / "ocr", src)
    monkeypatch.setattr(store, "BATCH_MIN_OBJECTS", 1)
    inspect = importer._inspect_files

    def then_change(table, progress=None):
        found = inspect(table, progress)
        Path(table.files[-1]).write_bytes(noise_png(np.random.default_rng(5), 8))
        return found

    monkeypatch.setattr(importer, "_inspect_files", then_change)
    with pytest.raises(BadInput, match="does not match the media given"):
        import_folder(src, tmp_path / "ds")
    assert not list((tmp_path / "ds" / "objects").glob("*/.tmp-*"))
    assert curate.open(tmp_path / "ds").versions() == []


def test_metadata_typing_column_wise_matches_the_per_row_typing():
    """Random columns over an alphabet of number-ish characters: _typed gives the reference's values, or defers
    (_Unusual) exactly where the reference refuses a value."""
    from curate.importer import _Row, _type_metadata, _typed, _Unusual

    rng = np.random.default_rng(22)
    alphabet = list("0123456789+-.eEnaNifIty_x ") + ["inf", "nan", "1e999", "9" * 20, "", "", ""]
    refused = 0
    for _ in range(3000):
        size = int(rng.integers(1, 5))
        values = ["".join(rng.choice(alphabet, int(rng.integers(0, 4)))).strip() for _ in range(size)]
        if rng.random() < 0.5:   # mostly numbers
            values = [str(v) for v in rng.choice(["1", "-2", "+3", ".5", "1e-05", "2.", "", "7", "9007199254740993",
                                                  "-9223372036854775809", "nan", "1e999", "abc"], size)]
        rows = [_Row(k + 2, {"path": f"{k}", "label": "x", "m": v}, Path(".")) for k, v in enumerate(values)]
        try:
            _type_metadata(Path("labels.csv"), ["path", "label", "m"], rows)
            expected = [r.metadata["m"] for r in rows]
        except BadInput:
            expected = None
        try:
            got = _typed(values)
        except _Unusual:
            got = None
        assert got == expected and [type(v) for v in got or []] == [type(v) for v in expected or []], values
        refused += expected is None
    assert 100 < refused < 2900


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the crash is a forked child")
@pytest.mark.parametrize("when", [0, 1])   # killed before any object takes its name, or after the renames
def test_a_writer_killed_mid_batch_leaves_what_the_next_writer_repairs(when, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "BATCH_MIN_OBJECTS", 1)
    if curate.files.syncfs_function() is None:
        pytest.skip("no syncfs here: objects are written one by one")
    target = tmp_path / "ds"
    real, calls = curate.files.sync_filesystem, []

    def sync(syncfs, folder):   # the (when+1)-th syncfs never comes: the writer dies there, like kill -9
        if len(calls) == when:
            os._exit(86)
        calls.append(folder)
        real(syncfs, folder)

    pid = os.fork()
    if pid == 0:
        curate.files.sync_filesystem = sync
        try:
            import_folder(SAMPLE_MEDIA / "ocr", target)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 86
    dataset = curate.open(target)
    assert dataset.versions() == []
    left = list((target / "objects").glob("*/.tmp-*"))
    named = [p for p in (target / "objects").glob("*/*") if not p.name.startswith(".tmp-")]
    assert (left and not named) if when == 0 else (named and not left)
    version = import_folder(SAMPLE_MEDIA / "ocr", target).version   # the next writer sweeps and commits
    assert not list((target / "objects").glob("*/.tmp-*"))
    assert version.info["fingerprint"] == _reference_fingerprint(SAMPLE_MEDIA / "ocr")
    problems, _ = verify(dataset, quick=False)
    assert not problems
