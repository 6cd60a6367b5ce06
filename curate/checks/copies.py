"""Derived copies: an item that is another item transformed (noise mixed in, a gain, resampling, a codec round trip,
a small shift or rotation, a brightness change). Near-duplicate distances (curate.checks.similarity) catch copies
that stay close in feature space; these do not: a clip under 0-10 dB of cafe noise, or a digit rotated by 4 degrees,
is as far from its original as a different item. Each is confirmed at the signal level instead, on candidates that
a cheap index proposes, and judged against evidence that a different item cannot produce.

Images: a pose search, then a sharp refinement
    Candidates: the IMAGE_CANDIDATES nearest reference items of the same stored size, never the same object, ranked
    on blurred 16 x 16 grey images with the query also turned by +-2.5 and +-5 degrees (among 600 drawn "1"s a
    4-degree copy is not in the top 8 of an unturned ranking). Grid: both images blurred (BLUR_SIGMA stored pixels), the query
    rotated by -6..6 degrees (2 degree steps: the refinement finds the angle) and moved by -2..2 stored pixels (one sparse bilinear operator per
    image size), compared on the interior (a MARGIN-pixel frame left out: a move brings in pixels nobody knows) as
    centred (brightness) unit-length (contrast) grey vectors, distance sqrt(2 - 2 cos) as for near-duplicates.
    The grid finds the pose but cannot decide: blurred, two strokes of a "1" drawn 3 degrees apart are as close as
    a rotated copy (bench digits: copies <= 0.18 x typical, a pair of different "1"s at 0.17). So every pair within
    REFINE_BELOW x typical is refined on the SHARP images (Nelder-Mead over angle and move, from the grid's pose,
    each image moved in turn): moving the original reproduces the copy's interpolation exactly, so a copy comes
    out near 0, while two drawings keep their different strokes and sensor noise.
    A pair is a copy when its sharp distance is <= COPY_RATIO x typical, where typical is the median blurred grid
    distance from a real item to its nearest other real item (the near-duplicate rule's scale, pose-searched).
    Calibration (sharp distance / typical; digits drawn with random slant, zoom, width and sensor noise):
        bench/gate.py digits, 300 + 30 planted copies: rotated 2-5 deg 0.015-0.027, moved 1 px 0.000,
            brighter 15-30 levels 0.00-0.31 (clipping; near-duplicates catch those at <= 0.1)
        nearest other digits refined (grid <= 0.5): >= 0.76 on the bench digits, >= 1.19 on the test digits
    so COPY_RATIO = 0.4 sits between them.

Audio: waveform confirmation (8 kHz, lag up to 250 ms)
    Candidates: the AUDIO_CANDIDATES reference items with the same label (a relabelled copy is a conflict, not a
    leak) and the same duration within 3 % + 60 ms (noise, gain, resampling, codecs and small shifts keep it),
    ranked by the near-duplicate fingerprint. The normalised cross-correlation at the best lag decides:
      copy           NCC >= COPY_NCC (0.97): the same samples up to a gain, a codec, resampling or noise >= ~13 dB
                     down (a planted copy: gain 1.000, resampled 0.997, Ogg Vorbis 0.992, 15 dB noise 0.970).
      possible copy  NCC >= MASKED_NCC (0.5) and the residual y - g.x behaves as independent noise: the local gain
                     agrees with the global one (within 30 %) in >= MASKED_AGREE of the 32 ms windows where x is
                     active, and the residual's log spectrogram is uncorrelated (<= MASKED_TFC, both double-centred)
                     with x's. 0-10 dB noise copies: NCC 0.58-0.95, residual correlation <= 0.15.
    The possible copies are a warning, not an error, because physics cannot tell them from two synthetic voices:
    on the sample speech, espeak's US and Scottish "two" correlate 0.82 clean, and under 6 dB of cafe noise the
    Scottish one looks exactly like a noisy copy of the US one (NCC 0.56, residual correlation 0.06). Two real
    recordings of one speaker never correlate like that (different takes do not share samples), so on real speech
    a "possible copy" deserves a listen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

COPY_RATIO = 0.4
REFINE_BELOW = 0.5
GRID_COPY = 0.25
BLUR_SIGMA = 2.0
POSE_ANGLES = tuple(float(a) for a in range(-6, 7, 2))
POSE_SHIFTS = tuple((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3))
POSE_CHUNK = 64
IMAGE_CANDIDATES = 8
RANK_SIDE = 16
RANK_ANGLES = (0.0, -5.0, -2.5, 2.5, 5.0)
CANDIDATE_BLOCK = 4096   # query rows ranked at a time: bounds the rotated vectors held (5 x 256 floats a row)
MARGIN = 3
TYPICAL_SAMPLE = 300

AUDIO_RATE = 8000
MAX_LAG_S = 0.25
DURATION_RELATIVE, DURATION_ABSOLUTE_S = 0.03, 0.06
AUDIO_CANDIDATES = 8
AUDIO_FETCH = 32      # nearest fingerprints asked per clip before the duration rule picks AUDIO_CANDIDATES
COPY_NCC = 0.97
MASKED_NCC, MASKED_AGREE, MASKED_TFC = 0.5, 0.8, 0.2
WINDOW = 256          # 32 ms at 8 kHz
ACTIVE_DB = 30.0      # windows within this many dB of the loudest are "active"


@dataclass(frozen=True)
class DerivedCopies:
    """Pairs (query[k], reference[k]) judged copies; `confident` False marks an audio "possible copy"."""
    media: str | None
    query: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    confident: list[bool] = field(default_factory=list)
    detail: list[str] = field(default_factory=list)
    compared: int = 0
    typical: float = float("nan")

    def rule(self, confident: bool = True) -> str:
        if self.media == "image":
            scale = "too few real items for a typical distance" if math.isnan(self.typical) else \
                f"typical {self.typical:.3g}"
            return (f"best pose within +-6 deg and +-2 px closer than {COPY_RATIO:g}x the typical distance between "
                    f"different items ({scale}); {self.compared} candidate pair(s) compared")
        if confident:
            return (f"waveform correlation >= {COPY_NCC:g} at the best lag; {self.compared} candidate pair(s) "
                    "of one label and duration compared")
        return (f"waveform correlation >= {MASKED_NCC:g} with a residual that behaves as independent noise: "
                "the same recording under added noise, or two synthetic voices that share samples; listen to them")

    def figures(self) -> dict:
        return {"compared": self.compared, "copy_ratio": COPY_RATIO, "copy_ncc": COPY_NCC, "masked_ncc": MASKED_NCC,
                "typical_pose_distance": None if math.isnan(self.typical) else self.typical}


def derived_copies(view, query: list[str], reference: list[str], scale_from=None,
                   other_label: bool = False) -> DerivedCopies:
    """Reference items that are derived copies of query items (or the other way round: the tests are symmetric
    where it matters). `other_label`: only pairs whose labels differ (label conflicts; images only, as audio
    candidates share the query's label). Memoised on the view per arguments."""
    from curate.checks.similarity import media_kind

    key = ("derived_copies", tuple(query), tuple(reference), None if scale_from is None else scale_from.ref,
           other_label)
    memo = view.__dict__.setdefault("_similarity_memo", {})
    if key in memo:
        return memo[key]
    from curate.compute import one_blas_thread

    kind = media_kind(view)
    with one_blas_thread():  # thousands of small per-item products (pose search, waveform correlation)
        if kind is None or not query or not reference or (other_label and kind != "image"):
            result = DerivedCopies(kind)
        elif kind == "image":
            result = _image_copies(view, query, reference, scale_from, other_label)
        else:
            result = _audio_copies(view, query, reference)
    memo[key] = result
    return result


# -- images -------------------------------------------------------------------------------------------------------

class _Images:
    def __init__(self, view):
        from curate.features import THUMBNAIL_SIDE, pixel_thumbnails

        self.ids, raw = pixel_thumbnails(view)
        self.index = {item: k for k, item in enumerate(self.ids)}
        self.pixels = raw[:, 4:].reshape(len(raw), THUMBNAIL_SIDE, THUMBNAIL_SIDE)   # stored grey levels
        self.size = [tuple(s) for s in raw[:, :2].astype(int).tolist()]
        self.size_code = np.unique(raw[:, :2].astype(np.int64) @ np.array([64, 1]), return_inverse=True)[1]
        objects = view.manifest.set_index("id").loc[self.ids, "object"]
        self.objects = np.unique(np.asarray(objects, dtype=object), return_inverse=True)[1]

    def blurred(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), h*w) blurred grey levels of items of one stored size."""
        import cv2

        h, w = self.size[rows[0]]
        return np.stack([cv2.GaussianBlur(self.pixels[r, :h, :w].astype(np.float32), (0, 0), BLUR_SIGMA,
                                          borderType=cv2.BORDER_REPLICATE).reshape(-1) for r in rows])

    def candidates(self, rows: np.ndarray, allowed: np.ndarray, k: int,
                   labels: np.ndarray | None = None) -> list[np.ndarray]:
        """For each row, up to k allowed rows of its size and another object (and, given `labels` codes, another
        label), most similar first (coarse): each rotation of the row asked of one curate.checks.index.Index of
        the unturned allowed rows per stored size, and the best rotation kept per pair. Exact: a row in the top k
        of the best rotation is in the top k of that rotation's own search."""
        from curate.checks.index import OVERFETCH, Index, best_per_row

        out: list[np.ndarray] = [np.zeros(0, np.int64) for _ in rows]
        if "_reference" not in self.__dict__:  # every call ranks against the same unturned vectors
            self._reference = self.rank_vectors(np.arange(len(self.ids)), (0.0,))[:, 0]
        for code in np.unique(self.size_code[rows]) if len(rows) else []:
            reference = np.flatnonzero(allowed & (self.size_code == code))
            if not len(reference):
                continue
            index = Index(self._reference[reference])
            # the same object under other ids (and the row itself) is dropped after the search: fetch past it
            fetch = min(len(reference), k + min(int(np.bincount(self.objects[reference]).max()), OVERFETCH))
            where = np.flatnonzero(self.size_code[rows] == code)
            for start in range(0, len(where), CANDIDATE_BLOCK):
                at = where[start:start + CANDIDATE_BLOCK]
                part = rows[at]
                moved = self.rank_vectors(part, RANK_ANGLES)
                found, value = [], []
                for a in range(len(RANK_ANGLES)):   # a rotated copy ranks its original first among look-alikes
                    near = (index.search(moved[:, a], fetch) if labels is None else
                            index.search_apart(moved[:, a], labels[part], labels[reference], fetch))
                    found.append(near.index)
                    value.append(near.similarity)
                found, value = np.concatenate(found, axis=1), np.concatenate(value, axis=1)
                line = np.repeat(np.arange(len(part)), found.shape[1])
                other = np.where(found >= 0, reference[np.maximum(found, 0)], -1).reshape(-1)
                value = value.reshape(-1)
                keep = (other >= 0) & (self.objects[np.maximum(other, 0)] != self.objects[part][line])
                line, other = best_per_row(line[keep], other[keep], value[keep], k)   # best rotation per pair
                bounds = np.searchsorted(line, np.arange(len(part) + 1))
                for n, position in enumerate(at):
                    out[position] = other[bounds[n]:bounds[n + 1]]
        return out

    def rank_vectors(self, rows: np.ndarray, angles) -> np.ndarray:
        """(len(rows), len(angles), RANK_SIDE**2) centred unit vectors of the blurred images rotated by each angle
        and area-averaged to RANK_SIDE x RANK_SIDE: the candidate index."""
        import cv2

        out = np.zeros((len(rows), len(angles), RANK_SIDE * RANK_SIDE), np.float32)
        for n, row in enumerate(rows):
            h, w = self.size[row]
            image = cv2.GaussianBlur(self.pixels[row, :h, :w].astype(np.float32), (0, 0), BLUR_SIGMA,
                                     borderType=cv2.BORDER_REPLICATE)
            for a, angle in enumerate(angles):
                turned = image if angle == 0 else cv2.warpAffine(
                    image, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), float(angle), 1.0), (w, h),
                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                out[n, a] = cv2.resize(turned, (RANK_SIDE, RANK_SIDE), interpolation=cv2.INTER_AREA).reshape(-1)
        out -= out.mean(axis=2, keepdims=True)
        out /= np.maximum(np.linalg.norm(out, axis=2, keepdims=True), 1e-6)
        return out

    def pose_distances(self, rows: np.ndarray, others: list[np.ndarray]) -> list[tuple[np.ndarray, list[tuple]]]:
        """For each row, the best-pose distance of the row's image (moved) to each of its `others` (as they are),
        with the pose found. Rows are grouped by stored size and done POSE_CHUNK at a time."""
        import cv2

        out: list = [None] * len(rows)
        for code in np.unique(self.size_code[rows]) if len(rows) else []:
            where = np.flatnonzero(self.size_code[rows] == code)
            h, w = self.size[rows[where[0]]]
            operator, poses = _pose_operator(h, w)
            inner = operator.shape[0] // len(poses)
            for start in range(0, len(where), POSE_CHUNK):
                chunk = where[start:start + POSE_CHUNK]
                # cv2's transpose: half of numpy's time for this (poses x pixels, chunk) array
                moved = cv2.transpose(np.ascontiguousarray(operator @ self.blurred(rows[chunk]).T))
                moved = moved.reshape(len(chunk), len(poses), inner)
                moved -= moved.mean(axis=2, keepdims=True)
                moved /= np.maximum(np.linalg.norm(moved, axis=2, keepdims=True), 1e-6)
                wanted = np.unique(np.concatenate([others[at] for at in chunk]).astype(np.int64))
                if len(wanted):  # each target of the chunk blurred once, however many rows name it
                    still_all = _centred_unit(_interior(self.blurred(wanted).reshape(len(wanted), h, w)))
                for n, at in enumerate(chunk):
                    targets = others[at]
                    if len(targets) == 0:
                        out[at] = (np.zeros(0), [])
                        continue
                    still = still_all[np.searchsorted(wanted, targets)]
                    similarity = moved[n] @ still.T
                    best = np.argmax(similarity, axis=0)
                    value = similarity[best, np.arange(len(targets))].astype(np.float64)
                    out[at] = (np.sqrt(np.maximum(2.0 - 2.0 * value, 0.0)), [poses[p] for p in best])
        return out


    def refined(self, row: int, other: int, pose: tuple) -> tuple[float, tuple, bool]:
        """(distance, pose, reversed): the sharp (unblurred) pose distance, minimised from the grid's `pose` in
        both directions. Warping the original reproduces a copy's interpolation exactly, so a copy comes out near
        0 one way round; which item is the original is not known, hence both."""
        memo = self.__dict__.setdefault("_refined", {})
        key = (row, other) if row <= other else (other, row)
        if key not in memo:  # leakage and consistency ask about many of the same pairs, in either order
            memo[key] = self._refine(*key, pose if key == (row, other) else _inverse(pose))
        distance, found, reverse = memo[key]
        # swapped: the pose moved the other item of the pair, so it is the same pose with the direction flipped
        return (distance, found, reverse) if key == (row, other) else (distance, found, not reverse)

    def _refine(self, row: int, other: int, pose: tuple) -> tuple[float, tuple, bool]:
        from scipy.optimize import minimize

        sharp = [self.pixels[r, :self.size[r][0], :self.size[r][1]].astype(np.float32) for r in (row, other)]
        best = (2.0, pose, False)
        for moving, still, start, reverse in ((0, 1, pose, False), (1, 0, _inverse(pose), True)):
            target = _centred_unit(_interior(sharp[still][None]))[0]
            simplex = np.array([start, *(np.add(start, step) for step in np.eye(3) * (0.7, 0.5, 0.5))])
            result = minimize(lambda p: _sharp_distance(sharp[moving], target, p), np.array(start),
                              method="Nelder-Mead", options={"xatol": 0.01, "fatol": 1e-5, "maxfev": 400,
                                                              "initial_simplex": simplex})
            if result.fun < best[0]:
                best = (float(result.fun), tuple(float(v) for v in result.x), reverse)
        return best


