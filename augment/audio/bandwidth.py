"""Bandwidth: telephone-like channels (band-pass, then down- and up-sampling through a low sample rate)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import Param, ParameterError, Transform


class LowBandwidth(Transform):
    """Simulate a narrow channel: resample to `rate`, band-pass to `band` (Hz; a causal Butterworth filter of
    `order`, as in a real channel), resample back. Output has the input's rate and length. No random parameters."""

    media = "audio"
    params = {"band": Param.range(0.0, 96_000.0), "rate": Param.number(1000, 192_000, integer=True),
              "order": Param.number(1, 16, integer=True)}

    def __init__(self, band: Sequence[float] = (300.0, 3400.0), rate: int = 8000, order: int = 4, **kwargs: Any):
        super().__init__(band=band, rate=rate, order=order, **kwargs)
        high, rate = self.config["band"][1], self.config["rate"]
        if high >= rate / 2:
            raise ParameterError("band", f"upper edge {high} Hz must be below rate/2 = {rate / 2} Hz")

    def sample(self, rng, data, context):
        return {"band": self.config["band"], "rate": min(self.config["rate"], context.sample_rate)}

    def apply_params(self, data, params, context):
        sample_rate = context.sample_rate
        low, high = params["band"]
        narrow = F.resample(data, sample_rate, params["rate"])
        narrow = F.butter_band_pass(narrow, params["rate"], low, min(high, 0.45 * params["rate"]), self.config["order"])
        out = F.resample(narrow, params["rate"], sample_rate)
        n = data.shape[-1]
        if out.shape[-1] >= n:
            return out[..., :n]
        pad = [(0, 0)] * (out.ndim - 1) + [(0, n - out.shape[-1])]
        return np.pad(out, pad)
