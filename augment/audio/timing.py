"""Timing: silence before/after a clip (the labelling convention), shifts, time stretch and pitch shift."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import Param, Transform, uniform


class PadSilence(Transform):
    """Add digital silence: `before_ms` at the start and `after_ms` at the end (each a [low, high] range)."""

    media = "audio"
    params = {"before_ms": Param.range(0.0, 600_000.0), "after_ms": Param.range(0.0, 600_000.0)}

    def __init__(self, before_ms: float | Sequence[float] = (0.0, 200.0),
                 after_ms: float | Sequence[float] = (0.0, 200.0), **kwargs: Any):
        super().__init__(before_ms=before_ms, after_ms=after_ms, **kwargs)

    def sample(self, rng, data, context):
        return {"before_ms": uniform(rng, self.config["before_ms"]), "after_ms": uniform(rng, self.config["after_ms"])}

    def apply_params(self, data, params, context):
        rate = context.sample_rate
        before = int(round(params["before_ms"] * rate / 1000.0))
        after = int(round(params["after_ms"] * rate / 1000.0))
        return np.pad(data, [(0, 0)] * (data.ndim - 1) + [(before, after)])


class TrimSilence(Transform):
    """Cut leading and trailing audio quieter than `top_db` below the loudest 10 ms frame, keeping `keep_ms` of
    margin on each side. A silent clip is left unchanged (applied=false, reason "silent")."""

    media = "audio"
    params = {"top_db": Param.number(1.0, 120.0), "keep_ms": Param.number(0.0, 60_000.0)}

    def __init__(self, top_db: float = 40.0, keep_ms: float = 0.0, **kwargs: Any):
        super().__init__(top_db=top_db, keep_ms=keep_ms, **kwargs)

    def sample(self, rng, data, context):
        rate = context.sample_rate
        start, end = F.trim_bounds(data, rate, self.config["top_db"])
        if end <= start:
            return {"_skip": "silent"}
        keep = int(round(self.config["keep_ms"] * rate / 1000.0))
        start, end = max(0, start - keep), min(data.shape[-1], end + keep)
        return {"start_s": start / rate, "end_s": end / rate, "_start": start, "_end": end}

    def apply_params(self, data, params, context):
        rate = context.sample_rate
        start = params.get("_start", int(round(params["start_s"] * rate)))
        end = params.get("_end", int(round(params["end_s"] * rate)))
        return data[..., start:end].copy()


class Shift(Transform):
    """Shift in time by up to `max_fraction` of the clip length either way; `rollover` wraps the shifted-out part
    around (else the gap is filled with silence)."""

    media = "audio"
    params = {"max_fraction": Param.number(0.0, 1.0), "rollover": Param.flag()}

    def __init__(self, max_fraction: float = 0.2, rollover: bool = True, **kwargs: Any):
        super().__init__(max_fraction=max_fraction, rollover=rollover, **kwargs)

    def sample(self, rng, data, context):
        fraction = uniform(rng, (-self.config["max_fraction"], self.config["max_fraction"]))
        return {"shift_samples": int(round(fraction * data.shape[-1])), "rollover": self.config["rollover"]}

    def apply_params(self, data, params, context):
        shift = params["shift_samples"]
        if params["rollover"]:  # np.roll(data, shift, axis=-1), without its per-call axis handling
            n = data.shape[-1]
            shift %= n
            out = np.empty_like(data)
            out[..., shift:] = data[..., :n - shift]
            out[..., :shift] = data[..., n - shift:]
            return out
        out = np.zeros_like(data)
        if shift > 0:
            out[..., shift:] = data[..., :-shift]
        elif shift < 0:
            out[..., :shift] = data[..., -shift:]
        else:
            out[...] = data
        return out


class TimeStretch(Transform):
    """Change speed without changing pitch by a factor drawn from `rate` (>1 faster, shorter); phase vocoder."""

    media = "audio"
    params = {"rate": Param.range(0.25, 4.0)}

    def __init__(self, rate: float | Sequence[float] = (0.9, 1.1), **kwargs: Any):
        super().__init__(rate=rate, **kwargs)

    def sample(self, rng, data, context):
        return {"rate": uniform(rng, self.config["rate"])}

    def apply_params(self, data, params, context):
        import librosa

        return librosa.effects.time_stretch(data, rate=params["rate"]).astype(np.float32)


class PitchShift(Transform):
    """Shift pitch by a number of semitones drawn from `semitones`, keeping the duration."""

    media = "audio"
    params = {"semitones": Param.range(-24.0, 24.0)}

    def __init__(self, semitones: float | Sequence[float] = (-2.0, 2.0), **kwargs: Any):
        super().__init__(semitones=semitones, **kwargs)

    def sample(self, rng, data, context):
        return {"semitones": uniform(rng, self.config["semitones"])}

    def apply_params(self, data, params, context):
        import librosa

        out = librosa.effects.pitch_shift(data, sr=context.sample_rate, n_steps=params["semitones"],
                                          res_type="soxr_hq")
        return out.astype(np.float32)
