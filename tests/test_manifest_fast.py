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
