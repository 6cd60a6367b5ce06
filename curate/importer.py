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

Speed (issue 22): labels.csv is checked column-wise, deferring to the per-row checks (which name the first bad
line) whenever anything is unusual; a large folder's files are probed and hashed by a pool of processes; new
objects are written as one batch made durable by syncfs. None of it changes what is imported: same rows, same
messages, same manifest and fingerprint, same store (tests/test_import_fast.py); `python bench/importer.py` times it.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import stat
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
    table = _read_table(Path(src), check_files)
    if table is None:
        return _read_labels_rows(Path(src), check_files)
    return table.header, table.rows()


# -- the column-wise fast path ----------------------------------------------------------------------------------
# What the common, valid labels.csv costs: one pass of the csv module (C) and a few passes per column. Anything
# unusual (a CSV error, a blank row, a quoted line break, a control character, a path that is not already in
# canonical form, a link, any refused value...) sends the whole file to _read_labels_rows, whose per-row checks
# name the first bad line exactly as they always have; the fast path itself never raises a row's error.
_SUSPECT_CHAR = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")   # _bad_char, less \n and \r
_NUMBER = re.compile(r"^(?:[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity))$",
                     re.IGNORECASE | re.ASCII)


class _Unusual(Exception):
    """Raised inside the fast path: leave it to the per-row reference path."""


@dataclass
class _Table:
    """labels.csv read column-wise: per row its line, its stripped values (one list per column), its item id, the
    path of its file, and whether an lstat found that file a plain regular file (no link: no further check)."""
    src: Path
    labels: Path
    header: list[str]
    lines: list[int]
    columns: dict[str, list[str]]
    ids: list[str]
    files: list[str]
    regular: list[bool]
    metadata: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.lines)

    def rows(self) -> list[_Row]:
        """The rows as read_labels has always returned them."""
        header, columns, metadata = self.header, self.columns, self.metadata
        out = []
        for i, (line, file) in enumerate(zip(self.lines, self.files)):
            values = {c: columns[c][i] for c in header}
            out.append(_Row(line, values, Path(file), {c: metadata[c][i] for c in metadata}))
        return out

    @classmethod
    def from_rows(cls, src: Path, header: list[str], rows: list[_Row]) -> "_Table":
        return cls(src, src / LABELS_FILE, header, [r.line for r in rows],
                   {c: [r.values[c] for r in rows] for c in header}, [row_id(r) for r in rows],
                   [os.fspath(r.file) for r in rows], [False] * len(rows),
                   {c: [r.metadata[c] for r in rows] for c in header if c not in _RESERVED})


def _read_table(src: Path, check_files: bool) -> _Table | None:
    """labels.csv read and checked column-wise; None when anything is unusual (the caller then runs the per-row
    reference path, which names the first bad line or accepts what is unusual but fine, such as blank rows)."""
    labels = _labels_file(src)
    text = _read_text(labels)
    if _SUSPECT_CHAR.search(text):
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        records = list(reader)
    except csv.Error:
        return None
    if not records or reader.line_num != len(records):   # empty, or a quoted field spans lines
        return None
    header = [h.strip() for h in records[0]]
    _check_header(labels, header)   # the reference path checks the header first too, with the same words
    width, at = len(header), header.index("path")
    body = records[1:]
    if not body or any(len(r) != width or not r[at].strip() for r in body):
        return None   # a short or long row, a blank row, or an empty path: all for the reference path
    try:
        return _table(src, labels, header, body, check_files)
    except (_Unusual, BadInput, ValueError, OverflowError, OSError, RuntimeError):
        return None


def _table(src: Path, labels: Path, header: list[str], body: list[list[str]], check_files: bool) -> _Table:
    columns = {name: [v.strip() for v in column] for name, column in zip(header, zip(*body))}
    n = len(body)
    lines = list(range(2, n + 2))
    paths = columns["path"]
    relative = [_canonical(p) for p in paths]
    ids = relative
    if "id" in columns:
        ids = [given or rel for given, rel in zip(columns["id"], relative)]
    if len(set(ids)) != n:
        raise _Unusual("duplicate item")
    _check_columns(columns)
    metadata = {c: _typed(columns[c]) for c in header if c not in _RESERVED}
    files, regular = _locate(src, labels, paths, relative, check_files)
    return _Table(src, labels, header, lines, columns, ids, files, regular, metadata)


