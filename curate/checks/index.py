"""One nearest-neighbour search for the gate's pairwise questions: faiss, exact up to EXACT_UP_TO reference rows,
graph-based (HNSW) above with its recall measured and stated.

Vectors are unit rows (cosine = inner product). Exact search is faiss's flat inner-product index: the same answer
as the all-pairs product, without holding it (blocks of queries against the whole reference), 4-7x faster than a
numpy product + argpartition at 4k-50k rows. Above EXACT_UP_TO rows an exhaustive search grows with the square of
the rows (50k x 50k: 6.4 s a search, and the near-duplicate question asks 9), so an HNSW graph (M = 16,
efSearch >= 64; 50k rows built in 2.2 s, searched in 2.4 s, recall@11 0.999 on clustered data) answers in about
n log n. Each kind of question is first tried on RECALL_SAMPLE of its queries (an exact search of those alone costs
RECALL_SAMPLE x n): the narrowest beam (efSearch, BEAMS) whose recall@k against exact search reaches RECALL_TARGET
answers it, else exact search does, and the recall is reported with the result, so a finding can say how complete
it is. Rows in crowds of near-identical copies need the wider beams.

faiss runs on one thread here: on a busy 2-core machine one thread searched 50k x 50k rows in 8.5 s, the default
threads in 14.8 s, and the result does not depend on the count.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

EXACT_UP_TO = 20_000
RECALL_SAMPLE = 200
HNSW_M = 16
QUERY_BLOCK = 4096
OVERFETCH = 64  # a query whose own group holds at most this many reference rows over-fetches instead of filtering
# the same, for exact search: one flat search for k + 256 costs about what it does for k (one matrix product),
# while a group searched apart is a product of its own, of a few rows: 10k items in groups of 90 (realism's
# writers) took 3.5 s apart against about 1 s over-fetched. A graph search costs about its k, hence OVERFETCH there.
OVERFETCH_EXACT = 256
# A graph search is checked on RECALL_SAMPLE of its queries before it runs: below RECALL_TARGET it is tried with the
# next, wider beam (efSearch), and past the last the search is exact. Near-identical rows defeat the graph: 50k
# clips, 200 near-copies of each recording, found 76 % of the exact 6 nearest at efSearch 64 and 96 % at 1024 for
# noisy copies of them, and realism's "label kept" read the missed neighbours as lost labels (70 % against 82 %).
RECALL_TARGET = 0.95
BEAMS = (64, 128, 256, 512, 1024)
TIE = 1e-5   # a found row as similar as the exact k-th (to float32 rounding) is as good a neighbour


@dataclass(frozen=True)
class Neighbours:
    """For each query row, up to k reference rows, most similar first (-1 / -inf where there are fewer)."""

    index: np.ndarray        # (queries, k) int64
    similarity: np.ndarray   # (queries, k) float32, inner product of unit rows
    exact: bool
    recall: float            # recall@k against exact search: 1.0 when exact, measured on a sample otherwise


@contextmanager
def _one_thread() -> Iterator[None]:
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class Index:
    """A search structure over `reference` (unit rows), built once and asked many times."""

    def __init__(self, reference: np.ndarray):
        import faiss

        reference = np.ascontiguousarray(reference, dtype=np.float32)
        self.n, dim = reference.shape
        self.exact = self.n <= EXACT_UP_TO
        self.index = None
        if self.exact or not self.n:
            # exact search is faiss.knn over these rows: the same computation as a flat index's search (the same
            # answers, bit for bit), without the copy of every row a flat index keeps
            self.reference = reference
            return
        with _one_thread():
            self.index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = 64
            self.index.add(reference)
        # the graph keeps its own copy of the rows: exact questions (recall, search apart) read that one
        self.reference = _stored_rows(self.index, dim)

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None, question: str = "") -> Neighbours:
        """The k most similar reference rows of each query row. `exclude[i]`: a reference row query i must not get
        (itself, when query and reference are the same rows), or -1. `question` names the kind of queries for the
        beam's calibration (_beam): searches of one question share it."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        k = max(0, min(k, self.n - (1 if exclude is not None else 0)))
        index = np.full((len(query), k), -1, np.int64)
        similarity = np.full((len(query), k), -np.inf, np.float32)
        if k == 0 or len(query) == 0:
            return Neighbours(index, similarity, self.exact, 1.0)
        import faiss

        extra = 1 if exclude is not None else 0
        beam, recall = (None, 1.0) if self.exact else self._beam(query, k, exclude, question)
        with _one_thread():
            for start in range(0, len(query), QUERY_BLOCK):
                part = slice(start, start + QUERY_BLOCK)
                found_s, found_i = (self._graph(query[part], k + extra, beam) if beam is not None else
                                    faiss.knn(query[part], self.reference, k + extra,
                                              metric=faiss.METRIC_INNER_PRODUCT))
                if extra:
                    found_i, found_s = _drop(found_i, found_s, exclude[part], k)
                index[part], similarity[part] = found_i, found_s
        return Neighbours(index, similarity, beam is None, recall)

    def _graph(self, query: np.ndarray, k: int, beam: int, selector=None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        params = faiss.SearchParametersHNSW(efSearch=max(beam, 2 * k))
        if selector is not None:
            params.sel = selector
        return self.index.search(query, k, params=params)

    def _beam(self, query: np.ndarray, k: int, exclude, question: str,
              apart: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[int | None, float]:
        """(efSearch, recall@k) for a graph search of `query`: the first of BEAMS whose recall on RECALL_SAMPLE of the
        queries reaches RECALL_TARGET, or (None, 1.0): search exactly. A found row counts when it is as similar as the
        exact k-th (ties are equally good answers). Decided once per question (the caller's name for a kind of
        queries, with k, the exclusion and whether a group is left out: the graph finds its own rows more easily
        than new ones) and reused by its later searches (the query variants, blocks and groups of one question).
        `apart`: (the group of each query, the group of each reference row) for a search that leaves each query's
        own group out; its sample is drawn across every group asked."""
        import faiss

        extra = 1 if exclude is not None else 0
        key = (question, k, extra, apart is not None)
        known = self.__dict__.setdefault("_beams", {})
        if key in known:
            return known[key]
        rows = np.random.default_rng(0).choice(len(query), min(RECALL_SAMPLE, len(query)), replace=False)
        sample = np.ascontiguousarray(query[rows])
        with _one_thread():
            if apart is None:
                truth_s, truth_i = faiss.knn(sample, self.reference, k + extra, metric=faiss.METRIC_INNER_PRODUCT)
                if extra:
                    truth_i, truth_s = _drop(truth_i, truth_s, exclude[rows], k)
                parts = [(np.arange(len(rows)), None)]
            else:   # each sampled query leaves its own group out
                truth_s = np.full((len(rows), k), -np.inf, np.float32)
                truth_i = np.full((len(rows), k), -1, np.int64)
                parts = []
                for group in np.unique(apart[0][rows]):
                    at = np.flatnonzero(apart[0][rows] == group)
                    inside = np.flatnonzero(apart[1] == group)
                    found_s, found_i = self._exact_outside(sample[at], inside, k)
                    truth_s[at, : found_s.shape[1]], truth_i[at, : found_i.shape[1]] = found_s, found_i
                    parts.append((at, inside))
            last = truth_i >= 0
            kth = np.where(last.any(axis=1), np.where(last, truth_s, np.inf).min(axis=1), -np.inf)[:, None] - TIE
            total = int(last.sum())
            answer: tuple[int | None, float] = (None, 1.0)
            for beam in BEAMS:
                hits = 0
                for at, inside in parts:
                    if inside is None:
                        found_s, found_i = self._graph(sample, k + extra, beam)
                        if extra:
                            found_i, found_s = _drop(found_i, found_s, exclude[rows], k)
                    else:
                        width = int(min(k, self.n - len(inside)))
                        if width <= 0:
                            continue
                        found_s, found_i = self._graph(sample[at], width, beam, _outside(inside))
                    hits += int(((found_i >= 0) & (found_s >= kth[at])).sum())
                recall = hits / total if total else 1.0
                if recall >= RECALL_TARGET:
                    answer = (beam, min(recall, 1.0))
                    break
        known[key] = answer
        return answer

    def _exact_outside(self, query: np.ndarray, inside: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact k best reference rows not in `inside` (a sorted array of rows), asked for k + len(inside) and
        filtered, a block of queries at a time so the (queries, k + len(inside)) arrays stay bounded."""
        import faiss

        wide = int(min(self.n, k + len(inside)))
        k = int(min(k, self.n - len(inside)))
        values = np.full((len(query), k), -np.inf, np.float32)
        rows = np.full((len(query), k), -1, np.int64)
        block = max(1, (1 << 22) // max(wide, 1))
        for start in range(0, len(query), block):
            found_s, found_i = faiss.knn(np.ascontiguousarray(query[start:start + block]), self.reference, wide,
                                         metric=faiss.METRIC_INNER_PRODUCT)
            values[start:start + block], rows[start:start + block] = _kept(
                found_s, found_i, (found_i >= 0) & ~np.isin(found_i, inside), k)
        return values, rows

    def search_apart(self, query: np.ndarray, query_group: np.ndarray, reference_group: np.ndarray,
                     k: int, question: str = "") -> Neighbours:
        """The k most similar reference rows of each query row among those of ANOTHER group (-1 / -inf where fewer
        exist). Groups are integer codes. A query whose group holds few reference rows (OVERFETCH_EXACT; graph:
        OVERFETCH) is searched with the others for k + that many and its own group dropped; the queries of a large
        group are searched once against the rows outside it (exact: two slices of the rows sorted by group; graph:
        a selector that leaves the group out), so the cost stays one search per query whatever the group sizes.
        The recall is the lowest of its searches' (see search; `question` as there)."""

        query = np.ascontiguousarray(query, dtype=np.float32)
        reference_group = np.asarray(reference_group)
        query_group = np.asarray(query_group)
        index = np.full((len(query), k), -1, np.int64)
        similarity = np.full((len(query), k), -np.inf, np.float32)
        recalls, exact = [1.0], [self.exact]
        if k == 0 or len(query) == 0 or self.n == 0:
            return Neighbours(index, similarity, self.exact, 1.0)
        codes = max(int(reference_group.max()), int(query_group.max())) + 1
        own = np.bincount(reference_group, minlength=codes)[query_group]
        limit = OVERFETCH_EXACT if self.exact else OVERFETCH
        few = np.flatnonzero(own <= limit)
        for start in range(0, len(few), QUERY_BLOCK):   # a block at a time: it holds (rows, k + own) arrays
            small = few[start:start + QUERY_BLOCK]
            found = self.search(query[small], min(self.n, k + int(own[small].max())), question=question)
            recalls.append(found.recall)
            exact.append(found.exact)
            other = (found.index >= 0) & (reference_group[np.maximum(found.index, 0)] != query_group[small, None])
            value, picked = _kept(found.similarity, found.index, other, k)
            index[small, : picked.shape[1]], similarity[small, : picked.shape[1]] = picked, value
        large = np.unique(query_group[own > limit])
        if len(large) and self.exact:   # the rows of other groups are two contiguous slices of the sorted rows
            order = np.argsort(reference_group, kind="stable")
            ordered = self.reference[order]
            bounds = np.searchsorted(reference_group[order], np.stack([large, large + 1]))
        elif len(large):   # one beam for every large group, calibrated on a sample drawn across them all
            asked = np.flatnonzero(np.isin(query_group, large))
            beam, recall = self._beam(query[asked], k, None, question, (query_group[asked], reference_group))
            recalls.append(recall)
            exact.append(beam is None)
        with _one_thread():
            for n, group in enumerate(large):
                rows = np.flatnonzero(query_group == group)
                for start in range(0, len(rows), QUERY_BLOCK):
                    part = rows[start:start + QUERY_BLOCK]
                    if self.exact:
                        found_s, found_i = self._exact_apart(query[part], ordered, order, *bounds[:, n], k)
                    else:
                        found_s, found_i = self._graph_apart(query[part], reference_group, group, k, beam)
                    index[part, : found_i.shape[1]], similarity[part, : found_i.shape[1]] = found_i, found_s
        return Neighbours(index, similarity, all(exact[1:]) if len(exact) > 1 else self.exact, min(recalls))

    @staticmethod
    def _exact_apart(query, ordered, order, low, high, k) -> tuple[np.ndarray, np.ndarray]:
        """Exact k best among the sorted rows outside [low, high): a BLAS search of each side, then merged
        (faiss's flat search with a selector compares row by row: the derived-copy candidate search took 3x as long
        with it)."""
        import faiss

        values, rows = [], []
        for begin, end in ((0, int(low)), (int(high), len(ordered))):
            if end - begin:
                found_s, found_i = faiss.knn(query, ordered[begin:end], int(min(k, end - begin)),
                                             metric=faiss.METRIC_INNER_PRODUCT)
                values.append(found_s)
                rows.append(np.where(found_i >= 0, order[np.maximum(found_i + begin, 0)], -1))
        if not rows:
            return np.zeros((len(query), 0), np.float32), np.zeros((len(query), 0), np.int64)
        value, row = np.concatenate(values, axis=1), np.concatenate(rows, axis=1)
        best = np.argsort(-value, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(value, best, 1), np.take_along_axis(row, best, 1)

    def _graph_apart(self, query, reference_group, group, k, beam: int | None) -> tuple[np.ndarray, np.ndarray]:
        """The graph search of `group`'s queries with a selector leaving the group out, at `beam`; exact
        (over-fetching past the group's rows) where it is None: no beam reached RECALL_TARGET."""
        inside = np.flatnonzero(reference_group == group)
        k = int(min(k, self.n - len(inside)))
        if k <= 0:
            return np.zeros((len(query), 0), np.float32), np.zeros((len(query), 0), np.int64)
        if beam is None:
            return self._exact_outside(query, inside, k)
        return self._graph(query, k, beam, _outside(inside))


def _kept(similarity: np.ndarray, index: np.ndarray, keep: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first k entries where `keep`, in their order (most similar first); -inf / -1 past them."""
    first = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    kept = np.take_along_axis(keep, first, 1)
    return (np.where(kept, np.take_along_axis(similarity, first, 1), np.float32(-np.inf)),
            np.where(kept, np.take_along_axis(index, first, 1), -1))


def _outside(inside: np.ndarray):
    import faiss

    return faiss.IDSelectorNot(faiss.IDSelectorBatch(inside))


class _Owner:
    """Exposes a view of memory owned by `index` to numpy: numpy keeps this object as the array's base, and this
    object keeps the index (and so the memory) alive for as long as the array lives."""

    def __init__(self, view: np.ndarray, index):
        self.__array_interface__ = view.__array_interface__
        self.index = index


def _stored_rows(index, dim: int) -> np.ndarray:
    """The (ntotal, dim) float32 rows an HNSW flat index stores, without a copy."""
    import faiss

    view = faiss.rev_swig_ptr(faiss.downcast_index(index.storage).get_xb(), index.ntotal * dim)
    rows = np.asarray(_Owner(view.reshape(index.ntotal, dim), index))
    rows.flags.writeable = False
    return rows


def best_per_row(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (rows[p], cols[p]) found by several searches (query variants), each with a similarity: the best value
    per pair, then per row its k most similar cols, most similar first (ties by col). Returns (rows, cols) sorted
    by row."""
    order = np.lexsort((-values, cols, rows))                 # per (row, col): the best variant first
    rows, cols, values = rows[order], cols[order], values[order]
    first = np.ones(len(rows), bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, values = rows[first], cols[first], values[first]
    order = np.lexsort((cols, -values, rows))                 # per row: most similar first
    rows, cols = rows[order], cols[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    return rows[rank < k], cols[rank < k]


def _drop(index: np.ndarray, similarity: np.ndarray, exclude: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row without its excluded entry (or without its last one when the excluded row is not among them)."""
    hit = index == exclude[:, None]
    miss = ~hit.any(axis=1)
    hit[miss, -1] = True
    keep = ~hit
    return index[keep].reshape(len(index), k), similarity[keep].reshape(len(index), k)
