"""Who is close to whom: near-duplicate pairs and nearest neighbours, vectorised (no all-pairs loop in Python).

Near-duplicates: one rule for every image size and for audio
    Two different objects are near-duplicates when their distance is far below the dataset's typical
    nearest-neighbour distance:

        distance <= max(FLOOR, min(CEILING, near_duplicate_ratio x typical))      near_duplicate_ratio = 0.25

    distance  between centred, unit-length feature vectors, sqrt(2 - 2 cos), in [0, 2].
              Images: the curate.features pixel thumbnail (the image's own pixels up to 32 px a side) area-averaged
              to 24 x 24 grey levels, taking the best of the 9 moves of the first image by -1/0/+1 image pixel (a
              fraction of a stored pixel, interpolated, for images over 32 px): a copy moved by one pixel matches
              exactly, centring removes a brightness offset, unit length a contrast change. (16 x 16 is too coarse:
              a 4 px and a 2 px wide bar of a 32 px glyph come out proportional, i.e. identical.)
              Audio: the curate.features fingerprint (floored log-mel on an energy-normalised time axis).
    typical   the median, over up to 1000 sampled items of origin "real" (all items when fewer than 2 real ones),
              of the distance to the nearest real item that is another object and not itself a near-duplicate by
              the threshold this typical distance implies (iterated from "beyond FLOOR"; the threshold only grows).
              So copies do not shrink the scale they are judged on: with 5 copies of 100 of the 250 speech clips the
              typical distance is 0.38 against 0.42 with copies of 50 (a plain median of nearest neighbours: 0.27).
    FLOOR     0.03 (cos 0.99955): closer than this two items are the same picture or clip whatever the dataset
              (JPEG q=90 copies of 28 px digits sit at <= 0.026); it alone decides when too few items for a typical.
    CEILING   0.35 (cos 0.94): further apart is never a near-duplicate, even where items are all far apart.
    score     per pair: distance / typical ("0.1" = ten times closer than items usually are to their neighbour).

    Finding the pairs: a coarse pass over the upper triangle in row blocks (images: 8 x 8 thumbnails, the best of
    the 9 moves, one matrix product per move; audio: the fingerprints themselves) keeps pairs within COARSE_SLACK
    x the threshold, at most MAX_PER_ITEM per item, and the full distance CONFIRMS them. Blocks hold at most
    ~2^24 similarities; nothing is quadratic in memory. (Found pairs had coarse distances <= 0.52 x the
    threshold on the sets below; an exhaustive search found no pair more.)

Calibration (ratio = distance / typical; tests/test_near_duplicates.py builds the sets)
    copies (each a different object)                        max ratio   different items                closest
    28 px synthetic digits, 1000 + copies of 200:                        different digits:              0.39
        JPEG q=90 0.068, moved 1 px 0.005, +10..20 levels 0.082          (1st percentile 0.49, median 0.96)
    32 px synthetic digits, same:  0.057, 0.004, 0.077                   different digits:              0.33
    28 px digits at 10,000 items (300 copied): all copies <= 0.12        one pair of two "1"s drawn one
                                                                         pixel apart: 0.22, then >= 0.3
    32 px OCR glyphs (sample_media), copies of 30:                       glyphs with the same pixels one
        JPEG q=90 0.084, moved 0.004, brighter 0.005                     pixel apart (5 pairs): 0.00; all
                                                                         others >= 0.32; I vs 1 >= 0.68
                                                                         (the 256-bit dHash had 235 pairs
                                                                         of different labels within 6 bits)
    128 px texture patches, crops 1 px apart: median 0.06, max 0.22     different patches: >= 0.40, but
        (48 px: max 0.41 - a one-pixel move of fine texture under         0.22 for two crops 3 px apart of
        a 32 px thumbnail is only approximately a fractional shift)      one photo (a real near-duplicate)
    speech, 250 clips + 5 copies of 50 clean ones:                       different voices, same word:   0.46
        +-3 dB 0.09, noise at 30 dB SNR 0.02, Ogg Vorbis 0.10,           (0.1 percentile 0.85); the two
        resampled to 22.05 kHz 0.004                                     flite voices of one speaker (kal,
                                                                         kal16), same word: 0.39
    With 5 copies of each of the 100 clean clips, 1490 of the 1500 copy pairs are found (10 Ogg pairs of one clip
    at 0.39). The same utterance mixed with noise at 0-10 dB (sample_media *_cafe etc.) is at >= 0.07: some pair, as the
    recording they share is the same. So 0.25 sits at about twice the worst copy and below the closest different
    items; the pairs under it that are not copies above were near-duplicates on inspection.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from curate.checks.index import Index

BLOCK = 1024
# similarities held at once by the near-duplicate passes (about 18 bytes each with their masks and ranks)
BLOCK_CELLS = 1 << 22
NEAR_DUPLICATE_RATIO = 0.25
FLOOR = 0.03
CEILING = 0.35
COARSE_SIDE, FINE_SIDE = 8, 24
SHIFTS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
COARSE_SLACK = 2.0
MAX_PER_ITEM = 64
FIRST_K = 9   # neighbours asked of every item first (see _within)
TYPICAL_SAMPLE = 1000
TYPICAL_CANDIDATES = 16
PAIR_CHUNK = 8192
ROW_CHUNK = 256
ROWS_PER_SEARCH = 4096  # query rows per index search: bounds the candidate lists held at once
THUMB_BLOCK = 2048  # items resampled at a time (each item's thumbnail is computed on its own: any block, same bytes)


def media_kind(view) -> str | None:
    kinds = set(view.manifest["media"])
    return kinds.pop() if len(kinds) == 1 else None


def _centred_unit(matrix: np.ndarray) -> np.ndarray:
    centred = matrix - matrix.mean(axis=1, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-6)


def _distance(similarity: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0))


def _similarity(distance: float) -> float:
    return 1.0 - distance * distance / 2.0


@dataclass(frozen=True)
class NearDuplicates:
    """Near-duplicate pairs (i < j index `ids`), with the scale that judged them."""
    media: str | None
    ids: list[str]
    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray
    ratio: np.ndarray          # distance / typical: the per-pair score
    typical: float             # typical nearest-neighbour distance between different items (nan: too few items)
    threshold: float           # pairs at or below this distance are near-duplicates
    near_duplicate_ratio: float
    recall: float = 1.0        # of the candidate search: 1.0 exact, else measured against exact search on a sample
    exact: bool = True         # every candidate search was exact

    def rule(self) -> str:
        """The rule in words, for finding messages."""
        from curate.checks.index import EXACT_UP_TO, RECALL_SAMPLE

        searched = "" if self.exact else (
            f"; candidates searched approximately above {EXACT_UP_TO} items, recall {self.recall:.3f}: the lowest "
            f"of the searches', each measured against exact search on up to {RECALL_SAMPLE} of its queries")
        if math.isnan(self.typical):
            return f"distance <= {self.threshold:.3g} (too few different items for a typical distance{searched})"
        return (f"closer than {self.near_duplicate_ratio:g}x the typical nearest-neighbour distance "
                f"{self.typical:.3g}: distance <= {self.threshold:.3g}{searched}")

    def figures(self) -> dict:
        return {"near_duplicate_ratio": self.near_duplicate_ratio,
                "typical_distance": None if math.isnan(self.typical) else self.typical,
                "threshold": self.threshold, "floor": FLOOR, "ceiling": CEILING, "search_recall": self.recall}


class _Pixels:
    """Pixel thumbnails: coarse 8 x 8 and full FINE_SIDE x FINE_SIDE grey levels at the 9 one-pixel shifts (one pixel
    of the image: a fraction of a stored pixel, by linear interpolation, where the image was larger than 32 px)."""

    def __init__(self, raw: np.ndarray):
        from curate.features import THUMBNAIL_SIDE

        self.n = len(raw)
        self.shape = raw[:, :4].astype(np.int64)  # stored height, width, step y, step x (x 255)
        self.pixels = raw[:, 4:].reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE)
        self.coarse_ref = self.thumbs(COARSE_SIDE, np.arange(self.n), ((0, 0),))[:, 0]
        self.fine_ref = self.thumbs(FINE_SIDE, np.arange(self.n), ((0, 0),))[:, 0]

    def thumbs(self, side: int, rows: np.ndarray, shifts) -> np.ndarray:
        """(len(rows), len(shifts), side*side) centred unit vectors of the shifted pixels, area-averaged to side x
        side (the edges are repeated into the uncovered border)."""
        out = np.zeros((len(rows), len(shifts), side * side), np.float32)
        if len(rows) > THUMB_BLOCK:   # the float copies made on the way hold ~16 KB an item: a block at a time
            for start in range(0, len(rows), THUMB_BLOCK):
                out[start:start + THUMB_BLOCK] = self.thumbs(side, rows[start:start + THUMB_BLOCK], shifts)
            return out
        shape = self.shape[rows]
        for h, w, step_y, step_x in {tuple(s) for s in shape.tolist()}:
            sel = np.flatnonzero((shape == (h, w, step_y, step_x)).all(axis=1))
            padded = np.pad(self.pixels[rows[sel], :h, :w].astype(np.float32), ((0, 0), (1, 1), (1, 1)), mode="edge")
            down, across = _area_weights(h, side), _area_weights(w, side)
            for k, (dy, dx) in enumerate(shifts):
                moved = _moved(padded, h, w, dy * step_y / 255, dx * step_x / 255)
                out[sel, k] = _centred_unit((down @ moved @ across.T).reshape(len(sel), -1))
        return out

    def coarse_similarity(self, rows: np.ndarray, first: int = 0) -> np.ndarray:
        """(len(rows), n - first): best coarse similarity over the 9 shifts of each row item to items first..."""
        query = self.thumbs(COARSE_SIDE, rows, SHIFTS)
        reference = self.coarse_ref[first:].T
        best = query[:, 0] @ reference
        for k in range(1, len(SHIFTS)):
            np.maximum(best, query[:, k] @ reference, out=best)
        return best

    def coarse_reference(self) -> np.ndarray:
        return self.coarse_ref

    def coarse_queries(self, rows: np.ndarray) -> list[np.ndarray]:
        """The coarse vectors of `rows` at each of the 9 one-pixel shifts (a copy moved by a pixel matches one)."""
        query = self.thumbs(COARSE_SIDE, rows, SHIFTS)
        return [np.ascontiguousarray(query[:, k]) for k in range(len(SHIFTS))]

    def distance(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Distance of each pair (rows[p], cols[p]): the best of the 9 shifts of the row item against the column
        item. Each row item's shifted thumbnails are made once; memory is bounded by ROW_CHUNK and PAIR_CHUNK."""
        out = np.zeros(len(rows), np.float64)
        order = np.argsort(rows, kind="stable")
        rows_sorted, cols_sorted = rows[order], cols[order]
        unique_rows, first = np.unique(rows_sorted, return_index=True)
        first = np.append(first, len(rows_sorted))
        for start in range(0, len(unique_rows), ROW_CHUNK):
            block = unique_rows[start:start + ROW_CHUNK]
            shifted = self.thumbs(FINE_SIDE, block, SHIFTS)
            lo, hi = first[start], first[min(start + ROW_CHUNK, len(unique_rows))]
            for at in range(lo, hi, PAIR_CHUNK):
                end = min(at + PAIR_CHUNK, hi)
                local = np.searchsorted(block, rows_sorted[at:end])
                reference = self.fine_ref[cols_sorted[at:end]]
                best = np.full(end - at, -1.0, np.float32)
                for k in range(len(SHIFTS)):
                    np.maximum(best, np.einsum("pd,pd->p", shifted[local, k], reference), out=best)
                out[order[at:end]] = _distance(best.astype(np.float64))
        return out


