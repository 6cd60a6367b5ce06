"""curate CLI end to end on sample_media: import, show, versions, diff, verify, export, and the bad-input rule."""
from __future__ import annotations

import csv
import json
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


# --- output for people and for programs (issue 21): full-width tables when piped, --json everywhere, --version ---

def run_main(main, args, cwd=None) -> tuple[int, str, str]:
    """Run a CLI's main() in-process with stdout/stderr captured (usable from a module-scoped fixture)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(before)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def augmented(speech_dataset, tmp_path_factory):
    """The speech dataset plus one small `augment run --json` (4 cafe-noise items): (dataset, code, stdout, stderr)."""
    from augment.cli import main
    from conftest import ROOT
    from test_runner import NOISE_RECIPE, recipe_file

    root = tmp_path_factory.mktemp("augmented")
    ds = root / "ds"
    shutil.copytree(speech_dataset, ds)
    for p in ds.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    text = NOISE_RECIPE + "evaluate:\n  baseline: {{model: logreg, features: logmel_stats}}\n"
    code, out, err = run_main(main, ["run", recipe_file(root, ds, budget=4, text=text), "--to", ds, "--json"],
                              cwd=ROOT)
    return ds, code, out, err


def predictions_csv(version, path: Path) -> Path:
    """Predictions for the dev and test items: right for every third item, a fixed wrong label otherwise."""
    rows = version.manifest[version.manifest["split"].isin(["dev", "test"])]
    labels = sorted(set(version.manifest["label"]))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "prediction"])
        for k, (item, label) in enumerate(zip(rows["id"], rows["label"])):
            writer.writerow([item, label if k % 3 else labels[(labels.index(label) + 1) % len(labels)]])
    return path


def assert_piped_table(text: str, whole: list[str]) -> None:
    """Piped output: nothing cut (no ellipsis), and every given cell text on one line (not wrapped)."""
    assert "…" not in text and "..." not in text, text
    lines = text.splitlines()
    for cell in whole:
        assert any(cell in line for line in lines), f"{cell!r} is cut or wrapped:\n{text}"


def test_augment_run_json_is_the_result_and_nothing_else_on_stdout(augmented):
    ds, code, out, err = augmented
    assert code == 0, err
    data = json.loads(out)  # stdout is exactly one JSON document
    assert data["status"] == "committed" and data["version"] == f"{ds}@v0002"
    assert data["counts"]["new"] == 4 and data["counts"]["items"] == 254
    assert data["gate"]["passed"] is True and data["fingerprint"] == curate.open(ds).load().info["fingerprint"]
    assert {r["tag"] for r in data["evaluation"]["tags"]} >= {"cafe_noise", "all"}
    assert Path(data["report"]).is_file() and data["report"].endswith("v0002/report.html")
    assert "plan cafe_noise:" in err and "gate PASSED" in err  # the human lines went to stderr


def test_history_piped_is_full_width(augmented, curate_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal setting must not cut piped output
    ds = augmented[0]
    rows = json.loads(curate_cli("history", ds, "--json").out)
    result = curate_cli("history", ds)
    assert result.code == 0
    figures = [f"{tag}: " for tag in rows[-1]["evaluation"]]
    assert figures, rows[-1]
    assert_piped_table(result.out, ["evaluation (dev accuracy, 95% CI)", "test_noise", "+4/-0"])
    for tag, e in rows[-1]["evaluation"].items():  # each figure, interval and n on one line
        line = next(line for line in result.out.splitlines() if f"{tag}: " in line)
        assert "->" in line and f"n={e['n']}" in line and line.count("[") == 2, line


def test_errors_piped_is_full_width(augmented, tmp_path, curate_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    ds = augmented[0]
    preds = predictions_csv(curate.open(ds).load("v0001"), tmp_path / "preds.csv")
    result = curate_cli("errors", preds, "--dataset", f"{ds}@v0001")
    assert result.code == 0, result.err
    assert_piped_table(result.out, ["share of errors", "gain (pts)", "low_bandwidth", "people_noise",
                                    "(weighted avg)", "by tag, ranked by potential gain = gap to HLP x share of "
                                    "data x importance"])


def test_errors_through_a_real_pipe(augmented, tmp_path):
    """`curate errors preds.csv | cat`: the console script writing into a pipe, as in a CI log."""
    ds = augmented[0]
    preds = predictions_csv(curate.open(ds).load("v0001"), tmp_path / "preds.csv")
    exe = Path(sys.executable).parent / "curate"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "curate.cli"]
    done = subprocess.run([*command, "errors", str(preds), "--dataset", f"{ds}@v0001"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    assert_piped_table(done.stdout, ["share of errors", "low_bandwidth", "accuracy"])


def test_metrics_by_tag_piped_names_every_column(speech_dataset, curate_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    result = curate_cli("metrics", speech_dataset, "--by", "tag")
    assert result.code == 0, result.err
    header = next(line for line in result.out.splitlines() if " metric " in line)  # the header row
    for tag in ("cafe_noise", "car_noise", "clean", "low_bandwidth", "people_noise"):
        assert tag in header, header
    assert_piped_table(result.out, ["spectral_rolloff_hz"])


def review_file(version, path: Path) -> Path:
    augmented_ids = list(version.manifest.loc[version.manifest["origin"] == "augmented", "id"])
    path.write_text(json.dumps({"schema": "rubbersheet.review", "schema_version": 1, "version": version.ref,
                                "fingerprint": version.info["fingerprint"],
                                "decisions": [{"id": augmented_ids[0], "decision": "reject"}]}))
    return path


def writable_copy(ds: Path, target: Path) -> Path:
    shutil.copytree(ds, target)
    for p in target.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    return target


# (CLI, arguments with {ds}: the augmented dataset, {speech}: the imported sample speech, {tmp}: a fresh folder,
#  {src}: a small media folder, {preds}: predictions, {review}: a review of {ds}@v0002, {copy}: a writable copy of
#  {ds}; the expected exit code; a key the JSON must have)
JSON_COMMANDS = [
    ("curate", "import {src} --to {tmp}/new --json", 0, "fingerprint"),
    ("curate", "versions {ds} --json", 0, None),
    ("curate", "show {ds}@v0002 --json", 0, "fingerprint"),
    ("curate", "diff {ds}@v0001 {ds}@latest --json", 0, "added"),
    ("curate", "verify {ds} --quick --json", 0, "problems"),
    ("curate", "gc {ds} --dry-run --json", 0, "removed"),
    ("curate", "export {speech} --to {tmp}/export --json", 0, "items"),
    ("curate", "baseline {ocr} --to {tmp}/b.csv --features pixels --json", 0, "accuracy"),
    ("curate", "errors {preds} --dataset {ds}@v0001 --json", 0, "tags"),
    ("curate", "audit {preds} --by tags --dataset {ds}@v0001 --json", 0, "slices"),
    ("curate", "history {ds} --json", 0, None),
    ("curate", "check {ds} --json", 0, "passed"),
    ("curate", "split {ocr_copy} --json", 0, "status"),
    ("curate", "report {ds} --to {tmp}/report --json", 0, "files"),
    ("curate", "metrics {speech} --by split --json", 0, None),
    ("curate", "drift {speech} --against {speech}@v0001 --json", 0, "metrics"),
    ("curate", "review summary {ds}@v0002 {review} --json", 0, "reject_augmented"),
    ("curate", "review apply {copy}@v0002 {copy_review} --json", 0, "changes"),
    ("augment", "run {recipe} --to {tmp}/dry --dry-run --json", 0, "plan"),
    ("augment", "transforms --media audio --json", 0, None),
]


@pytest.fixture(scope="module")
def ocr_dataset_small(tmp_path_factory):
    from curate.importer import import_folder

    path = tmp_path_factory.mktemp("ocr") / "ocr"
    import_folder(SAMPLE_MEDIA / "ocr", path)
    return path


@pytest.mark.parametrize("cli,args,code,key", JSON_COMMANDS, ids=[f"{c} {a.split()[0]}" + (
    f" {a.split()[1]}" if a.startswith("review") else "") for c, a, _, _ in JSON_COMMANDS])
def test_every_command_prints_json_with_json(cli, args, code, key, augmented, speech_dataset, ocr_dataset_small,
                                             media_folder, tmp_path, curate_cli, augment_cli):
    from test_runner import recipe_file

    ds = augmented[0]
    slots = {"ds": ds, "speech": speech_dataset, "tmp": tmp_path, "src": media_folder, "ocr": ocr_dataset_small}
    if "{preds}" in args:
        slots["preds"] = predictions_csv(curate.open(ds).load("v0001"), tmp_path / "preds.csv")
    if "{review}" in args:
        slots["review"] = review_file(curate.open(ds).load("v0002"), tmp_path / "review.json")
    if "{copy}" in args:
        slots["copy"] = writable_copy(ds, tmp_path / "copy")
        slots["copy_review"] = review_file(curate.open(slots["copy"]).load("v0002"), tmp_path / "copy-review.json")
    if "{ocr_copy}" in args:
        slots["ocr_copy"] = writable_copy(ocr_dataset_small, tmp_path / "ocr")
    if "{recipe}" in args:
        slots["recipe"] = recipe_file(tmp_path, speech_dataset, budget=4)
    argv = [a.format(**slots) for a in args.split()]
    if cli == "curate":
        result = curate_cli(*argv)
        got, out, err = result.code, result.out, result.err
    else:
        got, out, err = augment_cli(*argv)
    assert got == code, err
    data = json.loads(out)  # the whole of stdout is one JSON document
    if key is not None:
        assert key in data, sorted(data)
    else:
        assert isinstance(data, list) and data


@pytest.mark.parametrize("cli", ["curate", "augment"])
def test_version_prints_the_package_version(cli, curate_cli, augment_cli):
    from curate.store import package_version

    if cli == "curate":
        result = curate_cli("--version")
        code, out = result.code, result.out
    else:
        code, out, _ = augment_cli("--version")
    assert code == 0 and out.strip() == f"rubbersheet {package_version()}" and package_version()[0].isdigit()


def test_help_shows_reference_syntax_literally_and_no_type_noise(curate_cli, augment_cli):
    shown = curate_cli("show", "--help")
    assert shown.code == 0
    assert "PATH[@vNNNN|@latest]" in shown.out  # Rich markup would eat the brackets
    assert "<bool>" not in shown.out and "--json" in shown.out
    review = curate_cli("review", "apply", "--help")
    assert review.code == 0 and "PATH[@vNNNN]" in review.out and "<bool>" not in review.out
    code, out, _ = augment_cli("run", "--help")
    assert code == 0 and "--json" in out and "--to" in out and "<bool>" not in out
    assert "--out" not in out  # the old spelling works but is not advertised


def test_old_json_path_spelling_still_writes_the_file(augmented, tmp_path, curate_cli):
    """Deprecated `--json PATH` (errors/audit/check/drift): still writes PATH, with one warning line; `--json`
    before the positional argument is the new flag."""
    ds = augmented[0]
    preds = predictions_csv(curate.open(ds).load("v0001"), tmp_path / "preds.csv")
    old = curate_cli("errors", preds, "--dataset", f"{ds}@v0001", "--json", tmp_path / "e.json")
    assert old.code == 0 and json.loads((tmp_path / "e.json").read_text())["schema"] == "rubbersheet.errors"
    assert "--json PATH is deprecated; use --json-out PATH" in old.err and "by tag" in old.out
    new = curate_cli("errors", "--json", preds, "--dataset", f"{ds}@v0001")
    assert new.code == 0 and json.loads(new.out)["schema"] == "rubbersheet.errors" and new.err == ""
    both = curate_cli("errors", preds, "--dataset", f"{ds}@v0001", "--json", "--json-out", tmp_path / "f.json")
    assert json.loads(both.out) == json.loads((tmp_path / "f.json").read_text())


def test_old_out_and_review_summary_spellings_still_work(augmented, tmp_path, curate_cli):
    ds = augmented[0]
    review = review_file(curate.open(ds).load("v0002"), tmp_path / "review.json")
    old = curate_cli("review", "summary", review, "--dataset", f"{ds}@v0002")
    new = curate_cli("review", "summary", f"{ds}@v0002", review)
    assert old.code == new.code == 0 and old.out == new.out and "remove 1 augmented item(s)" in new.out
    neither = curate_cli("review", "summary", f"{ds}@v0002")
    assert neither.code == 2 and "missing argument REVIEW" in neither.err
