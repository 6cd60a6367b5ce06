"""Export a version as plain folders of media, in one of two layouts that other tools read.

`labels` (default): SPLIT/LABEL/FILE + one labels.csv at the top. labels.csv carries every manifest column (path,
id, label, tags and annotations ';'-separated, split, group, origin, source_id, recipe, transform, then every
metadata column), so `curate import` of the exported folder gives back the same manifest, the same object hashes
and the same fingerprint. Items without a split go under `unsplit/`.

`hf`: the Hugging Face `datasets` folder layout read by the `imagefolder` and `audiofolder` builders
(`load_dataset("imagefolder", data_dir=DIR)`): one folder per split, `train/`, `dev/` (which `datasets` names the
`validation` split) and `test/`, each with LABEL/FILE and a `metadata.parquet` whose `file_name` column is the
file's path relative to that split folder, then label, tags (a list of strings), id, group, origin, source_id,
recipe, transform and every metadata column (typed as in the manifest). The builders accept metadata.csv, .jsonl
or .parquet; CSV is not used because `datasets` infers each split's CSV types on its own and refuses splits whose
types differ, which happens whenever a column is filled in one split only (source_id, recipe and transform are
empty outside train, where augmented items live). Every split's parquet carries the schema of the whole table.
A version without splits goes into `train/` alone (the single split the builders make); a version where only
some items have a split is refused.

The target must be a new or empty folder outside every dataset; anything else is refused with one line (exit 2).
The export is written into a temporary sibling folder and renamed into place, so a failure leaves nothing."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path

from curate.exceptions import BadInput
from curate.manifest import CORE_COLUMNS, jsonable

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def folder_names(labels: list[str]) -> dict[str, str]:
    """A folder name per label: the label itself when it is a safe name that no other label collides with on a
    case-insensitive filesystem, else a slug plus a short hash (so 'I' and 'i' or 'a/b' never share a folder)."""
    lowered: dict[str, int] = {}
    for label in labels:
        lowered[label.lower()] = lowered.get(label.lower(), 0) + 1
    names = {}
    for label in labels:
        if _SAFE.match(label) and lowered[label.lower()] == 1:
            names[label] = label
        else:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._")[:40] or "label"
            names[label] = f"{slug}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
    return names


def file_name(item_id: str, ext: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id.replace("/", "__")).strip("._") or "item"
    return name if name.lower().endswith("." + ext) else f"{name}.{ext}"


FORMATS = ("labels", "hf")
METADATA_FILE = "metadata.parquet"
HF_SPLITS = ("train", "dev", "test")


def export_version(version, to: str | os.PathLike, format: str = "labels") -> int:
    """Write `version` into the new folder `to` (must not exist, or be empty, and lie outside every dataset) in
    the `format` layout (see the module docstring). Returns the number of items."""
    from curate.store import refuse_inside_dataset

    if format not in FORMATS:
        raise BadInput(f"--format: {format!r} is not one of {', '.join(FORMATS)}")
    target = Path(to)
    refuse_inside_dataset(target, "--to")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BadInput(f"{target}: already exists and is not an empty folder")
    frame = version.manifest
    hf = format == "hf"
    if hf:
        splits = set(frame["split"].dropna())
        if splits and frame["split"].isna().any():
            raise BadInput(f"{version.ref}: {int(frame['split'].isna().sum())} item(s) have no split while others "
                           "do; the hf layout needs every item in train/dev/test (run `curate split` first, or use "
                           "--format labels)")
    folders = folder_names(sorted(set(frame["label"])))
    metadata = [c for c in frame.columns if c not in CORE_COLUMNS]
    if hf:
        header = ["file_name", "label", "tags", *[c for c in CORE_COLUMNS if c not in
                                                  ("object", "ext", "media", "label", "tags", "split")], *metadata]
    else:
        header = ["path", *[c for c in CORE_COLUMNS if c not in ("object", "ext", "media")], *metadata]
    prefetch = getattr(version.dataset, "prefetch", None)
    if prefetch is not None:  # a dataset on object storage: fetched in batches into the local cache first
        prefetch(zip(frame["object"], frame["ext"]))
    temp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    temp.mkdir(parents=True)
    try:
        rows, used = [], set()
        per_split: dict[str, list[int]] = {}
        for record in frame.to_dict("records"):
            split = record["split"] or ("train" if hf else "unsplit")
            name = file_name(record["id"], record["ext"])
            relative = f"{split}/{folders[record['label']]}/{name}"
            if relative.lower() in used:
                stem = name.rsplit(".", 1)[0]
                name = f"{stem}-{hashlib.sha256(record['id'].encode()).hexdigest()[:8]}.{record['ext']}"
                relative = f"{split}/{folders[record['label']]}/{name}"
            used.add(relative.lower())
            (temp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(version.dataset.object_path(record["object"], record["ext"]), temp / relative)
            if hf:  # file_name is relative to the split folder's metadata file
                row = {"file_name": relative.split("/", 1)[1], **{c: _value(record.get(c)) for c in header[1:]}}
                per_split.setdefault(split, []).append(len(rows))
            else:
                row = [relative, *[_cell(record.get(c)) for c in header[1:]]]
            rows.append(row)
        if hf:
            _write_hf_metadata(temp, header, rows, per_split)
        else:
            with (temp / "labels.csv").open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(rows)
        if target.exists():
            target.rmdir()
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return len(rows)


def _value(value):
    value = jsonable(value)
    if isinstance(value, list):
        return [str(v) for v in value]
    return value


def _write_hf_metadata(folder: Path, header: list[str], rows: list[dict], per_split: dict[str, list[int]]) -> None:
    """One metadata.parquet per split folder, all with the schema of the whole table, so that `datasets` sees the
    same features in every split (per-split CSV type inference disagrees as soon as a column, such as source_id,
    is filled in train only)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    whole = pa.Table.from_pandas(pd.DataFrame(rows, columns=header), preserve_index=False)
    schema = whole.schema.remove_metadata()
    for split, indices in per_split.items():
        table = pa.Table.from_pandas(pd.DataFrame([rows[i] for i in indices], columns=header), schema=schema,
                                     preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, folder / split / METADATA_FILE)


def _cell(value) -> str:
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, (dict, bool)):
        return json.dumps(value)
    return str(value)
