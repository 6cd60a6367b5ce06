"""Derived copies: a dev/test item that is a train item put through noise, gain, resampling, a codec, a small shift,
rotation or brightness change. Such copies are too far apart in feature space for the near-duplicate rule (a copy
mixed with noise at 5 dB is no closer to its original than a different take), yet a model trained on one has seen
the other.

Two stages, so the cost grows with the items, not with the pairs:
  candidates   for every dev/test item, its `CANDIDATES` nearest train items in each of two feature spaces (the
               embedding, and the audio fingerprint / pixel thumbnail);
  confirmation a signal-level score that is invariant to what a derivation changes:
               audio   the peak of the normalised cross-correlation of the two waveforms (8 kHz mono, every lag):
                       gain-invariant, shift-invariant, barely touched by band-limiting, and for a copy mixed
                       with noise at SNR s it is 1 / sqrt(1 + 10^(-s/10)) (0.71 at 0 dB), while two different
                       recordings, even of the same word by the same voice, do not line up sample by sample;
               images  the best zero-mean normalised correlation of 32 x 32 grey versions over rotations of
                       -6..6 degrees and shifts of up to 2 px (invariant to brightness and contrast).
Calibration: the same score on pairs that are distinct by construction (train items and their nearest train
neighbours from other groups) gives the dataset's own null; a pair is a derived copy when its score reaches
max(FLOOR, the null's maximum + MARGIN). Defaults: audio floor 0.5, margin 0.15; images floor 0.9, margin 0.02.
When that threshold exceeds CEILING (0.995) the data's distinct items are as alike as copies and the detection
is reported as inconclusive rather than guessed: a distinct item is never matched. Measured: a copy mixed with
white noise at 0 dB SNR scores 0.71 (the theory), a -6 dB shifted copy 1.00; distinct voices of the sample speech
reach 0.72 (espeak accents say a word with nearly the same waveform), so there the threshold is 0.87 and noise
copies above about 6 dB SNR are found. Text-to-speech voices also share waveform segments between words (flite:
"two" and "three" of one voice correlate 0.77), so a copy may also match a sibling of its original.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANDIDATES = 8
NULL_SAMPLE = 200
RATE = 8000
SIDE = 32
ANGLES = np.arange(-6.0, 6.01, 1.5)
SHIFTS = range(-2, 3)
SETTINGS = {"audio": (0.5, 0.15), "image": (0.9, 0.02)}
CEILING = 0.995


@dataclass(frozen=True)
class DerivedCopies:
    pairs: list[tuple[str, str, float]]   # (dev/test id, train id, score), best train match per item
    threshold: float
    null_max: float | None
    checked: int                          # candidate pairs scored


def find(view, media: str, queries: list[str], train: list[str], groups: dict[str, str]) -> DerivedCopies:
    """Derived copies among (query, train) pairs; `groups` (id -> group) defines the distinct pairs of the null."""
    from curate.features import audio_fingerprints, embeddings, pixel_thumbnails

    spaces = [embeddings(view)]
    spaces.append(audio_fingerprints(view) if media == "audio" else pixel_thumbnails(view))
    signals = _Signals(view, media)
    candidates: dict[str, set[str]] = {q: set() for q in queries}
    null_pairs: set[tuple[str, str]] = set()
    sample = train[:: max(1, len(train) // NULL_SAMPLE)][:NULL_SAMPLE]
    for ids, matrix in spaces:
        row = {i: n for n, i in enumerate(ids)}
        unit = _unit(matrix)
        train_rows = np.array([row[i] for i in train if i in row])
        if not len(train_rows):
            continue
        train_ids = [ids[r] for r in train_rows]
        query_ids = [q for q in queries if q in row]
        if query_ids:
            near = _nearest(unit[[row[q] for q in query_ids]], unit[train_rows], CANDIDATES)
            for q, hits in zip(query_ids, near):
                candidates[q] |= {train_ids[h] for h in hits}
        probe = [s for s in sample if s in row]
        if probe:
            near = _nearest(unit[[row[s] for s in probe]], unit[train_rows], CANDIDATES + 1)
            for s, hits in zip(probe, near):
                null_pairs |= {(s, train_ids[h]) for h in hits if groups.get(train_ids[h]) != groups.get(s)}
    null = [signals.score(a, b) for a, b in sorted(null_pairs)]
    floor, margin = SETTINGS[media]
    worst = float(max(null)) if null else None
    threshold = max(floor, (worst + margin) if worst is not None else floor)
    if threshold > CEILING:
        return DerivedCopies([], threshold, worst, 0)
    found, checked = [], 0
    for q in queries:
        scored = [(signals.score(q, t), t) for t in sorted(candidates[q])]
        checked += len(scored)
        best = max(scored, default=None)
        if best is not None and best[0] >= threshold:
            found.append((q, best[1], round(float(best[0]), 4)))
    return DerivedCopies(found, threshold, worst, checked)


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    z = (matrix - matrix.mean(axis=0)) / np.maximum(matrix.std(axis=0), 1e-9)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def _nearest(query: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(reference))
    similarity = query @ reference.T
    return np.argpartition(-similarity, k - 1, axis=1)[:, :k]


class _Signals:
    """Decoded, normalised signals per item (decoded once), and the confirmation score of a pair."""

    def __init__(self, view, media: str):
        self.view, self.media, self._cache = view, media, {}

    def _load(self, item: str):
        if item not in self._cache:
            try:
                self._cache[item] = self._audio(item) if self.media == "audio" else self._image(item)
            except (ValueError, OSError):  # unreadable media is the consistency check's business
                self._cache[item] = None
        return self._cache[item]

    def _audio(self, item: str) -> np.ndarray:
        from curate.media import read_audio

        audio, _ = read_audio(self.view.media_path(item), sample_rate=RATE, mono=True)
        audio = audio.astype(np.float64) - float(np.mean(audio))
        return audio / max(float(np.linalg.norm(audio)), 1e-12)

    def _image(self, item: str) -> np.ndarray:
        from PIL import Image

        from curate.media import read_image

        grey = Image.fromarray(read_image(self.view.media_path(item), mode="L"))
        variants = []
        for angle in ANGLES:
            small = np.asarray(grey.rotate(float(angle), resample=Image.BILINEAR, fillcolor=_edge(grey))
                               .resize((SIDE + 4, SIDE + 4), Image.BILINEAR), dtype=np.float64)
            for dy in SHIFTS:
                for dx in SHIFTS:
                    # the centre only: a rotation's filled corners say nothing about the content
                    variants.append(_zero_mean_unit(small[6 + dy:dy + SIDE - 2, 6 + dx:dx + SIDE - 2]))
        return np.stack(variants)

    def score(self, a: str, b: str) -> float:
        x, y = self._load(a), self._load(b)
        if x is None or y is None:
            return 0.0
        if self.media == "audio":
            if not len(x) or not len(y):
                return 0.0
            n = 1 << int(np.ceil(np.log2(len(x) + len(y))))
            corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n)
            return float(np.abs(corr).max())
        upright = y[len(y) // 2]  # b at 0 degrees and no shift; a in every pose
        return float((x @ upright).max())


def _edge(image) -> int:
    array = np.asarray(image)
    return int(np.median(np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])))


def _zero_mean_unit(patch: np.ndarray) -> np.ndarray:
    flat = patch.ravel() - patch.mean()
    return flat / max(float(np.linalg.norm(flat)), 1e-12)
