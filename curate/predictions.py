"""The predictions contract: one table format for every reader of a model's output (`curate errors`, `curate audit`,
`curate check --predictions`, a recipe's `evaluate:` and sweeps).

A predictions table is a CSV file (UTF-8, a header row) or, from Python (`evaluate: {python: ...}`), a pandas
DataFrame with the same columns, or a mapping {id: prediction}. One row per scored item:

    id           required, unique: the dataset item's id (the manifest's `id`, e.g. `allison/zero.wav`)
    prediction   required, non-empty: the predicted label
    p_<label>    optional: the model's probability of <label>, in [0, 1] (one column per class; enables
                 cleanlab's label issues and confusable-class detection)
    label        optional when the dataset is known: the true label; taken from the dataset otherwise. Given
                 with a dataset, it must agree with it
    tags, split, group
                 optional; taken from the dataset when the table lacks them and the dataset is known (tags are
                 ';'-separated in CSV)

Anything else (e.g. `human_label` for `curate errors`) is kept as it is. Every problem is one line naming the file,
its line (header = line 1) and the column.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from curate.exceptions import BadInput

REQUIRED = ("id", "prediction")
FROM_DATASET = ("label", "tags", "split", "group")


def read_predictions(source: str | Path | Any, view=None, *, where: str | None = None, unknown: str = "error"):
    """A checked predictions DataFrame (all columns strings, p_ columns floats) from a CSV path, a DataFrame or a
    {id: prediction} mapping. With `view` (a dataset version), every id must be one of its items (`unknown="drop"`:
    rows of other ids are left out, for checks that read a model's predictions on an earlier version), and label,
    tags, split and group come from it when the table lacks them (tags as lists). Without a view the table must
    carry its own `label`."""
    import pandas as pd

    if isinstance(source, (str, Path)):
        where = where or str(source)
        frame = _read_csv(Path(source), where)
    elif isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
    elif isinstance(source, Mapping):
        frame = pd.DataFrame({"id": list(source.keys()), "prediction": list(source.values())})
    else:
        raise BadInput(f"{where or 'predictions'}: expected a CSV path, a DataFrame or a {{id: prediction}} mapping, "
                       f"got {type(source).__name__}")
    where = where or "predictions"
    frame.columns = [str(c).strip() for c in frame.columns]
    twice = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if twice:
        raise BadInput(f"{where}: column {twice[0]!r} is given twice")
    for column in REQUIRED + (() if view is not None else ("label",)):
        if column not in frame.columns:
            hint = " (or give the dataset, which has the labels)" if column == "label" else ""
            raise BadInput(f"{where}: missing required column '{column}'{hint} (found: {', '.join(frame.columns)})")
    if frame.empty:
        raise BadInput(f"{where}: no rows")
    for column in [c for c in frame.columns if not c.startswith("p_")]:
        frame[column] = frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    for column in REQUIRED + (("label",) if "label" in frame.columns else ()):
        empty = frame.index[frame[column].str.strip() == ""]
        if len(empty):
            raise BadInput(f"{where}:{_line(frame, empty[0])}: {column} is empty")
    duplicated = frame.index[frame["id"].duplicated()]
    if len(duplicated):
        raise BadInput(f"{where}:{_line(frame, duplicated[0])}: duplicate id {frame['id'][duplicated[0]]!r}")
    for column in [c for c in frame.columns if c.startswith("p_")]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.index[values.isna() | (values < 0) | (values > 1)]
        if len(bad):
            raise BadInput(f"{where}:{_line(frame, bad[0])}: column '{column}' is not a probability in [0, 1] "
                           f"(got {frame[column][bad[0]]!r})")
        frame[column] = values.astype(float)
    return frame if view is None else _join(frame, view, where, unknown)


def _read_csv(path: Path, where: str):
    import pandas as pd

    if not path.is_file():
        raise BadInput(f"{where}: predictions file does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.EmptyDataError:
        raise BadInput(f"{where}: empty file (expected a header with id,prediction)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"{where}: not a readable CSV ({str(exc).splitlines()[0][:300]})") from None
    frame.index = range(len(frame))
    return frame


def _line(frame, index) -> int:
    """The CSV line of a row (header = line 1); for a DataFrame from Python, its position + 2 likewise."""
    return int(frame.index.get_loc(index)) + 2


def _join(frame, view, where: str, unknown: str):
    manifest = view.manifest.set_index("id")
    known = frame["id"].isin(manifest.index)
    if unknown == "drop":
        frame = frame[known]
        if frame.empty:
            raise BadInput(f"{where}: none of its ids is an item of {getattr(view, 'ref', 'the dataset')}")
    elif not known.all():
        first = frame.index[~known][0]
        raise BadInput(f"{where}:{_line(frame, first)}: id {frame['id'][first]!r} is not an item of "
                       f"{getattr(view, 'ref', 'the dataset')} ({int((~known).sum())} unknown id(s))")
    rows = manifest.loc[frame["id"]]
    if "label" in frame.columns:
        differs = frame["label"].to_numpy() != rows["label"].to_numpy()
        if differs.any():
            first = frame.index[differs][0]
            raise BadInput(f"{where}:{_line(frame, first)}: label {frame['label'][first]!r} of {frame['id'][first]!r} "
                           f"differs from the dataset's {rows['label'].iloc[int(differs.argmax())]!r}")
    frame = frame.copy()
    for column in [c for c in FROM_DATASET if c not in frame.columns]:
        values = list(rows[column]) if column in rows.columns else [""] * len(frame)
        frame[column] = [list(v) for v in values] if column == "tags" else ["" if v is None else str(v)
                                                                             for v in values]
    return frame


def tag_lists(frame) -> list[list[str]]:
    """Tags per row: lists as they are, ';'-separated strings split."""
    return [list(t) if isinstance(t, (list, tuple)) else [x.strip() for x in str(t or "").split(";") if x.strip()]
            for t in frame["tags"]] if "tags" in frame.columns else [[] for _ in range(len(frame))]
