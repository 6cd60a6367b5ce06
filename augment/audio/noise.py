"""Noise: real background recordings mixed at an exact SNR, and synthetic coloured noise."""
from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.audio import functional as F
from augment.core import (Param, ParameterError, Transform, borrow_generator, choose, cumulative_weights, draw_seed,
                          return_generator, uniform)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga")
SNR_REFERENCES = ("rms", "active")
COLORS = ("white", "pink", "brown")

_BEDS: dict[tuple[str, int], np.ndarray] = {}
_BEDS_LOCK = threading.Lock()


def find_noise_files(noise: str | os.PathLike | Sequence[str | os.PathLike], name: str = "noise") -> list[Path]:
    """A folder (searched recursively, sorted) or a list of files -> audio files, checked to exist."""
    if isinstance(noise, (str, os.PathLike)):
        if not os.fspath(noise).strip():
            # Path("") is the working directory: searching it would mix in whatever audio happens to lie there
            raise ParameterError(name, "empty path; give a folder of noise recordings or a list of files")
        root = Path(noise)
        if not root.exists():
            raise ParameterError(name, f"{root} does not exist")
        if root.is_file():
            return [root]
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not files:
            raise ParameterError(name, f"{root} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
        return files
    if not isinstance(noise, (list, tuple)) or not noise:
        raise ParameterError(name, f"expected a folder or a non-empty list of audio files, got {noise!r}")
    if any(not os.fspath(p).strip() for p in noise):
        raise ParameterError(name, "empty path in the list of noise files")
    files = [Path(p) for p in noise]
    for f in files:
        if not f.is_file():
            raise ParameterError(name, f"{f} does not exist")
    return files


def _noise_form(name: str, noise: Any) -> str | list[str]:
    """The configuration's form of `noise` (a path string, or a list of them); the files are checked after."""
    if isinstance(noise, (str, os.PathLike)):
        return os.fspath(noise)
    if isinstance(noise, (list, tuple)) and noise and all(isinstance(p, (str, os.PathLike)) for p in noise):
        return [os.fspath(p) for p in noise]
    raise ParameterError(name, f"expected a folder or a non-empty list of audio files, got {noise!r}")


def bed_duration(path: Path, name: str = "noise") -> float:
    """Duration in seconds from the header (cheap); a file soundfile cannot open is a ParameterError naming it."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ParameterError(name, f"{path} is not a readable audio file ({str(exc).splitlines()[0]})") from None
    if info.frames == 0:
        raise ParameterError(name, f"{path} has no samples")
    return info.frames / info.samplerate


MAX_BED_PEAK = 1e3  # 60 dB over full scale: float WAVs may hold overs, not values like 1e30
_CHECKED: set[tuple[str, int, int]] = set()


def check_bed(path: Path, name: str = "noise") -> None:
    """Refuse a bed with non-finite samples or absurd values when the transform is built (so a recipe is refused
    before anything is made), reading it in blocks; a file checked once (same size and time) is not read again."""
    import soundfile as sf

    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _CHECKED:
        return
    try:
        for block in sf.blocks(str(path), blocksize=1 << 16, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise ParameterError(name, f"{path} contains NaN or infinite samples")
            peak = float(np.abs(block).max()) if block.size else 0.0
            if peak > MAX_BED_PEAK:
                raise ParameterError(name, f"{path} peaks at {peak:.3g}, over {MAX_BED_PEAK:g} x full scale: not "
                                           "audio in full-scale units")
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ParameterError(name, f"{path} could not be decoded ({str(exc).splitlines()[0]})") from None
    _CHECKED.add(key)


def load_bed(path: Path, sample_rate: int, name: str = "noise") -> np.ndarray:
    """Mono float32 noise bed at `sample_rate`: decoded and resampled once per process, then kept in memory."""
    key = (str(path), int(sample_rate))
    bed = _BEDS.get(key)
    if bed is not None:
        return bed
    with _BEDS_LOCK:
        bed = _BEDS.get(key)
        if bed is None:
            import soundfile as sf

            try:
                data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise ParameterError(name, f"{path} could not be decoded ({str(exc).splitlines()[0]})") from None
            mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            if not np.isfinite(mono).all():
                raise ParameterError(name, f"{path} contains NaN or infinite samples")
            peak = float(np.abs(mono).max()) if mono.size else 0.0
            if peak > MAX_BED_PEAK:  # power and SNR gains would overflow float32 (NaN media)
                raise ParameterError(name, f"{path} peaks at {peak:.3g}, over {MAX_BED_PEAK:g} x full scale: not "
                                           "audio in full-scale units")
            bed = np.ascontiguousarray(F.resample(mono, rate, int(sample_rate)), dtype=np.float32)
            bed.setflags(write=False)
            _BEDS[key] = bed
    return bed


class AddBackgroundNoise(Transform):
    """Mix a real noise recording into the signal at an SNR drawn from `snr_db`.

    Beds (a folder or a list of files) are decoded and resampled once per process at the signal's rate; one is
    picked per call with probability proportional to its duration, from a random offset, looped with an
    equal-power crossfade when shorter than the clip. snr_reference="rms" measures both powers over the whole
    clip; "active" measures both over the signal's voice-active frames (energy threshold), so silence does not
    lower the noise. Multichannel signals get the same noise in every channel, against their mean channel power.
    A silent signal is returned unchanged with applied=false, reason "silent"."""

    media = "audio"
    params = {"noise": Param.other(_noise_form, "a folder of audio files, or a list of audio files"),
              "snr_db": Param.range(-60.0, 120.0), "snr_reference": Param.choice(*SNR_REFERENCES),
              "crossfade_ms": Param.number(0.0, 10_000.0)}

    def __init__(self, noise: str | os.PathLike | Sequence[str], snr_db: float | Sequence[float] = (5.0, 20.0),
                 snr_reference: str = "active", crossfade_ms: float = 50.0, **kwargs: Any):
        super().__init__(noise=noise, snr_db=snr_db, snr_reference=snr_reference, crossfade_ms=crossfade_ms,
                         **kwargs)
        self._files = find_noise_files(self.config["noise"])
        self._cumulative = cumulative_weights([bed_duration(f) for f in self._files], "noise").tolist()
        for file in self._files:  # after bed_duration: an unreadable file is reported as such first
            check_bed(file)

    def sample(self, rng, data, context):
        sample_rate = context.sample_rate
        index = choose(rng, self._cumulative)
        bed = load_bed(self._files[index], sample_rate)
        length = data.shape[-1]
        span = len(bed) - length
        offset = int(rng.integers(0, span + 1)) if span >= 0 else int(rng.integers(0, len(bed)))
        snr_db = uniform(rng, self.config["snr_db"])
        crossfade = int(round(self.config["crossfade_ms"] * sample_rate / 1000.0))
        segment = F.loop_with_crossfade(bed, offset, length, crossfade)
        params = {"file": str(self._files[index]), "offset_s": offset / sample_rate, "snr_db": snr_db,
                  "snr_reference": self.config["snr_reference"]}
        if self.config["snr_reference"] == "active":
            mask, frame, powers = F.active_mask(data, sample_rate)
            signal_power = F.masked_power(data, mask, frame, powers)
            noise_power = F.masked_power(segment, mask, frame)
        else:
            signal_power, noise_power = context.power(data), F.power(segment)
        if signal_power < F.SILENCE_POWER:
            return {**params, "_skip": "silent"}
        if noise_power < F.SILENCE_POWER:
            return {**params, "_skip": "silent noise"}
        gain = F.snr_gain(signal_power, noise_power, snr_db)
        # from the float32 noise actually added (gain rounded to float32), over the same frames as the request
        applied = float(np.float32(gain))
        achieved = F.power_to_db(signal_power / (applied * applied * noise_power))
        return {**params, "gain_db": 20.0 * math.log10(gain), "achieved_snr_db": achieved, "_segment": segment,
                "_gain": gain}

    def apply_params(self, data, params, context):
        segment = params.get("_segment")
        gain = params.get("_gain")
        if segment is None:  # re-applying a record: rebuild the same segment and gain from the recorded values
            sample_rate = context.sample_rate
            bed = load_bed(Path(params["file"]), sample_rate)
            offset = int(round(params["offset_s"] * sample_rate))
            crossfade = int(round(self.config["crossfade_ms"] * sample_rate / 1000.0))
            segment = F.loop_with_crossfade(bed, offset, data.shape[-1], crossfade)
            gain = F.db_to_amplitude(params["gain_db"])
        return mix(data, segment, gain)


class AddColoredNoise(Transform):
    """Add white, pink or brown noise at an SNR drawn from `snr_db` (whole-clip or voice-active reference)."""

    media = "audio"
    params = {"snr_db": Param.range(-60.0, 120.0), "color": Param.choice(*COLORS),
              "snr_reference": Param.choice(*SNR_REFERENCES)}

    def __init__(self, snr_db: float | Sequence[float] = (10.0, 30.0), color: str = "white",
                 snr_reference: str = "active", **kwargs: Any):
        super().__init__(snr_db=snr_db, color=color, snr_reference=snr_reference, **kwargs)

    def sample(self, rng, data, context):
        snr_db = uniform(rng, self.config["snr_db"])
        noise_seed = draw_seed(rng)
        noise = _colored_noise(noise_seed, data.shape[-1], self.config["color"])
        if self.config["snr_reference"] == "active":
            mask, frame, powers = F.active_mask(data, context.sample_rate)
            signal_power = F.masked_power(data, mask, frame, powers)
            noise_power = F.masked_power(noise, mask, frame)
        else:
            signal_power, noise_power = context.power(data), F.power(noise)
        params = {"snr_db": snr_db, "color": self.config["color"], "noise_seed": noise_seed}
        if signal_power < F.SILENCE_POWER:
            return {**params, "_skip": "silent"}
        gain = F.snr_gain(signal_power, noise_power, snr_db)
        return {**params, "gain_db": 20.0 * math.log10(gain), "_noise": noise, "_gain": gain}

    def apply_params(self, data, params, context):
        noise = params.get("_noise")
        if noise is None:  # re-applying a record
            noise = _colored_noise(params["noise_seed"], data.shape[-1], params["color"])
        gain = params.get("_gain", F.db_to_amplitude(params["gain_db"]))
        return mix(data, noise, gain)


def _colored_noise(seed: int, length: int, color: str) -> np.ndarray:
    """F.colored_noise drawn from np.random.default_rng(seed)'s stream (a pooled Generator, re-seeded)."""
    rng = borrow_generator(seed)
    try:
        return F.colored_noise(rng, length, color)
    finally:
        return_generator(rng)


def mix(data: np.ndarray, noise: np.ndarray, gain: float) -> np.ndarray:
    """data + gain * noise (noise (n,) broadcast over channels), with one temporary instead of two."""
    out = np.multiply(noise, np.float32(gain), dtype=np.float32)
    if data.ndim == 1:
        out += data
        return out
    return data + out
