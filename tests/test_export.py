"""curate export: labels.csv that `curate import` reads back whole, and the Hugging Face folder layout."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

import curate

from conftest import SAMPLE_MEDIA


@pytest.fixture(scope="module")
def inspection(tmp_path_factory):
    """sample_media/inspection with splits, groups, an annotations column and two augmented train items (lineage
    filled in train only, as augmented items are), imported as a dataset."""
    from curate.importer import import_folder

    src = tmp_path_factory.mktemp("inspection-src")
    rows = list(csv.DictReader((SAMPLE_MEDIA / "inspection" / "labels.csv").open(encoding="utf-8")))
    out = []
    for i, row in enumerate(rows):
        row = {"path": str(SAMPLE_MEDIA / "inspection" / row["path"]), **{k: v for k, v in row.items() if k != "path"}}
        split = ("train", "train", "dev", "test")[i % 4]
        out.append({**row, "split": split, "group": f"photo-{i // 4}", "annotations": f"{row['label']};{row['label']}",
                    "origin": "real", "source_id": "", "recipe": "", "transform": ""})
    for j in (0, 1):  # two train items become copies of the train item before them
        out[4 * j + 1].update(origin="augmented", source_id=f"i{4 * j}", recipe="defects",
                              transform=json.dumps([{"transform": "Scratch", "params": {"count": 1}, "applied": True}]))
    for i, row in enumerate(out):
        row["id"] = f"i{i}"
        image = src / f"{i}.png"
        image.write_bytes(open(row.pop("path"), "rb").read())
        row["path"] = image.name
    header = ["path", "id", *[k for k in out[0] if k not in ("path", "id")]]
    with (src / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(out)
    return import_folder(src, tmp_path_factory.mktemp("inspection") / "ds").version.dataset.path


def _manifest(path):
    frame = curate.open(path).load().manifest
    return json.loads(frame.sort_values("id").to_json(orient="records"))


@pytest.mark.parametrize("which", ["speech", "inspection"])
def test_labels_export_round_trips_every_column_and_object(which, speech_dataset, inspection, tmp_path, curate_cli):
    source = speech_dataset if which == "speech" else inspection
    out = tmp_path / "export"
    result = curate_cli("export", source, "--to", out, "--format", "labels")
    assert result.code == 0, result.err
    header = (out / "labels.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert {"path", "id", "label", "tags", "split", "group", "origin", "source_id", "transform"} <= set(header)
    again = tmp_path / "again"
    assert curate_cli("import", out, "--to", again).code == 0
    before, after = _manifest(source), _manifest(again)
    assert len(after) == len(before) and after == before  # every column, object hashes included
    assert curate.open(again).load().info["fingerprint"] == curate.open(source).load().info["fingerprint"]
    if which == "inspection":
        augmented = [r for r in after if r["origin"] == "augmented"]
        assert [r["source_id"] for r in augmented] == ["i0", "i4"] and augmented[0]["annotations"]


def test_hf_layout_has_split_folders_and_one_schema(speech_dataset, tmp_path, curate_cli):
    import pyarrow.parquet as pq

    out = tmp_path / "hf"
    assert curate_cli("export", speech_dataset, "--to", out, "--format", "hf").code == 0
    assert sorted(p.name for p in out.iterdir()) == ["dev", "test", "train"]
    manifest = curate.open(speech_dataset).load().manifest.set_index("id")
    schemas, seen = [], 0
    for split in ("train", "dev", "test"):
        table = pq.read_table(out / split / "metadata.parquet")
        schemas.append(table.schema)
        rows = table.to_pylist()
        assert len(rows) == int((manifest["split"] == split).sum())
        for row in rows:
            item = manifest.loc[row["id"]]
            assert (out / split / row["file_name"]).read_bytes() == \
                curate.open(speech_dataset).object_path(item["object"], item["ext"]).read_bytes()
            assert row["label"] == item["label"] and row["tags"] == list(item["tags"])
            assert row["group"] == item["group"] and row["voice"] == item["voice"]
        seen += len(rows)
    assert seen == len(manifest) == 250
    assert schemas[0] == schemas[1] == schemas[2]
    import pyarrow as pa

    assert pa.types.is_list(schemas[0].field("tags").type) and schemas[0].field("tags").type.value_type == pa.string()


def test_hf_export_loads_with_the_datasets_imagefolder_builder(inspection, tmp_path, curate_cli, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    assert curate_cli("export", inspection, "--to", out, "--format", "hf").code == 0
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "cache"))
    manifest = curate.open(inspection).load().manifest.set_index("id")
    assert {s: len(loaded[s]) for s in loaded} == {"train": 30, "validation": 15, "test": 15}
    for split, ours in (("train", "train"), ("validation", "dev"), ("test", "test")):
        for row in loaded[split]:
            item = manifest.loc[row["id"]]
            assert item["split"] == ours and row["label"] == item["label"] and row["tags"] == list(item["tags"])
            assert row["origin"] == item["origin"] and row["source_id"] == item["source_id"]
            assert row["x"] == item["x"]
    first = loaded["train"][1]
    assert first["origin"] == "augmented" and first["source_id"] == "i0"
    assert json.loads(first["transform"])[0]["transform"] == "Scratch"
    original = Image.open(curate.open(inspection).object_path(manifest.loc[first["id"], "object"], "png"))
    assert np.array_equal(np.asarray(first["image"].convert("RGB")), np.asarray(original.convert("RGB")))


def test_hf_export_of_audio_has_the_audiofolder_layout(speech_dataset, tmp_path, curate_cli):
    """`datasets`' audiofolder builder decodes every clip through torchcodec (and so torch), which this project does
    not install; the layout it reads is checked directly: per split, metadata.parquet whose file_name names a
    readable clip of that split with the item's label and tags."""
    import pyarrow.parquet as pq
    import soundfile as sf

    out = tmp_path / "hf"
    assert curate_cli("export", speech_dataset, "--to", out, "--format", "hf").code == 0
    manifest = curate.open(speech_dataset).load("latest").manifest.set_index("id")
    sizes = {}
    for split in ("train", "dev", "test"):
        table = pq.read_table(out / split / "metadata.parquet").to_pylist()
        sizes[split] = len(table)
        for row in table:
            assert sf.info(str(out / split / row["file_name"])).frames > 0
            item = manifest.loc[row["id"]]
            assert row["label"] == item["label"] and list(row["tags"]) == list(item["tags"])
    assert sizes == {"train": 150, "dev": 50, "test": 50}


