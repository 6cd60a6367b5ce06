"""Export a version as plain folders (split/label/file) + labels.csv, for training code that wants files.

The labels.csv written carries every manifest column (id, origin, lineage, metadata), so `curate import` of the
exported folder gives a version with the same fingerprint."""
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


def export_version(version, to: str | os.PathLike) -> int:
    """Write `version` into the new folder `to` (must not exist, or be empty). Returns the number of items."""
    target = Path(to)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BadInput(f"{target}: already exists and is not an empty folder")
    frame = version.manifest
    folders = folder_names(sorted(set(frame["label"])))
    metadata = [c for c in frame.columns if c not in CORE_COLUMNS]
    header = ["path", *[c for c in CORE_COLUMNS if c not in ("object", "ext", "media")], *metadata]
    temp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    temp.mkdir(parents=True)
    try:
        rows, used = [], set()
        for record in frame.to_dict("records"):
            split = record["split"] or "unsplit"
            name = file_name(record["id"], record["ext"])
            relative = f"{split}/{folders[record['label']]}/{name}"
            if relative.lower() in used:
                stem = name.rsplit(".", 1)[0]
                name = f"{stem}-{hashlib.sha256(record['id'].encode()).hexdigest()[:8]}.{record['ext']}"
                relative = f"{split}/{folders[record['label']]}/{name}"
            used.add(relative.lower())
            (temp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(version.dataset.object_path(record["object"], record["ext"]), temp / relative)
            rows.append([relative, *[_cell(record.get(c)) for c in header[1:]]])
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


def _cell(value) -> str:
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, (dict, bool)):
        return json.dumps(value)
    return str(value)