def _inverse(pose: tuple) -> tuple:
    """The motion that undoes `pose` (angle in degrees, dy, dx; rotation about the centre, then the move)."""
    angle, dy, dx = pose
    t = math.radians(angle)
    return (-angle, -(math.sin(t) * dx + math.cos(t) * dy), -(math.cos(t) * dx - math.sin(t) * dy))


def _sharp_distance(image: np.ndarray, target: np.ndarray, pose) -> float:
    import cv2

    h, w = image.shape
    m = _margin(h, w)
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), float(pose[0]), 1.0)
    matrix[0, 2] += pose[2]
    matrix[1, 2] += pose[1]
    moved = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)[m:h - m, m:w - m].ravel()
    # the centred unit vector of _centred_unit, inline (this runs ~10^5 times); target is centred, so
    # <moved - mean, target> = <moved, target> and |moved - mean|^2 = |moved|^2 - n mean^2
    total = float(moved.sum())
    energy = float(moved @ moved) - total * total / moved.size
    norm = max(math.sqrt(max(energy, 0.0)), 1e-6)
    return math.sqrt(max(2.0 - 2.0 * float(moved @ target) / norm, 0.0))


_OPERATORS: dict = {}


def _pose_operator(h: int, w: int):
    """(sparse (len(poses) * interior pixels, h*w) bilinear operator, poses): the image rotated about its centre by
    each POSE_ANGLES angle and moved by each POSE_SHIFTS, edges repeated, keeping the interior (see _interior)."""
    from scipy import sparse

    if (h, w) in _OPERATORS:
        return _OPERATORS[(h, w)]
    m = _margin(h, w)
    yy, xx = np.mgrid[m:h - m, m:w - m]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    poses = [(a, dy, dx) for a in POSE_ANGLES for dy, dx in POSE_SHIFTS]
    rows, cols, weights = [], [], []
    inner = yy.size
    for k, (angle, dy, dx) in enumerate(poses):
        t = math.radians(angle)
        # output pixel (y, x) takes the input at the inverse motion: un-move, then un-rotate about the centre
        u, v = xx.ravel() - dx - cx, yy.ravel() - dy - cy
        sx = np.clip(math.cos(t) * u - math.sin(t) * v + cx, 0, w - 1)
        sy = np.clip(math.sin(t) * u + math.cos(t) * v + cy, 0, h - 1)
        x0, y0 = np.minimum(np.floor(sx).astype(int), w - 2), np.minimum(np.floor(sy).astype(int), h - 2)
        fx, fy = sx - x0, sy - y0
        out = k * inner + np.arange(inner)
        for oy, ox, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            rows.append(out)
            cols.append((y0 + oy) * w + x0 + ox)
            weights.append(wt)
    operator = sparse.csr_matrix((np.concatenate(weights).astype(np.float32),
                                  (np.concatenate(rows), np.concatenate(cols))), shape=(len(poses) * inner, h * w))
    _OPERATORS[(h, w)] = (operator, poses)
    return _OPERATORS[(h, w)]