def _canonical(path: str) -> str:
    """The item path of a labels.csv path (str(PurePosixPath) with forward slashes), when it is one the reference
    path accepts; _Unusual for an escaping, empty or non-canonical one (dots, doubled or trailing slashes)."""
    if "\\" in path or "//" in path or path.startswith(("/", "./")) or path.endswith(("/", "/.")) or "/./" in path:
        pure = PurePosixPath(path.replace("\\", "/"))
        if pure.is_absolute() or _DRIVE.match(path) or ".." in pure.parts or not pure.parts:
            raise _Unusual(path)
        return str(pure)
    if path in (".", "..") or path.startswith("../") or path.endswith("/..") or "/../" in path or _DRIVE.match(path):
        raise _Unusual(path)
    return path


def _check_columns(columns: dict[str, list[str]]) -> None:
    """_check_row over whole columns."""
    if not all(columns["label"]):
        raise _Unusual("label")
    if "split" in columns and not {v.lower() for v in set(columns["split"])} <= {"", *_SPLIT_ALIASES}:
        raise _Unusual("split")
    if "origin" in columns and not set(columns["origin"]) <= {"", "real", "augmented"}:
        raise _Unusual("origin")
    if "transform" in columns:
        for text in set(columns["transform"]) - {""}:
            json.loads(text)   # ValueError: _Unusual for the caller


def _typed(values: list[str]) -> list[Any]:
    """One metadata column typed as _type_metadata types it; _Unusual where it would refuse a value."""
    present = set(values) - {""}
    if not present or not all(_NUMBER.match(v) for v in present):
        return [v if v != "" else None for v in values]
    if any(v.lower().lstrip("+-") in ("nan", "inf", "infinity") for v in present):
        raise _Unusual("non-finite number")
    has_empty = "" in values
    if all(_INT.match(v) for v in present):
        numbers = {v: int(v) for v in present}
        low, high = min(numbers.values()), max(numbers.values())
        limit = (-_EXACT_FLOAT_INT, _EXACT_FLOAT_INT) if has_empty else _INT64
        if low < limit[0] or high > limit[1]:
            raise _Unusual("integer out of range")
    else:
        numbers = {v: float(v) for v in present}
        if not all(math.isfinite(x) for x in numbers.values()):
            raise _Unusual("float overflow")
    return [numbers[v] if v != "" else None for v in values]


def _locate(src: Path, labels: Path, paths: list[str], relative: list[str],
            check_files: bool) -> tuple[list[str], list[bool]]:
    """Each row's file path, and whether it is a regular file reached without a link; _Unusual when a path escapes
    the folder (through a link) or cannot be resolved, or (check_files) names no regular file. One lstat per row and
    one realpath per folder: a name that is not a link resolves to its folder's real path plus the name."""
    root = src.resolve()
    base = os.fspath(src)
    inside: dict[str, bool] = {}
    files, regular = [], []
    for path, rel in zip(paths, relative):
        file = os.path.join(base, rel)
        folder = rel.rpartition("/")[0]
        if folder not in inside:
            inside[folder] = Path(os.path.realpath(os.path.join(base, folder))).is_relative_to(root)
        try:
            mode = os.lstat(file).st_mode
        except OSError:
            mode = None
        if mode is not None and not stat.S_ISLNK(mode):
            if not inside[folder]:
                raise _Unusual("escapes")
            plain = stat.S_ISREG(mode)
            if check_files and not plain:
                raise _Unusual("not a file")
        else:   # a link, or no lstat: the reference checks, for this row only
            _resolve(src, labels, 0, path, check_files)
            plain = False
        files.append(file)
        regular.append(plain)
    return files, regular


def _labels_file(src: Path) -> Path:
    labels = src / LABELS_FILE
    if not src.is_dir():
        raise BadInput(f"{src}: not a folder")
    if labels.exists() and not labels.is_file():
        raise BadInput(f"{labels}: not a file (a folder to import needs a labels.csv with columns path,label)")
    if not labels.is_file():
        raise BadInput(f"{labels}: missing (a folder to import needs a labels.csv with columns path,label)")
    return labels


def _read_labels_rows(src: Path, check_files: bool = True) -> tuple[list[str], list[_Row]]:
    """read_labels one row at a time: the reference semantics, and what names the first bad line when the
    column-wise fast path (_read_table) finds anything unusual."""
    labels = _labels_file(src)
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