def test_hf_export_without_splits_is_one_train_split(tmp_path, curate_cli):
    ds = tmp_path / "ocr"
    assert curate_cli("import", SAMPLE_MEDIA / "ocr", "--to", ds).code == 0
    out = tmp_path / "hf"
    assert curate_cli("export", ds, "--to", out, "--format", "hf").code == 0
    assert [p.name for p in out.iterdir()] == ["train"]
    assert len(list(out.glob("train/*/*.png"))) == 90


@pytest.mark.parametrize("case,message", [
    ("non-empty", "already exists and is not an empty folder"),
    ("inside", "is inside the dataset"),
    ("format", "--format: 'tfrecord' is not one of labels, hf"),
])
def test_export_refusals_are_one_line(case, message, inspection, tmp_path, curate_cli):
    target = {"non-empty": tmp_path / "full", "inside": inspection / "exports", "format": tmp_path / "new"}[case]
    if case == "non-empty":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    result = curate_cli("export", inspection, "--to", target, *(["--format", "tfrecord"] if case == "format" else []))
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert not (inspection / "exports").exists() and (case != "non-empty" or [p.name for p in target.iterdir()] ==
                                                      ["keep.txt"])
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_hf_export_refuses_a_version_with_some_items_unsplit(tmp_path, curate_cli):
    src = tmp_path / "src"
    src.mkdir()
    lines = ["path,label,split"]
    for i, path in enumerate(sorted((SAMPLE_MEDIA / "ocr" / "dejavu_sans").glob("*.png"))[:4]):
        (src / path.name).write_bytes(path.read_bytes())
        lines.append(f"{path.name},{path.stem},{'train' if i else ''}")
    (src / "labels.csv").write_text("\n".join(lines) + "\n")
    assert curate_cli("import", src, "--to", tmp_path / "ds").code == 0
    result = curate_cli("export", tmp_path / "ds", "--to", tmp_path / "out", "--format", "hf")
    assert result.code == 2 and "1 item(s) have no split while others do" in result.err
    assert not (tmp_path / "out").exists()
    assert curate_cli("export", tmp_path / "ds", "--to", tmp_path / "out").code == 0  # labels keeps them