def _centred_unit(matrix: np.ndarray) -> np.ndarray:
    matrix = matrix.reshape(len(matrix), -1)
    centred = matrix - matrix.mean(axis=1, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-6)


def _margin(h: int, w: int) -> int:
    return MARGIN if min(h, w) >= 2 * MARGIN + 8 else 0


def _interior(images: np.ndarray) -> np.ndarray:
    """(n, h, w) images without a MARGIN-pixel frame, where a move or rotation brings in pixels nobody knows."""
    h, w = images.shape[1:]
    m = _margin(h, w)
    return images[:, m:h - m, m:w - m]


def _typical_pose_distance(images: _Images, real: np.ndarray) -> float:
    """Median over (a sample of) real items of the pose-searched distance to the nearest other real item, leaving
    out pairs that are themselves copies by the threshold this median implies (iterated, as for near-duplicates)."""
    rows = np.flatnonzero(real)
    if len(rows) < 3:
        return float("nan")
    if len(rows) > TYPICAL_SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(rows, TYPICAL_SAMPLE, replace=False))
    distances = [np.sort(d) for d, _ in images.pose_distances(rows, images.candidates(rows, real, IMAGE_CANDIDATES))]
    typical, beyond = float("nan"), 1e-3
    for _ in range(6):
        nearest = [d[d > beyond][0] for d in distances if (d > beyond).any()]
        if len(nearest) < 2:
            return float("nan")
        typical = float(np.median(nearest))
        if GRID_COPY * typical <= beyond:
            break
        beyond = GRID_COPY * typical
    return typical