# How the files are probed and stored. Below PARALLEL_MIN_ROWS rows, or when this process already runs other threads
# (a fork copies their locks mid-use), the files are probed here one by one; otherwise by WORKERS forked processes
# (None: one per CPU this process may use, at most 16). The new objects are written by Dataset.put_files (a batch
# made durable by syncfs from curate.store.BATCH_MIN_OBJECTS objects on).
PARALLEL_MIN_ROWS = 1000
WORKERS: int | None = None


def import_folder(src: str | os.PathLike, to: str | os.PathLike, *, skip_bad: bool = False,
                  on_skip=None, progress=None) -> ImportResult:
    """Import `src` (media + labels.csv) into dataset `to` (created if absent) as its next version.

    The new version is a snapshot of the folder, written through curate.publish (no gate: an import judges
    nothing, `curate check` does); if it equals the latest version nothing is written.

    labels.csv is read column-wise (falling back to the per-row checks to name the first bad line); every file is
    probed and hashed, by a pool of processes for a large folder (the outcome does not depend on it: same checks,
    same order, same manifest); then, under the dataset's lock and before the version is staged, the new objects
    are written (see _store_objects) and the version is published without media to copy."""
    from curate.publish import publish
    from curate.store import open_dataset, refuse_inside_dataset

    src = Path(src)
    refuse_inside_dataset(to, "--to", dataset_itself=True)
    table = _labels_table(src)
    labels = src / LABELS_FILE
    found = _inspect_files(table, progress)
    bad: list[str] = []
    keep: list[int] = []
    for index, outcome in enumerate(found):
        if outcome[0] == "ok":
            keep.append(index)
            continue
        path = _short(table.columns["path"][index], 200)
        where = f"{labels}:{table.lines[index]}"
        bad.append(f"{where}: path '{path}' {outcome[1]}" if outcome[0] == "missing" else
                   f"{where}: {path}: {outcome[1]}")
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more bad file(s))" if len(bad) > 1 else ""
        raise BadInput(f"{bad[0]}{more}; fix or remove it, or pass --skip-bad to import without it")
    if not keep:
        raise BadInput(f"{labels}: no readable media left to import")
    frame = _manifest(table, keep, found)
    _check_storable(labels, frame)
    for line in bad:
        if on_skip:
            on_skip(line)
    dataset = open_dataset(to, create=True)
    with dataset.lock():
        _store_objects(dataset, table, keep, found)
        del table, found, keep   # what the store does next holds the manifest several times over: make room
        source = dataset.load("latest") if dataset.latest() is not None else None
        outcome = publish(dataset, frame, source=source, gate=None, reports=False, label="import",
                          info={"source": {"kind": "import", "folder": src.name}})
    return ImportResult(outcome.version, len(frame), bad, unchanged=outcome.status == "unchanged")


def _labels_table(src: Path) -> _Table:
    table = _read_table(src, check_files=False)
    if table is None:
        header, rows = _read_labels_rows(src, check_files=False)
        table = _Table.from_rows(src, header, rows)
    return table


# -- probing and hashing ---------------------------------------------------------------------------------------
def _inspect(file: str, regular: bool) -> tuple:
    """One row's file, as the import has always checked it: ('ok', media, ext, sha256), or ('missing', why) for
    file_problem, or ('bad', why) for a file curate.media.probe refuses or that cannot be read."""
    from curate.media import MediaError, probe, sha256_file

    path = Path(file)
    if not regular:
        problem = file_problem(path)
        if problem:
            return ("missing", problem)
    try:
        media, ext = probe(path)
    except MediaError as exc:
        return ("bad", str(exc))
    except OSError as exc:
        return ("bad", f"cannot be read ({exc.strerror or exc})")
    return ("ok", media, ext, sha256_file(path))


def _inspect_chunk(chunk: tuple[list[str], list[bool]]) -> list[tuple]:
    return [_inspect(file, regular) for file, regular in zip(*chunk)]


def _workers(rows: int) -> int:
    import multiprocessing
    import threading

    if rows < PARALLEL_MIN_ROWS or threading.active_count() > 1 or \
            "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if WORKERS is not None:
        return max(1, int(WORKERS))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return min(cpus, 16)


