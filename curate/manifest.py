"""The manifest: one row per item of a dataset version. Column rules, normalisation, Parquet I/O, fingerprint, counts."""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate.exceptions import BadInput

MEDIA_KINDS = ("audio", "image")
SPLITS = ("train", "dev", "test")
ORIGINS = ("real", "augmented")
LIST_COLUMNS = ("tags", "annotations")
STRING_COLUMNS = ("id", "object", "ext", "media", "label", "split", "group", "origin", "source_id", "recipe",
                  "transform")
CORE_COLUMNS = ("id", "object", "ext", "media", "label", "tags", "split", "group", "origin", "source_id", "recipe",
                "transform")
OPTIONAL_COLUMNS = ("annotations",)
RESERVED = CORE_COLUMNS + OPTIONAL_COLUMNS
_EXT = re.compile(r"^[a-z0-9]{1,8}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def jsonable(value: Any) -> Any:
    """A plain-Python, JSON-serialisable form of one manifest cell (numpy scalars, arrays, NaN -> None)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _text(value: Any, row_id: str, column: str, *, required: bool) -> str | None:
    if is_missing(value) or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise BadInput(f"manifest item {row_id!r}: column '{column}' is empty")
        return None
    if not isinstance(value, str):
        raise BadInput(f"manifest item {row_id!r}: column '{column}' must be text, got {type(value).__name__}")
    return value


def _string_list(value: Any, row_id: str, column: str) -> list[str]:
    if not isinstance(value, (list, tuple, np.ndarray)):
        if is_missing(value):
            return []
        raise BadInput(f"manifest item {row_id!r}: column '{column}' must be a list of strings, "
                       f"got {type(value).__name__}")
    out = []
    for v in value:
        if not isinstance(v, str) or v.strip() == "" or ";" in v or v != v.strip():
            raise BadInput(f"manifest item {row_id!r}: {column} entry {v!r} must be non-empty text without ';' "
                           "or surrounding spaces")
        out.append(v)
    return out


def normalise(manifest: pd.DataFrame) -> pd.DataFrame:
    """Validate a manifest and return it in canonical form: core columns first (defaults filled), tags sorted and
    unique, missing values as None, rows sorted by id. Raises BadInput naming the item and column."""
    if not isinstance(manifest, pd.DataFrame):
        raise BadInput(f"manifest must be a pandas DataFrame, got {type(manifest).__name__}")
    for column in ("id", "label"):
        if column not in manifest.columns:
            raise BadInput(f"manifest: missing required column '{column}'")
    duplicated = [str(c) for c in pd.Index(manifest.columns)[pd.Index(manifest.columns).duplicated()]]
    if duplicated:
        raise BadInput(f"manifest: duplicate column(s) {', '.join(duplicated)}")
    bad_names = [c for c in manifest.columns if not isinstance(c, str) or not c]
    if bad_names:
        raise BadInput(f"manifest: column names must be non-empty text, got {bad_names!r}")
    fast = _normalise_columns(manifest)
    return fast if fast is not None else _normalise_rows(manifest)


def _normalise_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """normalise() one row at a time: the reference, and the path that names the first bad value."""
    rows = []
    seen: set[str] = set()
    metadata = [c for c in manifest.columns if c not in RESERVED]
    has_annotations = "annotations" in manifest.columns
    for record in manifest.to_dict("records"):
        row_id = _text(record.get("id"), "?", "id", required=True)
        if row_id in seen:
            raise BadInput(f"manifest: duplicate id {row_id!r}")
        seen.add(row_id)
        row: dict[str, Any] = {"id": row_id}
        for column in ("object", "ext", "media", "split", "group", "origin", "source_id", "recipe"):
            row[column] = _text(record.get(column), row_id, column, required=False)
        row["label"] = _text(record.get("label"), row_id, "label", required=True)
        row["tags"] = sorted(set(_string_list(record.get("tags"), row_id, "tags")))
        row["group"] = row["group"] or row_id
        row["origin"] = row["origin"] or "real"
        transform = record.get("transform")
        if isinstance(transform, (list, dict)):
            transform = json.dumps(jsonable(transform), sort_keys=True, separators=(",", ":"))
        row["transform"] = _text(transform, row_id, "transform", required=False)
        _check_values(row)
        if has_annotations:
            row["annotations"] = _string_list(record.get("annotations"), row_id, "annotations")
        for column in metadata:
            row[column] = jsonable(record[column])
        rows.append(row)
    columns = list(CORE_COLUMNS) + (["annotations"] if has_annotations else []) + metadata
    out = pd.DataFrame(rows, columns=columns)
    return with_plain_core_columns(out.sort_values("id", kind="stable").reset_index(drop=True))


_TEXT = ("object", "ext", "media", "split", "group", "origin", "source_id", "recipe", "transform")
_ALLOWED = {"split": frozenset(SPLITS), "origin": frozenset(ORIGINS), "media": frozenset(MEDIA_KINDS)}


def _text_column(values: list, required: bool) -> list | None:
    """_text over a column: the same values, or None when any needs the per-row path (not text, or a required
    value missing)."""
    out = []
    for v in values:
        if type(v) is str:
            if v.strip():
                out.append(v)
                continue
            v = None
        if v is None or v is pd.NA or v is pd.NaT or (type(v) is float and v != v):
            if required:
                return None
            out.append(None)
        else:
            return None
    return out


def _tags_column(values: list) -> list | None:
    out = []
    for v in values:
        if isinstance(v, (list, tuple, np.ndarray)):
            for t in v:
                if type(t) is not str or not t or ";" in t or t != t.strip():
                    return None
            out.append(sorted(set(v)))
        elif v is None or (type(v) is float and v != v):
            out.append([])
        else:
            return None
    return out


def _normalise_columns(manifest: pd.DataFrame) -> pd.DataFrame | None:
    """normalise() a column at a time, for manifests whose values need no message: the same frame as
    _normalise_rows (tests/test_manifest_fast.py compares them), or None to take that path."""
    if "annotations" in manifest.columns:
        return None
    n = len(manifest)

    def column(name):
        return manifest[name].tolist() if name in manifest.columns else [None] * n

    ids = _text_column(column("id"), required=True)
    labels = _text_column(column("label"), required=True)
    if ids is None or labels is None or len(set(ids)) != n:
        return None
    out: dict[str, list] = {"id": ids}
    for name in _TEXT:
        values = _text_column(column(name), required=False)
        if values is None:
            return None
        allowed = _ALLOWED.get(name)
        if allowed is not None and any(v is not None and v not in allowed for v in values):
            return None
        out[name] = values
    if any(e is not None and not _EXT.match(e) for e in out["ext"]) or \
            any(o is not None and not _HASH.match(o) for o in out["object"]):
        return None
    try:
        for t in out["transform"]:
            if t is not None:
                json.loads(t)
    except ValueError:
        return None
    tags = _tags_column(column("tags"))
    if tags is None:
        return None
    out["label"], out["tags"] = labels, tags
    out["group"] = [g or i for g, i in zip(out["group"], ids)]
    out["origin"] = [o or "real" for o in out["origin"]]
    metadata = [c for c in manifest.columns if c not in RESERVED]
    for name in metadata:
        if manifest[name].dtype.kind not in "biufO":
            return None
        out[name] = [jsonable(v) for v in manifest[name].tolist()]
    columns = list(CORE_COLUMNS) + metadata
    if not n:
        return with_plain_core_columns(pd.DataFrame([], columns=columns))
    order = sorted(range(n), key=ids.__getitem__)   # ids are unique: the stable sort by id
    core = {c: pd.Series([out[c][k] for k in order], dtype=object) for c in CORE_COLUMNS}   # None stays None
    frame = pd.DataFrame(core)
    if metadata:
        rest = pd.DataFrame({c: out[c] for c in metadata}, columns=metadata).iloc[order].reset_index(drop=True)
        frame = pd.concat([frame, rest], axis=1)
    return frame


def with_plain_core_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Core columns as Python objects with None for missing (pandas would otherwise turn None into NaN, which is
    truthy and not a string). Metadata columns keep the dtype pandas infers."""
    for column in RESERVED:
        if column in frame.columns:
            frame[column] = pd.Series([None if not isinstance(v, (list, np.ndarray)) and is_missing(v) else v
                                       for v in frame[column]], index=frame.index, dtype=object)
    return frame


def _check_values(row: dict[str, Any]) -> None:
    checks = (("split", SPLITS), ("origin", ORIGINS), ("media", MEDIA_KINDS))
    for column, allowed in checks:
        if row[column] is not None and row[column] not in allowed:
            raise BadInput(f"manifest item {row['id']!r}: {column} {row[column]!r} is not one of {', '.join(allowed)}")
    if row["ext"] is not None and not _EXT.match(row["ext"]):
        raise BadInput(f"manifest item {row['id']!r}: ext {row['ext']!r} must be a lowercase extension without dot")
    if row["object"] is not None and not _HASH.match(row["object"]):
        raise BadInput(f"manifest item {row['id']!r}: object {row['object']!r} is not a sha256 hex digest")
    if row["transform"] is not None:
        try:
            json.loads(row["transform"])
        except ValueError:
            raise BadInput(f"manifest item {row['id']!r}: transform is not valid JSON") from None


def fingerprint(manifest: pd.DataFrame) -> str:
    """sha256 of a canonical serialisation: the sorted column names, then one JSON line per row in id order.
    Independent of row order, column order and write time."""
    columns = sorted(manifest.columns)
    digest = hashlib.sha256()
    digest.update(json.dumps(columns).encode())
    ordered = manifest.sort_values("id", kind="stable")
    cells = [plain_cells(ordered[c].tolist()) for c in columns]
    if "tags" in columns:
        at = columns.index("tags")
        cells[at] = [sorted(v) if v is not None else None for v in cells[at]]
    for row in zip(*cells):
        line = json.dumps(dict(zip(columns, row)), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest.update(b"\n" + line.encode("utf-8"))
    return digest.hexdigest()


def plain_cells(values: list) -> list:
    """jsonable() of each cell; a column of text (and None), or of lists of text, as it is: what most manifest
    columns hold, at a fraction of a call per cell."""
    if all(type(v) is str or v is None for v in values):
        return values
    if all(type(v) is list and all(type(t) is str for t in v) for v in values):
        return values
    return [jsonable(v) for v in values]


def write_parquet(manifest: pd.DataFrame, path: Path) -> None:
    arrays, names = [], []
    for column in manifest.columns:
        values = plain_cells(manifest[column].tolist())
        if column in LIST_COLUMNS:
            arrays.append(pa.array(values, type=pa.list_(pa.string())))
        elif column in STRING_COLUMNS:
            arrays.append(pa.array(values, type=pa.string()))
        else:
            arrays.append(pa.array(values))
        names.append(column)
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)


def read_parquet(path: Path) -> pd.DataFrame:
    table = pq.read_table(path)
    frame = pd.DataFrame({name: table.column(name).to_pylist() for name in table.column_names})
    frame = with_plain_core_columns(frame)
    for column in LIST_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.Series([list(v) if v is not None else [] for v in frame[column]], dtype=object)
    return frame


def counts(manifest: pd.DataFrame) -> dict[str, Any]:
    """Counts per label, tag, split, origin and media kind (split None counted as 'unassigned')."""
    tags = Counter(t for row in manifest["tags"] for t in row)
    return {
        "items": int(len(manifest)),
        "label": _sorted_counts(Counter(manifest["label"])),
        "tag": _sorted_counts(tags),
        "split": _sorted_counts(Counter(s if s is not None else "unassigned" for s in manifest["split"])),
        "origin": _sorted_counts(Counter(manifest["origin"])),
        "media": _sorted_counts(Counter(m for m in manifest["media"] if m is not None)),
    }


def _sorted_counts(counter: Counter) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))}