def _real_rows(view, images: _Images) -> np.ndarray:
    frame = view.manifest.set_index("id")
    if "origin" not in frame.columns:
        return np.ones(len(images.ids), bool)
    return np.asarray(frame.loc[images.ids, "origin"] == "real")


def _image_typical(view) -> float:
    """The typical pose-searched distance of a view (memoised on it)."""
    memo = view.__dict__.setdefault("_similarity_memo", {})
    if "copies_typical" not in memo:
        images = _images(view)
        memo["copies_typical"] = _typical_pose_distance(images, _real_rows(view, images)) \
            if len(view.manifest) >= 3 else float("nan")
    return memo["copies_typical"]


def _images(view) -> _Images:
    memo = view.__dict__.setdefault("_similarity_memo", {})
    if "copies_images" not in memo:
        memo["copies_images"] = _Images(view)
    return memo["copies_images"]


def _image_copies(view, query: list[str], reference: list[str], scale_from, other_label: bool) -> DerivedCopies:
    from curate.checks.similarity import codes

    images = _images(view)
    typical = _image_typical(scale_from if scale_from is not None and len(scale_from.manifest) >= 3 else view)
    if math.isnan(typical):
        return DerivedCopies("image", typical=typical)
    allowed = np.zeros(len(images.ids), bool)
    allowed[[images.index[r] for r in reference if r in images.index]] = True
    rows = np.array([images.index[q] for q in query if q in images.index], dtype=np.int64)
    labels = codes(view, images.ids, "label") if other_label else None
    others = images.candidates(rows, allowed, IMAGE_CANDIDATES, labels)
    found = DerivedCopies("image", compared=int(sum(len(o) for o in others)), typical=typical)
    for row, other, sharp, (angle, dy, dx), reverse in sharp_pairs(images, rows, others, typical):
        if sharp <= COPY_RATIO * typical:
            moved = images.ids[other] if reverse else images.ids[row]
            angle, dx, dy = (round(v, 1) or 0.0 for v in (angle, dx, dy))   # no "-0.0"
            found.query.append(images.ids[row])
            found.reference.append(images.ids[other])
            found.score.append(sharp / typical)
            found.confident.append(True)
            found.detail.append(f"{moved} rotated {angle:+.1f} deg and moved {dx:+.1f},{dy:+.1f} px (x,y) matches "
                                f"the other at distance {sharp:.3f} ({sharp / typical:.2f}x typical)")
    return found


