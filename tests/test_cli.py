"""curate CLI end to end on sample_media: import, show, versions, diff, verify, export, and the bad-input rule."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import curate

from conftest import SAMPLE_MEDIA


def label_rows(folder: Path) -> int:
    with (folder / "labels.csv").open(newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


@pytest.mark.parametrize("folder", ["speech", "noise", "inspection", "ocr"])
def test_import_each_sample_folder_then_verify(folder, tmp_path, curate_cli):
    ds = tmp_path / folder
    result = curate_cli("import", SAMPLE_MEDIA / folder, "--to", ds)
    assert result.code == 0, result.err
    assert f"imported {label_rows(SAMPLE_MEDIA / folder)} items" in result.out
    assert curate.open(ds).versions() == ["v0001"]
    assert (ds / "LATEST").read_text().split()[0] == "v0001"
    verified = curate_cli("verify", ds)
    assert verified.code == 0 and verified.out.startswith("ok: 1 versions")


def test_verify_names_the_flipped_object_and_exits_1(tmp_path, curate_cli):
    ds = tmp_path / "ds"
    assert curate_cli("import", SAMPLE_MEDIA / "inspection", "--to", ds).code == 0
    target = curate.open(ds).load().media_path("leaf/leaf_03.png")
    os.chmod(target, 0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    result = curate_cli("verify", ds)
    assert result.code == 1
    assert f"FAIL {target}: object content does not match its hash" in result.out
    assert "verify failed: 1 problem(s)" in result.out


def corrupt_wav(src: Path) -> None:
    (src / "audio" / "zero.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage")


def empty_png(src: Path) -> None:
    (src / "img" / "wood_01.png").write_bytes(b"")


def edit_labels(old: str, new: str):
    def apply(src: Path) -> None:
        labels = src / "labels.csv"
        labels.write_text(labels.read_text().replace(old, new, 1))
    return apply


BAD_INPUTS = [
    (edit_labels("path,label,", "path,lbl,"), "labels.csv: missing required column 'label'"),
    (edit_labels("audio/one.wav", "audio/eleven.wav"), "labels.csv:3: path 'audio/eleven.wav' does not exist"),
    (edit_labels("audio/one.wav", "../x.wav"), "labels.csv:3: path '../x.wav' escapes the source folder"),
    (corrupt_wav, "labels.csv:2: audio/zero.wav: not readable as audio"),
    (empty_png, "labels.csv:6: img/wood_01.png: empty file"),
    (edit_labels(",dev,", ",validation-set,"), "labels.csv:3: split 'validation-set' is not one of"),
    (edit_labels("audio/two.wav,two,", "audio/two.wav,,"), "labels.csv:4: label is empty"),
    (edit_labels("img/wood_00.png", "audio/zero.wav"), "labels.csv:5: duplicate item 'audio/zero.wav'"),
    (edit_labels("audio/two.wav,two,,test", "audio/two.wav,two,test"), "labels.csv:4: 6 fields, header has 7"),
]


@pytest.mark.parametrize("damage,message", BAD_INPUTS, ids=[m.split(": ", 1)[-1][:30] for _, m in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_nothing_written(damage, message, media_folder, tmp_path, curate_cli):
    damage(media_folder)
    ds = tmp_path / "new"
    result = curate_cli("import", media_folder, "--to", ds)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("curate: error: ") and message in lines[0], result.err
    assert not ds.exists()


def test_bad_input_into_an_existing_dataset_changes_nothing(media_folder, tmp_path, curate_cli):
    ds = tmp_path / "ds"
    assert curate_cli("import", media_folder, "--to", ds).code == 0
    snapshot = sorted(str(p.relative_to(ds)) for p in ds.rglob("*"))
    corrupt_wav(media_folder)
    assert curate_cli("import", media_folder, "--to", ds).code == 2
    assert sorted(str(p.relative_to(ds)) for p in ds.rglob("*")) == snapshot


def test_skip_bad_imports_the_rest_and_names_what_it_skipped(media_folder, tmp_path, curate_cli):
    corrupt_wav(media_folder)
    empty_png(media_folder)
    result = curate_cli("import", media_folder, "--to", tmp_path / "ds", "--skip-bad")
    assert result.code == 0 and "imported 3 items, 2 skipped" in result.out
    assert result.err.count("curate: skipped ") == 2 and "audio/zero.wav" in result.err
    manifest = curate.open(tmp_path / "ds").load().manifest
    assert sorted(manifest["id"]) == ["audio/one.wav", "audio/two.wav", "img/wood_00.png"]


def test_import_keeps_annotations_metadata_and_media_kinds(media_folder, tmp_path, curate_cli):
    assert curate_cli("import", media_folder, "--to", tmp_path / "ds").code == 0
    frame = curate.open(tmp_path / "ds").load().manifest.set_index("id")
    assert frame.loc["audio/zero.wav", "annotations"] == ["zero", "zero"]
    assert frame.loc["audio/two.wav", "annotations"] == []
    assert frame.loc["audio/zero.wav", "tags"] == ["clean", "tts"]
    assert frame.loc["img/wood_01.png", "split"] is None
    assert frame.loc["img/wood_00.png", "group"] == "img/wood_00.png"  # no group given: its own
    assert list(frame["media"]) == ["audio"] * 3 + ["image"] * 2
    assert list(frame["ext"]) == ["wav"] * 3 + ["png"] * 2
    assert frame.loc["audio/zero.wav", "snr"] == 10 and frame.loc["img/wood_00.png", "snr"] == 3.5


def test_diff_after_relabelling_and_adding(tmp_path, curate_cli):
    src = tmp_path / "speech"
    shutil.copytree(SAMPLE_MEDIA / "speech", src)
    ds = tmp_path / "ds"
    assert curate_cli("import", src, "--to", ds).code == 0
    text = (src / "labels.csv").read_text()
    text = text.replace("allison/zero.wav,zero,", "allison/zero.wav,oh,")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("flite_kal16/nine")) + "\n"
    (src / "labels.csv").write_text(text)
    result = curate_cli("import", src, "--to", ds)
    assert result.code == 0 and "ds@v0002" in result.out
    out = curate_cli("diff", f"{ds}@v0001", f"{ds}@latest")
    assert out.code == 0
    removed = [r for r in (SAMPLE_MEDIA / "speech" / "labels.csv").read_text().splitlines()
               if r.startswith("flite_kal16/nine")]
    assert f"+0 added, -{len(removed)} removed, ~1 changed" in out.out
    assert "~ allison/zero.wav (label)" in out.out
    import json

    data = json.loads(curate_cli("diff", f"{ds}@v1", ds, "--json").out)
    assert data["changed"] == {"allison/zero.wav": ["label"]}
    assert data["count_deltas"]["label"]["oh"] == {"before": 0, "after": 1, "delta": 1}
    assert data["count_deltas"]["label"]["nine"]["delta"] == -len(removed)
    assert curate.open(ds).load("v0002").info["parent"] == "v0001"


def test_show_and_versions(speech_dataset, curate_cli):
    shown = curate_cli("show", f"{speech_dataset}@v0001")
    assert shown.code == 0
    assert "items 250" in shown.out and "cafe_noise" in shown.out and "low_bandwidth" in shown.out
    listed = curate_cli("versions", speech_dataset)
    assert listed.code == 0 and "v0001*" in listed.out


def test_export_layout_and_round_trip(tmp_path, curate_cli):
    ds = tmp_path / "ocr"
    assert curate_cli("import", SAMPLE_MEDIA / "ocr", "--to", ds).code == 0
    out = tmp_path / "export"
    assert curate_cli("export", ds, "--to", out).code == 0
    folders = sorted(p.name for p in (out / "unsplit").iterdir())
    assert len(folders) == 5 and "I" in folders and "l" in folders
    assert len(list(out.glob("unsplit/*/*.png"))) == 90
    again = tmp_path / "again"
    assert curate_cli("import", out, "--to", again).code == 0
    assert curate.open(again).load().info["fingerprint"] == curate.open(ds).load().info["fingerprint"]
    refused = curate_cli("export", ds, "--to", out)
    assert refused.code == 2 and "already exists" in refused.err


def test_speech_export_round_trips_splits_and_metadata(speech_dataset, tmp_path, curate_cli):
    out = tmp_path / "export"
    assert curate_cli("export", speech_dataset, "--to", out).code == 0
    assert sorted(p.name for p in out.iterdir()) == ["dev", "labels.csv", "test", "train"]
    assert (out / "train" / "zero" / "allison__zero.wav").read_bytes() == \
        (SAMPLE_MEDIA / "speech" / "allison" / "zero.wav").read_bytes()
    assert curate_cli("import", out, "--to", tmp_path / "again").code == 0
    assert curate.open(tmp_path / "again").load().info["fingerprint"] == \
        curate.open(speech_dataset).load().info["fingerprint"]


@pytest.mark.parametrize("args,message", [
    (["show", "nowhere/ds"], "nowhere/ds: dataset does not exist"),
    (["show", "{ds}@v0042"], "no such version (versions: v0001)"),
    (["show", "{ds}@vfoo"], "bad version reference '@vfoo'"),
    (["import"], "Missing argument"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["diff", "{ds}"], "Missing argument"),
    (["export", "{ds}"], "Missing option '--to'"),
])
def test_usage_and_reference_errors(args, message, speech_dataset, curate_cli):
    result = curate_cli(*[a.format(ds=speech_dataset) for a in args])
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.err


def test_console_script_bad_input_has_no_traceback(tmp_path):
    """Through the installed `curate` executable: one stderr line, exit 2."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "labels.csv").write_text("path,label\n../../etc/passwd,x\n")
    exe = Path(sys.executable).parent / "curate"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "curate.cli"]
    done = subprocess.run([*command, "import", str(tmp_path / "src"), "--to", str(tmp_path / "ds")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "escapes the source folder" in done.stderr
    assert not (tmp_path / "ds").exists()


def test_help_answers_fast_without_heavy_imports():
    code = ("import sys, augment.cli, curate.cli; "
            "heavy = [m for m in ('pandas', 'pyarrow', 'albumentations', 'sklearn', 'matplotlib', 'librosa') "
            "if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
