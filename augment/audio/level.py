"""Level: fixed or random gain, and loudness normalisation to a target RMS level or LUFS (ITU-R BS.1770)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import Param, ParameterError, Transform, check_range, uniform


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


def _check_mode(name: str, value: Any) -> str | None:
    """`rms` (the default) is not kept in the configuration, so a spec written before `mode` existed keeps its
    dict form, and with it the item ids and fingerprints of the recipes that use it."""
    value = _MODE.check(name, value)
    return None if value == "rms" else value


def _check_target_lufs(name: str, value: Any) -> list[float] | None:
    return None if value is None else list(check_range(name, value, low=-70.0, high=0.0))


_MODE = Param.choice("rms", "lufs")
# pyloudnorm's channel weights (ITU-R BS.1770: L, R, C, Ls, Rs); more channels have no defined weight
_LUFS_MAX_CHANNELS = 5


class NormalizeLoudness(Transform):
    """Scale to a target loudness: an RMS level in dBFS (the default), or LUFS after ITU-R BS.1770 (`mode: lufs`).

    `mode: rms`: an RMS level `target_dbfs` (dB re full scale) measured over the whole clip (`reference: rms`) or
    its voice-active frames (`active`).
    `mode: lufs`: an integrated loudness `target_lufs` (default -23, EBU R 128) measured by pyloudnorm after
    ITU-R BS.1770-4 (K-weighting, 400 ms blocks with 75 % overlap, absolute gate -70 LUFS, relative gate -10 LU;
    `reference` does not apply). A clip shorter than one 400 ms block is measured as one block over the whole clip
    (K-weighting and the absolute gate; the record says `block_s`). A silent clip (RMS, or below the -70 LUFS gate)
    is left unchanged (applied=false, reason "silent")."""

    media = "audio"
    params = {"target_dbfs": Param.range(-120.0, 0.0), "reference": Param.choice("rms", "active"),
              "mode": Param.other(_check_mode, "rms | lufs (rms: target_dbfs; lufs: target_lufs, BS.1770)"),
              "target_lufs": Param.other(_check_target_lufs, "number or [low, high], within [-70, 0] "
                                                             "(mode lufs; default -23)")}

    def __init__(self, target_dbfs: float | Sequence[float] = -23.0, reference: str = "active", mode: str = "rms",
                 target_lufs: float | Sequence[float] | None = None, **kwargs: Any):
        super().__init__(target_dbfs=target_dbfs, reference=reference, mode=mode,
                         target_lufs=target_lufs, **kwargs)
        if "target_lufs" in self.config and self.config.get("mode") != "lufs":
            raise ParameterError("target_lufs", "applies to mode: lufs (mode rms uses target_dbfs)")

    def sample(self, rng, data, context):
        if self.config.get("mode") == "lufs":
            return self._sample_lufs(rng, data, context)
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

    def _sample_lufs(self, rng, data, context):
        target = uniform(rng, self.config.get("target_lufs", (-23.0, -23.0)))
        params: dict[str, Any] = {"mode": "lufs", "target_lufs": target}
        before, block_s = integrated_loudness(data, context.sample_rate)
        if block_s != BS1770_BLOCK_S:
            params["block_s"] = block_s
        if not math.isfinite(before):
            return {**params, "_skip": "silent"}
        return {**params, "loudness_before_lufs": before, "gain_db": target - before}

    def apply_params(self, data, params, context):
        return data * np.float32(F.db_to_amplitude(params["gain_db"]))


BS1770_BLOCK_S = 0.4


def integrated_loudness(data: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(integrated loudness in LUFS, gating block in s) of (n,) or (channels, n) audio, by pyloudnorm (BS.1770-4).
    -inf when every block is below the absolute gate. A clip shorter than 400 ms is one block of its own length."""
    import pyloudnorm

    if data.ndim == 2 and data.shape[0] > _LUFS_MAX_CHANNELS:
        raise ValueError(f"data: mode lufs measures up to {_LUFS_MAX_CHANNELS} channels (the BS.1770 weights), "
                         f"got {data.shape[0]}")
    n = data.shape[-1]
    block_s = BS1770_BLOCK_S if n >= BS1770_BLOCK_S * sample_rate else _whole_clip_block(n, sample_rate)
    meter = pyloudnorm.Meter(sample_rate, block_size=block_s)
    samples = np.asarray(data.T if data.ndim == 2 else data, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return float(meter.integrated_loudness(samples)), block_s


def _whole_clip_block(n: int, sample_rate: int) -> float:
    """A block length in seconds that pyloudnorm turns back into exactly `n` samples (it needs
    block_s * rate <= n and integrates int(block_s * rate) samples; n / rate can land one ulp above n)."""
    block_s = n / sample_rate
    for _ in range(4):
        if block_s * sample_rate <= n:
            break
        block_s = math.nextafter(block_s, 0.0)
    return block_s