def sharp_pairs(images: _Images, rows: np.ndarray, others: list[np.ndarray], typical: float):
    """(row, other, sharp distance, pose, reversed) for every candidate pair whose blurred grid distance is within
    REFINE_BELOW x typical: the pairs that could be copies, refined."""
    for row, near, (distance, poses) in zip(rows, others, images.pose_distances(rows, others)):
        for other, d, pose in zip(near, distance, poses):
            if d <= REFINE_BELOW * typical:
                yield (int(row), int(other), *images.refined(row, other, pose))


# -- audio --------------------------------------------------------------------------------------------------------

def _audio_copies(view, query: list[str], reference: list[str]) -> DerivedCopies:
    import soundfile as sf

    from curate.features import audio_fingerprints
    from curate.media import read_audio

    frame = view.manifest.set_index("id")
    wanted = list(dict.fromkeys([*query, *reference]))
    duration = {}
    for item in wanted:
        try:
            info = sf.info(str(view.media_path(item)))
            duration[item] = info.frames / info.samplerate
        except (RuntimeError, ValueError, sf.LibsndfileError):
            duration[item] = float("nan")
    ids, prints = audio_fingerprints(view, ids=wanted)
    at = {item: k for k, item in enumerate(ids)}
    labels = frame["label"] if "label" in frame.columns else None
    objects = frame["object"]
    reference_arr = np.array(reference, dtype=object)
    reference_duration = np.array([duration[r] for r in reference])
    reference_label = np.array([_label(labels, r) for r in reference], dtype=object)
    reference_object = np.array([objects[r] for r in reference], dtype=object)
    reference_prints = prints[[at[r] for r in reference]]

    def wave(item: str) -> np.ndarray:
        return _WAVES.get(objects[item], lambda: read_audio(view.media_path(item), sample_rate=AUDIO_RATE,
                                                            mono=True)[0])

    found = DerivedCopies("audio")
    compared = 0
    query_duration = np.array([duration[q] for q in query])
    candidates = _audio_candidates(prints[[at[q] for q in query]], query_duration,
                                   np.array([_label(labels, q) for q in query], dtype=object),
                                   np.array([objects[q] for q in query], dtype=object),
                                   reference_prints, reference_duration, reference_label, reference_object)
    for item, rows in zip(query, candidates):
        for row in rows:
            compared += 1
            pair = (objects[item], reference_object[row])  # objects are content: a verdict holds for any view
            if pair not in _VERDICTS:
                if len(_VERDICTS) >= MAX_VERDICTS:
                    _VERDICTS.clear()
                _VERDICTS[pair] = _waveform_copy(wave(item), wave(reference_arr[row]))
            verdict = _VERDICTS[pair]
            if verdict is not None:
                confident, ncc, text = verdict
                found.query.append(item)
                found.reference.append(str(reference_arr[row]))
                found.score.append(ncc)
                found.confident.append(confident)
                found.detail.append(text)
    return DerivedCopies("audio", found.query, found.reference, found.score, found.confident, found.detail, compared)


