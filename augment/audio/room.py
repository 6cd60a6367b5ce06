"""Room: reverberation from a synthetic room impulse response."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import Param, Transform, borrow_generator, draw_seed, return_generator, uniform


class Reverb(Transform):
    """Convolve with a synthetic room impulse response (exponentially decaying noise) whose RT60 is drawn from
    `rt60_s` and whose direct-to-reverberant ratio is drawn from `drr_db`. Length and RMS level are kept."""

    media = "audio"
    params = {"rt60_s": Param.range(0.01, 10.0), "drr_db": Param.range(-20.0, 40.0)}

    def __init__(self, rt60_s: float | Sequence[float] = (0.2, 0.8), drr_db: float | Sequence[float] = (0.0, 10.0),
                 **kwargs: Any):
        super().__init__(rt60_s=rt60_s, drr_db=drr_db, **kwargs)

    def sample(self, rng, data, context):
        return {"rt60_s": uniform(rng, self.config["rt60_s"]), "drr_db": uniform(rng, self.config["drr_db"]),
                "rir_seed": draw_seed(rng)}

    def apply_params(self, data, params, context):
        from scipy.signal import fftconvolve

        rir_rng = borrow_generator(params["rir_seed"])  # np.random.default_rng(rir_seed)'s stream, pooled
        try:
            rir = F.synthetic_rir(rir_rng, context.sample_rate, params["rt60_s"], params["drr_db"])
        finally:
            return_generator(rir_rng)
        kernel = rir if data.ndim == 1 else rir[None, :]
        wet = fftconvolve(data, kernel, axes=-1)[..., : data.shape[-1]]
        before, after = F.power(data), F.power(wet.astype(np.float32))
        scale = np.sqrt(before / after) if after > 0 else 1.0
        return (wet * scale).astype(np.float32)
