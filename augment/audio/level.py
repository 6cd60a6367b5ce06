"""Level: fixed or random gain, and loudness normalisation to a target RMS level."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import Param, Transform, uniform


class Gain(Transform):
    """Multiply by a gain drawn from `gain_db` (dB)."""

    media = "audio"
    params = {"gain_db": Param.range(-120.0, 60.0)}

    def __init__(self, gain_db: float | Sequence[float] = (-6.0, 6.0), **kwargs: Any):
        super().__init__(gain_db=gain_db, **kwargs)

    def sample(self, rng, data, context):
        return {"gain_db": uniform(rng, self.config["gain_db"])}

    def apply_params(self, data, params, context):
        return data * np.float32(F.db_to_amplitude(params["gain_db"]))


class NormalizeLoudness(Transform):
    """Scale to an RMS level drawn from `target_dbfs` (dB re full scale), measured over the whole clip ("rms") or
    over its voice-active frames ("active"). A silent clip is left unchanged (applied=false, reason "silent")."""

    media = "audio"
    params = {"target_dbfs": Param.range(-120.0, 0.0), "reference": Param.choice("rms", "active")}

    def __init__(self, target_dbfs: float | Sequence[float] = -23.0, reference: str = "active", **kwargs: Any):
        super().__init__(target_dbfs=target_dbfs, reference=reference, **kwargs)

    def sample(self, rng, data, context):
        target = uniform(rng, self.config["target_dbfs"])
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