def _audio_candidates(prints, duration, label, obj, reference_prints, reference_duration, reference_label,
                      reference_object) -> list[np.ndarray]:
    """For each query clip, up to AUDIO_CANDIDATES reference rows of another object, the same label (or none) and
    a duration within the tolerance, most similar fingerprint first. One curate.checks.index.Index per label
    (its rows and the unlabelled ones) is asked for AUDIO_FETCH rows, then the duration and object rules applied:
    a copy is among the nearest fingerprints, and a per-clip scan of every reference row grew with the square of
    the clips."""
    from curate.checks.index import OVERFETCH, Index

    out: list[np.ndarray] = [np.zeros(0, np.int64) for _ in range(len(prints))]
    unlabelled = np.array([v is None for v in reference_label], dtype=bool)
    label_key = np.array(["\0none" if v is None else v for v in label], dtype=object)
    reference_key = np.array(["\0none" if v is None else v for v in reference_label], dtype=object)
    object_codes = np.unique(reference_object, return_inverse=True)[1] if len(reference_object) else np.zeros(0, int)
    repeat = min(int(np.bincount(object_codes).max()) if len(object_codes) else 0, OVERFETCH)
    for key in np.unique(label_key[~np.isnan(duration)]) if len(label_key) else []:
        queries = np.flatnonzero((label_key == key) & ~np.isnan(duration))
        pool = np.arange(len(reference_key)) if key == "\0none" else np.flatnonzero((reference_key == key) | unlabelled)
        if not len(pool):
            continue
        near = Index(reference_prints[pool]).search(prints[queries], min(len(pool), AUDIO_FETCH + repeat)).index
        rows = np.where(near >= 0, pool[np.maximum(near, 0)], -1)
        d, r = duration[queries][:, None], reference_duration[np.maximum(rows, 0)]
        ok = (rows >= 0) & (np.abs(r - d) <= DURATION_RELATIVE * np.maximum(r, d) + DURATION_ABSOLUTE_S) \
            & (reference_object[np.maximum(rows, 0)] != obj[queries][:, None])
        for n, q in enumerate(queries):
            out[q] = rows[n][ok[n]][:AUDIO_CANDIDATES]
    return out


