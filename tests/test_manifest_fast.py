"""manifest.normalise a column at a time gives exactly the frame of the per-row reference (values, dtypes, order),
on random manifests of every cell kind a manifest meets; anything that needs a message takes the per-row path, so
the messages are the reference's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curate import manifest as mf
from curate.exceptions import BadInput

SEED = 31


def _cell(rng, kind: str):
    pick = rng.random()
    if kind == "text":
        return [None, np.nan, "", "  ", "train", "dev", "x y", "é"][int(rng.integers(0, 8))] if pick < 0.5 else \
            f"v{int(rng.integers(0, 50))}"
    if kind == "tags":
        return [None, [], ["a"], ["b", "a", "a"], ("c",), np.array(["a", "d"], dtype=object)][int(rng.integers(0, 6))]
    if kind == "split":
        return [None, "train", "dev", "test", np.nan][int(rng.integers(0, 5))]
    if kind == "origin":
        return [None, "real", "augmented"][int(rng.integers(0, 3))]
    return None


def random_manifest(rng, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({
        "id": [f"item{k:04d}" for k in rng.permutation(n)],
        "label": [f"l{int(rng.integers(0, 4))}" for _ in range(n)],
        "object": [f"{int(rng.integers(0, 16)):064x}" if rng.random() < 0.9 else [None, "ABC"][int(rng.random() < 0.02)]
                   for _ in range(n)],
        "ext": [["wav", "png", None][int(rng.integers(0, 3))] for _ in range(n)],
        "media": [["audio", "image", None][int(rng.integers(0, 3))] for _ in range(n)],
        "tags": [_cell(rng, "tags") for _ in range(n)],
        "split": [_cell(rng, "split") for _ in range(n)],
        "group": [_cell(rng, "text") for _ in range(n)],
        "origin": [_cell(rng, "origin") for _ in range(n)],
        "source_id": [_cell(rng, "text") for _ in range(n)],
        "transform": [None if rng.random() < 0.7 else ['{"a":1}', "{bad"][int(rng.random() < 0.02)] for _ in range(n)],
    })
    if rng.random() < 0.5:   # user metadata of every dtype a labels.csv or a user's frame gives
        frame["score"] = rng.normal(size=n)
        frame.loc[frame.index[:: 3], "score"] = np.nan
        frame["count"] = rng.integers(0, 9, n)
        frame["flag"] = rng.random(n) < 0.5
        frame["note"] = [None if rng.random() < 0.3 else f"n{int(rng.integers(0, 5))}" for _ in range(n)]
        frame["mixed"] = [[1, None, "a", np.int64(2), float("inf")][int(rng.integers(0, 5))] for _ in range(n)]
    columns = list(frame.columns)
    rng.shuffle(columns)
    return frame[columns]


def test_the_column_wise_path_gives_the_per_row_frame():
    rng = np.random.default_rng(SEED)
    fast = 0
    for _ in range(300):
        frame = random_manifest(rng, int(rng.integers(0, 40)))
        got = mf._normalise_columns(frame)
        try:
            expected = mf._normalise_rows(frame)
        except BadInput:
            assert got is None   # every manifest the reference refuses goes to it for its message
            continue
        if got is not None:
            fast += 1
            pd.testing.assert_frame_equal(got, expected)
            assert [list(t) for t in got["tags"]] == [list(t) for t in expected["tags"]]
    assert fast >= 100   # the fast path is the one normal manifests take


@pytest.mark.parametrize("change,message", [
    (lambda f: f.assign(label=[None] + ["x"] * (len(f) - 1)), "column 'label' is empty"),
    (lambda f: f.assign(split=["val"] * len(f)), "split 'val' is not one of train, dev, test"),
    (lambda f: f.assign(id=["same"] * len(f)), "duplicate id 'same'"),
    (lambda f: f.assign(tags=[["a;b"]] * len(f)), "tags entry 'a;b' must be non-empty text"),
    (lambda f: f.assign(ext=["WAV"] * len(f)), "ext 'WAV' must be a lowercase extension"),
    (lambda f: f.assign(group=[3] * len(f)), "column 'group' must be text, got int"),
    (lambda f: f.assign(object=["abc"] * len(f)), "object 'abc' is not a sha256 hex digest"),
    (lambda f: f.assign(transform=["{not json"] * len(f)), "transform is not valid JSON"),
])
def test_a_bad_value_gets_the_reference_message(change, message):
    frame = pd.DataFrame({"id": ["a", "b", "c"], "label": ["x", "y", "x"], "tags": [["t"], [], None]})
    with pytest.raises(BadInput, match=message):
        mf.normalise(change(frame))
    assert mf._normalise_columns(change(frame)) is None


def test_a_transform_record_given_as_a_dict_is_written_as_canonical_json():
    frame = pd.DataFrame({"id": ["a"], "label": ["x"], "transform": [{"b": 1, "a": [1, 2]}]})
    assert mf.normalise(frame)["transform"].tolist() == ['{"a":[1,2],"b":1}']


def _reference_fingerprint(manifest: pd.DataFrame) -> str:
    """The fingerprint as it was first written (a record dict per row, jsonable per cell): every version's
    fingerprint on record was made this way."""
    import hashlib
    import json

    columns = sorted(manifest.columns)
    digest = hashlib.sha256()
    digest.update(json.dumps(columns).encode())
    for record in manifest.sort_values("id", kind="stable")[columns].to_dict("records"):
        cells = {k: mf.jsonable(v) for k, v in record.items()}
        if "tags" in cells and cells["tags"] is not None:
            cells["tags"] = sorted(cells["tags"])
        line = json.dumps(cells, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest.update(b"\n" + line.encode("utf-8"))
    return digest.hexdigest()


def test_fingerprint_and_parquet_are_those_of_the_per_cell_reference(tmp_path):
    """Raw frames, normalised frames and frames read back from Parquet (tags as arrays) hash as before, and
    write_parquet stores the same table as jsonable() per cell."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED + 1)
    checked = 0
    for n in range(60):
        frame = random_manifest(rng, int(rng.integers(1, 30)))
        try:
            normal = mf.normalise(frame)
        except BadInput:
            continue
        for variant in (normal, normal.assign(extra=[{"b": 2, "a": [n, "x"]}] * len(normal))):
            assert mf.fingerprint(variant) == _reference_fingerprint(variant)
            checked += 1
        normal = normal.drop(columns=["mixed"], errors="ignore")   # text and numbers in one column: not storable
        mf.write_parquet(normal, tmp_path / "m.parquet")
        back = pq.read_table(tmp_path / "m.parquet").to_pandas()   # list columns come back as arrays
        assert mf.fingerprint(back) == _reference_fingerprint(back)
        reference = pa.Table.from_arrays(
            [pa.array([mf.jsonable(v) for v in normal[c]], type=pa.list_(pa.string()) if c in mf.LIST_COLUMNS else
                      pa.string() if c in mf.STRING_COLUMNS else None) for c in normal.columns],
            names=list(normal.columns))
        assert pq.read_table(tmp_path / "m.parquet").equals(reference)
    assert checked >= 90