def _inspect_files(table: _Table, progress=None) -> list[tuple]:
    """_inspect for every row, in row order (so the first bad file named is the first in labels.csv)."""
    n = len(table)
    workers = _workers(n)
    if workers < 2:
        indices = progress(range(n), "probing media") if progress else range(n)
        return [_inspect(table.files[i], table.regular[i]) for i in indices]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    size = max(16, min(512, -(-n // (workers * 16))))
    chunks = [(table.files[i:i + size], table.regular[i:i + size]) for i in range(0, n, size)]
    found: list[tuple] = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = pool.map(_inspect_chunk, chunks)
        for part in progress(parts, "probing media", total=len(chunks)) if progress else parts:
            found.extend(part)
    return found


def _manifest(table: _Table, keep: list[int], found: list[tuple]):
    """The manifest of the kept rows (what build_manifest makes of them, plus the object column), column-wise."""
    import pandas as pd

    columns = table.columns

    def pick(values: list) -> list:
        return [values[i] for i in keep]

    def text(name: str) -> list[str]:
        return pick(columns[name]) if name in columns else [""] * len(keep)

    data: dict[str, list] = {
        "id": pick(table.ids),
        "label": text("label"),
        "tags": [_split_list(v) for v in text("tags")],
        "split": [_SPLIT_ALIASES.get(v.lower()) for v in text("split")],
        "group": [v or None for v in text("group")],
        "origin": [v or "real" for v in text("origin")],
        "source_id": [v or None for v in text("source_id")],
        "recipe": [v or None for v in text("recipe")],
        "transform": [v or None for v in text("transform")],
        "media": [found[i][1] for i in keep],
        "ext": [found[i][2] for i in keep],
    }
    if "annotations" in columns:
        data["annotations"] = [_split_list(v) for v in text("annotations")]
    data["object"] = [found[i][3] for i in keep]
    # text as Python objects: pandas 3 would make Arrow-backed strings of it, which normalise and the Parquet
    # writer then walk value by value at several times the cost (the values, and so the manifest, are the same)
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in data.items()})
    for name, values in table.metadata.items():
        values = pick(values)
        frame[name] = pd.Series(values, dtype=object) if any(isinstance(v, str) for v in values) else values
    return frame


# -- storing the objects ---------------------------------------------------------------------------------------
def _store_objects(dataset, table: _Table, keep: list[int], found: list[tuple]) -> None:
    """Write the objects the store lacks (call under the dataset's lock, before the version is staged), each
    hashed as it is copied: a file changed since it was probed is refused, as the store refuses media that do not
    match the manifest (Dataset.put_files). On object storage each new object is uploaded (a conditional
    create)."""
    if getattr(dataset, "remote", None) is not None:
        _upload_objects(dataset, table, keep, found)
        return
    todo: dict[str, tuple[str, str, str]] = {}
    for i in keep:
        todo.setdefault(found[i][3], (table.files[i], found[i][2], table.ids[i]))
    items = list(todo.values())
    dataset.put_files([(file, ext, digest) for digest, (file, ext, _) in todo.items()],
                      lambda n, stored: BadInput(_changed(items[n][2], list(todo)[n], stored)))


def _upload_objects(dataset, table: _Table, keep: list[int], found: list[tuple]) -> None:
    """The objects the remote store lacks, uploaded (write-once); a file changed since it was probed is refused."""
    import hashlib

    present = dataset.stored_objects()   # one listing, not a request per row
    todo: dict[str, tuple[str, str, str]] = {}
    for i in keep:
        ext, digest = found[i][2], found[i][3]
        if digest not in todo and dataset.object_url(digest, ext) not in present:
            todo[digest] = (table.files[i], ext, table.ids[i])
    batch: dict[tuple[str, str], bytes] = {}
    for digest, (file, ext, item) in todo.items():
        with open(file, "rb") as f:
            data = f.read()
        stored = hashlib.sha256(data).hexdigest()
        if stored != digest:
            raise BadInput(_changed(item, digest, stored))
        batch[(digest, ext)] = data
        if len(batch) >= 64:  # uploaded concurrently, a bounded batch at a time
            dataset.put_objects(batch)
            batch = {}
    dataset.put_objects(batch)


def _changed(item: str, digest: str, stored: str) -> str:
    return f"manifest item {item!r}: object {digest} does not match the media given (sha256 {stored})"


def _check_storable(labels: Path, frame) -> None:
    """Build the Parquet table of the metadata columns in memory first, so a value the store cannot hold is refused
    before the dataset is created or touched (the checks above should make this unreachable; it guards what they
    miss). The core columns are text and lists of text that those checks have vetted."""
    from curate import manifest as mf

    frame = frame[[c for c in frame.columns if c == "id" or c not in mf.RESERVED]]
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
