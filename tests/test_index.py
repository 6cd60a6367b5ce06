"""The neighbour index behind the gate's pairwise questions: exact search equals the all-pairs product; the graph
search used above EXACT_UP_TO rows states a recall measured against exact search."""
import numpy as np
import pytest

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
    assert (idx.Index(x).search(x[:10], 1).index[:, 0] == np.arange(10)).all()   # without exclusion: itself


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


def test_the_graph_keeps_the_only_copy_of_its_rows_and_they_outlive_the_index_object(monkeypatch):
    import gc

    monkeypatch.setattr(idx, "EXACT_UP_TO", 500)
    x = _unit(np.random.default_rng(5), 2000)
    index = idx.Index(x)
    rows = index.reference
    assert not rows.flags.owndata and not rows.flags.writeable   # a view of the graph's storage, not a copy
    assert np.array_equal(rows, x)
    del index
    gc.collect()
    _ = [np.ones((512, 512)) for _ in range(40)]   # memory the graph held would be reused by now
    assert np.array_equal(rows, x)
    exact = idx.Index(x[:400])   # exact search stores nothing of its own: the rows given, searched with faiss.knn
    assert exact.index is None and np.shares_memory(exact.reference, x)
    assert (exact.search(x[:5], 1).index[:, 0] == np.arange(5)).all()


