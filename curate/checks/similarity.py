"""Who is close to whom: near-duplicate pairs and nearest neighbours, vectorised (no all-pairs loop in Python).

Images are compared by 256-bit difference hash (Hamming distance), audio by cosine similarity of the cheap
embeddings (curate.features). Work is done in row blocks so memory stays bounded at 10^4-10^5 items.
"""
from __future__ import annotations

import numpy as np

BLOCK = 1024
HASH_BLOCK = 128  # rows x all items x 4 words of uint64 per block


def media_kind(view) -> str | None:
    kinds = set(view.manifest["media"])
    return kinds.pop() if len(kinds) == 1 else None


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    centred = matrix.astype(np.float32)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return centred / np.maximum(norms, 1e-12)


def near_duplicates(view, image_radius: int, audio_cosine: float, progress=None):
    """Near-duplicate pairs that are not the same object, as arrays: (ids, i, j, score) with i < j indexing `ids`.
    Images: within `image_radius` of 256 bits (score = bits); audio: cosine >= `audio_cosine` (score = cosine).
    Memoised on the view, so several checks share one computation."""
    from curate.features import embeddings, perceptual_hashes

    key = ("near_duplicates", image_radius, audio_cosine)
    memo = view.__dict__.setdefault("_similarity_memo", {})
    if key in memo:
        return memo[key]
    kind = media_kind(view)
    empty = np.zeros(0, dtype=np.int64)
    if kind is None:
        return [], empty, empty, np.zeros(0)
    if kind == "image":
        ids, values = perceptual_hashes(view, progress=progress)
        block_size = HASH_BLOCK

        def block_scores(start):
            block = values[start:start + block_size]
            distance = np.bitwise_count(block[:, None, :] ^ values[None, :, :]).sum(axis=2)
            return distance, distance <= image_radius
    else:
        ids, matrix = embeddings(view, progress=progress)
        values = _unit_rows(matrix)
        block_size = BLOCK

        def block_scores(start):
            similarity = values[start:start + block_size] @ values.T
            return similarity, similarity >= audio_cosine
    objects = np.unique(np.asarray(view.manifest.set_index("id").loc[ids, "object"], dtype=object),
                        return_inverse=True)[1]
    rows_all, cols_all, scores_all = [], [], []
    for start in range(0, len(ids), block_size):
        scores, close = block_scores(start)
        rows, cols = np.nonzero(close)
        rows = rows + start
        keep = (rows < cols) & (objects[rows] != objects[cols])
        rows_all.append(rows[keep])
        cols_all.append(cols[keep])
        scores_all.append(scores[rows[keep] - start, cols[keep]])
    result = (ids, np.concatenate(rows_all) if rows_all else empty, np.concatenate(cols_all) if cols_all else empty,
              np.concatenate(scores_all) if scores_all else np.zeros(0))
    memo[key] = result
    return result


def codes(view, ids: list[str], column: str) -> np.ndarray:
    """Integer codes of a manifest column for `ids` (missing values share one code), for vectorised comparisons."""
    values = view.manifest.set_index("id").loc[ids, column].astype(object).where(lambda s: s.notna(), "\0none")
    return np.unique(np.asarray(values, dtype=str), return_inverse=True)[1]


def standardised_embeddings(view, progress=None) -> tuple[list[str], np.ndarray]:
    """Embeddings z-scored per dimension, then scaled to unit length (cosine geometry for neighbour queries)."""
    from curate.features import embeddings

    ids, matrix = embeddings(view, progress=progress)
    if len(ids) == 0:
        return ids, matrix
    z = (matrix - matrix.mean(axis=0)) / np.maximum(matrix.std(axis=0), 1e-6)
    return ids, _unit_rows(z)


def nearest(query: np.ndarray, reference: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Indices (rows of `reference`) of the k most similar rows for each query row (unit vectors; cosine).
    With exclude_self, query row i is reference row i and is never its own neighbour."""
    k = min(k, len(reference) - (1 if exclude_self else 0))
    out = np.zeros((len(query), max(k, 0)), dtype=np.int64)
    if k <= 0:
        return out
    for start in range(0, len(query), BLOCK):
        similarity = query[start:start + BLOCK] @ reference.T
        if exclude_self:
            rows = np.arange(similarity.shape[0])
            similarity[rows, start + rows] = -np.inf
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
        out[start:start + len(similarity)] = np.take_along_axis(top, order, axis=1)
    return out
