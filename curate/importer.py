"""Import a folder of media + labels.csv as a new dataset version.

labels.csv columns: path, label (required); tags and annotations (';'-separated), split, group (optional); id,
origin, source_id, recipe, transform (optional, so an exported version re-imports unchanged); any other column is
kept as metadata.

labels.csv must be UTF-8 CSV (a BOM is allowed) with every quote closed; each row has as many fields as the header.
Every value is single-line text: a field with a control character or a line break (a quoted newline) is refused.

Metadata types. A metadata column is a number column when every non-empty value in it (over all rows of
labels.csv, including rows --skip-bad later drops) is a decimal number (`12`, `-3.5`, `.5`, `1e-05`; ASCII digits,
no `_` or hex) or one of nan, inf, -inf, infinity (any case); otherwise it is a text column and every value is
kept as text as written (`nan` in a text column is the text "nan"). A number column holds finite numbers only:
  - nan, inf, -inf and a value that overflows a 64-bit float (1e999) are refused (leave the cell empty for a
    missing value);
  - when every value is an integer the column is an integer column and each value must fit a signed 64-bit
    integer (-2**63 .. 2**63-1); when the column also has empty cells it is stored as 64-bit floats, so its
    integers must then be exact there (|v| <= 2**53);
  - otherwise the column holds 64-bit floats.
An empty cell is a missing value (null) in any column.

Every row is checked and every file decoded (curate.media.probe: truncated or corrupt files, non-finite audio,
too many channels, images over the pixel limit...) before anything is written: a bad row fails the whole import
(exit 2, one line naming labels.csv:LINE and what is wrong). With skip_bad, a row whose file is missing, not a
file, or unusable media is skipped (and reported) instead; a bad labels.csv row (bad field, path escaping the
folder, duplicate item, bad metadata) fails the import even then.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from curate.exceptions import BadInput

LABELS_FILE = "labels.csv"
REQUIRED = ("path", "label")
_SPLIT_ALIASES = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev", "test": "test"}
_RESERVED = ("path", "id", "label", "tags", "split", "group", "origin", "source_id", "recipe", "transform",
             "annotations")
_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_EXACT_FLOAT_INT = 2 ** 53
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


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
    metadata: dict[str, Any] = field(default_factory=dict)


def read_labels(src: Path, check_files: bool = True) -> tuple[list[str], list[_Row]]:
    """Parse and check labels.csv; every error names labels.csv, the line and the field. With check_files (the
    default) a row whose file is missing or not a file is refused here; without, the caller checks (see
    file_problem), so that --skip-bad can skip it."""
    src = Path(src)
    labels = src / LABELS_FILE
    if not src.is_dir():
        raise BadInput(f"{src}: not a folder")
    if labels.exists() and not labels.is_file():
        raise BadInput(f"{labels}: not a file (a folder to import needs a labels.csv with columns path,label)")
    if not labels.is_file():
        raise BadInput(f"{labels}: missing (a folder to import needs a labels.csv with columns path,label)")
    text = _read_text(labels)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = None
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise BadInput(_csv_error(labels, line, reader.line_num, exc)) from None
        if header is None:
            header = [h.strip() for h in values]
            _check_header(labels, header)
            continue
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise BadInput(f"{labels}:{line}: {len(values)} fields, header has {len(header)}")
        _check_text(labels, line, dict(zip(header, values)))
        row = dict(zip(header, (v.strip() for v in values)))
        rows.append(_Row(line, row, _resolve(src, labels, line, row["path"], check_files)))
        key = row_id(rows[-1])
        if key in seen:
            raise BadInput(f"{labels}:{line}: duplicate item {key!r} (first on line {seen[key]})")
        seen[key] = line
        _check_row(labels, line, row)
    if header is None:
        raise BadInput(f"{labels}: empty file (expected a header with columns path,label)")
    if not rows:
        raise BadInput(f"{labels}: no rows")
    _type_metadata(labels, header, rows)
    return header, rows


def _read_text(labels: Path) -> str:
    try:
        raw = labels.read_bytes()
    except OSError as exc:
        raise BadInput(f"{labels}: cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise BadInput(f"{labels}:{line}: not UTF-8 text ({exc.reason}: byte 0x{raw[exc.start]:02x} at offset "
                       f"{exc.start}); save it as UTF-8") from None


def _csv_error(labels: Path, line: int, last: int, exc: csv.Error) -> str:
    reason = str(exc)
    if "unexpected end of data" in reason:
        return (f"{labels}:{line}: unterminated quote: the row starting on line {line} opens a quoted field "
                f"that is never closed (the file ends on line {last})")
    if "field larger than field limit" in reason:
        return f"{labels}:{line}: a field is longer than {csv.field_size_limit()} characters"
    if "expected after" in reason:
        return f"{labels}:{line}: malformed CSV: a closing quote must be followed by a comma or the end of the line"
    return f"{labels}:{line}: malformed CSV ({reason})"


def _check_header(labels: Path, header: list[str]) -> None:
    for i, name in enumerate(header, 1):
        bad = _bad_char(name)
        if bad:
            raise BadInput(f"{labels}:1: header column {i} ({name[:40]!r}) contains {bad}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        found = ", ".join(h[:40] for h in header[:20]) or "none"
        raise BadInput(f"{labels}: missing required column '{missing[0]}' (found: {found})")
    if any(not h for h in header):
        raise BadInput(f"{labels}: header has an empty column name (column {header.index('') + 1})")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise BadInput(f"{labels}: duplicate column '{dupes[0]}'")
    for forbidden in ("object", "ext", "media"):
        if forbidden in header:
            raise BadInput(f"{labels}: column '{forbidden}' is set by the store from the file, remove it")


def _bad_char(text: str) -> str | None:
    """What makes `text` not single-line text: a line break or another control character (None if nothing)."""
    for ch in text:
        if ch in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029":
            return f"a line break (U+{ord(ch):04X})"
        if unicodedata.category(ch) == "Cc":
            return f"a control character (U+{ord(ch):04X})"
    return None


def _check_text(labels: Path, line: int, row: dict[str, str]) -> None:
    for column, value in row.items():
        bad = _bad_char(value)
        if bad:
            raise BadInput(f"{labels}:{line}: {column} contains {bad}; values must be single-line text")


def _resolve(src: Path, labels: Path, line: int, path: str, check_file: bool = True) -> Path:
    if not path:
        raise BadInput(f"{labels}:{line}: path is empty")
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or _DRIVE.match(path) or ".." in pure.parts:
        raise BadInput(f"{labels}:{line}: path '{_short(path, 200)}' escapes the source folder "
                       f"(use a path relative to {src})")
    if not pure.parts:
        raise BadInput(f"{labels}:{line}: path '{path}' names the source folder itself, not a file")
    file = src.joinpath(*pure.parts)
    try:
        root = src.resolve()
        if not file.resolve().is_relative_to(root):
            raise BadInput(f"{labels}:{line}: path '{_short(path, 200)}' escapes the source folder through a link")
    except (OSError, RuntimeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise BadInput(f"{labels}:{line}: path '{_short(path, 200)}' cannot be resolved ({reason})") from None
    if check_file:
        problem = file_problem(file)
        if problem:
            raise BadInput(f"{labels}:{line}: path '{_short(path, 200)}' {problem}")
    return file


def file_problem(file: Path) -> str | None:
    """Why `file` cannot be read as a file ('does not exist', 'is not a file', ...), or None."""
    try:
        if file.is_file():
            return None
        return "is not a file" if file.exists() else "does not exist"
    except OSError as exc:
        return f"cannot be opened ({exc.strerror or exc})"


def _check_row(labels: Path, line: int, row: dict[str, str]) -> None:
    if not row["label"]:
        raise BadInput(f"{labels}:{line}: label is empty")
    split = row.get("split", "")
    if split and split.lower() not in _SPLIT_ALIASES:
        raise BadInput(f"{labels}:{line}: split '{split}' is not one of train, dev, test (or empty)")
    origin = row.get("origin", "")
    if origin and origin not in ("real", "augmented"):
        raise BadInput(f"{labels}:{line}: origin '{origin}' is not one of real, augmented")
    transform = row.get("transform", "")
    if transform:
        try:
            json.loads(transform)
        except ValueError as exc:
            raise BadInput(f"{labels}:{line}: transform is not valid JSON ({exc})") from None


def row_id(row: "_Row") -> str:
    """The item id of a labels.csv row: its `id` column, else its path with forward slashes."""
    return row.values.get("id") or str(PurePosixPath(row.values["path"].replace("\\", "/")))


def _split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(";") if t.strip()] if text else []


def _type_metadata(labels: Path, header: list[str], rows: list[_Row]) -> None:
    """Type each metadata column over all rows (see the module docstring) and store the values in row.metadata;
    a value a number column cannot hold is refused with its line."""
    for column in (c for c in header if c not in _RESERVED):
        values = [(r, r.values[column]) for r in rows]
        present = [(r, v) for r, v in values if v != ""]
        numeric = all(_FLOAT.match(v) or v.lower() in _NON_FINITE for _, v in present) and bool(present)
        if not numeric:
            for r, v in values:
                r.metadata[column] = v if v != "" else None
            continue
        integers = all(_INT.match(v) for _, v in present)
        has_empty = len(present) < len(values)
        for r, v in values:
            if v == "":
                r.metadata[column] = None
                continue
            where = f"{labels}:{r.line}: column '{column}'"
            if v.lower() in _NON_FINITE:
                raise BadInput(f"{where}: {v!r} is not a finite number (a number column holds finite numbers; "
                               "leave the cell empty for a missing value)")
            if integers:
                number = int(v)
                if not _INT64[0] <= number <= _INT64[1]:
                    raise BadInput(f"{where}: {_short(v)} does not fit a 64-bit integer "
                                   f"({_INT64[0]} .. {_INT64[1]})")
                if has_empty and abs(number) > _EXACT_FLOAT_INT:
                    raise BadInput(f"{where}: {_short(v)} cannot be stored exactly: a number column with empty cells "
                                   "is stored as 64-bit floats, exact for integers up to 2**53 only")
            else:
                number = float(v)
                if not math.isfinite(number):
                    raise BadInput(f"{where}: {_short(v)} overflows a 64-bit float")
            r.metadata[column] = number


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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
    if any(c not in _RESERVED and c not in r.metadata for r in rows for c in header):
        _type_metadata(Path(LABELS_FILE), header, rows)
    for column in (c for c in header if c not in _RESERVED):
        frame[column] = [r.metadata[column] for r in kept]
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
    header, rows = read_labels(src, check_files=False)
    labels = src / LABELS_FILE
    kinds: dict[int, tuple[str, str]] = {}
    bad: list[str] = []
    for row in (progress(rows, "probing media") if progress else rows):
        path = _short(row.values["path"], 200)
        problem = file_problem(row.file)
        if problem:
            bad.append(f"{labels}:{row.line}: path '{path}' {problem}")
            continue
        try:
            kinds[row.line] = probe(row.file)
        except MediaError as exc:
            bad.append(f"{labels}:{row.line}: {path}: {exc}")
        except OSError as exc:
            bad.append(f"{labels}:{row.line}: {path}: cannot be read ({exc.strerror or exc})")
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more bad file(s))" if len(bad) > 1 else ""
        raise BadInput(f"{bad[0]}{more}; fix or remove it, or pass --skip-bad to import without it")
    if not kinds:
        raise BadInput(f"{labels}: no readable media left to import")
    frame = mf.normalise(build_manifest(header, rows, kinds))
    media = {item: row.file for item, row in zip(_ids(rows, kinds), (r for r in rows if r.line in kinds))}
    frame["object"] = [sha256_file(media[i]) for i in frame["id"]]
    _check_storable(labels, frame)
    for line in bad:
        if on_skip:
            on_skip(line)
    dataset = open_dataset(to, create=True)
    source = dataset.load("latest") if dataset.latest() is not None else None
    outcome = publish(dataset, frame, source=source, gate=None, reports=False, media=media, label="import",
                      info={"source": {"kind": "import", "folder": src.name}})
    return ImportResult(outcome.version, len(frame), bad, unchanged=outcome.status == "unchanged")


def _check_storable(labels: Path, frame) -> None:
    """Build the manifest's Parquet table in memory first, so a value the store cannot hold is refused before the
    dataset is created or touched (the checks above should make this unreachable; it guards what they miss)."""
    from curate import manifest as mf

    try:
        mf.write_parquet(frame, io.BytesIO())
    except Exception as exc:  # noqa: BLE001 (pyarrow raises several types; any of them means "cannot store")
        column = next((c for c in frame.columns if _unstorable(frame[c])), None)
        where = f"column '{column}'" if column else "the manifest"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{labels}: {where} cannot be stored ({first})") from None


def _unstorable(series) -> bool:
    import pyarrow as pa

    from curate.manifest import jsonable

    try:
        pa.array([jsonable(v) for v in series])
        return False
    except Exception:  # noqa: BLE001
        return True


def _ids(rows: list[_Row], kinds: dict[int, tuple[str, str]]) -> list[str]:
    return [row_id(r) for r in rows if r.line in kinds]
