"""Timing: silence before/after a clip (the labelling convention), shifts, time stretch and pitch shift."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import Transform, check_number, check_range, uniform


class PadSilence(Transform):
    """Add digital silence: `before_ms` at the start and `after_ms` at the end (each a [low, high] range)."""

    media = "audio"

    def __init__(self, before_ms: float | Sequence[float] = (0.0, 200.0),
                 after_ms: float | Sequence[float] = (0.0, 200.0), **kwargs: Any):
        self._before = check_range("before_ms", before_ms, low=0.0, high=600_000.0)
        self._after = check_range("after_ms", after_ms, low=0.0, high=600_000.0)
        super().__init__({"before_ms": list(self._before), "after_ms": list(self._after)}, **kwargs)

    def sample(self, rng, data, context):
        return {"before_ms": uniform(rng, self._before), "after_ms": uniform(rng, self._after)}

    def apply_params(self, data, params, context):
        rate = context.sample_rate
        before = int(round(params["before_ms"] * rate / 1000.0))
        after = int(round(params["after_ms"] * rate / 1000.0))
        return np.pad(data, [(0, 0)] * (data.ndim - 1) + [(before, after)])


class TrimSilence(Transform):
    """Cut leading and trailing audio quieter than `top_db` below the loudest 10 ms frame, keeping `keep_ms` of
    margin on each side. A silent clip is left unchanged (applied=false, reason "silent")."""

    media = "audio"

    def __init__(self, top_db: float = 40.0, keep_ms: float = 0.0, **kwargs: Any):
        top_db = check_number("top_db", top_db, low=1.0, high=120.0)
        keep_ms = check_number("keep_ms", keep_ms, low=0.0, high=60_000.0)
        super().__init__({"top_db": top_db, "keep_ms": keep_ms}, **kwargs)

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

    def __init__(self, max_fraction: float = 0.2, rollover: bool = True, **kwargs: Any):
        max_fraction = check_number("max_fraction", max_fraction, low=0.0, high=1.0)
        if not isinstance(rollover, bool):
            raise ValueError(f"rollover: expected true or false, got {rollover!r}")
        super().__init__({"max_fraction": max_fraction, "rollover": rollover}, **kwargs)

    def sample(self, rng, data, context):
        fraction = uniform(rng, (-self.config["max_fraction"], self.config["max_fraction"]))
        return {"shift_samples": int(round(fraction * data.shape[-1])), "rollover": self.config["rollover"]}

    def apply_params(self, data, params, context):
        shift = params["shift_samples"]
        if params["rollover"]:
            return np.roll(data, shift, axis=-1)
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

    def __init__(self, rate: float | Sequence[float] = (0.9, 1.1), **kwargs: Any):
        self._rate = check_range("rate", rate, low=0.25, high=4.0)
        super().__init__({"rate": list(self._rate)}, **kwargs)

    def sample(self, rng, data, context):
        return {"rate": uniform(rng, self._rate)}

    def apply_params(self, data, params, context):
        import librosa

        return librosa.effects.time_stretch(data, rate=params["rate"]).astype(np.float32)


class PitchShift(Transform):
    """Shift pitch by a number of semitones drawn from `semitones`, keeping the duration."""

    media = "audio"

    def __init__(self, semitones: float | Sequence[float] = (-2.0, 2.0), **kwargs: Any):
        self._steps = check_range("semitones", semitones, low=-24.0, high=24.0)
        super().__init__({"semitones": list(self._steps)}, **kwargs)

    def sample(self, rng, data, context):
        return {"semitones": uniform(rng, self._steps)}

    def apply_params(self, data, params, context):
        import librosa

        out = librosa.effects.pitch_shift(data, sr=context.sample_rate, n_steps=params["semitones"],
                                          res_type="soxr_hq")
        return out.astype(np.float32)
