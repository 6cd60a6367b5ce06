"""Level: fixed or random gain, and loudness normalisation to a target RMS level."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import Transform, check_range, uniform


class Gain(Transform):
    """Multiply by a gain drawn from `gain_db` (dB)."""

    media = "audio"

    def __init__(self, gain_db: float | Sequence[float] = (-6.0, 6.0), **kwargs: Any):
        self._gain = check_range("gain_db", gain_db, low=-120.0, high=60.0)
        super().__init__({"gain_db": list(self._gain)}, **kwargs)

    def sample(self, rng, data, context):
        return {"gain_db": uniform(rng, self._gain)}

    def apply_params(self, data, params, context):
        return data * np.float32(F.db_to_amplitude(params["gain_db"]))


class NormalizeLoudness(Transform):
    """Scale to an RMS level drawn from `target_dbfs` (dB re full scale), measured over the whole clip ("rms") or
    over its voice-active frames ("active"). A silent clip is left unchanged (applied=false, reason "silent")."""

    media = "audio"

    def __init__(self, target_dbfs: float | Sequence[float] = -23.0, reference: str = "active", **kwargs: Any):
        self._target = check_range("target_dbfs", target_dbfs, low=-120.0, high=0.0)
        if reference not in ("rms", "active"):
            raise ValueError(f"reference: {reference!r} is not one of rms, active")
        super().__init__({"target_dbfs": list(self._target), "reference": reference}, **kwargs)

    def sample(self, rng, data, context):
        target = uniform(rng, self._target)
        if self.config["reference"] == "active":
            mask, frame, powers = F.active_mask(data, context.sample_rate)
            level = F.masked_power(data, mask, frame, powers)
        else:
            level = context.power(data)
        params = {"target_dbfs": target}
        if level < F.SILENCE_POWER:
            return {**params, "_skip": "silent"}
        before = F.power_to_db(level)
        return {**params, "level_before_dbfs": before, "gain_db": target - before}

    def apply_params(self, data, params, context):
        return data * np.float32(F.db_to_amplitude(params["gain_db"]))
