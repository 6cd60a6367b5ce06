"""The neighbour index behind the gate's pairwise questions: exact search equals the all-pairs product; the graph
search used above EXACT_UP_TO rows states a recall measured against exact search."""
import numpy as np

from curate.checks import index as idx


def _unit(rng, n, dim=24, centres=40):
    middle = rng.normal(size=(centres, dim))
    x = middle[rng.integers(0, centres, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_exact_search_is_the_all_pairs_answer_and_never_returns_the_item_itself():
    rng = np.random.default_rng(0)
    x = _unit(rng, 700)
    found = idx.Index(x).search(x, 5, exclude=np.arange(len(x)))
    product = x @ x.T
    np.fill_diagonal(product, -np.inf)
    truth = np.argsort(-product, axis=1, kind="stable")[:, :5]
    assert found.exact and found.recall == 1.0
    assert (found.index != np.arange(len(x))[:, None]).all()
    np.testing.assert_allclose(np.take_along_axis(product, found.index, axis=1),
                               np.take_along_axis(product, truth, axis=1), rtol=1e-5)
    assert (idx.nearest(x[:10], x, 1)[:, 0] == np.arange(10)).all()   # without exclusion an item is its own nearest


def test_large_reference_uses_a_graph_and_reports_its_recall(monkeypatch):
    monkeypatch.setattr(idx, "EXACT_UP_TO", 500)
    rng = np.random.default_rng(1)
    x = _unit(rng, 3000)
    found = idx.Index(x).search(x, 8, exclude=np.arange(len(x)))
    assert not found.exact
    monkeypatch.setattr(idx, "EXACT_UP_TO", 10**9)
    truth = idx.Index(x).search(x, 8, exclude=np.arange(len(x))).index
    measured = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(found.index, truth)])
    assert found.recall >= 0.9 and abs(found.recall - measured) < 0.05   # the stated recall is the real one