class _Vectors:
    """Unit vectors compared directly (audio fingerprints)."""

    def __init__(self, vectors: np.ndarray):
        self.n = len(vectors)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)   # no copy of float32 rows

    def coarse_similarity(self, rows: np.ndarray, first: int = 0) -> np.ndarray:
        return self.vectors[rows] @ self.vectors[first:].T

    def coarse_reference(self) -> np.ndarray:
        return self.vectors

    def coarse_queries(self, rows: np.ndarray) -> list[np.ndarray]:
        return [self.vectors[rows]]

    def distance(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Distance of each pair (rows[p], cols[p]), PAIR_CHUNK pairs at a time: the pairs of a set where every
        item has many near-duplicates (60k clips, 64 pairs each) gathered at once held 5.9 GB of row copies."""
        similarity = np.empty(len(rows), np.float32)
        for at in range(0, len(rows), PAIR_CHUNK):
            end = min(at + PAIR_CHUNK, len(rows))
            similarity[at:end] = np.einsum("pd,pd->p", self.vectors[rows[at:end]], self.vectors[cols[at:end]])
        return _distance(similarity.astype(np.float64))


def _moved(padded: np.ndarray, h: int, w: int, dy: float, dx: float) -> np.ndarray:
    """(m, h, w) images moved by (dy, dx) pixels, |d| <= 1 (linear interpolation between whole-pixel moves), from
    images padded by one pixel on each side."""
    def window(oy, ox):
        return padded[:, 1 - oy:1 - oy + h, 1 - ox:1 - ox + w]

    iy, ix = int(np.sign(dy)), int(np.sign(dx))
    fy, fx = abs(dy), abs(dx)
    out = (1 - fy) * (1 - fx) * window(0, 0)
    if fx:
        out = out + (1 - fy) * fx * window(0, ix)
    if fy:
        out = out + fy * (1 - fx) * window(iy, 0)
    if fx and fy:
        out = out + fy * fx * window(iy, ix)
    return out


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights that average n_in samples into n_out equal intervals (area resampling)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    index = np.arange(n_in)[None, :]
    weights = np.clip(np.minimum(edges[1:, None], index + 1) - np.maximum(edges[:-1, None], index), 0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _threshold(typical: float, ratio: float) -> float:
    return FLOOR if math.isnan(typical) else max(FLOOR, min(CEILING, ratio * typical))


def _typical(space, objects: np.ndarray, reference: np.ndarray, ratio: float) -> float:
    """The typical nearest-neighbour distance between items that are not near-duplicates of each other: the median,
    over (a sample of) reference items, of the distance to the nearest reference item of another object beyond the
    near-duplicate threshold that this typical distance itself implies. Found by iterating from "beyond FLOOR"
    (the threshold only grows, so it settles); nan when fewer than 2 items have such a neighbour."""
    rows_all = np.flatnonzero(reference)
    if len(rows_all) > TYPICAL_SAMPLE:
        rows_all = np.sort(np.random.default_rng(0).choice(rows_all, TYPICAL_SAMPLE, replace=False))
    k = min(TYPICAL_CANDIDATES, space.n - 1)
    if k < 1 or len(rows_all) == 0:
        return float("nan")
    near_identical = _similarity(FLOOR)
    pair_rows, pair_cols = [], []
    block = max(16, min(BLOCK, BLOCK_CELLS // max(space.n, 1)))
    for start in range(0, len(rows_all), block):
        rows = rows_all[start:start + block]
        similarity = space.coarse_similarity(rows)
        similarity[:, ~reference] = -np.inf
        similarity[objects[rows][:, None] == objects[None, :]] = -np.inf
        similarity[similarity >= near_identical] = -np.inf
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        valid = np.isfinite(np.take_along_axis(similarity, top, axis=1))
        pair_rows.append(np.repeat(rows, k).reshape(len(rows), k)[valid])
        pair_cols.append(top[valid])
    rows, cols = np.concatenate(pair_rows), np.concatenate(pair_cols)
    distance = space.distance(rows, cols)
    typical, beyond = float("nan"), FLOOR
    for _ in range(8):
        nearest_distance = np.full(space.n, np.inf)
        np.minimum.at(nearest_distance, rows, np.where(distance > beyond, distance, np.inf))
        found = nearest_distance[np.isfinite(nearest_distance)]
        typical = float(np.median(found)) if len(found) >= 2 else float("nan")
        if _threshold(typical, ratio) <= beyond:
            break
        beyond = _threshold(typical, ratio)
    return typical


def _pairs(space, objects: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]:
    """Pairs i < j of different objects within `threshold`: each item's MAX_PER_ITEM nearest (coarse vectors, the
    best of the space's query variants, through one curate.checks.index.Index), kept when within COARSE_SLACK x
    the threshold, then confirmed by the full distance. Also returns the search's recall (the lowest of the
    variants': 1.0 when exact) and whether every search was exact."""
    from curate.checks.index import Index, best_per_row

    limit = _similarity(min(threshold * COARSE_SLACK, 2.0))
    index = Index(space.coarse_reference())
    k = min(MAX_PER_ITEM + 1, space.n)
    pair_rows, pair_cols = [], []
    recall, exact = 1.0, True
    for start in range(0, space.n, ROWS_PER_SEARCH):
        rows = np.arange(start, min(space.n, start + ROWS_PER_SEARCH))
        found_rows, found_cols, found_sim = [], [], []
        for variant in space.coarse_queries(rows):   # images: the 9 one-pixel moves; audio: the vectors
            for r, c, v, searched in _within(index, rows, variant, k, limit):
                recall, exact = min(recall, searched.recall), exact and searched.exact
                keep = (c >= 0) & (c != r) & (v >= limit)
                found_rows.append(r[keep])
                found_cols.append(c[keep])
                found_sim.append(v[keep])
        r, c, v = (np.concatenate(x) for x in (found_rows, found_cols, found_sim))
        keep = objects[r] != objects[c]
        r, c = best_per_row(r[keep], c[keep], v[keep], MAX_PER_ITEM)   # the best variant per pair
        pair_rows.append(np.minimum(r, c))
        pair_cols.append(np.maximum(r, c))
    rows = np.concatenate(pair_rows) if pair_rows else np.zeros(0, np.int64)
    cols = np.concatenate(pair_cols) if pair_cols else np.zeros(0, np.int64)
    if len(rows):
        unique = np.unique(rows * space.n + cols)
        rows, cols = unique // space.n, unique % space.n
    distance = space.distance(rows, cols)
    keep = distance <= threshold
    return rows[keep], cols[keep], distance[keep], recall, exact


def _within(index, rows: np.ndarray, query: np.ndarray, k: int, limit: float):
    """(rows, cols, similarities, Neighbours) of each query row's k nearest reference rows, flattened, asked in two
    steps: FIRST_K nearest for every row, then k for the rows whose FIRST_K-th is still within `limit`. Almost every
    item has no near-duplicate, and a graph search costs about its k, so this halves the 50k-item search; the pairs
    within `limit` are the same as one search for k (exact search: whatever is within the limit ranks before the
    first neighbour beyond it)."""
    first = min(FIRST_K, k)
    neighbours = index.search(query, first)
    yield (np.repeat(rows, neighbours.index.shape[1]), neighbours.index.reshape(-1),
           neighbours.similarity.reshape(-1), neighbours)
    if first < k:
        again = np.flatnonzero(neighbours.similarity[:, -1] >= limit)
        if len(again):
            more = index.search(query[again], k)
            yield (np.repeat(rows[again], more.index.shape[1]), more.index.reshape(-1),
                   more.similarity.reshape(-1), more)


def near_duplicates(view, near_duplicate_ratio: float = NEAR_DUPLICATE_RATIO, progress=None,
                    scale_from=None) -> NearDuplicates:
    """Near-duplicate pairs of different objects in `view` by the rule in the module docstring. Memoised on the
    view, so the consistency and leakage checks share one computation. `scale_from` (the source of a change): judge
    with its typical distance, so that a change which only removes or moves items cannot pull unchanged pairs over
    the threshold by shifting the scale."""
    from curate.features import audio_fingerprints, pixel_thumbnails

    scale = near_duplicates(scale_from, near_duplicate_ratio).typical if scale_from is not None else float("nan")
    key = ("near_duplicates", float(near_duplicate_ratio), None if math.isnan(scale) else scale)
    memo = view.__dict__.setdefault("_similarity_memo", {})
    if key in memo:
        return memo[key]
    kind = media_kind(view)
    empty = np.zeros(0, dtype=np.int64)
    if kind is None or len(view.manifest) < 2:
        return NearDuplicates(kind, list(view.manifest["id"]), empty, empty, np.zeros(0), np.zeros(0), float("nan"),
                              FLOOR, near_duplicate_ratio)
    if kind == "image":
        ids, raw = pixel_thumbnails(view, progress=progress)
        space = _Pixels(raw)
    else:
        ids, vectors = audio_fingerprints(view, progress=progress)
        space = _Vectors(vectors)
    frame = view.manifest.set_index("id").loc[ids]
    objects = np.unique(np.asarray(frame["object"], dtype=object), return_inverse=True)[1]
    reference = np.ones(len(ids), bool)
    if "origin" in frame.columns:
        real = np.asarray(frame["origin"] == "real")
        if len(np.unique(objects[real])) >= 2:
            reference = real
    typical = scale if not math.isnan(scale) else _typical(space, objects, reference, near_duplicate_ratio)
    threshold = _threshold(typical, near_duplicate_ratio)
    i, j, distance, recall, exact = _pairs(space, objects, threshold)
    ratio = distance / typical if not math.isnan(typical) else np.full(len(distance), np.nan)
    result = NearDuplicates(kind, ids, i, j, distance, ratio, typical, threshold, near_duplicate_ratio, recall, exact)
    memo[key] = result
    return result


def codes(view, ids: list[str], column: str) -> np.ndarray:
    """Integer codes of a manifest column for `ids` (missing values share one code), for vectorised comparisons."""
    values = view.manifest.set_index("id").loc[ids, column].astype(object).where(lambda s: s.notna(), "\0none")
    return np.unique(np.asarray(values, dtype=str), return_inverse=True)[1]


@dataclass(frozen=True)
class RealIndex:
    """The items' embeddings z-scored per dimension (over every item), then scaled to unit length (cosine
    geometry), with the real items' rows first. The real rows are held once, as the rows of `index` (above
    EXACT_UP_TO, the graph's own storage); the others are `others`. `vectors` gathers rows of either."""
    ids: list[str]        # the item of each row: the real items in manifest order, then the others
    others: np.ndarray    # (items - real, dims) float32: the rows real .. items - 1
    real: int             # rows 0 .. real - 1 are the real items: the rows of `index` (index.reference)
    index: "Index"

    @property
    def row(self) -> dict[str, int]:
        return {i: n for n, i in enumerate(self.ids)}

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The unit rows at positions `rows` (a 1-D array of positions in `ids`), in that order, as a new array."""
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and (rows.dtype.kind not in "iu" or rows.min() < 0
                                             or rows.max() >= len(self.ids))):
            raise ValueError(f"rows: expected a 1-D array of positions in 0..{len(self.ids) - 1}")
        rows = rows.astype(np.int64)
        out = np.empty((len(rows), self.others.shape[1] if self.others.ndim == 2 else 0), np.float32)
        real = rows < self.real
        out[real] = self.index.reference[rows[real]]
        out[~real] = self.others[rows[~real] - self.real]
        return out


def real_index(view, progress=None) -> RealIndex:
    """The RealIndex of a view, memoised on it: realism's "label kept" and ambiguity's neighbour shares ask about the
    same rows, and above EXACT_UP_TO items building the graph is most of the cost of either (37.5k rows of 560
    floats). Each row is held once (at 200k items a copy of every row is 450 MB); the statistics are taken in
    manifest order, so the values are those of z-scoring the manifest-ordered matrix (each row is then standardised
    on its own: its bytes do not depend on which array it sits in)."""
    from curate.checks.index import Index
    from curate.features import embeddings

    memo = view.__dict__.setdefault("_similarity_memo", {})
    if "real_index" not in memo:
        ids, matrix = embeddings(view, progress=progress)
        matrix = np.asarray(matrix, dtype=np.float32)
        origin = dict(zip(view.manifest["id"], view.manifest["origin"]))
        real = np.array([origin[i] == "real" for i in ids], dtype=bool)
        if len(ids):
            mean, std = matrix.mean(axis=0), np.maximum(matrix.std(axis=0), 1e-6)
        parts = []
        for rows in (np.flatnonzero(real), np.flatnonzero(~real)):
            unit = matrix[rows] if len(ids) else np.zeros((0, 0), np.float32)
            if len(ids):
                unit -= mean
                unit /= std
                unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
            parts.append(unit)
        del matrix
        order = np.r_[np.flatnonzero(real), np.flatnonzero(~real)]
        index = Index(parts[0])   # exact search keeps these rows; the graph copies them into its storage
        memo["real_index"] = RealIndex([ids[n] for n in order], parts[1], int(real.sum()), index)
    return memo["real_index"]


# memoised computations on a view, by family: a check declares the families it reads (its SHARED), and the gate
# forgets a family once no check left to run reads it (at 200k items the real index alone is about 800 MB)
MEMO_FAMILIES = {"real_index": "embeddings", "near_duplicates": "pairs", "derived_copies": "pairs",
                 "copies_images": "pairs", "copies_typical": "pairs"}


def forget(view, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Drop the computations memoised on `view` (see MEMO_FAMILIES) whose family is not in `keep`."""
    memo = getattr(view, "__dict__", {}).get("_similarity_memo")
    if not memo:
        return
    for key in list(memo):
        name = key if isinstance(key, str) else key[0]
        if MEMO_FAMILIES.get(name) not in keep:
            del memo[key]

