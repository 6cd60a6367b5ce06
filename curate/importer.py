"""Import a folder of media + labels.csv as a new dataset version.

labels.csv columns: path, label (required); tags and annotations (';'-separated), split, group (optional); id,
origin, source_id, recipe, transform (optional, so an exported version re-imports unchanged); any other column is
kept as metadata (numbers when every value in the column is a number). Every file is decoded before anything is
written: a bad row fails the whole import (exit 2) unless it is only an unreadable file and skip_bad is set.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from curate.exceptions import BadInput

LABELS_FILE = "labels.csv"
REQUIRED = ("path", "label")
_SPLIT_ALIASES = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev", "test": "test"}


@dataclass
class ImportResult:
    version: Any
    imported: int
    skipped: list[str] = field(default_factory=list)
    unchanged: bool = False


@dataclass
class _Row:
    line: int
    values: dict[str, str]
    file: Path


def read_labels(src: Path) -> tuple[list[str], list[_Row]]:
    """Parse and check labels.csv (not the media); every error names labels.csv, the line and the field."""
    labels = src / LABELS_FILE
    if not src.is_dir():
        raise BadInput(f"{src}: not a folder")
    if not labels.is_file():
        raise BadInput(f"{labels}: missing (a folder to import needs a labels.csv with columns path,label)")
    try:
        with labels.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise BadInput(f"{labels}: empty file (expected a header with columns path,label)")
            header = [h.strip() for h in header]
            _check_header(labels, header)
            rows, seen = [], {}
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                line = reader.line_num
                if len(values) != len(header):
                    raise BadInput(f"{labels}:{line}: {len(values)} fields, header has {len(header)}")
                row = dict(zip(header, (v.strip() for v in values)))
                rows.append(_Row(line, row, _resolve(src, labels, line, row["path"])))
                key = row_id(rows[-1])
                if key in seen:
                    raise BadInput(f"{labels}:{line}: duplicate item {key!r} (first on line {seen[key]})")
                seen[key] = line
                _check_row(labels, line, row)
    except UnicodeDecodeError as exc:
        raise BadInput(f"{labels}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise BadInput(f"{labels}: malformed CSV ({exc})") from None
    if not rows:
        raise BadInput(f"{labels}: no rows")
    return header, rows


def _check_header(labels: Path, header: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise BadInput(f"{labels}: missing required column '{missing[0]}' (found: {', '.join(header) or 'none'})")
    if any(not h for h in header):
        raise BadInput(f"{labels}: header has an empty column name (column {header.index('') + 1})")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise BadInput(f"{labels}: duplicate column '{dupes[0]}'")
    for forbidden in ("object", "ext", "media"):
        if forbidden in header:
            raise BadInput(f"{labels}: column '{forbidden}' is set by the store from the file, remove it")


def _resolve(src: Path, labels: Path, line: int, path: str) -> Path:
    if not path:
        raise BadInput(f"{labels}:{line}: path is empty")
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise BadInput(f"{labels}:{line}: path '{path}' escapes the source folder (use a path relative to {src})")
    file = src.joinpath(*pure.parts)
    root = src.resolve()
    if not file.resolve().is_relative_to(root):
        raise BadInput(f"{labels}:{line}: path '{path}' escapes the source folder through a link")
    if not file.is_file():
        raise BadInput(f"{labels}:{line}: path '{path}' does not exist" if not file.exists()
                       else f"{labels}:{line}: path '{path}' is not a file")
    return file


def _check_row(labels: Path, line: int, row: dict[str, str]) -> None:
    if not row["label"]:
        raise BadInput(f"{labels}:{line}: label is empty")
    split = row.get("split", "")
    if split and split.lower() not in _SPLIT_ALIASES:
        raise BadInput(f"{labels}:{line}: split '{split}' is not one of train, dev, test (or empty)")
    origin = row.get("origin", "")
    if origin and origin not in ("real", "augmented"):
        raise BadInput(f"{labels}:{line}: origin '{origin}' is not one of real, augmented")


def row_id(row: "_Row") -> str:
    """The item id of a labels.csv row: its `id` column, else its path with forward slashes."""
    return row.values.get("id") or str(PurePosixPath(row.values["path"].replace("\\", "/")))


def _split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(";") if t.strip()] if text else []


def _metadata_column(values: list[str]) -> list[Any]:
    """Numbers when every non-empty value parses as one (ints stay ints), else text; empty -> None."""
    present = [v for v in values if v != ""]
    for cast in (int, float):
        try:
            parsed = [cast(v) for v in present]
        except ValueError:
            continue
        it = iter(parsed)
        return [next(it) if v != "" else None for v in values]
    return [v if v != "" else None for v in values]


def build_manifest(header: list[str], rows: list[_Row], kinds: dict[int, tuple[str, str]]):
    """Manifest rows for the rows whose media probed fine (kinds: line -> (media, ext))."""
    import pandas as pd

    kept = [r for r in rows if r.line in kinds]
    records = []
    for r in kept:
        v = r.values
        record = {
            "id": row_id(r),
            "label": v["label"],
            "tags": _split_list(v.get("tags", "")),
            "split": _SPLIT_ALIASES.get(v.get("split", "").lower()),
            "group": v.get("group") or None,
            "origin": v.get("origin") or "real",
            "source_id": v.get("source_id") or None,
            "recipe": v.get("recipe") or None,
            "transform": v.get("transform") or None,
            "media": kinds[r.line][0],
            "ext": kinds[r.line][1],
        }
        if "annotations" in header:
            record["annotations"] = _split_list(v.get("annotations", ""))
        records.append(record)
    frame = pd.DataFrame(records)
    reserved = {"path", "id", "label", "tags", "split", "group", "origin", "source_id", "recipe", "transform",
                "annotations"}
    for column in (c for c in header if c not in reserved):
        frame[column] = _metadata_column([r.values[column] for r in kept])
    return frame


def import_folder(src: str | os.PathLike, to: str | os.PathLike, *, skip_bad: bool = False,
                  on_skip=None, progress=None) -> ImportResult:
    """Import `src` (media + labels.csv) into dataset `to` (created if absent) as its next version.

    The new version is a snapshot of the folder, written through curate.publish (no gate: an import judges
    nothing, `curate check` does); if it equals the latest version nothing is written."""
    from curate import manifest as mf
    from curate.media import MediaError, probe, sha256_file
    from curate.publish import publish
    from curate.store import open_dataset

    from curate.store import refuse_inside_dataset

    src = Path(src)
    refuse_inside_dataset(to, "--to", dataset_itself=True)
    header, rows = read_labels(src)
    labels = src / LABELS_FILE
    kinds: dict[int, tuple[str, str]] = {}
    bad: list[str] = []
    for row in (progress(rows, "probing media") if progress else rows):
        try:
            kinds[row.line] = probe(row.file)
        except MediaError as exc:
            bad.append(f"{labels}:{row.line}: {row.values['path']}: {exc}")
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more bad file(s))" if len(bad) > 1 else ""
        raise BadInput(f"{bad[0]}{more}; fix or remove it, or pass --skip-bad to import without it")
    if not kinds:
        raise BadInput(f"{labels}: no readable media left to import")
    for line in bad:
        if on_skip:
            on_skip(line)
    frame = mf.normalise(build_manifest(header, rows, kinds))
    media = {item: row.file for item, row in zip(_ids(rows, kinds), (r for r in rows if r.line in kinds))}
    frame["object"] = [sha256_file(media[i]) for i in frame["id"]]
    dataset = open_dataset(to, create=True)
    source = dataset.load("latest") if dataset.latest() is not None else None
    outcome = publish(dataset, frame, source=source, gate=None, reports=False, media=media, label="import",
                      info={"source": {"kind": "import", "folder": src.name}})
    return ImportResult(outcome.version, len(frame), bad, unchanged=outcome.status == "unchanged")


def _ids(rows: list[_Row], kinds: dict[int, tuple[str, str]]) -> list[str]:
    return [row_id(r) for r in rows if r.line in kinds]