class _WaveCache:
    """Mean-removed 8 kHz waves by object hash, least recently used dropped beyond `budget` bytes: a gate compares
    each clip with up to AUDIO_CANDIDATES others, and the source's check asks about the same objects again."""

    def __init__(self, budget: int):
        from collections import OrderedDict

        self.budget, self.used, self.waves = budget, 0, OrderedDict()

    def get(self, digest: str, read) -> np.ndarray:
        if digest in self.waves:
            self.waves.move_to_end(digest)
            return self.waves[digest]
        audio = read()
        wave = (audio - audio.mean()).astype(np.float64)
        self.waves[digest] = wave
        self.used += wave.nbytes
        while self.used > self.budget and len(self.waves) > 1:
            _, dropped = self.waves.popitem(last=False)
            self.used -= dropped.nbytes
        return wave


_WAVES = _WaveCache(256 << 20)
_VERDICTS: dict[tuple[str, str], tuple | None] = {}
MAX_VERDICTS = 1_000_000


def _label(labels, item):
    if labels is None:
        return None
    value = labels[item]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _waveform_copy(x: np.ndarray, y: np.ndarray) -> tuple[bool, float, str] | None:
    """(confident, NCC, detail) when one clip is a derived copy of the other, else None."""
    from scipy.signal import fftconvolve

    if len(x) < WINDOW or len(y) < WINDOW:
        return None
    correlation = fftconvolve(y, x[::-1], mode="full")
    lags = np.arange(-(len(x) - 1), len(y))
    near = np.flatnonzero(np.abs(lags) <= MAX_LAG_S * AUDIO_RATE)
    lag = int(lags[near[np.argmax(np.abs(correlation[near]))]])
    xs, ys = (x, y[lag:]) if lag >= 0 else (x[-lag:], y)
    n = min(len(xs), len(ys))
    xs, ys = xs[:n], ys[:n]
    exx, eyy = float(xs @ xs), float(ys @ ys)
    if not (exx > 0 and eyy > 0):
        return None
    ncc = abs(float(xs @ ys)) / math.sqrt(exx * eyy)
    where = f"correlation {ncc:.3f} at a lag of {1000 * lag / AUDIO_RATE:+.0f} ms"
    if ncc >= COPY_NCC:
        return True, ncc, where
    if ncc < MASKED_NCC:
        return None
    for original, copy in ((xs, ys), (ys, xs)):   # which one is the clean original is unknown
        agree, structure = _residual(original, copy)
        if agree >= MASKED_AGREE and structure <= MASKED_TFC:
            return False, ncc, (f"{where}; the rest behaves as added noise (local gain agrees in {agree:.0%} of "
                                f"active windows, residual-spectrum correlation {structure:.2f})")
    return None


