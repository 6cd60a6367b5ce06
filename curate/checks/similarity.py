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


def near_duplicate_pairs(view, image_radius: int, audio_cosine: float, progress=None) -> list[tuple[str, str, float]]:
    """Pairs (id_a, id_b, score) that are near-duplicates but not the same object: images within `image_radius`
    of 256 bits (score = bits), audio with cosine >= `audio_cosine` (score = cosine). Each pair once, id_a < id_b."""
    from curate.features import embeddings, perceptual_hashes

    kind = media_kind(view)
    if kind is None:
        return []
    objects = dict(zip(view.manifest["id"], view.manifest["object"]))
    pairs = []
    if kind == "image":
        ids, hashes = perceptual_hashes(view, progress=progress)
        for start in range(0, len(ids), HASH_BLOCK):
            block = hashes[start:start + HASH_BLOCK]
            distance = np.bitwise_count(block[:, None, :] ^ hashes[None, :, :]).sum(axis=2)
            rows, cols = np.nonzero(distance <= image_radius)
            for r, c in zip(rows.tolist(), cols.tolist()):
                a, b = ids[start + r], ids[c]
                if a < b and objects[a] != objects[b]:
                    pairs.append((a, b, int(distance[r, c])))
    else:
        ids, matrix = embeddings(view, progress=progress)
        unit = _unit_rows(matrix)
        for start in range(0, len(ids), BLOCK):
            similarity = unit[start:start + BLOCK] @ unit.T
            rows, cols = np.nonzero(similarity >= audio_cosine)
            for r, c in zip(rows.tolist(), cols.tolist()):
                a, b = ids[start + r], ids[c]
                if a < b and objects[a] != objects[b]:
                    pairs.append((a, b, float(similarity[r, c])))
    return sorted(pairs)


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