def _apart_truth(query, query_group, reference, reference_group, k):
    product = query @ reference.T
    product[query_group[:, None] == reference_group[None, :]] = -np.inf
    order = np.argsort(-product, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(product, order, axis=1)


def test_neighbours_of_another_group_are_the_exact_answer_for_small_and_large_groups():
    """Groups of 1-3 rows are over-fetched and filtered; groups of 300 (above OVERFETCH_EXACT) are searched apart
    (the rows outside them): both give the all-pairs answer and never a row of the query's own group."""
    rng = np.random.default_rng(2)
    x = _unit(rng, 1300)
    groups = np.concatenate([np.repeat(np.arange(3), 300), 3 + np.arange(400) // 3])
    rng.shuffle(groups)
    found = idx.Index(x).search_apart(x, groups, groups, 5)
    np.testing.assert_allclose(found.similarity, _apart_truth(x, groups, x, groups, 5), rtol=1e-5)
    found = found.index
    assert (found >= 0).all()
    assert (groups[found] != groups[:, None]).all()
    np.testing.assert_allclose(np.einsum("qd,qkd->qk", x, x[found]), _apart_truth(x, groups, x, groups, 5),
                               rtol=1e-5)


def test_the_graph_search_apart_never_returns_the_own_group_and_finds_the_exact_neighbours(monkeypatch):
    rng = np.random.default_rng(5)
    x = _unit(rng, 1300)
    groups = np.concatenate([np.repeat(np.arange(3), 300), 3 + np.arange(400) // 3])
    rng.shuffle(groups)
    truth = idx.Index(x).search_apart(x, groups, groups, 5).index
    monkeypatch.setattr(idx, "EXACT_UP_TO", 500)
    graph = idx.Index(x)
    found = graph.search_apart(x, groups, groups, 5).index
    assert not graph.exact and (found >= 0).all() and (groups[found] != groups[:, None]).all()
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(found, truth)]) >= 0.95


def test_a_query_with_too_few_rows_outside_its_group_gets_minus_one():
    rng = np.random.default_rng(3)
    x = _unit(rng, 300)
    groups = np.zeros(300, np.int64)
    groups[:2] = 1                    # group 0 holds 298 rows (> OVERFETCH_EXACT): only the 2 rows of group 1 are apart
    found = idx.Index(x).search_apart(x[2:5], groups[2:5], groups, 4).index
    assert set(found[:, :2].ravel()) == {0, 1} and (found[:, 2:] == -1).all()
    small = idx.Index(x).search_apart(x[:2], groups[:2], groups, 4).index   # group 1 (2 rows) over-fetches
    assert (groups[small] == 0).all()


def test_near_duplicates_found_by_the_graph_search_say_so_with_their_recall(tmp_path, monkeypatch):
    """Above EXACT_UP_TO items the near-duplicate candidates come from the graph search: the same pairs as the
    exact search on sample_media/ocr, and the rule in every finding names the recall it measured."""
    from conftest import SAMPLE_MEDIA
    from curate.checks.similarity import near_duplicates
    from curate.importer import import_folder

    version = import_folder(SAMPLE_MEDIA / "ocr", tmp_path / "ds").version
    exact = near_duplicates(version)
    assert exact.recall == 1.0 and "recall" not in exact.rule()
    monkeypatch.setattr(idx, "EXACT_UP_TO", 10)
    version = import_folder(SAMPLE_MEDIA / "ocr", tmp_path / "ds2").version
    graph = near_duplicates(version)
    assert 0.9 <= graph.recall <= 1.0
    assert f"searched approximately above 10 items, recall {graph.recall:.3f}: the lowest of the searches', each " \
           "measured against exact search on up to 200 of its queries" in graph.rule()
    assert graph.figures()["search_recall"] == graph.recall
    assert set(zip(graph.i, graph.j)) == set(zip(exact.i, exact.j)) and len(exact.i) > 0


def test_pairs_within_a_limit_are_those_of_one_search_for_k_when_most_rows_ask_only_for_a_few():
    """similarity._within asks FIRST_K neighbours of every row and k only of the rows whose FIRST_K-th is still
    within the limit: a cluster of 30 copies (more than FIRST_K within the limit) keeps all its pairs."""
    from curate.checks import similarity

    rng = np.random.default_rng(4)
    x = _unit(rng, 2000)
    x[:30] = x[0] + 0.002 * rng.normal(size=(30, x.shape[1]))          # one item and 29 near-copies of it
    x[:30] /= np.linalg.norm(x[:30], axis=1, keepdims=True)
    index, rows, limit, k = idx.Index(x), np.arange(len(x)), 0.999, 65

    def within(parts):
        r, c, v = (np.concatenate(a) for a in zip(*[(r, c, v) for r, c, v, _ in parts]))
        keep = (c >= 0) & (c != r) & (v >= limit)
        return set(zip(r[keep].tolist(), c[keep].tolist()))

    once = index.search(x, k)
    truth = within([(np.repeat(rows, k), once.index.reshape(-1), once.similarity.reshape(-1), 1.0)])
    assert len(truth) == 30 * 29                                          # the cluster's pairs, both ways
    assert within(similarity._within(index, rows, x, k, limit)) == truth


@pytest.mark.parametrize("graph", [False, True])
def test_the_real_index_holds_one_copy_of_the_embeddings_z_scored_in_manifest_order(tmp_path, monkeypatch, graph):
    """The real rows are held once: as the exact search's reference, or (graph) only in the graph's own storage;
    the values are bit for bit those of z-scoring the manifest-ordered matrix (the statistics' float32 sums depend
    on the row order)."""
    import pandas as pd
    from conftest import SAMPLE_MEDIA

    from curate.checks import index as index_module
    from curate.checks.similarity import real_index
    from curate.features import embeddings
    from curate.importer import import_folder
    from curate.view import MemoryView

    if graph:
        monkeypatch.setattr(index_module, "EXACT_UP_TO", 10)
    version = import_folder(SAMPLE_MEDIA / "ocr", tmp_path / "ds").version
    frame = version.manifest.copy()
    frame.loc[frame.index[1::3], "origin"] = "augmented"   # interleaved, so the order changes
    view = MemoryView(version.dataset, pd.DataFrame(frame))
    found = real_index(view)
    ids, matrix = embeddings(view)
    z = matrix.astype(np.float32)
    std = np.maximum(z.std(axis=0), 1e-6)
    z -= z.mean(axis=0)
    z /= std
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    expected = dict(zip(ids, z))
    real = [i for i, o in zip(view.manifest["id"], view.manifest["origin"]) if o == "real"]
    assert found.ids[: found.real] == real and found.real == len(real) < len(ids)
    assert found.index.exact is not graph
    rows = found.vectors(np.arange(len(ids))[::-1])                  # gathered from both parts, in any order
    assert all(rows[-1 - n].tobytes() == expected[i].tobytes() for n, i in enumerate(found.ids))
    assert found.others.shape == (len(ids) - len(real), matrix.shape[1])   # the real rows are not held twice
    assert found.vectors(np.array([], np.int64)).shape == (0, matrix.shape[1])
    for bad in (np.ones(len(ids), bool), np.array([-1]), np.array([len(ids)]), np.array([[0, 1]]), np.array([0.0])):
        with pytest.raises(ValueError, match="rows: expected a 1-D array of positions"):
            found.vectors(bad)
    if graph:   # the graph's storage is the only copy of the real rows
        assert not found.index.reference.flags.writeable and not found.index.reference.flags.owndata
    assert real_index(view) is found                             # memoised on the view


def _crowded(rng, centers=100, copies=100, dim=64):
    """Rows in tight crowds of near-identical copies, and noisy queries near them: a graph at its default beam
    misses many of the exact nearest (tie-aware recall@6 0.87 at efSearch 64)."""
    middle = rng.normal(size=(centers, dim))
    rows = np.repeat(middle, copies, 0) + 0.001 * rng.normal(size=(centers * copies, dim))
    query = middle[rng.integers(0, centers, 2000)] + 0.7 * rng.normal(size=(2000, dim))
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)
    return unit(rows), unit(query)


def _tie_recall(found_s, found_i, truth_s) -> float:
    return float(((found_i >= 0) & (found_s >= truth_s[:, -1:] - idx.TIE)).mean())


def test_a_graph_search_widens_its_beam_until_its_measured_recall_is_reached(monkeypatch):
    """Near-identical rows defeat the graph at its default beam (50k clips, 200 near-copies each: realism's
    "label kept" read the missed neighbours as lost labels and refused honest noisy copies, 70 % against 82 %
    exact). The search is calibrated on a sample and meets RECALL_TARGET over all of its queries."""
    import faiss

    monkeypatch.setattr(idx, "EXACT_UP_TO", 10)
    x, query = _crowded(np.random.default_rng(5))
    index = idx.Index(x)
    truth_s, _ = faiss.knn(query, index.reference, 6, metric=faiss.METRIC_INNER_PRODUCT)
    default_s, default_i = index._graph(query, 6, idx.BEAMS[0])
    assert _tie_recall(default_s, default_i, truth_s) < 0.9            # the failure this guards against
    found = index.search(query, 6)
    assert not found.exact and idx.RECALL_TARGET <= found.recall <= 1.0
    assert _tie_recall(found.similarity, found.index, truth_s) >= idx.RECALL_TARGET
    monkeypatch.setattr(idx, "BEAMS", (64,))                          # no beam reaches the target: exact
    again = idx.Index(x).search(query, 6)
    assert again.exact and again.recall == 1.0 and _tie_recall(again.similarity, again.index, truth_s) == 1.0


def test_a_graph_search_apart_of_a_large_group_is_calibrated_too(monkeypatch):
    """Queries of two large groups, each leaving its own group out: one beam for both, calibrated on a sample drawn
    across them, and every query's neighbours as good as exact search over the other group's rows."""
    monkeypatch.setattr(idx, "EXACT_UP_TO", 10)
    x, query = _crowded(np.random.default_rng(6))
    groups = np.arange(len(x)) // 100 % 2                  # two groups of 5,000 rows: each searched apart
    query_groups = np.arange(len(query)) % 2
    found = idx.Index(x).search_apart(query, query_groups, groups, 6)
    assert not found.exact and found.recall >= idx.RECALL_TARGET
    monkeypatch.setattr(idx, "EXACT_UP_TO", 10**9)
    for group in (0, 1):
        mine = query_groups == group
        truth = idx.Index(x[groups != group]).search(query[mine], 6)   # exact, over the other group's rows alone
        assert (groups[found.index[mine]] != group).all()
        assert _tie_recall(found.similarity[mine], found.index[mine], truth.similarity) >= idx.RECALL_TARGET