def _residual(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """For y ~ g.x + noise: (share of x's active windows whose local gain is within 30 % of g, correlation of the
    residual's double-centred log spectrogram with x's)."""
    from scipy.signal import stft

    g = float(x @ y) / float(x @ x)
    windows = len(x) // WINDOW
    xw, yw = x[:windows * WINDOW].reshape(windows, WINDOW), y[:windows * WINDOW].reshape(windows, WINDOW)
    energy = (xw * xw).sum(axis=1)
    active = energy > energy.max() * 10 ** (-ACTIVE_DB / 10)
    if active.sum() < 3 or g == 0:
        return 0.0, 1.0
    local = (xw[active] * yw[active]).sum(axis=1) / energy[active]
    agree = float((np.abs(local / g - 1) < 0.3).mean())
    _, _, spec_x = stft(x, nperseg=WINDOW, noverlap=WINDOW // 2)
    _, _, spec_r = stft(y - g * x, nperseg=WINDOW, noverlap=WINDOW // 2)
    power_x, power_r = np.abs(spec_x) ** 2, np.abs(spec_r) ** 2
    frames = power_x.sum(axis=0)
    keep = frames > frames.max() * 10 ** (-ACTIVE_DB / 10)
    if keep.sum() < 3:
        return agree, 1.0
    a, b = (_double_centred(np.log(p[:, keep] + 1e-12)) for p in (power_x, power_r))
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return agree, float((a * b).sum()) / denominator if denominator > 0 else 1.0


def _double_centred(matrix: np.ndarray) -> np.ndarray:
    matrix = matrix - matrix.mean(axis=0, keepdims=True)
    return (matrix - matrix.mean(axis=1, keepdims=True)).ravel()
